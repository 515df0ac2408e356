"""The trees real Spack and real conda wrote (tests/fixtures/real-tools/), put back at a
directory of the test's choosing.

The recorded trees name a placeholder root (``/opt/spack-site``); text files and
symbolic links that name it are rewritten to the new root, as Spack would have written
them there.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

REAL_TOOLS = Path(__file__).parent / "fixtures" / "real-tools"
SPACK_SITE = REAL_TOOLS / "spack-1.2-site.tar.gz"
SPACK_PLACEHOLDER = "/opt/spack-site"


_unpacked: dict[Path, tuple[Path, list[str], list[str]]] = {}


def _unpacked_archive(archive: Path, placeholder: str) -> tuple[Path, list[str], list[str]]:
    """The archive unpacked once per test run, as recorded (placeholder root), with the
    links and the text files that name the placeholder (paths relative to its top)."""
    if archive in _unpacked:
        return _unpacked[archive]
    unpack = Path(tempfile.mkdtemp(prefix="vbridge-real-tools-"))
    atexit.register(shutil.rmtree, unpack, True)
    with tarfile.open(archive) as tar:
        top = tar.getnames()[0].split("/")[0]
        tar.extractall(unpack, filter="tar")
    tree = unpack / top
    links: list[str] = []
    texts: list[str] = []
    needle = placeholder.encode()
    for root, dirs, files in os.walk(tree):
        for name in dirs + files:
            path = Path(root) / name
            rel = str(path.relative_to(tree))
            if path.is_symlink():
                if os.readlink(path).startswith(placeholder):
                    links.append(rel)
            elif name in files and path.is_file():
                data = path.read_bytes()
                if needle in data and b"\0" not in data[:4096]:
                    texts.append(rel)
    _unpacked[archive] = (tree, links, texts)
    return _unpacked[archive]


def spack_site(dest: Path) -> Path:
    """Put the recorded Spack 1.2 site at ``dest``; returns ``dest``.

    ``dest/store`` (install tree), ``dest/envs/sci`` (environment with its default
    view), ``dest/views/{plain,proj}`` and ``dest/store-down`` (its upstream is
    ``dest/store``).
    """
    tree, links, texts = _unpacked_archive(SPACK_SITE, SPACK_PLACEHOLDER)
    # Files are hard links to the unpacked copy (vbridge replaces files, never writes
    # into them); the ones rewritten here are new files.
    shutil.copytree(tree, dest, symlinks=True, copy_function=os.link)
    for rel in links:
        path = dest / rel
        target = os.readlink(path)
        path.unlink()
        os.symlink(str(dest) + target[len(SPACK_PLACEHOLDER) :], path)
    old, new = SPACK_PLACEHOLDER.encode(), str(dest).encode()
    for rel in texts:
        path = dest / rel
        stat = path.stat()
        data = path.read_bytes().replace(old, new)
        path.unlink()  # a hard link to the unpacked copy: write a file of its own
        path.write_bytes(data)
        os.chmod(path, stat.st_mode & 0o7777)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as Spack left it
    return dest

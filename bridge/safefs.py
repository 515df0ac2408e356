"""Safe writes inside an environment: atomic replace, containment, writability.

Every file vbridge writes goes through :func:`atomic_write`: the bytes go to a temporary
file in the same directory, are flushed to disk, and the temporary file is renamed over
the target, so a reader (or a crash) only ever sees the old or the new content. The
rename replaces the directory entry, never the old inode: files a conda installer
hard-linked from its package cache are not changed in the cache.

>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> atomic_write(root / "a.txt", b"hello\\n", root)
>>> (root / "a.txt").read_bytes()
b'hello\\n'
>>> contained(root, root / "a.txt") == (root / "a.txt").resolve()
True
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from vbridge.errors import ReadOnlyEnvironment, UnsafePath

__all__ = [
    "TEMP_SUFFIX",
    "atomic_write",
    "contained",
    "create_temp",
    "durable",
    "read_bytes",
    "remove_file",
    "require_writable",
    "sha256_hex",
    "sweep_temporary_files",
]

# Temporary files end in this suffix (never ``.json``: conda reads conda-meta/*.json),
# so a run killed half-way leaves names the next run recognises and removes.
TEMP_SUFFIX = ".vbridge-tmp"


def durable() -> bool:
    """Whether writes are flushed to disk before the rename (``VBRIDGE_FSYNC``, default on).

    Atomicity against a killed process never needs the flush (the kernel keeps the
    data); only a power loss does. ``VBRIDGE_FSYNC=0`` skips it for throw-away
    environments (CI images, tests).
    """
    return os.environ.get("VBRIDGE_FSYNC", "1") != "0"


def sha256_hex(data: bytes) -> str:
    """The hex SHA-256 of ``data`` (the form conda-meta and the ledger use)."""
    return hashlib.sha256(data).hexdigest()


def contained(root: Path, path: Path) -> Path:
    """``path`` with symlinks resolved, or :class:`UnsafePath` if that leaves ``root``.

    The last component may not exist yet (a file about to be written).
    """
    real_root = Path(os.path.realpath(root))
    real = Path(os.path.realpath(path))
    if real != real_root and real_root not in real.parents:
        raise UnsafePath(
            f"{path}: resolves to {real}, outside the environment {root}; vbridge never "
            "writes through a symlink that leaves the environment (replace the link or "
            "annotate the environment it points into)"
        )
    return real


def require_writable(directory: Path) -> None:
    """Raise :class:`ReadOnlyEnvironment` naming ``directory`` if files can't be added."""
    probe = directory
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent  # a directory vbridge would create: its parent must be writable
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ReadOnlyEnvironment(
            f"{probe}: not writable, so vbridge cannot add metadata here; run vbridge as "
            "the user that owns the environment (sudo for a system one), or make the "
            "directory writable"
        )


def read_bytes(path: Path) -> bytes | None:
    """The content of ``path``, or None if there is no such file."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def create_temp(directory: Path, prefix: str, suffix: str) -> tuple[int, str]:
    """A new file in ``directory`` only this process can have created (mode 0600),
    open for writing: what ``tempfile.mkstemp`` gives, without importing tempfile
    (it imports shutil and random, ~3 ms of every post-link script)."""
    for _ in range(100):
        path = os.path.join(directory, f"{prefix}{os.urandom(6).hex()}{suffix}")
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            continue
        return fd, path
    raise FileExistsError(errno.EEXIST, "no unused temporary file name", str(directory))


def atomic_write(path: Path, data: bytes, root: Path) -> None:
    """Replace ``path`` with ``data`` atomically; refuse to leave ``root``.

    Keeps the mode of the file it replaces (new files get 0644 less the umask).
    """
    target = contained(root, path)
    directory = target.parent
    try:
        mode = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    try:
        fd, tmp = create_temp(directory, prefix=f".{target.name}.", suffix=TEMP_SUFFIX)
    except OSError as exc:
        raise _as_vbridge_error(exc, directory) from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if durable():
                os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _as_vbridge_error(exc, directory) from exc
        raise


def remove_file(path: Path, root: Path) -> bool:
    """Remove one file inside ``root``; False if it was already gone."""
    target = contained(root, path.parent) / path.name
    try:
        os.unlink(target)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise _as_vbridge_error(exc, target.parent) from exc
    return True


def sweep_temporary_files(directories: Iterable[Path]) -> list[Path]:
    """Remove temporary files a killed run left behind in ``directories``."""
    removed: list[Path] = []
    for directory in directories:
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def _as_vbridge_error(exc: OSError, directory: Path) -> Exception:
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return ReadOnlyEnvironment(
            f"{directory}: not writable ({exc.strerror}); run vbridge as the user that owns "
            "the environment (sudo for a system one), or make the directory writable"
        )
    return exc

"""What is installed in a site-packages directory: the distributions pip would list.

Only directory names and the tiny ``INSTALLER`` file are read, so listing a large
environment costs one ``scandir`` per layer.

>>> split_metadata_dir_name("numpy-1.26.4.dist-info")
('numpy', '1.26.4')
>>> split_metadata_dir_name("h5py._debian_h5py_serial-3.7.0.dist-info")
('h5py-debian-h5py-serial', '3.7.0')
>>> split_metadata_dir_name("numpy-1.15.0-py2.7-macosx-10.6-x86_64.egg")
('numpy', '1.15.0')
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
from vbridge.errors import UnreadableFile
from vbridge.model import InstallRecord
from vbridge.names import canonical_name
from vbridge.safefs import read_regular

__all__ = [
    "LAYER_NAMES",
    "MetadataDir",
    "iter_metadata_dirs",
    "layer_stat",
    "metadata_dir_path",
    "read_installer",
    "rewritten_by",
    "split_metadata_dir_name",
]

_SUFFIXES = (".dist-info", ".egg-info", ".egg")
# What a directory Python imports installed distributions from is called.
LAYER_NAMES = ("site-packages", "dist-packages")


class MetadataDir(msgspec.Struct, frozen=True):
    """A ``.dist-info``/``.egg-info`` directory (or ``.egg`` with ``EGG-INFO``)."""

    path: Path
    name: str  # PEP 503 normalised
    version: str


# One Path object per metadata directory this process names (see metadata_dir_path).
_PATHS: dict[tuple[str, str], Path] = {}
_PATHS_MAX = 65536


def metadata_dir_path(parent: Path, name: str) -> Path:
    """``parent / name``, the same object each time this process asks for it.

    A scan names each distribution's metadata directory three times: its layer's
    listing, the wheel adapter and the owner's record (conda's ``files``). One object
    makes one Path instead of three (~17 k instructions each on Python 3.11), and
    works its text and hash out once for the dicts that key distributions by it.
    ``name`` may hold ``/`` (a path relative to ``parent``): the same Path as ``/``.

    >>> a = metadata_dir_path(Path("/env/lib"), "python3.11/site-packages/six-1.dist-info")
    >>> b = metadata_dir_path(Path("/env/lib/python3.11/site-packages"), "six-1.dist-info")
    >>> a is b, a == Path("/env/lib") / "python3.11/site-packages/six-1.dist-info"
    (True, True)
    """
    head, sep, tail = name.rpartition("/")
    if sep and head and tail:  # the layer, then the directory in it
        return _shared_child(_shared_child(parent, head), tail)
    return _shared_child(parent, name)


def _shared_child(parent: Path, name: str) -> Path:
    key = (str(parent), name)
    found = _PATHS.get(key)
    if found is None:
        if len(_PATHS) >= _PATHS_MAX:
            _PATHS.clear()
        found = _PATHS[key] = parent / name
    return found


def split_metadata_dir_name(dirname: str) -> tuple[str, str]:
    """Distribution name (normalised) and version from a metadata directory name."""
    for suffix in _SUFFIXES:
        if dirname.endswith(suffix):
            stem = dirname[: -len(suffix)]
            break
    else:
        raise ValueError(f"not a metadata directory: {dirname}")
    name, _, rest = stem.partition("-")
    version = rest.split("-", 1)[0]
    return canonical_name(name), version


# What iter_metadata_dirs listed, by layer, with the layer's inode, device, mtime and
# ctime then: a Spack tree's ~400 layers are listed by its adapter, then by the scan.
# A layer is listed again when any of them moved (an entry added, removed or renamed),
# when it had changed less than a second before it was listed (a change within the
# file system's timestamp granularity would not move them), or when it holds an egg
# (whose EGG-INFO can appear inside without the layer changing).
_LISTED: dict[str, tuple[tuple[int, int, int, int], tuple[MetadataDir, ...]]] = {}
_LISTED_MAX = 4096
_RACY_NS = 1_000_000_000


def layer_stat(site_packages: Path | str) -> os.stat_result | None:
    """The ``os.stat`` of ``site_packages`` when it is a directory (what
    ``Path.is_dir`` looks at), else None: handed to :func:`iter_metadata_dirs`, it
    spares the listing a second look.

    >>> layer_stat("/") is not None, layer_stat("/no/such/layer")
    (True, None)
    """
    try:
        st = os.stat(site_packages)
    except (OSError, ValueError):
        return None
    return st if stat.S_ISDIR(st.st_mode) else None


def iter_metadata_dirs(
    site_packages: Path, st: os.stat_result | None = None
) -> Iterator[MetadataDir]:
    """Yield every distribution's metadata directory in ``site_packages``, by name.

    Each path is made as a child of ``site_packages`` (one name to parse, not the whole
    path again); a layer unchanged since this process listed it is not listed again
    (see ``_LISTED``). ``st``: the layer's :func:`layer_stat`, when the caller has just
    taken it to see the layer is a directory (it then stands for the layer as listed).
    """
    key = os.fspath(site_packages)
    if st is None:
        try:
            st = os.stat(key)
        except OSError:
            return
    stamp = (st.st_ino, st.st_dev, st.st_mtime_ns, st.st_ctime_ns)
    kept = _LISTED.get(key)
    if kept is not None and kept[0] == stamp:
        yield from kept[1]
        return
    found, eggs = _list_metadata_dirs(site_packages)
    if not eggs and max(st.st_mtime_ns, st.st_ctime_ns) < time.time_ns() - _RACY_NS:
        if len(_LISTED) >= _LISTED_MAX:
            _LISTED.clear()
        _LISTED[key] = (stamp, found)
    yield from found


def _list_metadata_dirs(site_packages: Path) -> tuple[tuple[MetadataDir, ...], bool]:
    """The layer's metadata directories, and whether it holds an egg."""
    try:
        with os.scandir(site_packages) as listing:
            entries = [e for e in listing if e.name.endswith(_SUFFIXES)]
    except OSError:
        return (), False
    if len(entries) > 1:
        entries.sort(key=_entry_name)
    top = site_packages if isinstance(site_packages, Path) else Path(site_packages)
    found: list[MetadataDir] = []
    eggs = False
    for entry in entries:
        path = metadata_dir_path(top, entry.name)
        if entry.name.endswith(".egg"):
            eggs = True
            # A zipped or unpacked egg: metadata lives in EGG-INFO/ when unpacked.
            if not (path / "EGG-INFO").is_dir():
                continue
        elif entry.name.endswith(".egg-info") and not entry.is_dir():
            pass  # a single-file egg-info (PKG-INFO format), still a distribution
        elif not entry.is_dir():
            continue
        name, version = split_metadata_dir_name(entry.name)
        if not name or not version:
            continue
        found.append(MetadataDir(path, name, version))
    return tuple(found), eggs


def _entry_name(entry: os.DirEntry[str]) -> str:
    return entry.name


def read_installer(metadata_dir: Path) -> str | None:
    """The ``INSTALLER`` of a distribution, stripped (``"conda\\n"`` -> ``"conda"``)."""
    try:
        directory = str(metadata_dir)  # joined as text: a scan reads one per distribution
        if os.sep == "/" and directory and not directory.endswith("/"):
            file = f"{directory}/INSTALLER"
        else:
            file = os.path.join(directory, "INSTALLER")
        data = read_regular(file, limit=4096)
    except (OSError, UnreadableFile):
        return None  # no INSTALLER, or not one vbridge reads (a FIFO, a huge file)
    return data.decode("utf-8", errors="replace").strip() or None


def rewritten_by(owner: InstallRecord, installer: str | None) -> str | None:
    """The tool that rewrote a dist-info its owner recorded, judged from its content.

    An owner whose adapter names the ``INSTALLER`` it writes (conda: ``conda``) no
    longer owns a dist-info whose ``INSTALLER`` names another tool: pip's
    ``--force-reinstall`` kept the directory and replaced every file in it.

    >>> rec = InstallRecord("conda", "numpy", "1.26.4", "py311h64a7726_0")
    >>> rewritten_by(rec, "pip"), rewritten_by(rec, "conda"), rewritten_by(rec, None)
    ('pip', None, None)
    """
    if installer is None:
        return None
    from vbridge.adapters import adapter_for  # adapters import this module

    adapter = adapter_for(owner.ecosystem)
    writes = adapter.INSTALLERS if adapter is not None else ()
    if not writes or installer in writes:
        return None
    return installer

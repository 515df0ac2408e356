"""Safe reads and writes inside an environment: the one place vbridge opens its files.

Reading: everything vbridge reads from an inspected environment (records, RECORD,
ledger, SBOM, wheels) is opened by :func:`open_regular` / :func:`read_regular` /
:func:`read_json`. Only regular files are read: a FIFO, a device or a socket is refused
with one line, never waited on (the file is opened with ``O_NONBLOCK`` and checked with
``fstat`` before the first read). Sizes are capped (:data:`MAX_READ_BYTES`), JSON nesting
and giant numbers are one line instead of a ``RecursionError``, and with ``root`` a path
whose symlinks lead out of the environment is refused. Every refusal is an
:class:`~vbridge.errors.UnreadableFile` (a :class:`~vbridge.errors.RecordError`) that
carries the path, the problem and what to do.

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
>>> read_json(root / "a.txt")
Traceback (most recent call last):
...
vbridge.errors.UnreadableFile: .../a.txt: malformed JSON at line 1 column 1: Expecting value (...)
>>> os.mkfifo(root / "fifo")
>>> read_regular(root / "fifo")
Traceback (most recent call last):
...
vbridge.errors.UnreadableFile: .../fifo: not a regular file (a FIFO) (skipped)
"""

from __future__ import annotations

import _thread
import contextlib
import errno
import os
import stat
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from vbridge.errors import DiskFull, ReadOnlyEnvironment, UnreadableFile, UnsafePath

__all__ = [
    "MAX_READ_BYTES",
    "TEMP_SUFFIX",
    "DirectoryFiles",
    "atomic_write",
    "atomic_write_all",
    "contained",
    "create_temp",
    "directory_files",
    "durable",
    "is_normal_absolute",
    "load_json",
    "open_regular",
    "open_regular_fd",
    "prune_cache_directory",
    "read_bytes",
    "read_json",
    "read_regular",
    "remembered_digests",
    "remove_file",
    "require_replaceable",
    "require_writable",
    "sha256_digest",
    "sha256_hex",
    "sweep_temporary_files",
    "watch_opened",
    "write_cache_file",
]

# Temporary files end in this suffix (never ``.json``: conda reads conda-meta/*.json),
# so a run killed half-way leaves names the next run recognises and removes.
TEMP_SUFFIX = ".vbridge-tmp"

# The largest file vbridge reads whole. The largest real records are a few MB (a
# conda-meta record of a CUDA toolkit, a Spack index.json of a large site); a file
# beyond this is not a record, and reading it would only exhaust memory.
MAX_READ_BYTES = 512 * 1024 * 1024

# While vbridge.scan_cache watches a scan (:func:`watch_opened`): the ``fstat`` of each
# regular file opened here (None: there was no such file), by the path it was opened
# by, the first open of a path kept.
_opened: dict[str, os.stat_result | None] | None = None

_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a directory"),
)


def durable() -> bool:
    """Whether writes are flushed to disk before the rename (``VBRIDGE_FSYNC``, default on).

    Atomicity against a killed process never needs the flush (the kernel keeps the
    data); only a power loss does. ``VBRIDGE_FSYNC=0`` skips it for throw-away
    environments (CI images, tests).
    """
    return os.environ.get("VBRIDGE_FSYNC", "1") != "0"


def is_normal_absolute(path: str) -> bool:
    """Whether ``path`` is an absolute POSIX path already in normal form: what
    ``os.path.abspath`` and ``str(Path(path))`` give back unchanged (no empty, ``.`` or
    ``..`` part, no trailing ``/``). Most paths a scan handles are joined from such
    paths; they need not be normalised again.

    >>> [is_normal_absolute(p) for p in ("/opt/spack/zlib", "/opt//spack", "/a/../b", "a")]
    [True, False, False, False]
    """
    return (
        os.sep == "/"
        and path.startswith("/")
        and "//" not in path
        and "/./" not in path
        and "/../" not in path
        and not path.endswith(("/", "/.", "/.."))
    )


def sha256_hex(data: bytes) -> str:
    """The hex SHA-256 of ``data`` (the form conda-meta and the ledger use); inside
    :func:`remembered_digests`, a large content's digest is worked out once."""
    memo = _DIGESTS
    if memo is not None and type(data) is bytes and len(data) >= _REMEMBERED_SIZE:
        digest = memo.get(data)
        if digest is None:
            digest = memo[data] = _sha256_hex(data)
        return digest
    return _sha256_hex(data)


def sha256_digest(data: bytes) -> bytes:
    """The SHA-256 of ``data`` as bytes (a RECORD row's hash), from the same
    implementation :func:`sha256_hex` would use."""
    return bytes(_sha256(data).digest())


def _sha256_hex(data: bytes) -> str:
    return str(_sha256(data).hexdigest())


def _sha256(data: bytes) -> Any:
    """A hash object of ``data``: CPython's built-in SHA-256 (``_sha2`` from 3.12,
    ``_sha256`` before) for a small content, and for a larger one while OpenSSL's
    library is not loaded and the process has hashed less than ``_BUILTIN_BUDGET``
    bytes that way; OpenSSL (hashlib) otherwise. Loading OpenSSL costs ~3.4 ms
    (~11 M instructions), what the built-in takes for ~0.7 MB; OpenSSL uses the CPU's
    SHA instructions (~7x the built-in's speed), so a run that hashes much loads it.
    The digests are the same."""
    global _BUILTIN_BYTES
    size = len(data)
    if size < _REMEMBERED_SIZE or (
        "_hashlib" not in sys.modules and _BUILTIN_BYTES + size <= _BUILTIN_BUDGET
    ):
        module = _builtin_sha256()
        if module is not None:
            if size >= _REMEMBERED_SIZE:
                _BUILTIN_BYTES += size
            return module.sha256(data)
    import hashlib

    return hashlib.sha256(data)


def _builtin_sha256() -> Any:
    """CPython's built-in SHA-256 module (``_sha2`` from 3.12, ``_sha256`` before),
    None in a build without it; looked for once (a failed import searches every
    entry of sys.path, each time it is tried)."""
    global _BUILTIN_SHA256
    if _BUILTIN_SHA256 is _UNKNOWN:
        import importlib

        try:
            name = "_sha2" if sys.version_info >= (3, 12) else "_sha256"
            _BUILTIN_SHA256 = importlib.import_module(name)
        except ImportError:
            _BUILTIN_SHA256 = None
    return _BUILTIN_SHA256


_UNKNOWN: Any = object()
_BUILTIN_SHA256: Any = _UNKNOWN

# How many bytes of contents of _REMEMBERED_SIZE or more the built-in SHA-256 may hash
# before OpenSSL is loaded (a conda post-link hook hashes its edited conda-meta record
# about three times: records up to ~170 KB never load OpenSSL), and how many it has.
_BUILTIN_BUDGET = 512 * 1024
_BUILTIN_BYTES = 0


# The digests remembered by content (None: none), and from what size: an annotate run
# hashes an edited conda-meta record (up to ~1 MB) up to six times (the digest the
# ledger knows, the backup's name and the intent ledger's, the final ledger's).
_DIGESTS: dict[bytes, str] | None = None
_REMEMBERED_SIZE = 16 * 1024


@contextlib.contextmanager
def remembered_digests() -> Iterator[None]:
    """For the time of the block (one run: the contents it hashes are held until its
    end), :func:`sha256_hex` remembers the digest of each large content it hashes.
    A block inside another one (or in another thread meanwhile) shares its memory."""
    global _DIGESTS
    outer = _DIGESTS
    if outer is None:
        _DIGESTS = {}
    try:
        yield
    finally:
        if outer is None:
            _DIGESTS = None


def contained(root: Path, path: Path) -> Path:
    """``path`` with symlinks resolved, or :class:`UnsafePath` if that leaves ``root``.

    The last component may not exist yet (a file about to be written).
    """
    real_root = os.path.realpath(root)
    real = _realpath_below(os.fspath(root), real_root, os.fspath(path))
    if real != real_root and not real.startswith(real_root.rstrip("/") + "/"):
        raise UnsafePath(
            f"{path}: resolves to {real}, outside the environment {root}; vbridge never "
            "writes through a symlink that leaves the environment (replace the link or "
            "annotate the environment it points into)"
        )
    return Path(real)


def _realpath_below(root: str, real_root: str, path: str) -> str:
    """``os.path.realpath(path)``, given ``real_root``, the realpath of ``root``.

    For a ``path`` below ``root`` (both absolute and in normal form), the components of
    ``root`` are not resolved again: the rest is resolved from ``real_root`` one
    component at a time as realpath resolves it (a symlink through realpath, from its
    resolved parent; anything else, a missing component too, appended). Other paths go
    to realpath itself.
    """
    top = root.rstrip("/") + "/"
    if not (path.startswith(top) and is_normal_absolute(path) and is_normal_absolute(root)):
        return os.path.realpath(path)
    current = real_root
    for name in path[len(top) :].split("/"):
        candidate = os.path.join(current, name)
        current = os.path.realpath(candidate) if os.path.islink(candidate) else candidate
    return current


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


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def open_regular_fd(
    path: Path | str, root: Path | None, hint: str
) -> tuple[Path | str, int, os.stat_result]:
    """``path`` (a ``Path`` when ``root`` is given) opened read-only as a descriptor,
    with its ``fstat``, if it is a regular file inside ``root``: what
    :func:`open_regular` and :func:`read_regular` check. The caller closes the descriptor.
    """
    if root is not None:
        path = Path(path)
        try:
            contained(root, path)
        except UnsafePath as exc:
            raise UnreadableFile(path, str(exc).split(": ", 1)[1], hint) from None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except FileNotFoundError:
        if _opened is not None:
            _opened.setdefault(os.fspath(path), None)
        raise
    except OSError as exc:
        if exc.errno in (errno.ENXIO, errno.EOPNOTSUPP):  # a socket, a FIFO-like device
            raise UnreadableFile(path, "not a regular file", hint) from None
        raise UnreadableFile(path, f"unreadable: {exc.strerror}", _read_hint(exc, hint)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnreadableFile(path, f"not a regular file ({_kind(st.st_mode)})", hint)
    except BaseException:
        os.close(fd)
        raise
    if _opened is not None:
        _opened.setdefault(os.fspath(path), st)
    return path, fd, st


def watch_opened(opened: dict[str, os.stat_result | None] | None) -> None:
    """Keep in ``opened`` (None: stop) the ``fstat`` of every regular file
    :func:`open_regular_fd` opens, and None for each path it found no file at, by the
    path it was opened by (a path opened again keeps its first).

    The kept scan (:mod:`vbridge.scan_cache`) records what each file it read was when
    it was read, without a ``stat`` of each path after the scan: a conda scan opens
    some 1,500 files this way."""
    global _opened
    _opened = opened


def open_regular(path: Path | str, *, root: Path | None = None, hint: str = "skipped") -> BinaryIO:
    """``path`` open for binary reading, if it is a regular file (inside ``root``).

    Never blocks: a FIFO opens at once under ``O_NONBLOCK`` and is refused by the
    ``fstat`` that follows. Raises :class:`FileNotFoundError` if there is no such file
    (callers decide whether that is a problem), :class:`UnreadableFile` otherwise.
    """
    _, fd, _ = open_regular_fd(path, root, hint)
    try:
        # Back to blocking reads for a regular file (O_NONBLOCK means nothing there).
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _read_hint(exc: OSError, hint: str) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"check its permissions; {hint}"
    return hint


def read_regular(
    path: Path | str,
    *,
    root: Path | None = None,
    limit: int = MAX_READ_BYTES,
    hint: str = "skipped",
) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them.

    Raises :class:`FileNotFoundError` if there is no such file, :class:`UnreadableFile`
    for a special file, a file larger than ``limit``, a link out of ``root`` or a read
    error.

    Checked as :func:`open_regular` checks, then read on the descriptor: a scan reads ~1,500
    files, and a file object, its buffer and the switch back to blocking reads
    (meaningless for a regular file) cost more than the read of a small one.
    """
    path, fd, st = open_regular_fd(path, root, hint)
    try:
        size = st.st_size
        if size > limit:
            raise UnreadableFile(
                path, f"{size} bytes, more than vbridge reads ({limit}); not a record", hint
            )
        # Asking for ``limit + 1`` bytes at once would allocate that much for every
        # file (an mmap and page faults per call: 87 MB of conda-meta read in 88 ms
        # instead of 13, bench/README.md); the size fstat gave, and one byte more to
        # see it grow, is enough. A file that grew, or says 0 (/proc), reads on. A first
        # read that stops short at the size fstat gave has met the end: the read that
        # would return nothing is not made (one system call of every file a scan reads).
        chunks: list[bytes] = []
        got = 0
        want = size + 1
        while got <= limit:
            chunk = os.read(fd, want)
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
            if got == size and size:
                break
            want = max(min(limit + 1 - got, 1 << 20), 1)
    except OSError as exc:
        raise UnreadableFile(path, f"unreadable: {exc.strerror}", hint) from None
    finally:
        os.close(fd)
    data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    if len(data) > limit:  # grew while being read
        raise UnreadableFile(path, f"more than {limit} bytes; not a record", hint)
    return data


class DirectoryFiles:
    """The regular files directly in one directory inside ``root``, read without a
    ``realpath`` of each (:func:`directory_files`).

    ``names`` is what the directory lists. :meth:`read` gives what
    ``read_regular(directory / name, root=root)`` gives: an entry the listing showed as
    a regular file (not a symlink) of a directory that resolves inside ``root`` is
    inside ``root`` by construction and is opened with ``O_NOFOLLOW``; anything else
    (a symlink, a special file, an entry that changed since the listing, a directory
    leading out of ``root``) is read by :func:`read_regular` itself, with its refusals.
    """

    def __init__(self, root: Path, directory: Path) -> None:
        self.root = root
        self.directory = directory
        self._prefix = os.path.join(directory, "")  # + a listed name: no join per read
        listed: list[tuple[str, bool]] = []
        try:
            with os.scandir(directory) as entries:
                listed = [(e.name, e.is_file(follow_symlinks=False)) for e in entries]
            contained(root, directory)
            inside = True
        except (OSError, UnsafePath):
            inside = False  # every read goes through read_regular, which says why
        self.names: frozenset[str] = frozenset(name for name, _ in listed)
        self._regular = frozenset(name for name, regular in listed if regular and inside)

    def read(self, name: str, *, hint: str = "skipped") -> bytes:
        """The bytes of ``directory/name``, as :func:`read_regular` with ``root``."""
        if name in self._regular:
            data = _read_plain(self._prefix + name)
            if data is not None:
                return data
        return read_regular(self.directory / name, root=self.root, hint=hint)


def _read_plain(path: str) -> bytes | None:
    """A regular file's bytes (at most :data:`MAX_READ_BYTES`), or None for anything
    else (a symlink, a special file, an error): the caller reads it the careful way."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_READ_BYTES:
            return None
        data = os.read(fd, st.st_size + 1)
        # Grew, shrank or a short read: the careful read says what happened.
        return data if len(data) == st.st_size else None
    except OSError:
        return None
    finally:
        os.close(fd)


def directory_files(root: Path, directory: Path) -> DirectoryFiles:
    """The files of ``directory`` (inside ``root``), listed once and read cheaply.

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "a.list").write_bytes(b"/usr\\n")
    5
    >>> files = directory_files(root, root)
    >>> sorted(files.names), files.read("a.list")
    (['a.list'], b'/usr\\n')
    """
    return DirectoryFiles(root, directory)


def load_json(data: bytes | str, path: Path | str, *, hint: str = "skipped") -> Any:
    """``json.loads(data)``; every way it can fail is one :class:`UnreadableFile` naming
    ``path``: malformed JSON, invalid UTF-8, nesting deeper than the parser's limit,
    an integer of more digits than Python converts.

    >>> load_json(b'{"a": [1]}', "x.json")
    {'a': [1]}
    >>> load_json(b"[" * 100000, "deep.json")
    Traceback (most recent call last):
    ...
    vbridge.errors.UnreadableFile: deep.json: JSON nested too deeply to read (skipped)
    """
    import json  # a record's own parser is msgspec: this is for the records left to json

    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        problem = f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
    except RecursionError:
        problem = "JSON nested too deeply to read"
    except UnicodeDecodeError as exc:
        problem = f"not UTF-8 text ({exc.reason} at byte {exc.start})"
    except ValueError as exc:  # e.g. an integer beyond sys.get_int_max_str_digits()
        problem = f"malformed JSON: {exc}"
    raise UnreadableFile(path, problem, hint)


def read_json(
    path: Path | str,
    *,
    root: Path | None = None,
    limit: int = MAX_READ_BYTES,
    hint: str = "skipped",
) -> Any:
    """:func:`load_json` of :func:`read_regular`: a JSON file from an environment."""
    return load_json(read_regular(path, root=root, limit=limit, hint=hint), path, hint=hint)


# Linux inode flags (chattr): a file or directory with them cannot be replaced or
# changed, even by root, whatever its mode says.
_FS_IOC_GETFLAGS = 0x80086601
_IMMUTABLE_OR_APPEND = 0x10 | 0x20


def require_replaceable(path: Path) -> None:
    """Raise :class:`ReadOnlyEnvironment` naming ``path`` if it is immutable or
    append-only (``chattr +i``/``+a``): checked before a run writes anything, so such a
    file stops the run at once instead of after the files written before it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return  # absent, or a link (refused elsewhere): nothing to say here
    try:
        import array
        import fcntl

        flags = array.array("l", [0])
        fcntl.ioctl(fd, _FS_IOC_GETFLAGS, flags, True)
    except (OSError, ImportError):
        return  # a file system without inode flags
    finally:
        os.close(fd)
    if flags[0] & _IMMUTABLE_OR_APPEND:
        raise ReadOnlyEnvironment(
            f"{path}: immutable or append-only (chattr), so vbridge cannot replace it; "
            f"nothing was changed (run chattr -i -a {path}, or leave its distribution "
            "out with --only)"
        )


def read_bytes(path: Path, *, root: Path | None = None) -> bytes | None:
    """The content of the regular file ``path``, or None if there is no such file.

    What vbridge reads back of files it writes or edits (RECORD, conda-meta records, its
    ledger): a special file there raises :class:`UnreadableFile`, never blocks.
    """
    try:
        return read_regular(path, root=root, hint="replace it with a regular file")
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


def write_cache_file(path: Path, data: bytes, keep: int) -> os.stat_result | None:
    """Replace the cache file ``path`` (vbridge's own, in the user's cache directory)
    with ``data``: a private directory (0700) and file (0600), written under a temporary
    name and renamed, no fsync. Its ``stat`` after the rename (which moves the ctime), or
    None when it could not be written: a cache that cannot be written is only a slower
    next run, never an error.

    A cache directory holds one file per prefix, TOML file or scan command, and those
    come and go (conda-build's test environments, CI runners, ``mktemp -d``): when
    ``path`` is a new entry, the directory is pruned to the ``keep`` entries used last
    (:func:`prune_cache_directory`). Replacing an entry lists nothing.
    """
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = create_temp(path.parent, prefix=_CACHE_TEMP_PREFIX, suffix=path.suffix)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            new = not os.path.lexists(path)
            os.replace(tmp, path)
            written = os.fstat(fh.fileno())
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if new:
        prune_cache_directory(path.parent, keep, spare=path.name)
    return written


_CACHE_TEMP_PREFIX = ".tmp-"
# A cache's temporary file this old was left by a killed run: no write takes an hour.
_STALE_CACHE_TEMP_NS = 3600 * 1_000_000_000


def prune_cache_directory(directory: Path, keep: int, spare: str) -> list[str]:
    """Remove from the cache ``directory`` all but the ``keep`` entries used last, and
    the temporary files killed runs left there; return the names removed.

    An entry is a regular file with the suffix of ``spare`` (the entry just written,
    always kept); "used" is its last read or write (the later of atime and mtime: where
    the file system does not record reads, ``noatime``, the last write). Temporary
    files are removed once an hour old (one being written now is younger). Anything
    else (directories, symlinks, other names) is left alone; an entry another run
    removes or replaces meanwhile is skipped. Nothing is raised: a cache that cannot be
    pruned is only a larger one.
    """
    suffix = os.path.splitext(spare)[1]
    stale_before = time.time_ns() - _STALE_CACHE_TEMP_NS
    stale: list[str] = []  # temporary files killed runs left
    entries: list[tuple[int, str]] = []  # (last used, name)
    try:
        with os.scandir(directory) as found:
            for entry in found:
                name = entry.name
                if name == spare or not entry.is_file(follow_symlinks=False):
                    continue
                st = entry.stat(follow_symlinks=False)
                if name.startswith(_CACHE_TEMP_PREFIX):
                    if st.st_mtime_ns < stale_before:
                        stale.append(name)
                elif name.endswith(suffix):
                    entries.append((max(st.st_atime_ns, st.st_mtime_ns), name))
    except OSError:
        return []
    entries.sort()
    excess = max(0, len(entries) + 1 - keep)  # + 1: the spare
    removed: list[str] = []
    for name in stale + [name for _, name in entries[:excess]]:
        try:
            os.unlink(os.path.join(directory, name))
        except OSError:
            continue
        removed.append(name)
    return removed


def atomic_write(path: Path, data: bytes, root: Path) -> None:
    """Replace ``path`` with ``data`` atomically; refuse to leave ``root``.

    Keeps the mode of the file it replaces (new files get 0644 less the umask).
    """
    atomic_write_all([(path, data, root)])


# How many files atomic_write_all holds open at once (each batch is flushed together).
_BATCH = 32


def atomic_write_all(
    writes: Sequence[tuple[Path, bytes, Path]], mtimes: Mapping[Path, int] | None = None
) -> None:
    """:func:`atomic_write` of each ``(path, data, root)``, renamed in this order, with
    their writes to disk taken together. ``mtimes`` gives some of the paths (as given)
    a modification time, set before the rename (a backup keeps its original's).

    Every path is checked first (inside its root; the mode to keep). Then each file of
    a batch is written to its temporary file and flushed to disk side by side with the
    others (one thread per file but the first: creating a file and ``fsync`` wait for
    the file system's journal, which commits what waits together at once, instead of
    one file after another), then each is renamed over its path in order. As with one
    :func:`atomic_write` after another, a file's bytes are on disk before its rename,
    and the renames happen in the order given; a failure before a batch's renames
    leaves its paths as they were (and no temporary file).
    """
    mtimes = mtimes or {}
    for start in range(0, len(writes), _BATCH):
        _write_batch(writes[start : start + _BATCH], mtimes)


class _Temporary:
    """One file of a batch: where it goes, its mode, and its temporary file."""

    __slots__ = ("data", "directory", "mode", "mtime_ns", "target", "tmp")

    def __init__(self, target: Path, data: bytes, mode: int, mtime_ns: int | None) -> None:
        self.target = target
        self.directory = target.parent
        self.data = data
        self.mode = mode
        self.mtime_ns = mtime_ns
        self.tmp: str | None = None

    def write(self, flush: bool) -> None:
        """The temporary file, written (and with ``flush``, on disk)."""
        try:
            fd, self.tmp = create_temp(
                self.directory, prefix=f".{self.target.name}.", suffix=TEMP_SUFFIX
            )
            try:
                _write_fully(fd, self.data)
                if self.mtime_ns is not None:
                    os.utime(fd, ns=(self.mtime_ns, self.mtime_ns))
                if flush:
                    os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise _as_vbridge_error(exc, self.directory) from exc


def _write_batch(writes: Sequence[tuple[Path, bytes, Path]], mtimes: Mapping[Path, int]) -> None:
    files: list[_Temporary] = []
    for path, data, root in writes:
        target = contained(root, path)
        try:
            mode = target.stat().st_mode & 0o7777
        except FileNotFoundError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        files.append(_Temporary(target, data, mode, mtimes.get(path)))
    try:
        _write_side_by_side(files, durable())
        for file in files:
            assert file.tmp is not None
            try:
                os.chmod(file.tmp, file.mode)
                os.replace(file.tmp, file.target)
            except OSError as exc:
                raise _as_vbridge_error(exc, file.directory) from exc
            file.tmp = None
    finally:
        for file in files:
            if file.tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(file.tmp)


def _write_fully(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _write_side_by_side(files: Sequence[_Temporary], flush: bool) -> None:
    """Every file's :meth:`_Temporary.write`, the first in this thread and each other
    one in a thread of its own (or in this one, when no thread can be started); the
    first failure (in the files' order) is raised once all are done.

    The threads are the interpreter's own (``_thread``; the threading module's import
    is ~1 ms of each post-link hook): each releases a lock of its own when its write
    is done, and this thread waits for every lock.
    """
    errors: dict[int, BaseException] = {}

    def write(index: int, done: _thread.LockType | None = None) -> None:
        try:
            files[index].write(flush)
        except BaseException as exc:
            errors[index] = exc
        finally:
            if done is not None:
                done.release()

    running = []
    if len(files) > 1:
        for index in range(1, len(files)):
            done = _thread.allocate_lock()
            done.acquire()
            try:
                _thread.start_new_thread(write, (index, done))
            except RuntimeError:  # no thread to be had (a process limit): written here
                write(index)
                continue
            running.append(done)
    try:
        if files:
            write(0)
    finally:
        for done in running:
            done.acquire()
    if errors:
        raise errors[min(errors)]


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


def sweep_temporary_files(directories: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Remove temporary files a killed run left behind in ``directories``."""
    removed: list[Path] = []
    for directory in directories:
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        # One search of the directory's names (conda-meta has one per package) for the
        # suffix at the end of a name; the names are looked at one by one only if found.
        if TEMP_SUFFIX + "\0" not in "\0".join(names) + "\0":
            continue
        for name in names:
            if name.startswith(".") and name.endswith(TEMP_SUFFIX):
                path = os.path.join(directory, name)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                    removed.append(Path(path))
    return removed


def _as_vbridge_error(exc: OSError, directory: Path) -> Exception:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(
            f"{directory}: no space left on device; nothing was left half-written (free "
            "some space, then run vbridge again: it finishes what this run began)"
        )
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return ReadOnlyEnvironment(
            f"{directory}: not writable ({exc.strerror}); run vbridge as the user that owns "
            "the environment (sudo for a system one), or make the directory writable"
        )
    return exc

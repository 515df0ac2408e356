"""What ``vbridge scan [--json] [--strict] PREFIX`` printed last, kept with everything
it read, and printed again while none of that changed.

A scan of an unchanged environment is the commonest scan (a CI job, a prompt, a
script run again and again), and a prefix of 600 conda records takes a few hundred
milliseconds to read however its records are decoded. The console script's fast path
(:mod:`vbridge.entry_point`) runs the scan watching what it reads: an audit hook
(:func:`sys.addaudithook`) sees every file Python opens (the environment's records,
dist-info files, policy and rule files, vbridge's own modules as they are imported)
and every directory it lists; ``os.stat``, ``os.lstat`` and ``os.readlink``, which
raise no audit event, are wrapped while the scan runs, so a path only tested
(``Path.is_dir()``, a ``conda-meta/`` looked for in a parent) or a link only read (an
``/etc/alternatives`` one) is seen too. A file read through a link is watched at its
target. The output, exit status and
messages are kept in ``$XDG_CACHE_HOME/vbridge/scans/`` (``~/.cache`` by default)
with the signature of each of those paths: for a file :mod:`vbridge.safefs` opened
(every record), the ``fstat`` it took on opening it, so the file the scan read (or
that there was none), with no second ``stat``. The next identical command (same prefix,
flags, working directory, environment variables, vbridge and Python) takes them
again and, when every path is as it was (size, mtime, ctime, inode, device, mode; a
tested directory still a directory; a path that was absent still absent), prints the
kept output: a few thousand ``stat`` calls instead of a scan.

Nothing is kept when the result could not be trusted again: a scan that raised,
read ``/proc``, ``/sys`` or ``/dev`` (host facts: the CPU, a driver), started a
process, looked a path up relative to a directory descriptor, or read a file changed
less than a second before it started (its mtime could stay the same through another
change). ``VBRIDGE_NO_CACHE=1`` turns this off; a damaged or foreign cache file is a
miss, never an error.

The kept file is :mod:`marshal` data (CPython's own format for ``.pyc`` files, read
in a fraction of a millisecond), in the user's own cache directory (mode 0600; a
file another user owns or could write is not read, since marshal data is trusted
data); the key holds the Python version, so another Python's file is a miss. This module imports
nothing but the standard library's built-in modules: a kept scan costs a Python
start-up, one file read and the ``stat`` calls.
"""

from __future__ import annotations

import marshal
import os
import stat
import sys
import time
import zlib

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TextIO

    # size, mtime_ns, ctime_ns, inode, device, mode
    Signature = tuple[int, int, int, int, int, int]

__all__ = ["FORMAT", "KEPT_SCANS", "RACY_NS", "cache_file", "cache_home", "read_kept", "run_kept"]

FORMAT = 1
# Scan commands kept (one per prefix, flags, working directory and environment): the
# directory is pruned to those run last.
KEPT_SCANS = 64
# A file changed this close to the scan may change again within the file system's
# timestamp granularity with the same size and mtime ("racily clean"): such a scan is
# not kept, nor is anything else vbridge keeps by a file's stat (the record cache,
# parsed TOML files).
RACY_NS = 1_000_000_000
# Variables a shell changes between two identical commands, which no scan reads.
_VOLATILE_VARIABLES = frozenset(
    {"_", "OLDPWD", "PWD", "SHLVL", "COLUMNS", "LINES", "PS1", "PS2", "PROMPT_COMMAND"}
)
_HOST_FILES = ("/proc/", "/sys/", "/dev/")
_PROCESS_EVENTS = frozenset(
    {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork"}
)
_WATCHED_EVENTS = frozenset({"open", "os.scandir", "os.listdir", *_PROCESS_EVENTS})
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
# open() modes that neither write nor create (none of "w", "a", "x", "+").
_READING_MODES = frozenset({"r", "rb", "rt", "br", "tr"})


def cache_home() -> str:
    """vbridge's cache directory: ``$XDG_CACHE_HOME/vbridge`` (``~/.cache/vbridge``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "vbridge")


def cache_file(key: tuple[Any, ...]) -> str:
    """Where the scan of ``key`` is kept (the key itself is checked inside the file)."""
    digest = zlib.crc32(marshal.dumps(key))
    return os.path.join(cache_home(), "scans", f"{digest:08x}.marshal")


def _key(prefix: str, flags: dict[str, bool]) -> tuple[Any, ...]:
    from vbridge import __version__

    variables = tuple(
        sorted(
            (name, value) for name, value in os.environ.items() if name not in _VOLATILE_VARIABLES
        )
    )
    return (
        FORMAT,
        __version__,
        sys.version,
        sys.executable,
        prefix,
        tuple(sorted(flags.items())),
        os.getcwd(),
        variables,
    )


class _Observer:
    """Every path opened for reading and every directory listed (an audit hook), and
    every path tested with ``os.stat``/``os.lstat`` (``Path.is_dir``, ``exists``...)
    or read with ``os.readlink``: those raise no audit event, so they are wrapped
    while the scan runs."""

    def __init__(self, own: str) -> None:
        self.active = True
        self.trusted = True
        self.paths: set[str] = set()
        self.probed: dict[str, bool] = {}  # path -> followed links
        self._own = own  # vbridge's caches: written by the scan, not read for it
        self._stat = os.stat
        self._lstat = os.lstat
        self._readlink = os.readlink
        from vbridge.safefs import is_normal_absolute, watch_opened  # the scan imports it

        self._is_normal = is_normal_absolute
        self._watch_opened = watch_opened
        # The files the scan read through safefs, as they were when opened (None: no
        # such file then), from watch_stat on.
        self.opened: dict[str, os.stat_result | None] = {}
        self._opens: list[tuple[Any, ...]] = []  # the open events' arguments, as they came

    def watch_stat(self) -> None:
        self._watch_opened(self.opened)
        observer = self

        def stat(path: Any, *, dir_fd: Any = None, follow_symlinks: bool = True) -> Any:
            observer._probe(path, dir_fd, follow_symlinks)
            return observer._stat(path, dir_fd=dir_fd, follow_symlinks=follow_symlinks)

        def lstat(path: Any, *, dir_fd: Any = None) -> Any:
            observer._probe(path, dir_fd, False)
            return observer._lstat(path, dir_fd=dir_fd)

        def readlink(path: Any, *, dir_fd: Any = None) -> Any:
            # An /etc/alternatives link read: pointing it elsewhere replaces it.
            observer._probe(path, dir_fd, False)
            return observer._readlink(path, dir_fd=dir_fd)

        os.stat, os.lstat, os.readlink = stat, lstat, readlink

    def stop(self) -> None:
        self.active = False
        os.stat, os.lstat, os.readlink = self._stat, self._lstat, self._readlink
        self._watch_opened(None)
        self._take_opens()

    def _probe(self, path: object, dir_fd: object, follow: bool) -> None:
        if not self.active:
            return
        if dir_fd is not None:
            self.trusted = False  # relative to a directory this does not follow
            return
        name = self._name(path)
        if name is not None and name not in self.paths:
            if follow:  # a path also tested through its links is watched through them
                self.probed[name] = True
            else:
                self.probed.setdefault(name, False)

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        # Called for every audited event (``id()``, ``exec``, imports...): few matter.
        if event == "open":
            # The commonest by far (~1,500 a conda scan): kept as they come, looked at
            # once the scan is over (_take_opens), in one loop rather than 1,500 calls.
            if self.active:
                self._opens.append(args)
            return
        if event not in _WATCHED_EVENTS or not self.active:
            return
        try:
            self._observe(event, args)
        except Exception:  # an audit hook's exception would fail the operation audited
            self.trusted = False

    def _take_opens(self) -> None:
        """Watch the files opened for reading (by a path in normal form, taken as it is;
        any other goes through _observe)."""
        opens, self._opens = self._opens, []
        own, is_normal, paths = self._own, self._is_normal, self.paths
        for args in opens:
            path, mode, flags = args
            if (
                type(path) is str
                and (mode is None or mode in _READING_MODES)
                and type(flags) is int
                and not flags & _WRITE_FLAGS
                and is_normal(path)
            ):
                if not path.startswith(own):
                    if path.startswith(_HOST_FILES):
                        self.trusted = False
                    paths.add(path)
                continue
            try:
                self._observe("open", args)
            except Exception:
                self.trusted = False

    def _observe(self, event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            path, mode, flags = args
            if isinstance(mode, str) and any(c in mode for c in "wax+"):
                return
            if isinstance(flags, int) and flags & _WRITE_FLAGS:
                return
            self._see(path)
        elif event in ("os.scandir", "os.listdir"):
            self._see(args[0] if args[0] is not None else ".")
        elif event in _PROCESS_EVENTS:
            self.trusted = False

    def _name(self, path: object) -> str | None:
        if isinstance(path, os.PathLike):
            path = os.fspath(path)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not isinstance(path, str):
            return None  # a file descriptor: its file was seen when it was opened
        if not self._is_normal(path):
            path = os.path.abspath(path)
        if path.startswith(self._own):
            return None
        if path.startswith(_HOST_FILES):
            self.trusted = False
        return path

    def _see(self, path: object) -> None:
        name = self._name(path)
        if name is not None:
            self.paths.add(name)


class _Tee:
    """A text stream that writes through and keeps a copy."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def _signature(st: os.stat_result) -> Signature:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev, st.st_mode)


class _Watched:
    """What the next identical command compares, in the order it compares it: paths
    tested with ``lstat`` and their signatures (None: absent); paths opened, listed or
    tested with ``stat`` and the signatures of what they lead to (links followed); and
    of the tested paths that were directories only that they still are (a directory's
    own mtime is watched where it is listed)."""

    def __init__(self, observer: _Observer) -> None:
        self.lstat_paths: list[str] = []
        self.lstat_signatures: list[Signature | None] = []
        self.stat_paths: list[str] = []
        self.stat_signatures: list[Signature | None] = []
        self.directories: list[tuple[str, bool]] = []  # (path, links followed)
        opened_paths = observer.paths
        for path in sorted(observer.probed):
            follow = observer.probed[path]
            if follow and path in opened_paths:
                continue  # watched as a path opened: the same signature
            sig = self._take(path, follow)
            if sig is not None and stat.S_ISDIR(sig[5]):
                self.directories.append((path, follow))
            elif follow:
                self.stat_paths.append(path)
                self.stat_signatures.append(sig)
            else:
                self.lstat_paths.append(path)
                self.lstat_signatures.append(sig)
        opened = observer.opened
        for path in sorted(observer.paths):
            # What was read is what a link leads to (a Spack view's files link into
            # the store): the signature of the target, which also moves when the
            # link is pointed elsewhere. A file safefs opened: as it was when read (or
            # absent, as safefs found it).
            self.stat_paths.append(path)
            if path in opened:
                st = opened[path]
                self.stat_signatures.append(None if st is None else _signature(st))
            else:
                self.stat_signatures.append(self._take(path, True))

    @staticmethod
    def _take(path: str, follow: bool) -> Signature | None:
        try:
            return _signature(os.stat(path) if follow else os.lstat(path))
        except OSError:
            return None

    def changed_since(self, started_ns: int) -> bool:
        """Whether a path changed too close to ``started_ns`` to be trusted again."""
        limit = started_ns - RACY_NS
        return any(
            sig is not None and max(sig[1], sig[2]) > limit
            for sig in (*self.lstat_signatures, *self.stat_signatures)
        )

    def as_tuple(self) -> tuple[Any, ...]:
        return (
            tuple(self.lstat_paths),
            tuple(self.lstat_signatures),
            tuple(self.stat_paths),
            tuple(self.stat_signatures),
            tuple(self.directories),
        )


def _unchanged(paths: tuple[str, ...], signatures: tuple[Any, ...], follow: bool) -> bool:
    lookup = os.stat if follow else os.lstat
    for path, sig in zip(paths, signatures, strict=True):
        try:
            st = lookup(path)
        except OSError:
            if sig is not None:
                return False
            continue
        if sig != (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev, st.st_mode):
            return False
    return True


def _still_directories(directories: tuple[tuple[str, bool], ...]) -> bool:
    for path, follow in directories:
        try:
            st = os.stat(path) if follow else os.lstat(path)
        except OSError:
            return False
        if not stat.S_ISDIR(st.st_mode):
            return False
    return True


def read_kept(path: str) -> Any:
    """The :mod:`marshal` data kept at ``path`` in vbridge's cache; None when there is
    none, it is damaged or another Python's, or it cannot be trusted (marshal data is
    trusted data: a file another user owns or could write is not read)."""
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid():
                return None
            if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                return None
            return marshal.loads(fh.read())
    except (OSError, EOFError, ValueError, TypeError):
        return None


def _load(path: str, key: tuple[Any, ...]) -> tuple[int, str, str] | None:
    """The exit status, stdout and stderr kept for ``key``, if nothing changed."""
    kept = read_kept(path)
    if kept is None:
        return None
    try:
        stored_key, watched, code, out, err = kept
        lstat_paths, lstat_sigs, stat_paths, stat_sigs, directories = watched
        if stored_key != key or not (
            isinstance(code, int) and isinstance(out, str) and isinstance(err, str)
        ):
            return None
        if not (
            _unchanged(lstat_paths, lstat_sigs, False)
            and _unchanged(stat_paths, stat_sigs, True)
            and _still_directories(directories)
        ):
            return None
    except (OSError, EOFError, ValueError, TypeError):
        return None  # damaged, foreign (another Python's marshal), unreadable: a miss
    return code, out, err


def _save(path: str, document: tuple[Any, ...]) -> None:
    from pathlib import Path  # both loaded by the scan already

    from vbridge.safefs import write_cache_file

    write_cache_file(Path(path), marshal.dumps(document), keep=KEPT_SCANS)


def run_kept(prefix: str, flags: dict[str, bool], scan: Callable[[], int]) -> int:
    """Print the kept output of this scan command if nothing it read changed, else run
    ``scan()`` (which prints and returns the exit status) and keep what it printed."""
    if os.environ.get("VBRIDGE_NO_CACHE"):
        return scan()
    prefix = os.path.abspath(prefix)
    key = _key(prefix, flags)
    path = cache_file(key)
    kept = _load(path, key)
    if kept is not None:
        code, out_text, err_text = kept
        sys.stderr.write(err_text)
        sys.stderr.flush()
        sys.stdout.write(out_text)
        sys.stdout.flush()
        return code
    observer = _Observer(cache_home() + os.sep)
    sys.addaudithook(observer)
    started = time.time_ns()
    out, err = _Tee(sys.stdout), _Tee(sys.stderr)
    sys.stdout, sys.stderr = out, err
    observer.watch_stat()
    try:
        code = scan()
    finally:
        observer.stop()
        sys.stdout, sys.stderr = out.stream, err.stream
    if not observer.trusted:
        return code
    watched = _Watched(observer)
    if watched.changed_since(started):
        return code
    _save(path, (key, watched.as_tuple(), code, "".join(out.parts), "".join(err.parts)))
    return code

"""The ledger: what vbridge wrote into one environment, so ``clean`` can undo exactly that.

It lives in the environment's state directory (``<prefix>/.vbridge/``; for the Debian
system root ``/var/lib/vbridge/``) beside the lock and ``backups/``, which holds the
original bytes of every file vbridge edited (a dist-info's ``RECORD``, a
``conda-meta/*.json``), stored under their SHA-256. All paths are relative to the
environment root, so a copied prefix keeps a valid ledger. ``ledger.json``::

    {"format": 1,
     "distributions": {"lib/python3.11/site-packages/numpy-1.26.4.dist-info": {
         "files": {"lib/.../numpy-1.26.4.dist-info/variant.json": ["<sha256>"], ...},
         "dirs": ["lib/.../numpy-1.26.4.dist-info/sboms"],
         "edits": ["lib/.../numpy-1.26.4.dist-info/RECORD", "conda-meta/numpy-....json"]}},
     "edited": {"lib/.../RECORD": {"original": "<sha256>", "written": ["<sha256>"]}, ...},
     "environment": {"pip.conf": {"original": "<sha256>", "written": ["<sha256>"]},
                     ".vbridge/constraints.txt": {"original": null, "written": [...]}}}

``environment`` names files of the environment itself that vbridge writes or edits
(pip's site configuration and the constraints file it names;
:mod:`vbridge.destinations.pip_constraints`); ``original`` null: vbridge created it.
The key is written only when it is not empty.

It is an intent log: before a run touches any file, the ledger already names it, with
every content vbridge may leave there (during an update: the old and the new one).
A run killed at any point therefore leaves a ledger that covers what is on disk, and
the next ``annotate`` or ``clean`` finishes or undoes the work.

>>> ledger = Ledger()
>>> entry = DistEntry(files={"site/a-1.dist-info/x": ["0" * 64]})
>>> ledger.distributions["site/a-1.dist-info"] = entry
>>> Ledger.from_bytes(ledger.to_bytes()) == ledger
True
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
from vbridge.destinations.json_text import dumps
from vbridge.destinations.state import LEDGER_NAME, state_dir
from vbridge.errors import RecordError, UnsafePath
from vbridge.safefs import atomic_write, atomic_write_all, contained, read_bytes, sha256_hex
from vbridge.typed_json import decode

__all__ = [
    "FORMAT",
    "DistEntry",
    "EditEntry",
    "EnvironmentFileEntry",
    "Ledger",
    "LedgerStore",
    "state_dir",
]

FORMAT = 1
LOCK_NAME = "lock"
BACKUPS = "backups"

_SHA256 = frozenset("0123456789abcdef")


def check_state_dir(root: Path, directory: Path) -> None:
    """Raise :class:`UnsafePath` unless ``directory`` (existing or not) is where it
    seems: a real directory, reached through no symlink, inside ``root`` (or the
    system's state directory for a system root). Nothing is written through a state
    directory that points elsewhere.
    """
    expected = Path(os.path.abspath(directory))
    if os.path.lexists(expected) and (expected.is_symlink() or not expected.is_dir()):
        raise UnsafePath(
            f"{expected}: vbridge's state directory is a symlink or not a directory; "
            "vbridge never writes through it (remove it, or move what it points to "
            "back in place)"
        )
    base = root if expected.parent == Path(os.path.abspath(root)) else expected.parent
    real = contained(base, expected)
    if real != Path(os.path.realpath(base)) / expected.name:
        raise UnsafePath(f"{expected}: resolves to {real}; vbridge never writes there")


def _check_path(where: Path, path: str) -> None:
    """A ledger path is relative, normalised and never climbs out (``..``): between
    slashes added at both ends, no empty, ``.`` or ``..`` part (an empty path, a
    leading or trailing slash, ``//``) and no NUL."""
    framed = f"/{path}/"
    if "//" in framed or "/./" in framed or "/../" in framed or "\0" in path:
        raise RecordError(
            f"{where}: the ledger names {path!r}, which is not a path inside the "
            "environment; nothing was changed (restore the ledger from a backup, or "
            "remove it to make vbridge forget what it wrote)"
        )


def _check_digest(where: Path, digest: str) -> None:
    if len(digest) != 64 or not _SHA256.issuperset(digest):
        raise RecordError(
            f"{where}: the ledger holds {digest!r} where a SHA-256 belongs; nothing was "
            "changed (restore the ledger from a backup, or remove it)"
        )


class DistEntry(msgspec.Struct):
    """What vbridge added to one dist-info, and which files it edited for it."""

    files: dict[str, list[str]] = msgspec.field(default_factory=dict)  # path -> allowed sha256s
    dirs: list[str] = msgspec.field(default_factory=list)
    edits: list[str] = msgspec.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": {k: sorted(set(v)) for k, v in sorted(self.files.items())},
            "dirs": sorted(set(self.dirs)),
            "edits": sorted(set(self.edits)),
        }


class EditEntry(msgspec.Struct):
    """A file vbridge edits: its original content and what vbridge may have left."""

    original: str  # sha256 of the bytes before vbridge; backups/<original> holds them
    written: list[str] = msgspec.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"original": self.original, "written": sorted(set(self.written))}


class EnvironmentFileEntry(msgspec.Struct):
    """A file of the environment vbridge writes (``original`` None: it created it)."""

    original: str | None  # sha256 of the bytes before vbridge; backups/<original>
    written: list[str] = msgspec.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"original": self.original, "written": sorted(set(self.written))}


class Ledger(msgspec.Struct):
    distributions: dict[str, DistEntry] = msgspec.field(default_factory=dict)
    edited: dict[str, EditEntry] = msgspec.field(default_factory=dict)
    environment: dict[str, EnvironmentFileEntry] = msgspec.field(default_factory=dict)

    def is_empty(self) -> bool:
        """Whether nothing vbridge wrote is recorded."""
        return not (self.distributions or self.edited or self.environment)

    def originals(self) -> set[str]:
        """The backups this ledger refers to."""
        found = {e.original for e in self.edited.values()}
        found.update(e.original for e in self.environment.values() if e.original)
        return found

    def copy(self) -> Ledger:
        """A copy as ``Ledger.from_bytes(self.to_bytes())`` gives it (keys in order, each
        list sorted and without duplicates), without the text in between: an annotate
        run copies the ledger twice, and it grows with every annotated dist-info.
        """
        return Ledger(
            distributions={
                key: DistEntry(
                    files={p: sorted(set(d)) for p, d in sorted(entry.files.items())},
                    dirs=sorted(set(entry.dirs)),
                    edits=sorted(set(entry.edits)),
                )
                for key, entry in sorted(self.distributions.items())
            },
            edited={
                path: EditEntry(edit.original, sorted(set(edit.written)))
                for path, edit in sorted(self.edited.items())
            },
            environment={
                path: EnvironmentFileEntry(entry.original, sorted(set(entry.written)))
                for path, entry in sorted(self.environment.items())
            },
        )

    def to_bytes(self) -> bytes:
        # Keys in sorted order throughout (the text json.dumps(sort_keys=True) gives).
        document: dict[str, Any] = {
            "distributions": {k: v.to_dict() for k, v in sorted(self.distributions.items())},
            "edited": {k: v.to_dict() for k, v in sorted(self.edited.items())},
        }
        if self.environment:
            document["environment"] = {k: v.to_dict() for k, v in sorted(self.environment.items())}
        document["format"] = FORMAT
        # Strings, lists, dicts, an int and None only: nothing for json_text to check.
        return (dumps(document, 2, plain=True) + "\n").encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes, path: Path | None = None) -> Ledger:
        where = path or Path(LEDGER_NAME)
        try:
            version = decode(data, _LedgerHeader).format
            if version != FORMAT:
                raise RecordError(
                    f"{where}: ledger format {version!r} is not {FORMAT}; "
                    "use the vbridge version that wrote it to clean this environment"
                )
            document = decode(data, _LedgerFile)
        except ValueError as exc:  # malformed JSON, a missing or mistyped field
            raise RecordError(
                f"{where}: the vbridge ledger is not readable ({exc}); restore it from "
                "a backup, or remove it to make vbridge forget what it wrote"
            ) from exc
        return cls(
            distributions={
                k: DistEntry(files=v.files, dirs=v.dirs, edits=v.edits)
                for k, v in document.distributions.items()
            },
            edited={k: EditEntry(v.original, v.written) for k, v in document.edited.items()},
            environment={
                k: EnvironmentFileEntry(v.original, v.written)
                for k, v in document.environment.items()
            },
        ).checked(where)

    def checked(self, where: Path) -> Ledger:
        """This ledger, if every path in it stays in the environment and every digest is
        one; else :class:`RecordError` before anything acts on it."""
        for key, entry in self.distributions.items():
            _check_path(where, key)
            for path, digests in entry.files.items():
                _check_path(where, path)
                for digest in digests:
                    _check_digest(where, digest)
            for path in [*entry.dirs, *entry.edits]:
                _check_path(where, path)
            for path in entry.edits:
                if path not in self.edited:
                    raise RecordError(
                        f"{where}: the ledger says vbridge edited {path} but keeps no "
                        "original of it; nothing was changed (restore the ledger from a "
                        "backup, or remove it)"
                    )
        for path, edit in self.edited.items():
            _check_path(where, path)
            for digest in [edit.original, *edit.written]:
                _check_digest(where, digest)
        for path, env_file in self.environment.items():
            _check_path(where, path)
            for digest in [*([env_file.original] if env_file.original else []), *env_file.written]:
                _check_digest(where, digest)
        return self

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ledger) and self.to_bytes() == other.to_bytes()


class _LedgerHeader(msgspec.Struct):
    format: Any = None


class _DistFields(msgspec.Struct, forbid_unknown_fields=True):
    files: dict[str, list[str]] = {}
    dirs: list[str] = []
    edits: list[str] = []


class _EditFields(msgspec.Struct, forbid_unknown_fields=True):
    original: str
    written: list[str] = []


class _EnvironmentFileFields(msgspec.Struct, forbid_unknown_fields=True):
    original: str | None = None
    written: list[str] = []


class _LedgerFile(msgspec.Struct, forbid_unknown_fields=True):
    """``ledger.json`` as vbridge reads it: every field typed, and no field it does not
    know (a damaged key would otherwise make vbridge forget what it wrote)."""

    format: int
    distributions: dict[str, _DistFields] = {}
    edited: dict[str, _EditFields] = {}
    environment: dict[str, _EnvironmentFileFields] = {}


class LedgerStore(msgspec.Struct):
    """The ledger file and backups of one environment."""

    root: Path
    directory: Path

    @classmethod
    def of(cls, root: Path) -> LedgerStore:
        return cls(root, state_dir(root))

    def check(self) -> None:
        """:func:`check_state_dir`, and the same of ``backups/``: before any use."""
        check_state_dir(self.root, self.directory)
        for name in (LEDGER_NAME, LOCK_NAME):
            if (self.directory / name).is_symlink():
                raise UnsafePath(
                    f"{self.directory / name}: a symlink; vbridge never reads or writes "
                    "its state through one (remove it)"
                )
        if os.path.lexists(self.backups):
            check_state_dir(self.directory, self.backups)

    @property
    def path(self) -> Path:
        return self.directory / LEDGER_NAME

    @property
    def lock_path(self) -> Path:
        """What the lock is taken on: the environment directory itself, which ``clean``
        never removes (a lock file in the state directory could be removed from under
        the runs waiting for it)."""
        return self.root

    @property
    def legacy_lock(self) -> Path:
        """The lock file earlier versions kept in the state directory."""
        return self.directory / LOCK_NAME

    @property
    def backups(self) -> Path:
        return self.directory / BACKUPS

    def load(self) -> Ledger:
        data = read_bytes(self.path, root=self.directory)
        return Ledger() if data is None else Ledger.from_bytes(data, self.path)

    def save(self, ledger: Ledger, backups: Sequence[tuple[bytes, int | None]] = ()) -> bool:
        """Write the ledger if it changed; True if it did.

        ``backups`` (``(data, mtime_ns)``: what :meth:`backup` takes; the ledger names
        them by digest) are kept first, flushed to disk together with the ledger
        (:func:`~vbridge.safefs.atomic_write_all`): by the time anything the ledger
        describes is written, every backup it names is on disk.
        """
        writes: list[tuple[Path, bytes, Path]] = []
        mtimes: dict[Path, int] = {}
        seen: set[Path] = set()
        for content, mtime_ns in backups:
            target = self.backups / sha256_hex(content)
            if target in seen:
                continue
            seen.add(target)
            if read_bytes(target, root=self.directory) != content:
                self.backups.mkdir(parents=True, exist_ok=True)
                writes.append((target, content, self.directory))
                if mtime_ns is not None:
                    mtimes[target] = mtime_ns
        data = ledger.to_bytes()
        changed = read_bytes(self.path, root=self.directory) != data
        if changed:
            self.directory.mkdir(parents=True, exist_ok=True)
            writes.append((self.path, data, self.directory))
        atomic_write_all(writes, mtimes)
        return changed

    def backup(self, data: bytes, mtime_ns: int | None = None) -> str:
        """Keep ``data`` under its SHA-256 (once) and return the digest.

        ``mtime_ns`` is the original file's modification time: the backup keeps it
        (as ``cp -p`` would), and :meth:`original_mtime` gives it back to a restore.
        """
        digest = sha256_hex(data)
        target = self.backups / digest
        if read_bytes(target, root=self.directory) != data:
            self.backups.mkdir(parents=True, exist_ok=True)
            atomic_write(target, data, self.directory)
            if mtime_ns is not None:
                os.utime(target, ns=(mtime_ns, mtime_ns))
        return digest

    def original_mtime(self, digest: str) -> int | None:
        """The modification time the backed-up original had, where it was kept."""
        try:
            return os.stat(self.backups / digest).st_mtime_ns
        except OSError:
            return None

    def original(self, digest: str) -> bytes | None:
        data = read_bytes(self.backups / digest, root=self.directory)
        if data is not None and sha256_hex(data) != digest:
            return None  # a damaged backup is never restored
        return data

    def settle(self, ledger: Ledger) -> None:
        """Save ``ledger`` and drop unused backups; when nothing of vbridge's is left,
        remove the ledger and the state directory instead (no empty state stays)."""
        if not ledger.is_empty():
            self.save(ledger)
            self.prune_backups(ledger)
            return
        self.path.unlink(missing_ok=True)
        self.prune_backups(ledger)
        with contextlib.suppress(OSError):
            self.directory.rmdir()  # only when empty: another writer's files stay

    def prune_backups(self, ledger: Ledger) -> None:
        """Remove backups no ledger entry refers to."""
        wanted = ledger.originals()
        try:
            names = os.listdir(self.backups)
        except FileNotFoundError:
            return
        for name in names:
            if name not in wanted:
                (self.backups / name).unlink(missing_ok=True)
        if not wanted:
            with contextlib.suppress(OSError):
                self.backups.rmdir()

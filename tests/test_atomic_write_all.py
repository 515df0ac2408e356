"""safefs.atomic_write_all: several files replaced atomically, their flushes to disk
taken together, and the ledger's backups on disk with the ledger before annotate
writes anything the ledger describes."""

from __future__ import annotations

import _thread
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from vbridge import safefs
from vbridge.destinations.ledger import EditEntry, Ledger, LedgerStore
from vbridge.errors import UnsafePath


def _fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """("fsync", temporary file) and ("replace", target) in the order they happen."""
    seen: list[tuple[str, str]] = []
    lock = threading.Lock()
    fsync, replace = os.fsync, os.replace

    def logged_fsync(fd: int) -> None:
        with lock:
            seen.append(("fsync", _fd_path(fd)))
        fsync(fd)

    def logged_replace(src: str, dst: str | Path) -> None:
        with lock:
            seen.append(("replace", str(dst)))
        replace(src, dst)

    monkeypatch.setattr(os, "fsync", logged_fsync)
    monkeypatch.setattr(os, "replace", logged_replace)
    monkeypatch.delenv("VBRIDGE_FSYNC", raising=False)
    return seen


def test_every_file_is_on_disk_before_the_first_rename_and_renamed_in_order(
    tmp_path: Path, events: list[tuple[str, str]]
) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "c.txt").write_bytes(b"old")
    os.chmod(tmp_path / "c.txt", 0o640)
    targets = [tmp_path / "a.txt", tmp_path / "b" / "x.json", tmp_path / "c.txt"]
    safefs.atomic_write_all([(p, f"new {p.name}".encode(), tmp_path) for p in targets])
    assert [p.read_bytes() for p in targets] == [b"new a.txt", b"new x.json", b"new c.txt"]
    assert (tmp_path / "c.txt").stat().st_mode & 0o777 == 0o640  # the replaced file's mode
    kinds = [kind for kind, _ in events]
    assert kinds == ["fsync"] * 3 + ["replace"] * 3
    assert [path for kind, path in events if kind == "replace"] == [str(p) for p in targets]
    flushed = sorted(os.path.dirname(path) for kind, path in events if kind == "fsync")
    assert flushed == sorted(str(p.parent) for p in targets)
    assert not [p for p in tmp_path.rglob(f"*{safefs.TEMP_SUFFIX}")]


def test_the_flushes_run_side_by_side(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each fsync waits for the others: flushed one after another, the barrier breaks.
    barrier = threading.Barrier(4, timeout=10)

    def waiting_fsync(fd: int) -> None:
        barrier.wait()

    monkeypatch.setattr(os, "fsync", waiting_fsync)
    monkeypatch.delenv("VBRIDGE_FSYNC", raising=False)
    writes = [(tmp_path / f"{i}.txt", b"x", tmp_path) for i in range(4)]
    safefs.atomic_write_all(writes)
    assert all(path.read_bytes() == b"x" for path, _, _ in writes)


def test_the_files_are_created_side_by_side_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Creating a file waits for the journal as a flush does: each creation waits for the
    # others here; made one after another, the barrier breaks.
    barrier = threading.Barrier(3, timeout=10)
    create_temp = safefs.create_temp

    def waiting_create_temp(directory: Path, prefix: str, suffix: str) -> tuple[int, str]:
        barrier.wait()
        return create_temp(directory, prefix, suffix)

    monkeypatch.setattr(safefs, "create_temp", waiting_create_temp)
    monkeypatch.setenv("VBRIDGE_FSYNC", "0")
    writes = [(tmp_path / f"{i}.txt", b"y", tmp_path) for i in range(3)]
    safefs.atomic_write_all(writes)
    assert all(path.read_bytes() == b"y" for path, _, _ in writes)


def test_without_threads_the_files_are_written_all_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, events: list[tuple[str, str]]
) -> None:
    def refuse(*args: object) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(_thread, "start_new_thread", refuse)
    writes = [(tmp_path / f"{i}.txt", str(i).encode(), tmp_path) for i in range(3)]
    safefs.atomic_write_all(writes)
    assert [path.read_bytes() for path, _, _ in writes] == [b"0", b"1", b"2"]
    assert [kind for kind, _ in events] == ["fsync"] * 3 + ["replace"] * 3


def test_no_flush_when_told_not_to(tmp_path: Path, events: list[tuple[str, str]]) -> None:
    os.environ["VBRIDGE_FSYNC"] = "0"  # the fixture's monkeypatch restores it
    safefs.atomic_write_all([(tmp_path / "a", b"1", tmp_path), (tmp_path / "b", b"2", tmp_path)])
    assert [kind for kind, _ in events] == ["replace", "replace"]


def test_a_failure_before_the_renames_changes_nothing(
    tmp_path: Path, events: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.txt").write_bytes(b"old")
    broken = tmp_path / "missing" / "b.txt"  # its directory does not exist
    with pytest.raises(FileNotFoundError):
        safefs.atomic_write_all([(tmp_path / "a.txt", b"new", tmp_path), (broken, b"x", tmp_path)])
    assert (tmp_path / "a.txt").read_bytes() == b"old"
    assert not [kind for kind, _ in events if kind == "replace"]
    assert sorted(os.listdir(tmp_path)) == ["a.txt"]  # no temporary file left

    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError):
        safefs.atomic_write_all([(tmp_path / "a.txt", b"new", tmp_path)])
    assert sorted(os.listdir(tmp_path)) == ["a.txt"]
    assert (tmp_path / "a.txt").read_bytes() == b"old"


def test_a_path_out_of_the_root_is_refused_before_anything_is_written(
    tmp_path: Path, events: list[tuple[str, str]]
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(outside)
    with pytest.raises(UnsafePath):
        safefs.atomic_write_all([(root / "a", b"1", root), (root / "link" / "b", b"2", root)])
    assert not events and sorted(os.listdir(root)) == ["link"] and not os.listdir(outside)


def test_mtimes_are_set_before_the_rename(tmp_path: Path) -> None:
    target = tmp_path / "a"
    safefs.atomic_write_all([(target, b"1", tmp_path)], {target: 1_600_000_000_000_000_000})
    assert target.stat().st_mtime_ns == 1_600_000_000_000_000_000


def test_many_files_are_written_in_batches(tmp_path: Path, events: list[tuple[str, str]]) -> None:
    writes = [(tmp_path / f"{i:03d}", str(i).encode(), tmp_path) for i in range(70)]
    safefs.atomic_write_all(writes)
    assert all(p.read_bytes() == d for p, d, _ in writes)
    assert [p for kind, p in events if kind == "replace"] == [str(p) for p, _, _ in writes]
    # Within a batch every flush comes before every rename; batches follow each other.
    kinds = "".join("f" if kind == "fsync" else "r" for kind, _ in events)
    batch = safefs._BATCH
    assert kinds == "".join("f" * n + "r" * n for n in [batch] * (70 // batch) + [70 % batch] if n)


def test_the_ledger_and_its_backups_are_on_disk_together(
    tmp_path: Path, events: list[tuple[str, str]]
) -> None:
    store = LedgerStore.of(tmp_path)
    ledger = Ledger()
    digest = safefs.sha256_hex(b"original")
    ledger.edited["a/RECORD"] = EditEntry(digest, [safefs.sha256_hex(b"edited")])
    assert store.save(ledger, [(b"original", 1_600_000_000_000_000_000), (b"original", None)])
    assert store.original(digest) == b"original"
    assert store.original_mtime(digest) == 1_600_000_000_000_000_000
    assert store.load() == ledger
    # The backup (once) and the ledger flushed before either is renamed; backup first.
    assert [kind for kind, _ in events] == ["fsync", "fsync", "replace", "replace"]
    assert [p for kind, p in events if kind == "replace"] == [
        str(store.backups / digest),
        str(store.path),
    ]
    events.clear()
    assert store.save(ledger, [(b"original", None)]) is False  # both kept already
    assert not events


def test_annotate_writes_nothing_it_describes_before_ledger_and_backups_are_on_disk(
    tmp_path: Path, events: list[tuple[str, str]], fixture_copy: Callable[[str], Path]
) -> None:
    from vbridge.destinations.annotate import annotate_environment
    from vbridge.scan import scan_environment

    prefix = fixture_copy("real-tools/conda/conda-26.7-create-p3")
    env = scan_environment(prefix)
    events.clear()  # the scan's own writes (the record cache) are not the prefix's
    result = annotate_environment(env)
    state = str(LedgerStore.of(prefix).directory) + "/"
    # f: a flush, r: a rename; s: of the state directory (ledger, backups), p: the prefix
    steps = "".join(
        ("f" if kind == "fsync" else "r") + ("s" if path.startswith(state) else "p")
        for kind, path in events
    )
    renamed = {path for kind, path in events if kind == "replace" and not path.startswith(state)}
    assert renamed == {str(c.path) for c in result.changed}
    # The backups and the intent ledger flushed, then renamed (the ledger last), then the
    # prefix's files flushed, then renamed: one batch each.
    kept = len(os.listdir(LedgerStore.of(prefix).backups)) + 1  # and the ledger
    assert kept > 2 and len(renamed) > 2
    assert steps == "fs" * kept + "rs" * kept + "fp" * len(renamed) + "rp" * len(renamed)
    replaced = [path for kind, path in events if kind == "replace"]
    assert replaced[kept - 1] == str(LedgerStore.of(prefix).path)

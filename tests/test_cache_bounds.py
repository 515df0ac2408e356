"""vbridge's cache directories stay bounded (vbridge.safefs.write_cache_file): a new
entry prunes its directory to the entries used last, and temporary files a killed run
left behind go once they are an hour old; nothing but vbridge's own entries is touched.
The record cache (tests/test_conda_record_cache.py), the kept scans
(tests/test_scan_cache.py) and the parsed TOML files (tests/test_parsed_toml.py) pass
their bounds."""

from __future__ import annotations

import os
import time
from pathlib import Path

from vbridge.safefs import prune_cache_directory, write_cache_file


def _used(path: Path, seconds_ago: float, *, read_seconds_ago: float | None = None) -> None:
    """``path`` last written ``seconds_ago`` (and last read ``read_seconds_ago``)."""
    now = time.time_ns()
    written = now - int(seconds_ago * 1e9)
    read = written if read_seconds_ago is None else now - int(read_seconds_ago * 1e9)
    os.utime(path, ns=(read, written), follow_symlinks=False)


def _names(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


def test_a_new_entry_prunes_the_directory_to_the_entries_used_last(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    for number in range(5):
        assert write_cache_file(cache / f"e{number}.json", b"{}", keep=10) is not None
    for number in range(5):
        _used(cache / f"e{number}.json", 500 - number * 100)  # e4 written last
    _used(cache / "e0.json", 1000, read_seconds_ago=1)  # written first, read just now

    written = write_cache_file(cache / "new.json", b'{"new": 1}', keep=3)

    assert written is not None
    assert _names(cache) == {"new.json", "e0.json", "e4.json"}
    assert (cache / "new.json").read_bytes() == b'{"new": 1}'
    assert (cache / "new.json").stat().st_mode & 0o777 == 0o600


def test_replacing_an_entry_lists_nothing_and_removes_nothing(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    for number in range(4):
        write_cache_file(cache / f"e{number}.json", b"{}", keep=10)
        _used(cache / f"e{number}.json", 100 - number)
    write_cache_file(cache / "e0.json", b'{"again": 1}', keep=1)
    assert _names(cache) == {"e0.json", "e1.json", "e2.json", "e3.json"}
    assert (cache / "e0.json").read_bytes() == b'{"again": 1}'


def test_only_vbridge_entries_and_stale_temporary_files_are_removed(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    outside = tmp_path / "outside.json"
    outside.write_bytes(b"not the cache's")
    write_cache_file(cache / "old.json", b"{}", keep=10)
    _used(cache / "old.json", 7200)
    (cache / ".tmp-killed.json").write_bytes(b"half")  # a run killed two hours ago
    _used(cache / ".tmp-killed.json", 7200)
    (cache / ".tmp-writing.json").write_bytes(b"half")  # a run writing now
    (cache / "notes.txt").write_bytes(b"another suffix")
    _used(cache / "notes.txt", 7200)
    (cache / "link.json").symlink_to(outside)
    (cache / "directory.json").mkdir()
    _used(cache / "directory.json", 7200)

    write_cache_file(cache / "new.json", b"{}", keep=1)

    assert _names(cache) == {
        "new.json", ".tmp-writing.json", "notes.txt", "link.json", "directory.json",
    }  # fmt: skip
    assert outside.read_bytes() == b"not the cache's"


def test_pruning_a_missing_directory_is_no_error(tmp_path: Path) -> None:
    assert prune_cache_directory(tmp_path / "gone", 1, spare="x.json") == []

"""safefs's readers: regular files only, never blocking, capped, contained."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from vbridge.errors import UnreadableFile
from vbridge.safefs import load_json, read_bytes, read_json, read_regular


def _within(seconds: float, call: object) -> object:
    """Run ``call`` in a thread; fail if it has not returned after ``seconds``."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = call()  # type: ignore[operator]
        except BaseException as exc:  # handed to the test below
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the read blocked"
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box.get("value")


def test_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "record.json"
    os.mkfifo(fifo)
    with pytest.raises(UnreadableFile, match=r"record.json: not a regular file \(a FIFO\)"):
        _within(5, lambda: read_json(fifo))
    with pytest.raises(UnreadableFile):
        _within(5, lambda: read_bytes(fifo))


def test_a_device_and_a_directory_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile, match="a character device"):
        _within(5, lambda: read_regular(Path("/dev/zero")))
    with pytest.raises(UnreadableFile, match="a directory"):
        read_regular(tmp_path)


def test_missing_is_not_an_error_of_its_own(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_regular(tmp_path / "nothing")
    assert read_bytes(tmp_path / "nothing") is None


def test_size_cap(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_bytes(b" " * 2000)
    with pytest.raises(UnreadableFile, match="2000 bytes, more than vbridge reads"):
        read_regular(big, limit=1000)
    assert read_regular(big, limit=2000) == b" " * 2000


def test_links_out_of_the_root_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.json"
    outside.write_text("{}", encoding="utf-8")
    root = tmp_path / "root"
    root.mkdir()
    (root / "inside.json").write_text("{}", encoding="utf-8")
    (root / "link.json").symlink_to(outside)
    (root / "near.json").symlink_to(root / "inside.json")
    with pytest.raises(UnreadableFile, match="outside the environment"):
        read_json(root / "link.json", root=root)
    assert read_json(root / "near.json", root=root) == {}
    assert read_json(root / "link.json") == {}  # no root given: no containment asked


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"a": ' + b"9" * 5000 + b"}", "malformed JSON"),
        (b'{"a": 1', "malformed JSON at line 1 column 8"),
        (b'"\xff"', "not UTF-8 text"),
        (b"\x00\x01", "malformed JSON"),
    ],
)
def test_every_json_failure_is_one_line_naming_the_file(data: bytes, problem: str) -> None:
    with pytest.raises(UnreadableFile) as info:
        load_json(data, "conda-meta/x.json")
    assert str(info.value).startswith("conda-meta/x.json: ")
    assert problem in str(info.value)
    assert "\n" not in str(info.value)


def test_a_file_longer_than_its_stat_size_is_read_whole_and_still_capped() -> None:
    # /proc files say 0 bytes; what stat says is only where reading starts (a file
    # that grows between the fstat and the read is the same case).
    status = Path("/proc/self/status")
    assert status.stat().st_size == 0
    data = read_regular(status)
    assert data.startswith(b"Name:") and data.endswith(b"\n") and len(data) > 100
    with pytest.raises(UnreadableFile, match="more than 10 bytes"):
        read_regular(status, limit=10)

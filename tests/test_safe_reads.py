"""safefs's readers: regular files only, never blocking, capped, contained."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from vbridge.errors import UnreadableFile, UnsafePath
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


def test_a_file_of_its_stat_size_is_read_in_one_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The read that would return nothing after the last byte is not made; what a
    # short read or a growing file gives stays what reading on to the end gives.
    calls: list[int] = []
    real_read = os.read

    def counted(fd: int, n: int) -> bytes:
        calls.append(n)
        return real_read(fd, n)

    monkeypatch.setattr(os, "read", counted)
    (tmp_path / "f").write_bytes(b"0123456789")
    assert read_regular(tmp_path / "f") == b"0123456789"
    assert calls == [11]
    calls.clear()
    (tmp_path / "empty").write_bytes(b"")
    assert read_regular(tmp_path / "empty") == b""
    assert calls == [1]

    def short(fd: int, n: int) -> bytes:  # a file system that hands out 4 bytes a read
        calls.append(n)
        return real_read(fd, min(n, 4))

    calls.clear()
    monkeypatch.setattr(os, "read", short)
    assert read_regular(tmp_path / "f") == b"0123456789"
    assert len(calls) == 3  # 4 + 4 + 2: the end met at the stat size

    grown = tmp_path / "grown"
    grown.write_bytes(b"0123456789")

    def growing(fd: int, n: int) -> bytes:  # written to between the fstat and the read
        if not calls:
            with grown.open("ab") as fh:
                fh.write(b"abc")
        calls.append(n)
        return real_read(fd, n)

    calls.clear()
    monkeypatch.setattr(os, "read", growing)
    assert read_regular(grown) == b"0123456789abc"


def test_contained_resolves_as_realpath_does(tmp_path: Path) -> None:
    """safefs.contained resolves a path below the root from the root's realpath (the
    root's own components once): the same answer as ``os.path.realpath`` and the same
    refusal, for links in and out, chained, relative and absolute, dangling, looping,
    through a file, missing components, a root reached through a link, and paths not
    below the root or not in normal form."""
    from vbridge.safefs import contained

    (tmp_path / "real/env/lib/site-packages/a.dist-info").mkdir(parents=True)
    (tmp_path / "outside/deeper").mkdir(parents=True)
    os.symlink("real/env", tmp_path / "env")  # the root itself through a link
    site = tmp_path / "real/env/lib/site-packages"
    os.symlink("lib", tmp_path / "real/env/lib64")
    os.symlink(tmp_path / "outside", site / "out.dist-info")
    os.symlink("../../../../outside/deeper", site / "rel-out.dist-info")
    os.symlink("missing", site / "dangling.dist-info")
    os.symlink("b.dist-info", site / "chain.dist-info")
    os.symlink("a.dist-info", site / "b.dist-info")
    os.symlink(str(site / "a.dist-info"), site / "abs.dist-info")
    os.symlink("loop2", site / "loop1")
    os.symlink("loop1", site / "loop2")
    os.symlink("../..", site / "up")
    (site / "a.dist-info/RECORD").write_text("")
    for root in (tmp_path / "env", tmp_path / "real/env"):
        rels = [
            "lib/site-packages/a.dist-info/RECORD",
            "lib64/site-packages/a.dist-info/new-file",
            "lib/site-packages/out.dist-info/sboms",
            "lib/site-packages/rel-out.dist-info",
            "lib/site-packages/dangling.dist-info/x",
            "lib/site-packages/chain.dist-info/RECORD",
            "lib/site-packages/abs.dist-info",
            "lib/site-packages/loop1/x",
            "lib/site-packages/a.dist-info/RECORD/below-a-file",
            "lib/site-packages/up/env/lib",
            "lib/site-packages/up/..",
            "lib//site-packages",
            "lib/./site-packages/../site-packages/a.dist-info",
            "gone/deeper/still",
            "",
        ]
        paths = [root / rel if rel else root for rel in rels]
        paths += [Path(f"{root}/lib//site-packages"), tmp_path / "outside", tmp_path]
        for path in paths:
            real_root = os.path.realpath(root)
            real = os.path.realpath(path)
            inside = real == real_root or real.startswith(real_root + "/")
            if inside:
                assert contained(root, path) == Path(real), path
            else:
                with pytest.raises(UnsafePath):
                    contained(root, path)


def test_the_sweep_removes_a_killed_runs_temporary_files_only(tmp_path: Path) -> None:
    """sweep_temporary_files removes the hidden ``*.vbridge-tmp`` files of the
    directories given (a killed run's), and nothing else: not a visible name with the
    suffix, not the suffix inside a name, not another directory's."""
    from vbridge.safefs import TEMP_SUFFIX, sweep_temporary_files

    first, second, quiet, other = (tmp_path / n for n in ("a", "b", "quiet", "other"))
    for directory in (first, second, quiet, other):
        directory.mkdir()
    kept = {
        first / f"RECORD{TEMP_SUFFIX}",
        first / f".RECORD{TEMP_SUFFIX}.x",
        first / "RECORD",
        quiet / "variant.json",
        other / f".RECORD.abc{TEMP_SUFFIX}",
    }
    gone = {first / f".RECORD.abc{TEMP_SUFFIX}", second / f".x.json.def{TEMP_SUFFIX}"}
    gone |= {first / f".n{i}{TEMP_SUFFIX}" for i in range(3)}
    for path in kept | gone:
        path.write_text("")
    removed = sweep_temporary_files([first, second, quiet, tmp_path / "missing"])
    assert set(removed) == gone and len(removed) == len(gone)
    assert {p for p in tmp_path.rglob("*") if p.is_file()} == kept


def test_digests_remembered_for_the_time_of_a_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside remembered_digests, sha256_hex hashes a large content once (annotate hashes
    an edited conda-meta record up to six times); the digests are hashlib's; small
    contents and the time outside the block are not remembered."""
    import hashlib

    from vbridge import safefs

    hashed: list[int] = []
    real = safefs._sha256_hex

    def counting(data: bytes) -> str:
        hashed.append(len(data))
        return real(data)

    monkeypatch.setattr(safefs, "_sha256_hex", counting)
    large, other, small = b"x" * 100_000, b"y" * 100_000, b"z"
    with safefs.remembered_digests():
        with safefs.remembered_digests():  # an inner block shares the outer one's memory
            digests = [safefs.sha256_hex(d) for d in (large, other, small, large, small)]
        digests.append(safefs.sha256_hex(bytes(bytearray(large))))  # equal content, new object
    contents = (large, other, small, large, small, large)
    assert digests == [hashlib.sha256(d).hexdigest() for d in contents]
    assert hashed == [100_000, 100_000, 1, 1]
    assert safefs.sha256_hex(large) == digests[0]
    assert hashed == [100_000, 100_000, 1, 1, 100_000]  # forgotten after the block
    assert safefs._DIGESTS is None

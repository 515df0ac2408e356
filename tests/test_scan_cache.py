"""A kept scan (vbridge.scan_cache): `vbridge scan [--json] [--strict] PREFIX` run again
on an unchanged environment prints, byte for byte, what a scan prints, without
scanning; any change to what the scan read (a record rewritten with its size and mtime
put back, a distribution removed, a policy file or variants.toml appearing, an
environment variable) means a new scan, and nothing is kept when it could not be
trusted (files changed within the last second, /proc read, a process started,
VBRIDGE_NO_CACHE=1). Every command runs the real console-script entry point in a
fresh interpreter."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"

# The entry point, then whether the scan modules were imported: a kept scan imports
# none of them.
_RUN = """
import sys
{setup}
sys.argv = ["vbridge", *{argv!r}]
from vbridge.entry_point import main
try:
    main()
finally:
    print("SCANNED" if "vbridge.scan" in sys.modules else "KEPT", file=sys.stderr)
"""


class Result:
    def __init__(self, result: subprocess.CompletedProcess[str]) -> None:
        *stderr, marker = result.stderr.splitlines()
        self.code = result.returncode
        self.stdout = result.stdout
        self.stderr = "\n".join(stderr)
        self.kept = marker == "KEPT"

    def output(self) -> tuple[int, str, str]:
        return self.code, self.stdout, self.stderr


def _vbridge(argv: list[str], home: Path, setup: str = "", **extra: str) -> Result:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / "cache"),
        "PYTHONDONTWRITEBYTECODE": "1",  # a .pyc written during a scan is a changed file
    }
    env.update(extra)
    cwd = home / "cwd"  # `python -c` imports from (lists) its working directory
    cwd.mkdir(exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-c", _RUN.format(argv=argv, setup=setup)],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=120,
    )  # fmt: skip
    return Result(result)


def _settle() -> None:
    """Past the racy second: what was just written may be trusted again."""
    time.sleep(1.1)


@pytest.fixture
def prefix(tmp_path: Path) -> Path:
    target = tmp_path / "env"
    shutil.copytree(FIXTURES / "conda" / "py36-osx-whl", target, symlinks=True)
    (tmp_path / "cwd").mkdir()
    (tmp_path / "cache").mkdir()
    _settle()
    return target


def _kept_files(home: Path) -> list[Path]:
    return sorted((home / "cache" / "vbridge" / "scans").glob("*"))


@pytest.mark.parametrize("flags", [["--json"], [], ["--strict"]])
def test_unchanged_environment_prints_the_kept_scan_byte_for_byte(
    tmp_path: Path, prefix: Path, flags: list[str]
) -> None:
    argv = ["scan", *flags, str(prefix)]
    first = _vbridge(argv, tmp_path)
    again = _vbridge(argv, tmp_path)
    fresh = _vbridge(argv, tmp_path, VBRIDGE_NO_CACHE="1")
    assert not first.kept and again.kept and not fresh.kept
    assert first.output() == again.output() == fresh.output()
    assert len(_kept_files(tmp_path)) == 1


def test_kept_scans_are_pruned_to_those_run_last(tmp_path: Path, prefix: Path) -> None:
    """Each value of a variable is a scan of its own; with room for two, the third
    scan's keeping removes the first's, and the two run last are still printed kept."""
    bound = "from vbridge import scan_cache; scan_cache.KEPT_SCANS = 2"
    argv = ["scan", "--json", str(prefix)]
    first = [_vbridge(argv, tmp_path, bound, RUN=str(n)) for n in range(3)]
    assert not any(result.kept for result in first)
    assert len(_kept_files(tmp_path)) == 2
    assert _vbridge(argv, tmp_path, bound, RUN="2").kept
    assert _vbridge(argv, tmp_path, bound, RUN="1").kept
    assert not _vbridge(argv, tmp_path, bound, RUN="0").kept  # pruned, scanned again
    assert len(_kept_files(tmp_path)) == 2


def test_messages_and_exit_status_are_kept_too(tmp_path: Path, prefix: Path) -> None:
    record = next((prefix / "conda-meta").glob("numpy-*.json"))
    record.write_text('{"name": "numpy", "ver')
    _settle()
    argv = ["scan", "--strict", str(prefix)]
    first = _vbridge(argv, tmp_path)
    again = _vbridge(argv, tmp_path)
    assert again.kept
    assert first.code == again.code == 2
    assert "malformed JSON" in again.stderr and again.output() == first.output()


def _rewrite_same_size_and_mtime(path: Path) -> None:
    data = path.read_bytes()
    st = path.stat()
    changed = data.replace(b'"version": "', b'"version": "9', 1)
    assert changed != data
    changed = changed.replace(b'"build_number": ', b'"build_number":', 1)  # same size
    assert len(changed) == len(data)
    path.write_bytes(changed)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_record_rewritten_with_its_size_and_mtime_put_back_is_seen(
    tmp_path: Path, prefix: Path
) -> None:
    argv = ["scan", "--json", str(prefix)]
    _vbridge(argv, tmp_path)
    assert _vbridge(argv, tmp_path).kept
    record = next((prefix / "conda-meta").glob("h5py-*.json"))
    version = json.loads(record.read_text())["version"]
    _rewrite_same_size_and_mtime(record)
    after = _vbridge(argv, tmp_path)
    assert not after.kept
    assert after.output() == _vbridge(argv, tmp_path, VBRIDGE_NO_CACHE="1").output()
    assert f'"9{version}"' in record.read_text() and f"9{version}" in after.stdout


def _names(result: Result) -> set[str]:
    document = json.loads(result.stdout)
    return {d["name"] for d in document["environments"][0]["distributions"]}


def test_a_removed_distribution_a_new_record_and_a_policy_file_each_mean_a_new_scan(
    tmp_path: Path, prefix: Path
) -> None:
    argv = ["scan", "--json", str(prefix)]
    before = _vbridge(argv, tmp_path)
    site = prefix / "lib" / "python3.6" / "site-packages"
    shutil.rmtree(site / "CherryPy-17.2.0.dist-info")
    removed = _vbridge(argv, tmp_path)
    assert not removed.kept
    assert "cherrypy" in _names(before) and "cherrypy" not in _names(removed)

    _settle()
    _vbridge(argv, tmp_path)  # kept now that the removal is a second old
    assert _vbridge(argv, tmp_path).kept
    extra = json.loads(next((prefix / "conda-meta").glob("certifi-*.json")).read_text())
    extra.update(name="zlib-extra", files=[])
    (prefix / "conda-meta" / "zlib-extra-1.0-0.json").write_text(json.dumps(extra))
    added = _vbridge(argv, tmp_path)
    assert not added.kept
    assert added.output() == _vbridge(argv, tmp_path, VBRIDGE_NO_CACHE="1").output()

    _settle()
    _vbridge(argv, tmp_path)
    assert _vbridge(argv, tmp_path).kept
    (prefix / ".vbridge").mkdir()
    (prefix / ".vbridge" / "policy.toml").write_text("not toml [")
    with_policy = _vbridge(argv, tmp_path)
    assert not with_policy.kept
    assert "policy.toml" in with_policy.stderr or with_policy.code == 2


def test_a_file_only_tested_for_is_watched_while_absent(tmp_path: Path, prefix: Path) -> None:
    # scan tests `(prefix / "variants.toml").is_file()` (a stat, no open): its
    # appearing must be seen although nothing was opened there.
    argv = ["scan", str(prefix)]
    _vbridge(argv, tmp_path)
    assert _vbridge(argv, tmp_path).kept
    (prefix / "variants.toml").write_text('[priorities]\nnamespaces = ["blas_lapack"]\n')
    after = _vbridge(argv, tmp_path)
    assert not after.kept
    assert after.output() == _vbridge(argv, tmp_path, VBRIDGE_NO_CACHE="1").output()


def test_environment_variables_and_the_working_directory_are_part_of_the_key(
    tmp_path: Path, prefix: Path
) -> None:
    argv = ["scan", "--json", str(prefix)]
    _vbridge(argv, tmp_path)
    assert _vbridge(argv, tmp_path).kept
    policy = tmp_path / "policy.toml"
    policy.write_text("")
    _settle()
    assert not _vbridge(argv, tmp_path, VBRIDGE_POLICY=str(policy)).kept
    assert _vbridge(argv, tmp_path, VBRIDGE_POLICY=str(policy)).kept
    assert _vbridge(argv, tmp_path).kept  # each command line keeps its own
    assert len(_kept_files(tmp_path)) == 2


def test_a_record_changed_within_the_last_second_is_not_trusted(
    tmp_path: Path, prefix: Path
) -> None:
    argv = ["scan", "--json", str(prefix)]
    record = next((prefix / "conda-meta").glob("h5py-*.json"))
    record.write_bytes(record.read_bytes())
    first = _vbridge(argv, tmp_path)
    again = _vbridge(argv, tmp_path)
    assert not first.kept and not again.kept
    assert _kept_files(tmp_path) == []


def test_no_cache_keeps_nothing_and_a_damaged_kept_file_is_a_miss(
    tmp_path: Path, prefix: Path
) -> None:
    argv = ["scan", "--json", str(prefix)]
    _vbridge(argv, tmp_path, VBRIDGE_NO_CACHE="1")
    assert _kept_files(tmp_path) == []
    good = _vbridge(argv, tmp_path)
    (kept,) = _kept_files(tmp_path)
    for damage in (b"", b"\x00garbage", kept.read_bytes()[:100]):
        kept.write_bytes(damage)
        result = _vbridge(argv, tmp_path)
        assert not result.kept and result.output() == good.output()
    _settle()
    assert _vbridge(argv, tmp_path).kept


_OBSERVE = """
import os, subprocess, sys
from vbridge.scan_cache import run_kept
what = sys.argv[1]
def scan():
    print("scanned", flush=True)
    with open("calls", "a") as log:  # written, so not watched
        log.write("x")
    if what == "proc":
        open("/proc/self/status").read()
    elif what == "process":
        subprocess.run(["true"], check=True)
    elif what.startswith("readlink:"):
        print(os.readlink(what[len("readlink:"):]))
    elif what.startswith("safefs:"):  # as the adapters read records
        from vbridge.safefs import read_regular
        read_regular(what[len("safefs:"):])
    else:
        open(what).read()
    return 0
sys.exit(run_kept(os.getcwd(), {"as_json": True}, scan))
"""


def _observed(what: str, home: Path) -> str:
    """What a scan that reads ``what`` prints, run through run_kept in ``home`` (its
    ``calls`` file counts the runs that scanned)."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "XDG_CACHE_HOME": str(home / "c")}
    return subprocess.run(
        [sys.executable, "-c", _OBSERVE, what],
        capture_output=True, text=True, cwd=home, env=env, timeout=60, check=True,
    ).stdout  # fmt: skip


@pytest.mark.parametrize("what", ["proc", "process"])
def test_host_files_and_processes_make_a_scan_that_is_not_kept(tmp_path: Path, what: str) -> None:
    for _ in range(2):
        assert _observed(what, tmp_path) == "scanned\n"
    assert (tmp_path / "calls").read_text() == "xx"  # scanned both times
    assert not (tmp_path / "c" / "vbridge" / "scans").exists()


@pytest.mark.parametrize("reader", ["", "safefs:"])
def test_a_file_the_scan_opened_is_watched(tmp_path: Path, reader: str) -> None:
    # safefs: recorded from the fstat of the file as it was opened, not a stat after.
    data = tmp_path / "record.json"
    data.write_text("{}")
    _settle()

    def run() -> str:
        return _observed(reader + str(data), tmp_path)

    calls = tmp_path / "calls"
    assert run() == "scanned\n" and calls.read_text() == "x"
    assert run() == "scanned\n" and calls.read_text() == "x"  # printed from the kept scan
    assert len(list((tmp_path / "c" / "vbridge" / "scans").glob("*"))) == 1
    data.write_text("{ }")
    _settle()
    assert run() == "scanned\n" and calls.read_text() == "xx"
    assert run() == "scanned\n" and calls.read_text() == "xx"


def test_a_file_safefs_opened_is_not_stat_again_after_the_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the kept scan records of a record is the fstat safefs took opening it (or
    that there was none: ``top_level.txt``, ``direct_url.json``); a file opened
    otherwise is looked up once the scan is over. A file safefs found absent that
    appears makes the next command scan again."""
    from vbridge import scan_cache
    from vbridge.safefs import read_regular

    record, other = tmp_path / "record.json", tmp_path / "other.json"
    absent = tmp_path / "top_level.txt"
    for path in (record, other):
        path.write_text("{}")
    _settle()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    monkeypatch.delenv("VBRIDGE_NO_CACHE", raising=False)
    looked_up: list[str] = []
    take = scan_cache._Watched._take

    def counted(path: str, follow: bool) -> object:
        looked_up.append(path)
        return take(path, follow)

    monkeypatch.setattr(scan_cache._Watched, "_take", staticmethod(counted))

    scans: list[int] = []

    def scan() -> int:
        scans.append(1)
        read_regular(str(record))
        with contextlib.suppress(FileNotFoundError):
            read_regular(str(absent))
        other.read_bytes()
        return 0

    assert scan_cache.run_kept(str(tmp_path), {"as_json": True}, scan) == 0
    assert str(other) in looked_up
    assert str(record) not in looked_up and str(absent) not in looked_up
    assert scan_cache.run_kept(str(tmp_path), {"as_json": True}, scan) == 0
    assert len(scans) == 1  # kept
    absent.write_text("numpy\n")
    assert scan_cache.run_kept(str(tmp_path), {"as_json": True}, scan) == 0
    assert len(scans) == 2


@pytest.mark.parametrize("reader", ["", "safefs:"])
def test_a_file_read_through_a_link_is_watched_at_its_target(tmp_path: Path, reader: str) -> None:
    # A Spack view's files are links into the store: a new build rewrites the target,
    # the link stays as it was.
    target = tmp_path / "store" / "record.json"
    target.parent.mkdir()
    target.write_text("{}")
    link = tmp_path / "view.json"
    link.symlink_to(target)
    _settle()
    calls = tmp_path / "calls"
    _observed(reader + str(link), tmp_path)
    _observed(reader + str(link), tmp_path)
    assert calls.read_text() == "x"  # kept
    link_stat = link.lstat()
    target.write_text("{ }")
    _settle()
    assert link.lstat() == link_stat  # the link itself did not change
    _observed(reader + str(link), tmp_path)
    assert calls.read_text() == "xx"


def test_a_link_only_read_with_readlink_is_watched(tmp_path: Path) -> None:
    # /etc/alternatives/libblas.so.3 -> ...: update-alternatives points it elsewhere.
    link = tmp_path / "libblas.so.3"
    link.symlink_to("/usr/lib/openblas/libblas.so.3")
    _settle()

    def run() -> str:
        return _observed(f"readlink:{link}", tmp_path)

    assert run() == run() == "scanned\n/usr/lib/openblas/libblas.so.3\n"
    assert (tmp_path / "calls").read_text() == "x"  # the second was kept
    new = tmp_path / "new-link"
    new.symlink_to("/usr/lib/mkl/libblas.so.3")
    os.replace(new, link)
    _settle()
    assert run() == "scanned\n/usr/lib/mkl/libblas.so.3\n"


def test_a_kept_file_others_could_write_is_not_read(tmp_path: Path, prefix: Path) -> None:
    argv = ["scan", "--json", str(prefix)]
    _vbridge(argv, tmp_path)
    assert _vbridge(argv, tmp_path).kept
    (kept,) = _kept_files(tmp_path)
    assert kept.stat().st_mode & 0o777 == 0o600
    kept.chmod(0o622)  # group and others may write it: marshal data is trusted data
    assert not _vbridge(argv, tmp_path).kept


def test_a_path_taken_as_normal_is_what_abspath_and_path_give() -> None:
    """The observer skips os.path.abspath, and the Spack adapter Path(), for paths
    already absolute and normal: every path skipped is one both leave as it is
    (generated from every kind of part: empty, '.', '..', dotted names, trailing /)."""
    import itertools

    from vbridge.safefs import is_normal_absolute

    parts = ["a", "b.c", ".d", "..e", ".", "..", ""]
    skipped = 0
    for n in range(5):
        for combo in itertools.product(parts, repeat=n):
            for lead, tail in itertools.product(("/", "//", ""), ("", "/")):
                path = lead + "/".join(combo) + tail
                if is_normal_absolute(path):
                    skipped += 1
                    assert os.path.abspath(path) == path == str(Path(path)), path
    assert skipped > 100  # the common case is taken


def test_the_observer_watches_reads_not_writes(tmp_path: Path) -> None:
    """The audit hook's ``open`` events: a file opened for reading is watched (by a
    normal path as given, another path normalised), one opened to write or create is
    not, vbridge's own cache is not, a host file makes the scan untrusted."""
    from vbridge.scan_cache import _Observer

    own = str(tmp_path / "cache") + os.sep
    observer = _Observer(own)
    read = str(tmp_path / "conda-meta" / "a.json")
    observer("open", (read, "r", 0))
    observer("open", (str(tmp_path / "b.json"), None, os.O_RDONLY | os.O_CLOEXEC))
    observer("open", (f"{tmp_path}//x/../c.json", "rb", 0))
    observer("open", (str(tmp_path / "w.json"), "w", 0))
    observer("open", (str(tmp_path / "plus.json"), "r+", 0))
    observer("open", (str(tmp_path / "created"), None, os.O_WRONLY | os.O_CREAT))
    observer("open", (own + "records.json", "rb", 0))
    observer.stop()  # the open events are looked at then
    observer("open", (str(tmp_path / "late.json"), "r", 0))
    observer.stop()
    assert observer.paths == {read, str(tmp_path / "b.json"), str(tmp_path / "c.json")}
    assert observer.trusted
    host = _Observer(own)
    host("open", (read, "r", 0))
    host("open", ("/proc/cpuinfo", "rb", 0))
    host.stop()
    assert not host.trusted and host.paths == {read, "/proc/cpuinfo"}

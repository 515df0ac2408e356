"""`vbridge scan` of a 600-record conda prefix against named baselines, in one run.

Baselines, on the same generated prefix (bench/generate.py):

- a typed partial decode of every record with msgspec (``load_msgspec.py``: a Struct of
  the fields a conda-meta reader needs): the floor. Target: the first scan (no record
  cache) within 1.5x of it;
- ``uv pip list --prefix PREFIX`` (uv beside this interpreter or on PATH: ``pip install
  uv`` into the bench venv). Target: the warm re-scan (an unchanged prefix: the kept
  scan of vbridge.scan_cache) within 2x of it; the re-scan with only the record cache
  (kept scans dropped before each run) is measured too;
- ``pip list --format json --path <site-packages>`` (pip reads every METADATA);
- ``conda list --json -p PREFIX`` when conda is on PATH (it is not on CI machines);
- py-rattler loading every ``conda-meta/*.json`` as a ``PrefixRecord``, when py-rattler
  is installed (it is a test dependency, not vbridge's);
- plain ``json.load`` of every record.

Each is timed as a command (a fresh interpreter each time, what a user waits for) and,
where it is a library call, in this process too (no interpreter start-up or imports).
Then the re-scan of an unchanged environment with ``--db`` against a full ``--db`` scan.

    python bench/bench_conda_scan.py --records 600 --repeat 7
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from generate import SITE, conda_prefix
from load_msgspec import load as msgspec_floor
from timing import (
    PYTHON,
    VBRIDGE,
    Command,
    instruction_target,
    machine,
    paired_target,
    report,
    sibling_tool,
    target,
    time_call,
    time_command,
    work_directory,
)

HERE = Path(__file__).parent


def _json_floor(meta: str) -> None:
    for name in os.listdir(meta):
        if name.endswith(".json"):
            with open(os.path.join(meta, name), "rb") as fh:
                json.load(fh)


def _rattler(meta: str) -> None:
    import rattler

    for name in os.listdir(meta):
        if name.endswith(".json"):
            rattler.PrefixRecord.from_path(os.path.join(meta, name))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=600)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="generate here and keep it")
    args = parser.parse_args()
    work = work_directory(args.keep)
    prefix = conda_prefix(work / "env", records=args.records)
    meta = str(prefix / "conda-meta")
    site = str(prefix / SITE)
    size = sum(e.stat().st_size for e in os.scandir(meta))
    time.sleep(1.1)  # past the racy window: records this old may be cached
    print(f"# conda prefix: {args.records} records, conda-meta {size / 1e6:.1f} MB; {machine()}\n")
    cache = work / "cache"
    cached = {"XDG_CACHE_HOME": str(cache)}

    def drop_cache() -> None:
        shutil.rmtree(cache, ignore_errors=True)

    scan_argv = [VBRIDGE, "scan", "--json", str(prefix)]
    scan = time_command(
        scan_argv,
        args.repeat,
        "vbridge scan --json (first scan)",
        env=cached,
        before=drop_cache,
    )
    warm = time_command(
        [VBRIDGE, "scan", "--json", str(prefix)],
        args.repeat,
        "vbridge scan --json (unchanged: kept scan)",
        env=cached,
    )

    def drop_kept_scans() -> None:
        shutil.rmtree(cache / "vbridge" / "scans", ignore_errors=True)

    records_only = time_command(
        [VBRIDGE, "scan", "--json", str(prefix)],
        args.repeat,
        "vbridge scan --json (unchanged, record cache, no kept scan)",
        env=cached,
        before=drop_kept_scans,
    )
    uncached = time_command(
        [VBRIDGE, "scan", "--json", str(prefix)],
        args.repeat,
        "vbridge scan --json (unchanged, VBRIDGE_NO_CACHE=1)",
        env={**cached, "VBRIDGE_NO_CACHE": "1"},
    )
    rows = [scan, warm, records_only, uncached]
    uv_exe = sibling_tool("uv")
    uv = None
    uv_argv = [uv_exe or "uv", "pip", "list", "--prefix", str(prefix), "--format", "json"]
    if uv_exe is not None:
        uv = time_command(
            uv_argv,
            args.repeat,
            "uv pip list --prefix",
            env={"UV_NO_CONFIG": "1", "UV_OFFLINE": "1"},
        )
        rows.append(uv)
    pip = time_command(
        [PYTHON, "-m", "pip", "list", "--format", "json", "--path", site],
        args.repeat,
        "pip list --format json",
        env={"PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    rows.append(pip)
    conda_exe = shutil.which("conda")
    if conda_exe is not None:
        rows.append(
            time_command(
                [conda_exe, "list", "--json", "-p", str(prefix)], args.repeat, "conda list --json"
            )
        )
    has_rattler = importlib.util.find_spec("rattler") is not None
    if has_rattler:
        rows.append(
            time_command(
                [PYTHON, str(HERE / "load_rattler.py"), meta],
                args.repeat,
                "py-rattler PrefixRecord",
            )
        )
    rows.append(time_command([PYTHON, str(HERE / "load_json.py"), meta], args.repeat, "json.load"))
    floor = time_command(
        [PYTHON, str(HERE / "load_msgspec.py"), meta], args.repeat, "msgspec typed floor"
    )
    start = time_command([PYTHON, "-c", "pass"], args.repeat, "python start-up")
    rows += [floor, start]
    print(report("Commands (wall time, fresh interpreter)", rows, floor))
    print(target("first scan / msgspec floor", scan.median / floor.median, 1.5))
    if uv is not None:
        print(target("warm re-scan / uv pip list", warm.median / uv.median, 2))
    # The same two targets from alternating runs (each vbridge run next to a baseline
    # run, under about the same load): median of the pairs' ratios, wall and CPU.
    floor_command = Command([PYTHON, str(HERE / "load_msgspec.py"), meta], "floor")
    first = Command(scan_argv, "first scan", cached, drop_cache)
    print(paired_target("first scan / msgspec floor", first, floor_command, 1.5, args.repeat))
    print(instruction_target("first scan / msgspec floor", first, floor_command, 1.5))
    if uv is not None:
        uv_command = Command(uv_argv, "uv", {"UV_NO_CONFIG": "1", "UV_OFFLINE": "1"})
        kept = Command(scan_argv, "kept scan", cached)
        print(paired_target("warm re-scan / uv pip list", kept, uv_command, 2, args.repeat))
    else:
        print("warm re-scan / uv pip list: skipped (no uv beside this interpreter or on PATH)")
    if conda_exe is None:
        print("conda list --json: skipped (conda is not on this machine)")
    print(
        f"first scan / pip list = {scan.median / pip.median:.2f}; "
        f"record cache: unchanged / no cache = {records_only.median / uncached.median:.2f}; "
        f"kept scan / no cache = {warm.median / uncached.median:.2f}\n"
    )

    from vbridge.decide.assess import assess_environment
    from vbridge.scan import scan_environment

    # With the findings, as `vbridge scan` does (and as scan_environment() did before
    # the findings moved to assess_environment): the figures of earlier runs compare.
    def assessed_scan() -> object:
        return assess_environment(scan_environment(prefix))

    os.environ["VBRIDGE_NO_CACHE"] = "1"
    in_scan = time_call(assessed_scan, args.repeat, "scan_environment(), no record cache")
    del os.environ["VBRIDGE_NO_CACHE"]
    os.environ["XDG_CACHE_HOME"] = str(cache)
    in_warm = time_call(assessed_scan, args.repeat, "scan_environment(), record cache")
    rows = [in_scan, in_warm]
    if has_rattler:
        rows.append(
            time_call(lambda: _rattler(meta), args.repeat, "rattler PrefixRecord.from_path")
        )
    rows.append(time_call(lambda: _json_floor(meta), args.repeat, "json.load every record"))
    in_floor = time_call(lambda: msgspec_floor(meta), args.repeat, "msgspec typed floor")
    rows.append(in_floor)
    print(report("In process (no start-up, no imports)", rows, in_floor))

    if importlib.util.find_spec("sqlite_utils") is None:
        print("scan --db: skipped (the inventory extra: pip install 'vbridge[inventory]')")
        return 0
    db = work / "inventory.db"

    def fresh_db_no_cache() -> None:
        db.unlink(missing_ok=True)
        drop_cache()

    full = time_command(
        [VBRIDGE, "scan", "--db", str(db), str(prefix)],
        args.repeat,
        "scan --db (first scan)",
        env=cached,
        before=fresh_db_no_cache,
    )
    time_command([VBRIDGE, "scan", "--db", str(db), str(prefix)], 1, env=cached)
    again = time_command(
        [VBRIDGE, "scan", "--db", str(db), str(prefix)],
        args.repeat,
        "scan --db (unchanged: fingerprint)",
        env=cached,
    )
    print(report("Re-scan of an unchanged environment", [full, again], full))
    return 0


if __name__ == "__main__":
    sys.exit(main())

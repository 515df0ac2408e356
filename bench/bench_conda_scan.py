"""`vbridge scan` of a 600-record conda prefix against named baselines, in one run.

Baselines, on the same generated prefix (bench/generate.py):

- ``pip list --format json --path <site-packages>``: what pip does to list the same
  environment (it reads every distribution's METADATA);
- py-rattler loading every ``conda-meta/*.json`` as a ``PrefixRecord`` (the conda
  library behind pixi);
- plain ``json.load`` of every record: the floor for anything that reads conda-meta.

Each is timed as a command (a fresh interpreter each time, what a user waits for) and,
where it is a library call, in this process too (no interpreter start-up or imports).
Then the re-scan of an unchanged environment with ``--db`` against a full ``--db`` scan.

    python bench/bench_conda_scan.py --records 600 --repeat 7
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from generate import SITE, conda_prefix
from timing import PYTHON, VBRIDGE, machine, report, time_call, time_command, work_directory

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

    def no_cache() -> None:
        shutil.rmtree(cache, ignore_errors=True)

    scan = time_command(
        [VBRIDGE, "scan", "--json", str(prefix)],
        args.repeat,
        "vbridge scan --json (first scan)",
        env=cached,
        before=no_cache,
    )
    warm = time_command(
        [VBRIDGE, "scan", "--json", str(prefix)],
        args.repeat,
        "vbridge scan --json (unchanged, record cache)",
        env=cached,
    )
    pip = time_command(
        [PYTHON, "-m", "pip", "list", "--format", "json", "--path", site],
        args.repeat,
        "pip list --format json",
        env={"PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    rattler = time_command(
        [PYTHON, str(HERE / "load_rattler.py"), meta], args.repeat, "py-rattler PrefixRecord"
    )
    floor = time_command([PYTHON, str(HERE / "load_json.py"), meta], args.repeat, "json.load floor")
    start = time_command([PYTHON, "-c", "pass"], args.repeat, "python start-up")
    rows = [scan, warm, pip, rattler, floor, start]
    print(report("Commands (wall time, fresh interpreter)", rows, floor))
    print(
        f"first scan / pip list = {scan.median / pip.median:.2f}; "
        f"first scan / json floor = {scan.median / floor.median:.2f}; "
        f"unchanged / first scan = {warm.median / scan.median:.2f}\n"
    )

    from vbridge.decide.assess import assess_environment
    from vbridge.scan import scan_environment

    # With the findings, as `vbridge scan` does (and as scan_environment() did before
    # the findings moved to assess_environment): the figures of earlier runs compare.
    def scan() -> object:
        return assess_environment(scan_environment(prefix))

    os.environ["VBRIDGE_NO_CACHE"] = "1"
    in_scan = time_call(scan, args.repeat, "scan_environment(), no record cache")
    del os.environ["VBRIDGE_NO_CACHE"]
    os.environ["XDG_CACHE_HOME"] = str(cache)
    in_warm = time_call(scan, args.repeat, "scan_environment(), record cache")
    in_rattler = time_call(lambda: _rattler(meta), args.repeat, "rattler PrefixRecord.from_path")
    in_floor = time_call(lambda: _json_floor(meta), args.repeat, "json.load every record")
    rows = [in_scan, in_warm, in_rattler, in_floor]
    print(report("In process (no start-up, no imports)", rows, in_floor))

    db = work / "inventory.db"

    def fresh_db_no_cache() -> None:
        db.unlink(missing_ok=True)
        no_cache()

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

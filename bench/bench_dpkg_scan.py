"""`vbridge scan --root` of a Debian root with 3,000 packages against `dpkg-query -W`.

The root (bench/generate.py ``dpkg_root``) holds the real Debian 12 status stanzas
cloned to 3,000 installed packages, an ``info/*.list`` for each, the Python
distributions of the ``python3-*`` packages and the real ``/etc/alternatives`` links
(libblas.so.3 -> OpenBLAS). dpkg-query reads the same database with ``--admindir``.
Target: within 10x of dpkg-query. Every run is a whole scan (``VBRIDGE_NO_CACHE=1``: no
kept output of an unchanged root, vbridge.scan_cache); the ratio is also given from
alternating runs (``paired_target``), wall and CPU, and from the user-space instructions
of one run of each (``instruction_target``, valgrind's callgrind: the load does not move
it).

    python bench/bench_dpkg_scan.py --packages 3000 --repeat 7
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from generate import dpkg_root
from timing import (
    PYTHON,
    VBRIDGE,
    WHOLE_SCAN,
    Command,
    instruction_target,
    machine,
    paired_target,
    report,
    target,
    time_command,
    work_directory,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packages", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="generate here and keep it")
    args = parser.parse_args()
    if importlib.util.find_spec("vbridge.adapters.apt") is None:
        print("skipped: this vbridge has no apt adapter (vbridge.adapters.apt)")
        return 0
    dpkg_query = shutil.which("dpkg-query")
    if dpkg_query is None:
        print("skipped: dpkg-query is not installed (the baseline)")
        return 0
    work = work_directory(args.keep)
    root = dpkg_root(work / "debian", packages=args.packages)
    print(f"# Debian root: {args.packages} installed packages; {machine()}\n")
    admindir = str(root / "var" / "lib" / "dpkg")
    scan_argv = [VBRIDGE, "scan", "--json", "--root", str(root)]
    query_argv = [dpkg_query, "--admindir", admindir, "-W"]
    scan = time_command(scan_argv, args.repeat, "vbridge scan --root --json", WHOLE_SCAN)
    query = time_command(query_argv, args.repeat, "dpkg-query -W")
    start = time_command([PYTHON, "-c", "pass"], args.repeat, "python start-up")
    print(report("dpkg database (wall time)", [scan, query, start], query))
    print(target("vbridge scan / dpkg-query -W", scan.median / query.median, 10))
    scan_command = Command(scan_argv, "scan", WHOLE_SCAN)
    query_command = Command(query_argv, "dpkg-query")
    print(
        paired_target("vbridge scan / dpkg-query -W", scan_command, query_command, 10, args.repeat)
    )
    print(instruction_target("vbridge scan / dpkg-query -W", scan_command, query_command, 10))
    return 0


if __name__ == "__main__":
    sys.exit(main())

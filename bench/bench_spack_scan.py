"""`vbridge scan` of a Spack install tree of 2,000 installs against loading index.json.

The tree (bench/generate.py ``spack_tree``) has a version-8 database whose nodes copy
the shape of the real ones in Spack's test database, and a prefix with
``.spack/spec.json`` and a ``.dist-info`` for every ``py-*`` install. The baseline is
what any tool reading the database pays: ``json.load`` of ``.spack-db/index.json``.
Target: within 3x of it. Every run is a whole scan (``VBRIDGE_NO_CACHE=1``: no kept
scan, which a tree with x86-64 levels never gets anyway, its findings reading the
host's CPU). The ratio is given twice: of the two medians, and the median of the
ratios of alternating runs (each scan next to a baseline run, under about the same
load), wall and CPU.

    python bench/bench_spack_scan.py --installs 2000 --repeat 5
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from generate import spack_tree
from timing import (
    PYTHON,
    VBRIDGE,
    WHOLE_SCAN,
    Command,
    machine,
    paired_target,
    report,
    target,
    time_command,
    work_directory,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--installs", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="generate here and keep it")
    args = parser.parse_args()
    if importlib.util.find_spec("vbridge.adapters.spack") is None:
        print("skipped: this vbridge has no Spack adapter (vbridge.adapters.spack)")
        return 0
    work = work_directory(args.keep)
    tree = spack_tree(work / "spack", installs=args.installs)
    index = tree / ".spack-db" / "index.json"
    size = index.stat().st_size
    print(f"# Spack tree: {args.installs} installs, index.json {size / 1e6:.1f} MB; {machine()}\n")
    scan_argv = [VBRIDGE, "scan", "--json", str(tree)]
    load_argv = [PYTHON, str(Path(__file__).parent / "load_json.py"), str(index)]
    scan = time_command(scan_argv, args.repeat, "vbridge scan --json", WHOLE_SCAN)
    load = time_command(load_argv, args.repeat, "json.load index.json")
    print(report("Spack install tree (wall time)", [scan, load], load))
    print(target("vbridge scan / json.load of index.json", scan.median / load.median, 3))
    scan_command = Command(scan_argv, "scan", WHOLE_SCAN)
    load_command = Command(load_argv, "json.load")
    print(paired_target("vbridge scan / json.load", scan_command, load_command, 3, args.repeat))
    return 0


if __name__ == "__main__":
    sys.exit(main())

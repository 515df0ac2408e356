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

``--against EXE`` measures another build (a ``vbridge`` executable) in the same run, in
rounds that alternate the two builds (A B, then B A), each scan next to its own
``json.load`` run: each build's paired ratio and the median of this build / the other
per round. ``--instructions`` counts the instructions each scan and the baseline execute
under ``valgrind --tool=callgrind`` (when valgrind is on PATH): one run each, the same
count whatever else the machine runs (user space only: the kernel's file system work is
not counted).

    python bench/bench_spack_scan.py --installs 2000 --repeat 5
    python bench/bench_spack_scan.py --repeat 9 --against /tmp/old/bin/vbridge --instructions
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from generate import spack_tree
from timing import (
    PYTHON,
    VBRIDGE,
    WHOLE_SCAN,
    Command,
    instructions,
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
    parser.add_argument("--against", help="another vbridge executable, measured in rounds")
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions with callgrind too"
    )
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
    builds = [VBRIDGE] + ([args.against] if args.against else [])
    if args.against:
        print()
        print(against(builds, tree, load_command, args.repeat))
    if args.instructions:
        print()
        print(instruction_counts(builds, tree, load_command))
    return 0


def against(builds: list[str], tree: Path, load: Command, rounds: int) -> str:
    """Rounds alternating the builds' order, each scan next to a ``json.load`` run: each
    build's median wall and CPU, its paired ratios, and this build / the other per round."""
    walls: dict[str, list[float]] = {b: [] for b in builds}
    cpus: dict[str, list[float]] = {b: [] for b in builds}
    paired: dict[str, list[float]] = {b: [] for b in builds}
    paired_cpu: dict[str, list[float]] = {b: [] for b in builds}
    for i in range(rounds):
        for build in builds if i % 2 == 0 else builds[::-1]:
            scan = time_command([build, "scan", "--json", str(tree)], 1, "scan", WHOLE_SCAN)
            base = time_command(load.argv, 1, "json.load")
            walls[build].append(scan.times[0])
            cpus[build].append(scan.cpu[0])
            paired[build].append(scan.times[0] / base.times[0])
            paired_cpu[build].append(scan.cpu[0] / max(base.cpu[0], 1e-9))
    lines = [f"### {rounds} rounds alternating the builds (A B, B A, ...)"]
    median = statistics.median
    for build in builds:
        lines.append(
            f"{build}: wall {median(walls[build]):.3f} s, CPU {median(cpus[build]):.3f} s; "
            f"paired / json.load: wall {median(paired[build]):.2f}x, "
            f"CPU {median(paired_cpu[build]):.2f}x"
        )
    per_round = [a / b for a, b in zip(walls[builds[0]], walls[builds[1]], strict=True)]
    lines.append(
        f"this build / {builds[1]}, per round: wall median {median(per_round):.2f} "
        f"({min(per_round):.2f}-{max(per_round):.2f})"
    )
    return "\n".join(lines)


def instruction_counts(builds: list[str], tree: Path, load: Command) -> str:
    """Instructions each build's scan and the baseline execute (callgrind, one run each)."""
    base = instructions(load)
    if base is None:
        return "instructions: skipped (no valgrind on this machine)"
    lines = [f"### Instructions (callgrind): json.load index.json {base / 1e6:,.1f} M"]
    for build in builds:
        scan = instructions(Command([build, "scan", "--json", str(tree)], "scan", WHOLE_SCAN))
        if scan is not None:
            lines.append(f"{build} scan --json: {scan / 1e6:,.1f} M = {scan / base:.2f}x json.load")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

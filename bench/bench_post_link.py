"""The conda post-link hook's added time per package, in a 600-record prefix.

conda, mamba and rattler run a package's ``bin/.<name>-post-link.sh`` once per package
they link. vbridge ships that script (``vbridge conda-post-link --print-template``); it
runs ``vbridge conda-post-link`` with conda's variables (PREFIX, PKG_NAME, PKG_VERSION,
PKG_BUILDNUM). Here the template runs under bash for Python packages spread over the
generated 600-record prefix (bench/generate.py), as the installer would run it, and
the median wall time is the time the hook adds to installing one package.
Target: at most 80 ms per package.

Under conda with the vbridge conda plugin the hook runs before its package's record is
written and the plugin annotates after the transaction: the hook leaves the package to
it (vbridge.integrations.conda.handoff). That row takes each package's record out of
``conda-meta/`` for the time of its hook (conda's order, simulated) with
``VBRIDGE_CONDA_PLUGIN_SYNCS=1``. The row "every other Python package annotated" runs
each package's hook in a copy of the prefix that ``vbridge annotate`` went over, with
the package's own metadata cleaned first: what a package linked into an environment
vbridge already keeps pays, with vbridge's ledger full (the main rows start from a
prefix vbridge has not written in).

``--against EXE`` measures another build (a ``vbridge`` executable) in the same run: a
second copy of the prefix gets its hooks, each package's two hooks back to back (which
one first alternates), and the median of the per-package ratios is printed with both
medians: on a shared machine the load changes from second to second, a pair sees about
the same load.

    python bench/bench_post_link.py --records 600 --packages 25
    python bench/bench_post_link.py --records 600 --packages 25 --against /tmp/old/bin/vbridge
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from generate import conda_prefix
from timing import VBRIDGE, machine, target, work_directory


def run_hook(script: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system of bash and vbridge) of one hook."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(["bash", str(script)], env=env, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def crowded_hooks(
    work: Path, prefix: Path, script: Path, chosen: list[tuple[Path, dict[str, object]]]
) -> tuple[list[tuple[float, float]], int]:
    """Each package's hook in a copy of the prefix where every Python package is
    annotated (``vbridge annotate``) but this one (``vbridge clean --only``, not timed):
    a package linked into an environment vbridge keeps, its ledger full. Returns the
    wall and CPU seconds of each hook and the number of dist-infos in the ledger."""
    full = work / "env-annotated"
    shutil.copytree(prefix, full, symlinks=True)
    subprocess.run([VBRIDGE, "annotate", str(full)], check=True, capture_output=True)
    ledger = json.loads((full / ".vbridge" / "ledger.json").read_bytes())
    path_env = f"{Path(VBRIDGE).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    found = []
    for _, data in chosen:
        files = data.get("files")
        assert isinstance(files, list)
        first = next(f for f in files if ".dist-info/" in f)
        dist = full / (first.split(".dist-info/")[0] + ".dist-info")
        subprocess.run([VBRIDGE, "clean", str(full), "--only", str(dist)], check=True,
                       capture_output=True)  # fmt: skip
        env = {**os.environ, "PATH": path_env, "PREFIX": str(full),
               "PKG_NAME": str(data["name"]), "PKG_VERSION": str(data["version"]),
               "PKG_BUILDNUM": str(data.get("build_number", 0))}  # fmt: skip
        found.append(run_hook(script, env))
    return found, len(ledger["distributions"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=600)
    parser.add_argument("--packages", type=int, default=25)
    parser.add_argument("--keep", type=Path, help="generate here and keep it")
    parser.add_argument("--against", help="another vbridge executable, measured in pairs")
    args = parser.parse_args()
    template = subprocess.run(
        [VBRIDGE, "conda-post-link", "--print-template"], capture_output=True, text=True
    )
    if template.returncode != 0:
        print("skipped: this vbridge has no 'conda-post-link' command (the conda integration)")
        return 0
    work = work_directory(args.keep)
    prefix = conda_prefix(work / "env", records=args.records)
    other = conda_prefix(work / "env-against", records=args.records) if args.against else None
    script = work / "post-link.sh"
    script.write_text(template.stdout)
    records = []
    for path in sorted((prefix / "conda-meta").glob("*.json")):
        data = json.loads(path.read_bytes())
        if any(".dist-info/" in f for f in data.get("files", [])):
            records.append((path, data))
    step = max(1, len(records) // args.packages)
    chosen = records[::step][: args.packages]
    print(
        f"# {args.records}-record prefix, post-link of {len(chosen)} Python packages; {machine()}\n"
    )
    builds = [(VBRIDGE, prefix)] + ([(args.against, other)] if other else [])
    times: dict[str, list[float]] = {exe: [] for exe, _ in builds}
    cpu: dict[str, list[float]] = {exe: [] for exe, _ in builds}
    noop: list[float] = []
    bare: list[tuple[float, float]] = []  # python -c pass: the interpreter's start-up
    handed: list[tuple[float, float]] = []  # conda with the vbridge plugin
    holding = work / "not-yet-written"
    holding.mkdir(exist_ok=True)
    for number, (record, data) in enumerate(chosen):
        variables = {
            "PKG_NAME": data["name"],
            "PKG_VERSION": data["version"],
            "PKG_BUILDNUM": str(data.get("build_number", 0)),
        }
        for exe, root in builds if number % 2 == 0 else builds[::-1]:
            assert root is not None
            path_env = f"{Path(exe).parent}{os.pathsep}{os.environ.get('PATH', '')}"
            env = {**os.environ, **variables, "PATH": path_env, "PREFIX": str(root)}
            wall, used = run_hook(script, env)
            times[exe].append(wall)
            cpu[exe].append(used)
        started = time.perf_counter()
        subprocess.run(["bash", "-c", "exit 0"], check=True)
        noop.append(time.perf_counter() - started)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        used = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        bare.append((time.perf_counter() - started, used))
        # SIMULATES conda's order (the record is written after the script) with the
        # vbridge conda plugin in the installer: the hook leaves the package to it.
        record.rename(holding / record.name)
        try:
            path_env = f"{Path(VBRIDGE).parent}{os.pathsep}{os.environ.get('PATH', '')}"
            env = {**os.environ, **variables, "PATH": path_env, "PREFIX": str(prefix),
                   "VBRIDGE_CONDA_PLUGIN_SYNCS": "1"}  # fmt: skip
            handed.append(run_hook(script, env))
        finally:
            (holding / record.name).rename(record)
    crowded, annotated = crowded_hooks(work, prefix, script, chosen)
    messages = prefix / ".messages.txt"
    median = statistics.median(times[VBRIDGE])
    print("| what | median s | min-max s | CPU s | command |")
    print("|---|---|---|---|---|")
    for exe, _ in builds:
        label = "post-link.sh per package" + ("" if exe == VBRIDGE else f" ({exe})")
        print(
            f"| {label} | {statistics.median(times[exe]):.3f} "
            f"| {min(times[exe]):.3f}-{max(times[exe]):.3f} | {statistics.median(cpu[exe]):.3f} "
            f"| `PREFIX=... PKG_NAME=... bash post-link.sh` (runs `vbridge conda-post-link`) |"
        )
    print(
        f"| an empty bash script | {statistics.median(noop):.3f} | "
        f"{min(noop):.3f}-{max(noop):.3f} | | `bash -c 'exit 0'` |"
    )
    walls = [w for w, _ in handed]
    print(
        f"| post-link.sh under conda with the vbridge plugin | {statistics.median(walls):.3f} "
        f"| {min(walls):.3f}-{max(walls):.3f} | {statistics.median(c for _, c in handed):.3f} "
        "| the same, the record not written yet, `VBRIDGE_CONDA_PLUGIN_SYNCS=1` (the plugin "
        "annotates after the transaction) |"
    )
    walls = [w for w, _ in crowded]
    print(
        f"| post-link.sh, every other Python package annotated | {statistics.median(walls):.3f} "
        f"| {min(walls):.3f}-{max(walls):.3f} | {statistics.median(c for _, c in crowded):.3f} "
        f"| the same in a copy annotated whole ({annotated} dist-infos in vbridge's ledger), "
        "the package's own metadata cleaned first |"
    )
    walls = [w for w, _ in bare]
    print(
        f"| a bare interpreter | {statistics.median(walls):.3f} | {min(walls):.3f}-"
        f"{max(walls):.3f} | {statistics.median(c for _, c in bare):.3f} | `python -c pass` |"
    )
    print()
    if args.against:
        wall_ratio = statistics.median(
            a / b for a, b in zip(times[VBRIDGE], times[args.against], strict=True)
        )
        cpu_ratio = statistics.median(
            a / max(b, 1e-9) for a, b in zip(cpu[VBRIDGE], cpu[args.against], strict=True)
        )
        print(f"this build / {args.against}, median of the pairs: wall {wall_ratio:.2f}x, "
              f"CPU {cpu_ratio:.2f}x")  # fmt: skip
    print(target("added time per package", median * 1000, 80, unit=" ms"))
    if messages.exists():
        print(f"messages the hook left for the user: {len(messages.read_text().splitlines())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

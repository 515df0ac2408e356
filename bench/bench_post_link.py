"""The conda post-link hook's added time per package, in a 600-record prefix.

conda, mamba and rattler run a package's ``bin/.<name>-post-link.sh`` once per package
they link. vbridge ships that script (``vbridge conda-post-link --print-template``); it
runs ``vbridge conda-post-link`` with conda's variables (PREFIX, PKG_NAME, PKG_VERSION,
PKG_BUILDNUM). Here the template runs under bash for Python packages spread over the
generated 600-record prefix (bench/generate.py), as the installer would run it, and
the median wall time is the time the hook adds to installing one package.
Target: at most 80 ms per package.

    python bench/bench_post_link.py --records 600 --packages 25
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from generate import conda_prefix
from timing import VBRIDGE, machine, target, work_directory


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=600)
    parser.add_argument("--packages", type=int, default=25)
    parser.add_argument("--keep", type=Path, help="generate here and keep it")
    args = parser.parse_args()
    template = subprocess.run(
        [VBRIDGE, "conda-post-link", "--print-template"], capture_output=True, text=True
    )
    if template.returncode != 0:
        print("skipped: this vbridge has no 'conda-post-link' command (the conda integration)")
        return 0
    work = work_directory(args.keep)
    prefix = conda_prefix(work / "env", records=args.records)
    script = work / "post-link.sh"
    script.write_text(template.stdout)
    records = []
    for path in sorted((prefix / "conda-meta").glob("*.json")):
        data = json.loads(path.read_bytes())
        if any(".dist-info/" in f for f in data.get("files", [])):
            records.append(data)
    step = max(1, len(records) // args.packages)
    chosen = records[::step][: args.packages]
    print(
        f"# {args.records}-record prefix, post-link of {len(chosen)} Python packages; {machine()}\n"
    )
    path_env = f"{Path(VBRIDGE).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    times: list[float] = []
    cpu: list[float] = []  # user + system time of the hook (bash and vbridge)
    noop: list[float] = []
    for data in chosen:
        env = {
            **os.environ,
            "PATH": path_env,
            "PREFIX": str(prefix),
            "PKG_NAME": data["name"],
            "PKG_VERSION": data["version"],
            "PKG_BUILDNUM": str(data.get("build_number", 0)),
        }
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(["bash", str(script)], env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        started = time.perf_counter()
        subprocess.run(["bash", "-c", "exit 0"], env=env, check=True)
        noop.append(time.perf_counter() - started)
    messages = prefix / ".messages.txt"
    median = statistics.median(times)
    print("| what | median s | min-max s | CPU s | command |")
    print("|---|---|---|---|---|")
    print(
        f"| post-link.sh per package | {median:.3f} | {min(times):.3f}-{max(times):.3f} "
        f"| {statistics.median(cpu):.3f} "
        f"| `PREFIX=... PKG_NAME=... bash post-link.sh` (runs `vbridge conda-post-link`) |"
    )
    print(
        f"| an empty bash script | {statistics.median(noop):.3f} | "
        f"{min(noop):.3f}-{max(noop):.3f} | | `bash -c 'exit 0'` |"
    )
    print()
    print(target("added time per package", median * 1000, 80, unit=" ms"))
    if messages.exists():
        print(f"messages the hook left for the user: {len(messages.read_text().splitlines())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

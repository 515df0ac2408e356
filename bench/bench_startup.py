"""Start-up: `vbridge --version`, `vbridge scan --help` and the link-script path against
a bare interpreter, and what each imports (``python -X importtime``).

Target: `vbridge --version` within 3x of ``python -c pass``. The import lists show what
each path pays for: `--version` imports neither typer nor the scan; `scan --help`
imports the command line (typer) and nothing of the scan; the link-script path
(`vbridge conda-post-link`) imports no typer.

    python bench/bench_startup.py --repeat 15
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from timing import PYTHON, VBRIDGE, machine, report, target, time_command

# What the console script runs, under -X importtime (the same entry point).
_AS_SCRIPT = (
    "import sys; sys.argv = ['vbridge', *sys.argv[1:]]; "
    "from vbridge.entry_point import main; main()"
)


def imports(
    argv: list[str], env: dict[str, str] | None = None
) -> tuple[float, list[tuple[int, str]]]:
    """Total import time (ms, the top-level imports' cumulative figures) and the
    slowest top-level imports of one run."""
    result = subprocess.run(
        [PYTHON, "-X", "importtime", "-c", _AS_SCRIPT, *argv],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    top: list[tuple[int, str]] = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line[len("import time:") :].split("|")
        if not cumulative.strip().isdigit():
            continue
        if len(name) - len(name.lstrip()) == 1:  # a top-level import (not nested in another)
            top.append((int(cumulative), name.strip()))
    total = sum(us for us, _ in top) / 1000
    return total, sorted(top, reverse=True)[:6]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    print(f"# vbridge start-up; {machine()}\n")
    bare = time_command([PYTHON, "-c", "pass"], args.repeat, "python -c pass")
    site = time_command([PYTHON, "-I", "-c", "pass"], args.repeat, "python -I -c pass")
    version = time_command([VBRIDGE, "--version"], args.repeat, "vbridge --version")
    help_ = time_command([VBRIDGE, "scan", "--help"], args.repeat, "vbridge scan --help")
    template = time_command(
        [VBRIDGE, "conda-post-link", "--print-template"],
        args.repeat,
        "vbridge conda-post-link --print-template",
    )
    rows = [bare, site, version, help_, template]
    print(report("Start-up (wall time)", rows, bare))
    print(target("vbridge --version / bare interpreter", version.median / bare.median, 3))
    print()
    for argv in (["--version"], ["scan", "--help"], ["conda-post-link", "--print-template"]):
        total, top = imports(argv)
        shown = ", ".join(f"{name} {us / 1000:.1f}" for us, name in top)
        print(f"- `vbridge {' '.join(argv)}`: imports {total:.1f} ms (-X importtime); top: {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

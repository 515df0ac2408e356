"""The pip gate's overhead: `vbridge pip install numpy scipy` vs plain `pip install
numpy scipy`, each into a fresh venv, from a warm pip cache, in the same run.

Before every timed run the target venv is made again (outside the timing), so both
commands do a whole install: resolve, fetch (from pip's cache, warmed by a first
install), unpack and compile. The gate adds: reading pip's arguments with pip's own
parser, pip's dry run, fetching each planned wheel once, reading the wheels, scanning
the environment and deciding; pip's final install then runs offline from the checked
wheels. Target: <= 1.3x plain pip's wall time.

    python bench/bench_pip_gate.py --repeat 5 numpy scipy
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from timing import VBRIDGE, machine, report, time_command, work_directory


def _fresh_venv(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    venv.create(path, with_pip=True, symlinks=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("requirements", nargs="*", default=["numpy", "scipy"])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="work here and keep it")
    args = parser.parse_args()
    work = work_directory(args.keep)
    plain_venv, gated_venv = work / "plain", work / "gated"
    env = {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_CACHE_DIR": str(work / "pip-cache")}
    # Warm pip's cache (and find out what pip resolves) with one install first.
    _fresh_venv(plain_venv)
    subprocess.run(
        [str(plain_venv / "bin/python"), "-m", "pip", "install", "--quiet", *args.requirements],
        check=True,
        env={**os.environ, **env},
    )
    print(f"# {' '.join(args.requirements)} into a fresh venv, warm pip cache; {machine()}\n")
    pip = time_command(
        [str(plain_venv / "bin/python"), "-m", "pip", "install", *args.requirements],
        args.repeat,
        "pip install",
        env=env,
        before=lambda: _fresh_venv(plain_venv),
    )
    gate = time_command(
        [VBRIDGE, "pip", "install", *args.requirements],
        args.repeat,
        "vbridge pip install",
        env={**env, "VIRTUAL_ENV": str(gated_venv)},
        before=lambda: _fresh_venv(gated_venv),
    )
    print(report("pip gate (wall time, whole install)", [gate, pip], pip))
    ratio = gate.median / pip.median
    print(f"gate overhead: {(gate.median - pip.median) * 1000:.0f} ms, {ratio:.2f}x (target 1.3x)")
    freeze = [
        subprocess.run(
            [str(v / "bin/python"), "-m", "pip", "freeze"], capture_output=True, text=True
        ).stdout
        for v in (plain_venv, gated_venv)
    ]
    print(f"pip freeze identical: {freeze[0] == freeze[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

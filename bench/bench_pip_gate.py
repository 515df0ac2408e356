"""The pip gate's overhead: `vbridge pip install --dry-run` vs `pip install --dry-run --report`.

Both resolve the same requirements for the same fresh venv from the same local wheel
directory (downloaded once with ``pip download``), so the difference is what the gate
adds: reading pip's report, fetching each planned wheel once, reading the wheels and
scanning the environment, and deciding.

    python bench/bench_pip_gate.py --repeat 5 numpy scipy
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import venv
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from timing import PYTHON, VBRIDGE, machine, report, time_command, work_directory


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("requirements", nargs="*", default=["numpy", "scipy"])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="work here and keep it")
    args = parser.parse_args()
    helps = subprocess.run([VBRIDGE, "pip", "install", "--help"], capture_output=True)
    if helps.returncode != 0:
        print("skipped: this vbridge has no 'pip install' command (the pip gate)")
        return 0
    work = work_directory(args.keep)
    wheels = work / "wheels"
    if not wheels.is_dir():
        subprocess.run(
            [
                PYTHON,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--only-binary",
                ":all:",
                "-d",
                str(wheels),
                *args.requirements,
            ],
            check=True,
        )
    target = work / "venv"
    if not target.is_dir():
        venv.create(target, with_pip=True)
    python = str(target / "bin" / "python")
    source = ["--no-index", "--find-links", str(wheels)]
    print(f"# {' '.join(args.requirements)} into a fresh venv from local wheels; {machine()}\n")
    pip = time_command(
        [
            python,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--report",
            "-",
            "--quiet",
            *source,
            *args.requirements,
        ],
        args.repeat,
        "pip install --dry-run --report",
        env={"PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    gate = time_command(
        [VBRIDGE, "pip", "install", "--python", python, "--dry-run", *source, *args.requirements],
        args.repeat,
        "vbridge pip install --dry-run",
        env={"PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    print(report("pip gate (wall time)", [gate, pip], pip))
    print(f"gate overhead: {(gate.median - pip.median) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())

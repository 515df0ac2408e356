"""The inventory of 200 conda environments: one worker against two, then a re-scan.

The environments are generated (bench/generate.py: 100 records each, real-sized
records, BLAS and MPI varying, every tenth one mixing BLAS) and listed in a throw-away
``$HOME/.conda/environments.txt``, so ``vbridge scan --all`` discovers them the way it
discovers a user's environments. Measured:

- ``vbridge scan --all --db NEW.db --workers 1`` and ``--workers 2``;
- the same command again on an unchanged site (every environment ``unchanged``);
- the questions: ``vbridge inventory findings --code mixed-blas-lapack`` and
  ``vbridge inventory where 'blas_lapack :: provider :: mkl' --name numpy``.

    python bench/bench_inventory.py --count 200 --records 100 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from generate import conda_environments
from timing import VBRIDGE, machine, report, time_command, work_directory


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--records", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="generate here and keep it")
    args = parser.parse_args()
    work = work_directory(args.keep)
    envs_root = work / "envs"
    if not (envs_root / f"env{args.count - 1:03d}" / "conda-meta").is_dir():
        started = time.perf_counter()
        conda_environments(envs_root, count=args.count, records=args.records)
        print(f"# generated {args.count} environments in {time.perf_counter() - started:.0f} s")
    envs = sorted(p for p in envs_root.iterdir() if (p / "conda-meta").is_dir())[: args.count]
    home = work / "home"
    (home / ".conda").mkdir(parents=True, exist_ok=True)
    (home / ".conda" / "environments.txt").write_text("".join(f"{p}\n" for p in envs))
    config = home / ".config" / "vbridge" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("[discover]\ndebian = false\n")
    env = {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "CONDA_ENVS_PATH": "",
        "CONDA_EXE": "",
        "CONDA_ROOT": "",
        "MAMBA_ROOT_PREFIX": "",
    }
    size = sum(e.stat().st_size for p in envs for e in os.scandir(p / "conda-meta"))
    time.sleep(1.1)  # past the fingerprint's racy window
    print(
        f"# {len(envs)} conda environments, {args.records} records each, "
        f"conda-meta {size / 1e9:.2f} GB in all; {machine()}\n"
    )

    db = work / "inventory.db"
    record_cache = home / ".cache"

    def fresh() -> None:  # no inventory, no conda record cache: a first scan
        db.unlink(missing_ok=True)
        shutil.rmtree(record_cache, ignore_errors=True)

    def fresh_db() -> None:  # no inventory, records cached by an earlier scan
        db.unlink(missing_ok=True)

    runs = []
    for workers in (1, 2):
        runs.append(
            time_command(
                [VBRIDGE, "scan", "--all", "--db", str(db), "--workers", str(workers)],
                args.repeat,
                f"first scan --all --db, {workers} worker{'s' if workers > 1 else ''}",
                env=env,
                before=fresh,
            )
        )
    cached_runs = [
        time_command(
            [VBRIDGE, "scan", "--all", "--db", str(db), "--workers", str(workers)],
            args.repeat,
            f"new inventory, records cached, {workers} worker{'s' if workers > 1 else ''}",
            env=env,
            before=fresh_db,
        )
        for workers in (1, 2)
    ]
    again = time_command(
        [VBRIDGE, "scan", "--all", "--db", str(db)], args.repeat, "re-scan, all unchanged", env=env
    )
    rows = [*runs, *cached_runs, again]
    print(report(f"Inventory of {len(envs)} environments", rows, runs[0]))
    print(
        f"two workers / one worker = {runs[1].median / runs[0].median:.2f} (first scan), "
        f"{cached_runs[1].median / cached_runs[0].median:.2f} (records cached); "
        f"unchanged re-scan / first scan = {again.median / runs[1].median:.2f}\n"
    )

    findings = time_command(
        [VBRIDGE, "inventory", "findings", "--db", str(db), "--code", "mixed-blas-lapack"],
        args.repeat,
        "inventory findings --code mixed-blas-lapack",
    )
    where = time_command(
        [
            VBRIDGE,
            "inventory",
            "where",
            "blas_lapack :: provider :: mkl",
            "--name",
            "numpy",
            "--db",
            str(db),
        ],
        args.repeat,
        "inventory where ... --name numpy",
    )
    print(report("Questions", [findings, where]))
    answer = subprocess.run(
        [
            VBRIDGE,
            "inventory",
            "findings",
            "--db",
            str(db),
            "--code",
            "mixed-blas-lapack",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    mixed = json.loads(answer)
    print(f"{len(mixed)} environments mix BLAS; inventory size {db.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What vbridge's conda hooks cost, measured on real rattler installs.

    .venv/bin/python bench/conda_hooks.py [--packages N] [--repeat R]

- post-link: N Python packages (each depending on libblas, like numpy) ship the
  post-link.sh template; the same transaction is installed with link scripts on and
  off into fresh prefixes (warm package cache). Added time per package =
  (on - off) / N. Also one ``vbridge conda-post-link`` call timed on its own.
- conda plugin: ``sync_transaction`` for the whole first transaction, and for a BLAS
  switch (the incremental case).
- variant plugin: ``get_supported_configs`` in process, and variantlib's
  ``get_variants_by_priority`` end to end (its plugin subprocess included).

Medians of R runs. Prints one line per figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import condaenv
import condapython

VBRIDGE = Path(sys.executable).with_name("vbridge")


def timed(func: object, *args: object) -> float:
    start = time.perf_counter()
    func(*args)  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n, repeat = args.packages, args.repeat
    template = resources.files("vbridge.data").joinpath("post-link.sh").read_bytes()
    os.environ["PATH"] = f"{VBRIDGE.parent}{os.pathsep}{os.environ['PATH']}"

    with tempfile.TemporaryDirectory(prefix="vbridge-bench-") as tmp:
        root = Path(tmp)
        extra = []
        for i in range(n):
            pkg = condaenv.python_package(
                f"bench{i}",
                "1.0",
                "py311_0",
                ["libblas >=3.9.0,<4.0a0", "python >=3.11,<3.12.0a0"],
            )
            pkg.files = {**pkg.files, f"bin/.bench{i}-post-link.sh": template}
            extra.append(pkg)
        openblas_libs = [
            p
            for p in condaenv.science_packages("openblas")
            if p.name in {"libblas", "libcblas", "liblapack"}
        ]
        channel = condaenv.build_channel(
            root / "channel", [*condaenv.science_packages("mkl"), *openblas_libs, *extra]
        )
        cache = root / "cache"
        specs = [f"bench{i}" for i in range(n)] + ["numpy", "scipy", "h5py", "libblas=*=*mkl"]
        condaenv.install(channel, specs, root / "warm", cache)  # fill the package cache

        on, off = [], []
        for r in range(repeat):
            off.append(timed(condaenv.install, channel, specs, root / f"off{r}", cache))
            on.append(
                timed(
                    lambda p: condaenv.install(channel, specs, p, cache, execute_link_scripts=True),
                    root / f"on{r}",
                )
            )
        assert (root / "on0" / condaenv.SITE / "bench0-1.0.dist-info" / "variant.json").exists()
        added = (statistics.median(on) - statistics.median(off)) / n
        print(f"install {len(specs)} specs, link scripts off: {statistics.median(off):.3f} s")
        print(f"install, {n} post-link scripts calling vbridge: {statistics.median(on):.3f} s")
        print(f"post-link hook, added time per package: {added * 1000:.0f} ms")

        env = {
            **os.environ,
            "PREFIX": str(root / "on0"),
            "PKG_NAME": "bench0",
            "PKG_VERSION": "1.0",
            "PKG_BUILDNUM": "0",
        }
        single = []
        for _ in range(repeat):
            start = time.perf_counter()
            subprocess.run([str(VBRIDGE), "conda-post-link"], env=env, check=True)
            single.append(time.perf_counter() - start)
        print(
            f"one `vbridge conda-post-link` (already annotated): "
            f"{statistics.median(single) * 1000:.0f} ms"
        )

        from vbridge.integrations.conda.transaction import (
            PackageRef,
            TransactionChange,
            sync_transaction,
        )

        def refs(names: set[str]) -> tuple[PackageRef, ...]:
            return tuple(PackageRef(*x[:-5].rsplit("-", 2)) for x in sorted(names))

        first, switch = [], []
        for r in range(repeat):
            prefix = root / f"off{r}"
            names = {p.name for p in (prefix / "conda-meta").glob("*.json")}
            first.append(timed(sync_transaction, prefix, TransactionChange(refs(names))))
            specs2 = [*specs[:-1], "libblas=*=*openblas"]
            condaenv.install(channel, specs2, prefix, cache)
            after = {p.name for p in (prefix / "conda-meta").glob("*.json")}
            change = TransactionChange(refs(after - names), refs(names - after))
            start = time.perf_counter()
            outcome = sync_transaction(prefix, change)
            switch.append(time.perf_counter() - start)
        print(
            f"conda plugin sync, first transaction ({len(names)} records): "
            f"{statistics.median(first) * 1000:.0f} ms"
        )
        print(
            f"conda plugin sync, BLAS switch ({len(outcome.annotated)} dists rewritten): "
            f"{statistics.median(switch) * 1000:.0f} ms"
        )

        python = condapython.make_python_environment(root / "on0")
        code = (
            "import time; from vbridge.integrations.variant_plugin import blas_lapack as p; "
            "t = time.perf_counter(); p.get_supported_configs(); "
            "print(time.perf_counter() - t)"
        )
        inproc = [
            float(
                subprocess.run(
                    [str(python), "-c", code], capture_output=True, text=True, check=True
                ).stdout
            )
            for _ in range(repeat)
        ]
        print(
            f"variant plugin get_supported_configs, in process: "
            f"{statistics.median(inproc) * 1000:.0f} ms"
        )
        from variantlib.api import get_variants_by_priority
        from variantlib.plugins.loader import VARIANT_PROVIDER_CACHE_TABLE

        data = {
            "$schema": "https://variants-schema.wheelnext.dev/v0.2.0.json",
            "default-priorities": {"namespace": ["blas_lapack"]},
            "providers": {
                "blas_lapack": {
                    "requires": ["vbridge"],
                    "plugin-api": "vbridge.variant_plugin:blas_lapack",
                }
            },
            "variants": {
                "openblas": {"blas_lapack": {"provider": ["openblas"]}},
                "mkl": {"blas_lapack": {"provider": ["mkl"]}},
            },
        }
        total = []
        for _ in range(repeat):
            VARIANT_PROVIDER_CACHE_TABLE.clear()
            start = time.perf_counter()
            labels = [
                v.label
                for v in get_variants_by_priority(
                    variants_json=json.loads(json.dumps(data)), venv_python_executable=python
                )
            ]
            total.append(time.perf_counter() - start)
        assert labels[0] == "mkl", labels
        print(
            f"variantlib get_variants_by_priority with the plugin, end to end: "
            f"{statistics.median(total) * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()

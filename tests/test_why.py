"""``vbridge why NAME`` and ``vbridge scan NAME...`` on the demo prefix."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_vbridge
from vbridge.demo import build_demo_environment


def test_why_tells_the_evidence_chain_and_the_dependents(tmp_path: Path) -> None:
    prefix = build_demo_environment(tmp_path / "demo")
    result = run_vbridge("why", "numpy", str(prefix))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("numpy 2.1.3  ")
    assert "installed by: pip (its INSTALLER)" in out
    assert "Python imports: this copy (import names: numpy)" in out
    assert "blas_lapack :: provider :: openblas: numpy -> openblas (extra.bundled " in out
    assert "conda records numpy 1.26.4 py311h64a7726_0 (" in out and "dist-info is gone" in out
    assert "scipy 1.11.4 (conda): numpy >=1.23.5,<2.0a0 [pin] - NOT satisfied" in out
    scipy = run_vbridge("why", "SciPy", str(prefix)).stdout
    assert (
        "blas_lapack :: provider :: mkl: scipy -> libblas 3.9.0 20_linux64_mkl -> mkl "
        "(build 20_linux64_mkl; rule conda-forge-libblas-build)"
    ) in scipy
    assert "openmp :: provider :: llvm: scipy -> libgcc-ng -> _openmp_mutex 4.5 2_kmp_llvm" in scipy
    assert run_vbridge("why", "nosuchdist", str(prefix)).stdout.startswith(
        "nosuchdist: not installed in "
    )


def test_scan_names_filter_the_table_and_the_findings(tmp_path: Path) -> None:
    prefix = build_demo_environment(tmp_path / "demo")
    result = run_vbridge("scan", "--json", str(prefix), "mpi4py", "requests")
    assert result.returncode == 0, result.stderr  # the refusal names neither
    (env,) = json.loads(result.stdout)["environments"]
    assert [d["name"] for d in env["distributions"]] == ["mpi4py", "requests"]
    assert env["findings"] == []
    result = run_vbridge("scan", str(prefix), "numpy")
    assert result.returncode == 1
    rows = [line.split()[0] for line in result.stdout.splitlines()[2:] if line.strip()]
    assert rows[0] == "numpy" and "scipy" not in rows[: rows.index("Findings:")]
    assert "[refuse] broken-dependent: scipy 1.11.4" in result.stdout

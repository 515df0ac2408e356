"""vbridge verify on environments with real PyPI wheels (pinned; downloaded by real pip).

- a venv with numpy and scipy wheels: each bundles its own OpenBLAS, and one process
  importing both maps the two copies, each owned by its wheel;
- a venv over Debian's python3 (``--system-site-packages``) with pip's numpy 2: Debian's
  scipy, built against the numpy 1.x C ABI, fails to import, a refusal;
- a planted disagreement: a real conda prefix (installed by py-rattler) whose records
  say numpy is the MKL build, with the numpy wheel's files (OpenBLAS) laid over conda's
  numpy, as a pip install over conda's files leaves them: ``differs``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import condaenv
import gateenv
import pytest
from conftest import run_vbridge
from debian_root import DEBIAN_PYTHON, debian_installed
from vbridge.scan import scan_python
from vbridge.verify import verify_environment
from vbridge.verify.verdict import DistributionVerification, FeatureVerdict

pytestmark = pytest.mark.network

NUMPY_2 = "numpy==2.2.6"
SCIPY = "scipy==1.15.3"
NUMPY_1 = "numpy==1.26.4"  # the conda test channel's numpy version
BLAS = "blas_lapack :: provider"


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pinned wheels for CPython 3.11 on x86-64 Linux (pip's cache keeps them)."""
    dest = tmp_path_factory.mktemp("verify-wheels")
    for requirement in (NUMPY_2, SCIPY, NUMPY_1):
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--only-binary=:all:", "--python-version", "3.11", "--platform",
             "manylinux2014_x86_64", "--dest", str(dest), requirement],
            check=True,
        )
    return dest


def install(python: Path, wheels: Path, *requirements: str) -> None:
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-index", "--find-links", str(wheels), *requirements],
        check=True, capture_output=True,
    )


def outcome(results: list[DistributionVerification], name: str) -> DistributionVerification:
    return next(d for d in results if d.name == name)


def feature(result: DistributionVerification, name: str) -> FeatureVerdict:
    return next(f for f in result.features if f.feature == name)


def test_two_openblas_copies_each_with_its_wheel(tmp_path: Path, wheels: Path) -> None:
    if not gateenv.PYTHON_311:
        pytest.skip("the pinned wheels are CPython 3.11 builds")
    python = gateenv.make_venv(tmp_path / "venv")
    install(python, wheels, NUMPY_2, SCIPY)
    result = run_vbridge("verify", "--json", str(tmp_path / "venv"))
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads(result.stdout)
    site = str(next((tmp_path / "venv").glob("lib/python3*/site-packages")))
    dists = {d["name"]: d for d in document["distributions"]}
    assert set(dists) == {"numpy", "scipy"}
    for name, folder, library in (
        ("numpy", "numpy.libs", "libscipy_openblas64_"),
        ("scipy", "scipy.libs", "libscipy_openblas-"),
    ):
        assert dists[name]["status"] == "ok" and dists[name]["failures"] == []
        (blas,) = [f for f in dists[name]["features"] if f["feature"] == BLAS]
        assert blas["status"] == "confirmed"
        (loaded,) = blas["loaded"]
        assert loaded["path"].startswith(f"{site}/{folder}/{library}")
        assert loaded["owner"] == {
            "ecosystem": "wheel", "name": name, "version": dists[name]["version"],
            "detail": f"{folder}/",
        }
        assert blas["recorded"][0]["rule"] == "wheel-bundled-blas"
    runtimes = document["process"]["runtimes"][BLAS]
    assert len(runtimes) == 2
    assert {(r["owner"]["name"], Path(r["path"]).parent.name) for r in runtimes} == {
        ("numpy", "numpy.libs"), ("scipy", "scipy.libs"),
    }
    table = run_vbridge("verify", str(tmp_path / "venv")).stdout
    assert "  2 BLAS/LAPACK runtimes:" in table


def test_debian_scipy_fails_over_pip_numpy_2(tmp_path: Path, wheels: Path) -> None:
    if not (debian_installed("python3-scipy") and debian_installed("python3-venv")):
        pytest.skip("Debian's python3-scipy and python3-venv (tools/debian-packages.txt)")
    venv = tmp_path / "venv"
    subprocess.run(
        [str(DEBIAN_PYTHON), "-m", "venv", "--system-site-packages", str(venv)],
        check=True, capture_output=True,
    )
    install(venv / "bin" / "python", wheels, NUMPY_2)
    result = run_vbridge("verify", str(venv), "scipy", "numpy")
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("scipy 1."))
    assert "(apt python3-scipy " in lines[start]
    assert lines[start + 1].startswith("  import failed: scipy.")
    assert "numpy.dtype size changed" in lines[start + 1] or "failed to import" in lines[start + 1]

    env = scan_python(str(venv / "bin" / "python"))
    verification = verify_environment(env, str(venv / "bin" / "python"), ["scipy"], timeout=120)
    scipy = outcome(verification.distributions, "scipy")
    assert scipy.status == "import-failed"
    errors = {f["module"]: f["error"] for f in scipy.failures}
    assert errors["scipy.linalg._fblas"] == "ImportError: numpy.core.multiarray failed to import"
    (finding,) = [f for f in verification.findings if f.code == "verify-import-failed"]
    assert finding.severity == "refuse" and finding.distributions == ("scipy",)
    # The numpy Python imports is pip's, in the venv; Debian's copy is shadowed.
    numpy = [d for d in env.distributions if d.name == "numpy"]
    assert len(numpy) == 2
    active = verify_environment(env, str(venv / "bin" / "python"), ["numpy"], timeout=120)
    statuses = {d.layer: d.status for d in active.distributions}
    assert statuses["/usr/lib/python3/dist-packages"] == "shadowed"
    assert statuses[str(next(venv.glob("lib/python3*/site-packages")))] == "ok"


def test_planted_mkl_record_with_openblas_loaded_differs(
    tmp_path: Path, wheels: Path, conda_cache: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    channel = condaenv.build_channel(
        tmp_path_factory.mktemp("verify-channel") / "mkl",
        gateenv.metadata_only_python(condaenv.science_packages(blas="mkl")),
    )
    prefix = tmp_path / "env"
    python = gateenv.conda_prefix_with_python(
        channel, ["numpy", "libblas=*=*mkl"], prefix, conda_cache
    )
    site = next(prefix.glob("lib/python3*/site-packages"))
    # The wheel's package and its bundled OpenBLAS over conda's numpy files; conda's
    # record (MKL, via libblas 20_linux64_mkl) and dist-info stay.
    (wheel,) = wheels.glob("numpy-1.26.4-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        members = [m for m in archive.namelist() if m.startswith(("numpy/", "numpy.libs/"))]
        archive.extractall(site, members)
    for member in members:  # zipfile keeps no permissions; the loader needs none but read
        (site / member).chmod(0o755 if member.endswith(".so") else 0o644)

    result = run_vbridge("verify", str(prefix), "numpy")
    assert result.returncode == 0, result.stdout + result.stderr  # differs warns
    line = next(x for x in result.stdout.splitlines() if x.startswith(f"  {BLAS}:"))
    assert line.startswith(
        f"  {BLAS}: differs: records say mkl (conda:libblas-3.9.0-20_linux64_mkl); "
        f"loaded openblas: {site}/numpy.libs/libopenblas64_p-r0-"
    ), line
    env = scan_python(str(python))
    verification = verify_environment(env, str(python), ["numpy"], timeout=120)
    numpy = outcome(verification.distributions, "numpy")
    assert numpy.owner.startswith("conda numpy 1.26.4")
    blas = feature(numpy, BLAS)
    assert blas.status == "differs"
    assert [r.value for r in blas.recorded] == ["mkl"]
    (loaded,) = blas.loaded
    # Nothing records that file: conda's numpy record lists its own files only.
    assert loaded.value == "openblas" and loaded.owner is None
    (finding,) = [f for f in verification.findings if f.code == "verify-differs"]
    assert finding.severity == "warn"

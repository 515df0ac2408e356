"""The issue's table of states, each built for real: real pip, real (pinned) PyPI wheels,
Debian's packages, conda prefixes installed by py-rattler, the demo prefix. Each says
what a scan must say; each refusal leaves the environment byte-identical.

| state | must say |
|---|---|
| demo prefix as shipped | scipy broken: needs numpy <2.0a0, imports 2.1.3 (refuse) |
| Debian venv + pip numpy 2.x | Debian scipy broken via python3-numpy-abi9 (refuse) |
| Debian venv + pip numpy 1.26.4, then vbridge pip install 'numpy>=2' | refused, unchanged |
| conda prefix, plain pip uninstall scipy | conda record without its dist-info (warn) |
| conda prefix, pip install --force-reinstall of the same numpy | rewritten by pip, no MKL |
| Debian venv + h5py wheel | which h5py is imported; Debian's shadowed |
| fresh Debian venv, nothing installed | no warning |
| PyPI numpy + scipy venv | no warning |
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import condaenv
import gateenv
import pytest
from conftest import run_vbridge
from test_finding_codes import readme_codes

DEBIAN_PYTHON = "/usr/bin/python3"
# Pinned wheels from the package index (cp311, manylinux x86-64).
NUMPY_1 = "numpy==1.26.4"
NUMPY_2 = "numpy==2.2.6"
SCIPY = "scipy==1.11.4"
H5PY = "h5py==3.11.0"
NUMPY_2_RANGE = "numpy>=2,<=2.2.6"  # 'numpy>=2', held to the pinned wheel

pytestmark = [pytest.mark.network]


def _debian_ready() -> bool:
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${db:Status-Abbrev}\\n", "python3-numpy", "python3-scipy",
         "python3-h5py-serial", "python3-venv"],
        capture_output=True, text=True,
    )
    return out.returncode == 0 and all(x.startswith("ii") for x in out.stdout.splitlines())


DEBIAN = pytest.mark.skipif(
    not _debian_ready(), reason="needs Debian's python3-numpy/-scipy/-h5py-serial, python3-venv"
)


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pinned wheels, downloaded once by real pip."""
    dest = tmp_path_factory.getbasetemp() / "effective-wheels"
    for spec in (NUMPY_1, NUMPY_2, SCIPY, H5PY):  # one at a time: two numpys conflict
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--only-binary=:all:", "--python-version", "3.11", "--platform",
             "manylinux2014_x86_64", "--dest", str(dest), spec],
            check=True,
        )
    return dest


def _wheel(house: Path, spec: str) -> Path:
    name, version = spec.split("==")
    (found,) = house.glob(f"{name}-{version}-*.whl")
    return found


def _scan(*args: str) -> tuple[int, dict[str, Any]]:
    result = run_vbridge("scan", "--json", *args)
    assert result.returncode in (0, 1), result.stderr
    (env,) = json.loads(result.stdout)["environments"]
    return result.returncode, env


def _loud(env: dict[str, Any]) -> list[dict[str, Any]]:
    """Findings a user must read: warnings and refusals."""
    assert {f["code"] for f in env["findings"]} <= readme_codes()
    return [f for f in env["findings"] if f["severity"] in ("warn", "refuse")]


def _debian_venv(path: Path) -> Path:
    return gateenv.make_venv(path, python=DEBIAN_PYTHON, system_site=True)


def test_demo_prefix_as_shipped(tmp_path: Path) -> None:
    from vbridge.demo import build_demo_environment

    code, env = _scan(str(build_demo_environment(tmp_path / "demo")))
    assert code == 1
    (broken,) = [f for f in env["findings"] if f["code"] == "broken-dependent"]
    assert broken["severity"] == "refuse"
    assert "scipy 1.11.4 (conda, py311h64a7726_0) needs numpy >=1.23.5,<2.0a0" in broken["message"]
    assert "Python imports numpy 2.1.3 (pip)" in broken["message"]


@DEBIAN
def test_debian_venv_with_pip_numpy_2_breaks_debian_scipy(tmp_path: Path, wheels: Path) -> None:
    python = _debian_venv(tmp_path / "venv")
    gateenv.pip_install(python, "--no-deps", str(_wheel(wheels, NUMPY_2)))
    code, env = _scan("--python", str(python))
    assert code == 1
    scipy = [
        f for f in env["findings"]
        if f["code"] == "broken-dependent" and f["message"].startswith("scipy 1.10.1 (apt, ")
    ]
    (finding,) = scipy
    assert finding["severity"] == "refuse"
    assert "needs python3-numpy-abi9 (numpy <2); Python imports numpy 2.2.6 (pip)" in (
        finding["message"]
    )
    # What Python really does there: Debian's scipy fails against numpy 2.
    imported = subprocess.run(
        [str(python), "-c", "import scipy.linalg"], capture_output=True, text=True, cwd=tmp_path
    )
    assert imported.returncode != 0
    debian_numpy = next(
        d for d in env["distributions"] if d["name"] == "numpy" and d["owner"] is not None
    )
    assert debian_numpy["active"] is False
    assert debian_numpy["shadowed_by"]["version"] == "2.2.6"


@DEBIAN
def test_debian_venv_gate_refuses_numpy_2_and_changes_nothing(
    tmp_path: Path, wheels: Path
) -> None:
    """The harmless pip numpy 1.26.4 already shadows Debian's: the dependents check
    still applies to what the install would make Python import."""
    venv = tmp_path / "venv"
    python = _debian_venv(venv)
    gateenv.pip_install(python, "--no-deps", str(_wheel(wheels, NUMPY_1)))
    _, env = _scan("--python", str(python))
    assert not [f for f in env["findings"] if f["code"] == "broken-dependent"]
    before = gateenv.listing(venv)
    refused = run_vbridge("pip", "install", "--python", str(python), NUMPY_2_RANGE)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    lines = [x for x in refused.stderr.splitlines() if x.startswith("refusing:")]
    assert any(
        "scipy 1.10.1 (apt, " in x and "needs python3-numpy-abi9 (numpy <2); Python would "
        "import numpy 2.2.6" in x
        for x in lines
    ), refused.stderr
    assert gateenv.listing(venv) == before
    # check --candidate says the same, as JSON of the shared shape.
    check = run_vbridge("check", "--json", "--python", str(python),
                        "--candidate", str(_wheel(wheels, NUMPY_2)))
    assert check.returncode == 1, check.stderr
    doc = json.loads(check.stdout)
    assert doc["decision"] == "refuse" and doc["environments"][0]["path"]
    assert "broken-dependent" in {f["code"] for f in doc["findings"]}
    assert gateenv.listing(venv) == before


@pytest.fixture(scope="module")
def mkl_channel_runnable(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("effective-channels")
    packages = gateenv.metadata_only_python(condaenv.science_packages(blas="mkl"))
    return condaenv.build_channel(root / "mkl", packages)


def test_conda_prefix_after_plain_pip_uninstall(
    tmp_path: Path, mkl_channel_runnable: Path, conda_cache: Path
) -> None:
    prefix = tmp_path / "env"
    python = gateenv.conda_prefix_with_python(
        mkl_channel_runnable, ["scipy", "libblas=*=*mkl"], prefix, conda_cache
    )
    _, env = _scan(str(prefix))
    assert not _loud(env)
    # The prefix has no pip of its own: this pip acts on its interpreter.
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "uninstall", "-y", "-q", "scipy"],
        check=True,
    )
    assert list(prefix.glob("conda-meta/scipy-*.json"))  # conda still lists it
    _, env = _scan(str(prefix))
    (removed,) = [f for f in env["findings"] if f["code"] == "removed-foreign"]
    assert removed["severity"] == "warn" and removed["distributions"] == ["scipy"]
    assert removed["message"].startswith("scipy 1.11.4 installed by conda (scipy 1.11.4, build ")


def test_conda_prefix_after_pip_force_reinstall_of_the_same_numpy(
    tmp_path: Path, mkl_channel_runnable: Path, conda_cache: Path, wheels: Path
) -> None:
    prefix = tmp_path / "env"
    python = gateenv.conda_prefix_with_python(
        mkl_channel_runnable, ["numpy", "libblas=*=*mkl"], prefix, conda_cache
    )
    _, env = _scan(str(prefix))
    numpy = next(d for d in env["distributions"] if d["name"] == "numpy")
    assert "blas_lapack :: provider :: mkl" in numpy["properties"]
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         "--force-reinstall", str(_wheel(wheels, NUMPY_1))],
        check=True,
    )
    _, env = _scan(str(prefix))
    numpy = next(d for d in env["distributions"] if d["name"] == "numpy")
    assert numpy["installer"] == "pip" and numpy["owner"] is None
    assert numpy["facts"]["claimed_by"].startswith("conda:numpy-1.26.4-")
    assert "blas_lapack :: provider :: mkl" not in numpy["properties"]
    assert "blas_lapack :: provider :: openblas" in numpy["properties"]
    (rewritten,) = [f for f in env["findings"] if f["code"] == "rewritten-foreign"]
    assert rewritten["severity"] == "warn"
    assert "but pip rewrote it since (its INSTALLER says pip)" in rewritten["message"]
    assert "blas_lapack :: provider :: openblas" in rewritten["message"]


@DEBIAN
def test_debian_venv_with_an_h5py_wheel(tmp_path: Path, wheels: Path) -> None:
    python = _debian_venv(tmp_path / "venv")
    gateenv.pip_install(python, "--no-deps", str(_wheel(wheels, H5PY)))
    _, env = _scan("--python", str(python))
    by_name = {d["name"]: d for d in env["distributions"] if d["name"].startswith("h5py")}
    wheel = by_name["h5py"]
    assert wheel["active"] and wheel["installer"] == "pip" and wheel["import_names"] == ["h5py"]
    for name in ("h5py-debian-h5py-serial", "h5py-debian-h5py-mpi"):
        if name in by_name:
            assert by_name[name]["active"] is False
            assert by_name[name]["shadowed_by"]["name"] == "h5py"
    shadowed = [f for f in env["findings"] if f["code"] == "shadowed-foreign"
                and "h5py" in f["distributions"]]
    assert shadowed and all(f["severity"] == "warn" for f in shadowed)
    assert shadowed[0]["message"].startswith("Python imports h5py 3.11.0 (pip, ")


@DEBIAN
def test_fresh_debian_venv_gives_no_warning(tmp_path: Path) -> None:
    python = _debian_venv(tmp_path / "venv")
    code, env = _scan("--python", str(python))
    assert code == 0 and _loud(env) == []
    seeds = [f for f in env["findings"] if f["code"] == "shadowed-foreign"]
    assert {f["severity"] for f in seeds} <= {"info"}
    assert all("nothing to do" in f["message"] for f in seeds)


def test_pypi_numpy_and_scipy_venv_gives_no_warning(tmp_path: Path, wheels: Path) -> None:
    if not gateenv.PYTHON_311:
        pytest.skip("the pinned wheels are cp311")
    python = gateenv.make_venv(tmp_path / "venv")
    gateenv.pip_install(python, "--no-deps", str(_wheel(wheels, NUMPY_1)),
                        str(_wheel(wheels, SCIPY)))
    code, env = _scan("--python", str(python))
    assert code == 0 and _loud(env) == []
    (note,) = [f for f in env["findings"] if f["code"] == "duplicate-blas-lapack"]
    assert note["severity"] == "info" and "nothing to do" in note["message"]

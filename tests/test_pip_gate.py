"""The pip gate and `vbridge check` with real pip and real wheels from the package index.

Scenarios of issue 6: (1) a venv with numpy and scipy wheels, (2) a venv over Debian's
python3-numpy/python3-scipy, (3) a conda prefix installed by py-rattler with MKL, (4)
Debian's Open MPI builds of mpi4py and h5py. Every refusal must leave the environment
exactly as it was: a listing (size, mode, mtime of every path) is compared.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import condaenv
import gateenv
import pytest
from conftest import run_vbridge
from packaging.version import Version

VBRIDGE = str(Path(sys.executable).with_name("vbridge"))

NEEDS_APT = pytest.mark.skipif(
    importlib.util.find_spec("vbridge.adapters.apt") is None,
    reason="needs vbridge.adapters.apt (the apt adapter) to know apt owns the system's numpy",
)


def _debian_packages_installed(*names: str) -> bool:
    if not Path(gateenv.DEBIAN_PYTHON).exists() or shutil.which("dpkg-query") is None:
        return False
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${db:Status-Abbrev}\n", *names],
        capture_output=True, text=True,
    )
    return result.returncode == 0 and all(
        line.startswith("ii") for line in result.stdout.splitlines()
    )


DEBIAN_NUMPY = pytest.mark.skipif(
    not _debian_packages_installed("python3-numpy", "python3-scipy", "python3-venv"),
    reason="needs Debian's python3-numpy, python3-scipy, python3-venv (tools/debian-packages.txt)",
)
DEBIAN_MPI = pytest.mark.skipif(
    not _debian_packages_installed("python3-mpi4py", "python3-h5py-mpi", "python3-venv"),
    reason="needs Debian's python3-mpi4py and python3-h5py-mpi (tools/debian-packages.txt)",
)


@pytest.fixture(scope="module")
def house(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return gateenv.wheelhouse(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def runnable_mkl_channel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gate-channels")
    packages = gateenv.metadata_only_python(condaenv.science_packages(blas="mkl"))
    return condaenv.build_channel(root / "mkl", packages)


def _gate(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_vbridge("pip", "install", "--python", str(python), *args)


def _site(prefix: Path) -> Path:
    return next(prefix.glob("lib/python3*/site-packages"))


def _wheel_version(wheel: Path) -> Version:
    return Version(wheel.name.split("-")[1])


# --- 1. a venv with numpy and scipy wheels ------------------------------------------------


@pytest.mark.network
def test_venv_numpy_then_scipy_notes_two_private_openblas(tmp_path: Path, house: Path) -> None:
    venv = tmp_path / "venv"
    python = gateenv.make_venv(venv)
    gateenv.pip_install(python, "--no-compile", "--no-deps", str(gateenv.wheel(house, "numpy")))
    before = gateenv.listing(venv)

    # pip's own rule: an installed numpy satisfies `numpy`; nothing changes.
    satisfied = _gate(python, "numpy")
    assert satisfied.returncode == 0 and "Requirement already satisfied" in satisfied.stderr
    # pip's failures pass through: its message, its exit status.
    failed = _gate(python, "numpy==0.0.0.1")
    pip_failed = subprocess.run(
        [str(python), "-m", "pip", "install", "--dry-run", "numpy==0.0.0.1"],
        capture_output=True, text=True,
    )
    assert failed.returncode == pip_failed.returncode != 0
    assert "No matching distribution found for numpy==0.0.0.1" in failed.stderr
    assert gateenv.listing(venv) == before

    # --no-compile is an install option: it reaches the final `pip install`.
    result = _gate(python, "--no-compile", "scipy")
    assert result.returncode == 0, result.stdout + result.stderr
    # PyPI's own pair, each wheel with its OpenBLAS: said, as a note (nothing to do).
    (note,) = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert "2 copies of OpenBLAS would load in one process" in note
    assert "numpy.libs/libscipy_openblas" in note and "scipy.libs/libscipy_openblas" in note
    assert "nothing to do" in note
    assert "refusing" not in result.stderr and "warning:" not in result.stderr
    # pip installed the very file vbridge downloaded and read, offline.
    processing = [line for line in result.stdout.splitlines() if line.startswith("Processing")]
    assert len(processing) == 1 and "vbridge-pip-" in processing[0]
    assert "/wheels/scipy-" in processing[0]
    assert list(_site(venv).glob("scipy-*.dist-info"))
    assert not list(_site(venv).glob("scipy/__pycache__"))

    # The environment now holds both copies: `vbridge check` says so, and exits 0.
    check = run_vbridge("check", "--json", str(venv))
    assert check.returncode == 0, check.stderr
    doc = json.loads(check.stdout)
    assert doc["decision"] == "ok"
    (finding,) = doc["findings"]
    assert finding["code"] == "duplicate-blas-lapack" and finding["severity"] == "info"
    assert finding["distributions"] == ["numpy", "scipy"]
    assert {e["field"] for e in finding["evidence"]} == {"extra.bundled"}


@pytest.mark.network
def test_an_editable_install_is_one_line(tmp_path: Path) -> None:
    python = _venv_with_setuptools(tmp_path / "venv")
    project = _source_project(tmp_path / "src" / "vbridge-edit-demo", "vbridge-edit-demo", "0.1")
    result = _gate(python, "--no-build-isolation", "--no-index", "-e", str(project))
    assert result.returncode == 2, result.stdout + result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("vbridge: ")]
    assert "run pip directly" in line
    assert not list(_site(tmp_path / "venv").glob("vbridge_edit_demo*"))


# --- 3. a conda prefix (py-rattler) with MKL ----------------------------------------------


@pytest.mark.network
def test_conda_prefix_refuses_numpy_and_warns_on_scipy(
    tmp_path: Path, runnable_mkl_channel: Path, conda_cache: Path
) -> None:
    prefix = tmp_path / "env"
    python = gateenv.conda_prefix_with_python(
        runnable_mkl_channel, ["numpy", "libblas=*=*mkl"], prefix, conda_cache
    )
    before = gateenv.listing(prefix)

    # pip's own rule: an installed numpy satisfies `numpy`; nothing would change.
    plain = _gate(python, "numpy")
    assert plain.returncode == 0 and "Requirement already satisfied" in plain.stderr

    refused = _gate(python, "--upgrade", "numpy==2.4.6")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    (line,) = [x for x in refused.stderr.splitlines() if x.startswith("refusing:")]
    assert line.startswith("refusing: pip would replace numpy 1.26.4, installed by conda (")
    assert "build py311h64a7726_0" in line
    assert "BLAS/LAPACK provider: MKL via libblas 3.9.0 20_linux64_mkl" in line
    assert "with numpy 2." in line and "(bundled OpenBLAS)" in line
    assert line.endswith("Use conda to change numpy, or pass --vbridge-force.")
    assert refused.stdout == ""  # pip never ran its install
    assert gateenv.listing(prefix) == before

    warned = _gate(python, "--no-compile", "scipy==1.17.1")
    assert warned.returncode == 0, warned.stdout + warned.stderr
    (warning,) = [x for x in warned.stderr.splitlines() if x.startswith("warning:")]
    assert "2 different BLAS/LAPACK providers would load in one process" in warning
    assert "numpy 1.26.4 (MKL, conda, via libblas 3.9.0 20_linux64_mkl)" in warning
    assert "(OpenBLAS, pip, bundled scipy.libs/libscipy_openblas" in warning
    assert list(_site(prefix).glob("scipy-*.dist-info"))
    # conda's own records were not touched.
    after = gateenv.listing(prefix)
    assert {k: v for k, v in after.items() if k.startswith("conda-meta")} == {
        k: v for k, v in before.items() if k.startswith("conda-meta")
    }

    forced = _gate(python, "--vbridge-force", "--no-compile", "--upgrade", "numpy==2.4.6")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "forced past a refusal: pip would replace numpy 1.26.4" in forced.stderr
    assert not (_site(prefix) / "numpy-1.26.4.dist-info").exists()
    scan = run_vbridge("scan", "--json", str(prefix))
    codes = {f["code"] for f in json.loads(scan.stdout)["environments"][0]["findings"]}
    assert "replaced-foreign" in codes


@pytest.mark.network
def test_conda_dependents_pinned_to_numpy_1_break(
    tmp_path: Path, runnable_mkl_channel: Path, conda_cache: Path, house: Path
) -> None:
    """conda's scipy depends `numpy >=1.23.5,<2.0a0`: a numpy 2 wheel breaks it."""
    numpy_wheel = gateenv.wheel(house, "numpy")
    assert _wheel_version(numpy_wheel) >= Version("2")
    prefix = tmp_path / "env"
    python = gateenv.conda_prefix_with_python(
        runnable_mkl_channel, ["scipy", "libblas=*=*mkl"], prefix, conda_cache
    )
    result = run_vbridge("check", "--candidate", str(numpy_wheel), str(prefix))
    assert result.returncode == 1, result.stdout + result.stderr
    line, warning = result.stdout.splitlines()
    # conda's scipy keeps linking MKL while the wheel's numpy brings its own OpenBLAS.
    assert warning.startswith("warning: 2 different BLAS/LAPACK providers would load")
    assert line.startswith("refusing: pip would replace numpy 1.26.4, installed by conda")
    assert (
        "conda packages built against this numpy would break: "
        "scipy 1.11.4 (conda, py311h64a7726_0) needs numpy >=1.23.5,<2.0a0." in line
    )

    # --vbridge-warn-only: the same finding as a warning, and pip installs.
    before_meta = {
        k: v for k, v in gateenv.listing(prefix).items() if k.startswith("conda-meta")
    }
    warned = _gate(python, "--vbridge-warn-only", "--no-compile", str(numpy_wheel))
    assert warned.returncode == 0, warned.stdout + warned.stderr
    assert "warning: pip would replace numpy 1.26.4" in warned.stderr
    assert list(_site(prefix).glob(f"numpy-{_wheel_version(numpy_wheel)}.dist-info"))
    after_meta = {
        k: v for k, v in gateenv.listing(prefix).items() if k.startswith("conda-meta")
    }
    assert after_meta == before_meta


# --- MPI without Debian: a conda Open MPI stack ---------------------------------------------


@pytest.mark.network
def test_mpi_candidates_against_conda_openmpi(
    tmp_path: Path, conda_cache: Path, house: Path
) -> None:
    packages = [
        condaenv.CondaPackage("mpi", "1.0", "openmpi"),
        condaenv.CondaPackage(
            "openmpi", "4.1.6", "hc5af2df_101", 101,
            depends=["mpi 1.0 openmpi"], files={"lib/libmpi.so.40": b""},
        ),
        condaenv.python_package("h5py", "3.11.0", "mpi_openmpi_py311h4ab5c10_1",
                                ["openmpi >=4.1.6,<5.0a0"]),
    ]
    channel = condaenv.build_channel(tmp_path / "ch", packages)
    prefix = condaenv.install(channel, ["h5py"], tmp_path / "env", conda_cache)

    refused = run_vbridge("check", "--candidate", str(gateenv.wheel(house, "mpich")), str(prefix))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    (line,) = refused.stdout.splitlines()
    assert line.startswith("refusing: mpich ") and "(MPICH, pip, installs " in line
    assert "beside h5py 3.11.0 (Open MPI, conda" in line
    assert line.endswith("two MPI implementations cannot share one process")

    agnostic = run_vbridge(
        "check", "--json", "--candidate", str(gateenv.wheel(house, "mpi4py")), str(prefix)
    )
    assert agnostic.returncode == 0, agnostic.stdout + agnostic.stderr
    doc = json.loads(agnostic.stdout)
    assert doc["decision"] == "ok" and doc["findings"] == []
    (cand,) = doc["candidates"]
    assert {"mpi :: implementation :: mpich", "mpi :: implementation :: openmpi"} <= set(
        cand["properties"]
    )


# --- host-bound features ------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has a driver")
def test_cuda_build_without_driver_is_refused(tmp_path: Path, conda_cache: Path) -> None:
    packages = [
        condaenv.CondaPackage("cuda-version", "12.0", "hffde075_3", 3),
        condaenv.CondaPackage("_x86_64-microarch-level", "1", "2_x86_64", 2),
        condaenv.python_package(
            "cupy", "13.3.0", "py311h_cuda120_0",
            ["cuda-version >=12.0,<13", "_x86_64-microarch-level >=1"],
        ),
    ]
    channel = condaenv.build_channel(tmp_path / "ch", packages)
    prefix = condaenv.install(channel, ["cupy"], tmp_path / "env", conda_cache)
    result = run_vbridge("check", "--json", str(prefix))
    assert result.returncode == 1, result.stdout + result.stderr
    doc = json.loads(result.stdout)
    codes = {f["code"]: f for f in doc["findings"]}
    assert set(codes) == {"host-nvidia"}  # x86-64 v1 runs on any x86-64 machine
    assert "needs minimum CUDA version 12.0" in codes["host-nvidia"]["message"]
    assert "no NVIDIA driver" in codes["host-nvidia"]["message"]


@pytest.mark.network
def test_variant_wheel_needing_cuda_is_refused_here(tmp_path: Path, house: Path) -> None:
    if shutil.which("nvidia-smi") is not None or platform.machine() != "x86_64":
        pytest.skip("needs an x86-64 machine without an NVIDIA driver")
    made = gateenv.variant_wheel(
        gateenv.wheel(house, "six"), tmp_path / "variant",
        "x86_64 :: level :: v2", "nvidia :: cuda_version_lower_bound :: 12.8",
    )
    empty = tmp_path / "env"
    empty.mkdir()
    result = run_vbridge("check", "--json", "--candidate", str(made), str(empty))
    assert result.returncode == 1, result.stdout + result.stderr
    doc = json.loads(result.stdout)
    (finding,) = doc["findings"]  # x86-64-v2 runs on any current x86-64 CPU
    assert finding["code"] == "host-nvidia" and finding["severity"] == "refuse"
    assert "six 1.17.0 needs minimum CUDA version 12.8 (built for" in finding["message"]
    (cand,) = doc["candidates"]
    assert set(cand["properties"]) == {
        "nvidia :: cuda_version_lower_bound :: 12.8", "x86_64 :: level :: v2",
    }


# --- policy override -------------------------------------------------------------------------


@pytest.mark.network
def test_override_file_turns_a_refusal_into_a_warning_and_back(
    tmp_path: Path, runnable_mkl_channel: Path, conda_cache: Path, house: Path
) -> None:
    prefix = condaenv.install(
        runnable_mkl_channel, ["numpy", "libblas=*=*mkl"], tmp_path / "env", conda_cache
    )
    args = ("check", "--candidate", str(gateenv.wheel(house, "numpy")), str(prefix))
    assert run_vbridge(*args).returncode == 1

    override = prefix / ".vbridge" / "policy.toml"
    override.parent.mkdir()
    override.write_text('[ownership]\nreplace = "warn"\n')
    softened = run_vbridge(*args)
    assert softened.returncode == 0, softened.stdout + softened.stderr
    assert softened.stdout.startswith("warning: pip would replace numpy 1.26.4")

    # $VBRIDGE_POLICY wins over the prefix's file: back to a refusal.
    strict = tmp_path / "strict.toml"
    strict.write_text('[ownership]\nreplace = "refuse"\n')
    env_var = subprocess.run(
        [str(Path(sys.executable).with_name("vbridge")), *args],
        capture_output=True, text=True, env={**_environ(), "VBRIDGE_POLICY": str(strict)},
    )
    assert env_var.returncode == 1 and env_var.stdout.startswith("refusing:")

    override.write_text('[ownership]\nreplace = "maybe"\n')
    bad = run_vbridge(*args)
    assert bad.returncode == 2
    (line,) = bad.stderr.splitlines()
    assert str(override) in line and "'maybe'" in line


def _environ() -> dict[str, str]:
    import os

    return dict(os.environ)


# --- 2 and 4. Debian's packages under a venv with --system-site-packages -------------------


@pytest.mark.network
@NEEDS_APT
@DEBIAN_NUMPY
def test_debian_venv_refuses_numpy2_over_apt_numpy(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    python = gateenv.make_venv(venv, gateenv.DEBIAN_PYTHON, system_site=True)
    before = gateenv.listing(venv)

    refused = _gate(python, "numpy==2.4.6")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    (line,) = [x for x in refused.stderr.splitlines() if x.startswith("refusing:")]
    assert line.startswith("refusing: pip would shadow numpy 1.")
    assert "with numpy 2." in line and "(bundled OpenBLAS)" in line
    assert "installed by apt (python3-numpy " in line
    assert "apt packages built against this numpy would break: " in line
    scipy_version = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "python3-scipy"],
        capture_output=True, text=True, check=True,
    ).stdout
    assert (
        f"scipy 1.10.1 (apt, python3-scipy {scipy_version}) needs python3-numpy-abi9 "
        "(numpy <2)" in line
    )
    assert line.endswith("Use apt to change numpy, or pass --vbridge-force.")
    assert gateenv.listing(venv) == before

    ok = _gate(python, "--no-compile", "requests==2.32.3")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "refusing" not in ok.stderr and "warning" not in ok.stderr
    assert list(_site(venv).glob("requests-*.dist-info"))


@pytest.mark.network
@NEEDS_APT
@DEBIAN_MPI
def test_debian_venv_refuses_mpich_beside_apt_openmpi(tmp_path: Path, house: Path) -> None:
    venv = tmp_path / "venv"
    python = gateenv.make_venv(venv, gateenv.DEBIAN_PYTHON, system_site=True)
    before = gateenv.listing(venv)

    refused = _gate(python, "mpich")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    (line,) = [x for x in refused.stderr.splitlines() if x.startswith("refusing:")]
    assert line.startswith("refusing: mpich ") and "MPICH" in line
    assert "mpi4py" in line and "h5py" in line and "Open MPI" in line
    assert gateenv.listing(venv) == before

    # The mpi4py wheel is built for both ABIs: no MPI finding. It would still shadow
    # apt's mpi4py, which this venv's policy allows with a warning.
    (venv / ".vbridge").mkdir()
    (venv / ".vbridge" / "policy.toml").write_text('[ownership]\nshadow = "warn"\n')
    agnostic = run_vbridge(
        "check", "--json", "--python", str(python),
        "--candidate", str(gateenv.wheel(house, "mpi4py")),
    )
    assert agnostic.returncode == 0, agnostic.stdout + agnostic.stderr
    doc = json.loads(agnostic.stdout)
    assert [f["code"] for f in doc["findings"]] == ["shadowed-foreign"]
    assert doc["findings"][0]["severity"] == "warn"

    still = run_vbridge(
        "check", "--python", str(python), "--candidate", str(gateenv.wheel(house, "mpich"))
    )
    assert still.returncode == 1 and still.stdout.startswith("refusing: mpich ")


# --- source inputs: a project directory and an sdist, built once by `pip wheel` -----------


def _source_project(root: Path, name: str, version: str) -> Path:
    """A pure-Python setuptools project (built with the venv's own setuptools)."""
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        "[build-system]\n"
        'requires = ["setuptools"]\n'
        'build-backend = "setuptools.build_meta"\n'
        "[project]\n"
        f'name = "{name}"\nversion = "{version}"\n'
        "[tool.setuptools]\n"
        f'py-modules = ["{name.replace("-", "_")}_src"]\n'
    )
    (root / f"{name.replace('-', '_')}_src.py").write_text("VALUE = 1\n")
    return root


def _sdist(project: Path, dest: Path) -> Path:
    """``NAME-VERSION.tar.gz`` of the project directory, as an sdist is laid out."""
    import tarfile

    archive = dest / f"{project.name}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(project, arcname=project.name)
    return archive


def _venv_with_setuptools(path: Path) -> Path:
    """A venv whose setuptools builds wheels by itself (70.1+, from the package index)."""
    python = gateenv.make_venv(path)
    gateenv.pip_install(python, "setuptools==80.9.0")
    return python


@pytest.mark.network
def test_a_project_directory_is_checked_then_installed_as_pip_would(tmp_path: Path) -> None:
    """The wheel the gate builds to check it is not what lands: pip installs the
    directory the user named, so direct_url.json names that directory, as plain pip's."""
    python = _venv_with_setuptools(tmp_path / "venv")
    project = _source_project(tmp_path / "src" / "vbridge-local-demo", "vbridge-local-demo", "0.1")

    result = _gate(python, "--no-build-isolation", "--no-index", "--no-compile", str(project))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "refusing" not in result.stderr
    (dist_info,) = _site(tmp_path / "venv").glob("vbridge_local_demo-0.1.dist-info")
    direct = json.loads((dist_info / "direct_url.json").read_text())
    assert direct["url"] == project.as_uri() and "dir_info" in direct
    assert (dist_info / "REQUESTED").exists()


@NEEDS_APT
@DEBIAN_NUMPY
def test_debian_venv_refuses_a_numpy2_sdist_over_apt_numpy(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    python = gateenv.make_venv(venv, gateenv.DEBIAN_PYTHON, system_site=True)
    project = _source_project(tmp_path / "src" / "numpy-2.0.0", "numpy", "2.0.0")
    sdist = _sdist(project, tmp_path)
    before = gateenv.listing(venv)

    refused = _gate(python, "--no-build-isolation", "--no-index", str(sdist))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    (line,) = [x for x in refused.stderr.splitlines() if x.startswith("refusing:")]
    assert line.startswith("refusing: pip would shadow numpy 1.")
    assert "with numpy 2.0.0" in line
    assert "apt packages built against this numpy would break: " in line
    assert refused.stdout == ""  # pip never ran its install
    assert gateenv.listing(venv) == before


# --- pip uninstall: never remove what another manager owns --------------------------------


def _uninstall(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_vbridge("pip", "uninstall", "--python", str(python), *args)


@pytest.mark.network
def test_conda_owned_numpy_is_not_removed_by_pip(
    tmp_path: Path, runnable_mkl_channel: Path, conda_cache: Path, house: Path
) -> None:
    prefix = tmp_path / "env"
    python = gateenv.conda_prefix_with_python(
        runnable_mkl_channel, ["scipy", "libblas=*=*mkl"], prefix, conda_cache
    )
    before = gateenv.listing(prefix)

    refused = _uninstall(python, "-y", "NumPy")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    (line,) = refused.stderr.splitlines()
    assert line.startswith("refusing: pip would remove numpy 1.26.4, installed by conda (")
    assert "BLAS/LAPACK provider: MKL via libblas 3.9.0 20_linux64_mkl" in line
    assert "conda would still list it, its files gone" in line
    assert "conda packages that need it: scipy 1.11.4" in line
    assert line.endswith("Use conda to remove numpy, or pass --vbridge-force.")
    assert refused.stdout == ""  # pip never ran
    # Named in a requirements file: the same.
    requirements = tmp_path / "remove.txt"
    requirements.write_text(  # as pip-compile writes them: hashes on continuation lines
        "# cleanup\nnumpy==1.26.4 \\\n    --hash=sha256:" + "0" * 64 + "  # the conda one\n"
    )
    assert _uninstall(python, "-y", "-r", str(requirements)).returncode == 1
    assert gateenv.listing(prefix) == before

    # What pip itself installed goes as usual.
    assert _gate(python, "--no-compile", str(gateenv.wheel(house, "six"))).returncode == 0
    removed = _uninstall(python, "-y", "six")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert "Successfully uninstalled six" in removed.stdout
    assert not list(_site(prefix).glob("six-*.dist-info"))

    # --force: pip removes conda's numpy; conda's record stays, and vbridge says so.
    forced = _uninstall(python, "--vbridge-force", "-y", "numpy")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert forced.stderr.startswith("forced past a refusal: pip would remove numpy 1.26.4")
    assert not (_site(prefix) / "numpy-1.26.4.dist-info").exists()
    assert list((prefix / "conda-meta").glob("numpy-1.26.4-*.json"))


@NEEDS_APT
@DEBIAN_NUMPY
def test_debian_numpy_outside_the_venv_is_left_to_pip(tmp_path: Path) -> None:
    """In a --system-site-packages venv, pip only removes what is inside the venv: for
    apt's numpy it says so itself, and vbridge does not stand in its way."""
    venv = tmp_path / "venv"
    python = gateenv.make_venv(venv, gateenv.DEBIAN_PYTHON, system_site=True)
    result = _uninstall(python, "-y", "numpy")
    assert "refusing" not in result.stderr
    assert "outside environment" in result.stdout + result.stderr
    assert list(Path("/usr/lib/python3/dist-packages").glob("numpy-*"))


@pytest.mark.network
def test_other_pip_commands_run_pip_unchanged(tmp_path: Path, house: Path) -> None:
    """`alias pip="vbridge pip"`: list, show, freeze... are pip's own, for the same
    interpreter (here the active venv), with pip's output and exit status."""
    python = gateenv.make_venv(tmp_path / "venv")
    gateenv.pip_install(python, "--no-deps", str(gateenv.wheel(house, "six")))
    env = {**os.environ, "VIRTUAL_ENV": str(tmp_path / "venv")}
    env.pop("CONDA_PREFIX", None)

    def both(*args: str) -> tuple[subprocess.CompletedProcess[str], ...]:
        ours = subprocess.run([VBRIDGE, "pip", *args], env=env, capture_output=True, text=True)
        pips = subprocess.run(
            [str(python), "-m", "pip", *args], env=env, capture_output=True, text=True
        )
        return ours, pips

    ours, pips = both("list", "--format", "json")
    assert ours.returncode == pips.returncode == 0
    assert json.loads(ours.stdout) == json.loads(pips.stdout)
    assert "six" in {d["name"] for d in json.loads(ours.stdout)}
    ours, pips = both("show", "no-such-distribution")
    assert ours.returncode == pips.returncode == 1
    assert ours.stderr == pips.stderr

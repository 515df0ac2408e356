"""The wheel adapter on real wheels from the package index and real pip installs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import condaenv
import gateenv
import pytest
from conftest import CondaPrefixFactory, run_vbridge
from vbridge.adapters import wheel as wheel_adapter
from vbridge.decide.checker import Candidate
from vbridge.model import Distribution, Evidence
from vbridge.scan import scan_environment


@pytest.fixture(scope="module")
def house(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return gateenv.wheelhouse(tmp_path_factory.getbasetemp())


def _props(dist: Distribution) -> dict[str, list[Evidence]]:
    return {p.to_str(): ev for p, ev in dist.properties.items()}


def _needed(dist: Distribution) -> list[str]:
    """The libraries a wheel's extensions link (its ``needed`` fact)."""
    needed = dist.facts.get("needed", [])
    assert isinstance(needed, list)
    return [str(n) for n in needed]


def _bundled(dist: Distribution) -> list[str]:
    bundled = dist.facts.get("bundled", [])
    assert isinstance(bundled, list)
    return [str(b) for b in bundled]


@pytest.mark.network
def test_numpy_and_scipy_wheels_bundle_openblas_privately(house: Path) -> None:
    for name, libs in (("numpy", "numpy.libs/"), ("scipy", "scipy.libs/")):
        cand = Candidate.from_wheel(gateenv.wheel(house, name))
        props = _props(cand.dist)
        (evidence,) = props["blas_lapack :: provider :: openblas"]
        assert evidence.field == "extra.bundled"
        assert evidence.value.startswith(libs) and "openblas" in evidence.value
        # The OpenBLAS the extensions link is the bundled one: nothing from outside.
        assert not [n for n in _needed(cand.dist) if "blas" in n]
        assert not any(p.startswith("mpi ::") for p in props)


@pytest.mark.network
def test_mpich_wheel_installs_the_mpich_abi(house: Path) -> None:
    cand = Candidate.from_wheel(gateenv.wheel(house, "mpich"))
    props = _props(cand.dist)
    assert set(props) == {"mpi :: implementation :: mpich"}
    (evidence,) = props["mpi :: implementation :: mpich"]
    # Installed for the whole environment (<prefix>/lib), not private to the package.
    assert evidence.field == "extra.provided" and evidence.value.endswith("/lib/libmpi.so.12")


@pytest.mark.network
def test_mpi4py_wheel_links_both_mpi_abis(house: Path) -> None:
    """mpi4py's wheel carries MPI.mpich.*.so and MPI.openmpi.*.so: MPI-agnostic."""
    cand = Candidate.from_wheel(gateenv.wheel(house, "mpi4py"))
    props = _props(cand.dist)
    assert {p for p in props if p.startswith("mpi ::")} == {
        "mpi :: implementation :: mpich",
        "mpi :: implementation :: openmpi",
    }
    assert {e.value for p in props for e in props[p]} == {"libmpi.so.12", "libmpi.so.40"}
    assert "bundled" not in cand.dist.facts and "provided" not in cand.dist.facts


@pytest.mark.network
def test_installed_wheel_is_described_in_a_scan(tmp_path: Path, house: Path) -> None:
    python = gateenv.make_venv(tmp_path / "venv", pip=False)
    site = next((tmp_path / "venv").glob("lib/python*/site-packages"))
    gateenv.pip_install(Path(sys.executable), "--no-deps", "--target", str(site),
                        str(gateenv.wheel(house, "numpy")))
    assert python.exists()
    env = scan_environment(tmp_path / "venv")
    assert env.ecosystems == ["pip"]  # the wheel adapter describes, it owns nothing
    (numpy,) = [d for d in env.distributions if d.name == "numpy"]
    assert numpy.owner is None
    (evidence,) = _props(numpy)["blas_lapack :: provider :: openblas"]
    assert evidence.field == "extra.bundled" and evidence.value.startswith("numpy.libs/")
    assert any(str(b).startswith("numpy.libs/libscipy_openblas") for b in _bundled(numpy))
    # One numpy only: lib64 -> lib is one layer.
    assert len([d for d in env.distributions if d.name == "numpy"]) == 1


def test_foreign_owned_distribution_is_not_described_by_its_files(
    tmp_path: Path, conda_prefix: CondaPrefixFactory
) -> None:
    """conda owns this numpy: its properties come from conda's records, even though its
    RECORD lists a bundled OpenBLAS (which a pip-installed numpy would be read for)."""
    packages = [
        condaenv.python_package(
            "numpy", "1.26.4", "py311h1_0", ["libblas >=3.9.0,<4.0a0"],
            {"numpy/__init__.py": b"", "numpy.libs/libopenblas64_p-r0-0cf96a72.3.23.dev.so": b"x"},
        ),
        condaenv.CondaPackage("libblas", "3.9.0", "20_linux64_mkl", 20),
    ]
    channel = condaenv.build_channel(tmp_path / "ch", packages)
    prefix = conda_prefix(channel, ["numpy"])
    env = scan_environment(prefix)
    (numpy,) = [d for d in env.distributions if d.name == "numpy"]
    props = _props(numpy)
    assert set(props) == {"blas_lapack :: provider :: mkl"}
    assert numpy.facts == {}
    assert env.ecosystems == ["conda"]


@pytest.mark.network
def test_corrupt_extension_module_is_one_problem_line(tmp_path: Path, house: Path) -> None:
    gateenv.make_venv(tmp_path / "venv", pip=False)
    site = next((tmp_path / "venv").glob("lib/python*/site-packages"))
    gateenv.pip_install(Path(sys.executable), "--no-deps", "--target", str(site),
                        str(gateenv.wheel(house, "mpi4py")))
    broken = next(site.glob("mpi4py/MPI.openmpi.*.so"))
    broken.write_bytes(b"\x7fELF" + b"\x00" * 40)
    result = run_vbridge("scan", "--json", str(tmp_path / "venv"))
    assert result.returncode == 0, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("vbridge: ") and str(broken) in line and "ELF" in line
    doc = json.loads(result.stdout)
    (mpi4py,) = [d for d in doc["environments"][0]["distributions"] if d["name"] == "mpi4py"]
    # The readable extension still says MPICH; the broken one says nothing.
    assert mpi4py["properties"] == ["mpi :: implementation :: mpich"]


def test_not_a_wheel_is_one_line_exit_2(tmp_path: Path) -> None:
    bogus = tmp_path / "numpy-2.0.0-cp311-cp311-linux_x86_64.whl"
    bogus.write_bytes(b"not a zip")
    result = run_vbridge("check", "--candidate", str(bogus), str(tmp_path))
    assert result.returncode == 2, result.stdout + result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("vbridge: ") and str(bogus) in line and "not a readable wheel" in line
    assert "Traceback" not in result.stderr


def test_classify_paths() -> None:
    assert wheel_adapter.classify("torch.libs/libgomp-a34b3233.so.1") == "bundled"
    assert wheel_adapter.classify("pkg/.dylibs/libomp.dylib") == "bundled"
    assert wheel_adapter.classify("mpich-5.0.2.data/data/lib/libmpi.so.12") == "provided"
    assert wheel_adapter.classify("pkg/_ext.abi3.so") == "extension"
    assert wheel_adapter.classify("pkg/data.json") is None

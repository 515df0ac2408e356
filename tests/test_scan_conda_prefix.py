"""`vbridge scan` on real conda prefixes installed by py-rattler from a local channel."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import condaenv
import pytest
from conftest import CondaPrefixFactory, run_vbridge
from vbridge.decide.assess import assess_environment
from vbridge.scan import scan_environment


def _props(env_dists: list, name: str) -> dict[str, list]:  # type: ignore[type-arg]
    dist = next(d for d in env_dists if d.name == name)
    return {p.to_str(): ev for p, ev in dist.properties.items()}


def test_mkl_numpy_gets_blas_through_libblas(
    mkl_channel: Path, conda_prefix: CondaPrefixFactory
) -> None:
    prefix = conda_prefix(mkl_channel, ["numpy", "libblas=*=*mkl"])
    env = scan_environment(prefix)
    numpy = _props(env.distributions, "numpy")
    evidence_by_record = {e.record: e for e in numpy["blas_lapack :: provider :: mkl"]}
    # libblas, libcblas and liblapack all say so, each one dependency away.
    assert set(evidence_by_record) == {
        "conda:libblas-3.9.0-20_linux64_mkl",
        "conda:libcblas-3.9.0-20_linux64_mkl",
        "conda:liblapack-3.9.0-20_linux64_mkl",
    }
    evidence = evidence_by_record["conda:libblas-3.9.0-20_linux64_mkl"]
    assert evidence.via == ("numpy", "libblas")
    assert evidence.record == "conda:libblas-3.9.0-20_linux64_mkl"
    assert evidence.field == "build" and evidence.value == "20_linux64_mkl"
    assert evidence.source and evidence.source.endswith("libblas-3.9.0-20_linux64_mkl.json")
    # MKL pulls the LLVM OpenMP runtime through _openmp_mutex' *_llvm build.
    assert "openmp :: provider :: llvm" in numpy
    assert env.findings == []


def test_openblas_build_is_told_apart(
    openblas_channel: Path, conda_prefix: CondaPrefixFactory
) -> None:
    prefix = conda_prefix(openblas_channel, ["scipy", "libblas=*=*openblas"])
    env = scan_environment(prefix)
    for name in ("numpy", "scipy"):
        props = _props(env.distributions, name)
        assert "blas_lapack :: provider :: openblas" in props
        assert "blas_lapack :: provider :: mkl" not in props
        assert "openmp :: provider :: gnu" in props


def test_mpi_and_hdf5_builds(mkl_channel: Path, conda_prefix: CondaPrefixFactory) -> None:
    prefix = conda_prefix(mkl_channel, ["h5py", "mpi4py"])
    env = scan_environment(prefix)
    mpi4py = _props(env.distributions, "mpi4py")
    # mpi4py's build string says nothing: the openmpi dependency does.
    (evidence,) = mpi4py["mpi :: implementation :: openmpi"]
    assert evidence.field == "depends" and evidence.value.startswith("openmpi ")
    h5py = _props(env.distributions, "h5py")
    assert h5py["hdf5 :: parallel :: on"][0].value == "mpi_openmpi_py311h4ab5c10_1"
    assert "mpi :: implementation :: openmpi" in h5py
    # h5py uses numpy but does not link BLAS: properties stop at other distributions.
    assert not any(p.startswith("blas_lapack") for p in h5py)


def test_metapackage_pins_the_build_of_the_base(
    tmp_path: Path, conda_prefix: CondaPrefixFactory
) -> None:
    # Anaconda defaults: `numpy` is a metapackage over `numpy-base`, which owns the files;
    # the metapackage's `blas 1.0 mkl` dependency chooses the build.
    packages = [
        condaenv.python_package("numpy-base", "1.26.4", "py311h1234567_0", [], {"numpy/x.py": b""}),
        condaenv.CondaPackage("blas", "1.0", "mkl", subdir="linux-64"),
        condaenv.CondaPackage(
            "numpy", "1.26.4", "py311habcdef0_0",
            depends=["numpy-base 1.26.4 py311h1234567_0", "blas 1.0 mkl"],
        ),
    ]
    # python_package names the dist-info after the conda package; rename to numpy's.
    base = packages[0]
    base.files = {k.replace("numpy_base-", "numpy-"): v for k, v in base.files.items()}
    channel = condaenv.build_channel(tmp_path / "defaults", packages)
    env = scan_environment(conda_prefix(channel, ["numpy"]))
    numpy = next(d for d in env.distributions if d.name == "numpy")
    assert numpy.owner is not None and numpy.owner.name == "numpy-base"
    props = {p.to_str(): ev for p, ev in numpy.properties.items()}
    assert props["blas_lapack :: provider :: mkl"][0].via[:2] == ("numpy-base", "numpy")


@pytest.mark.network
def test_pip_install_beside_conda_is_a_finding(
    tmp_path: Path, mkl_channel: Path, conda_prefix: CondaPrefixFactory
) -> None:
    """Real pip puts a newer six next to conda's six: the scan says pip shadows conda."""
    prefix = conda_prefix(mkl_channel, ["six", "python"])
    site = prefix / condaenv.SITE
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(wheels),
         "six==1.17.0"],
        check=True,
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--upgrade", "--target",
         str(site), str(next(wheels.glob("six-*.whl")))],
        check=True,
    )
    env = assess_environment(scan_environment(prefix))
    sixes = {d.version: d for d in env.distributions if d.name == "six"}
    assert sixes["1.17.0"].owner is None and sixes["1.17.0"].installer == "pip"
    assert sixes["1.16.0"].owner is not None
    (finding,) = env.findings
    assert finding.code == "shadowed-foreign" and finding.distributions == ("six",)
    assert sixes["1.16.0"].shadowed_by is sixes["1.17.0"] and sixes["1.17.0"].active
    assert finding.message.startswith("Python imports six 1.17.0 (pip, ")

    # pip replaces it outright (uninstalls conda's files): now conda's record is stale.
    shutil.rmtree(site / "six-1.16.0.dist-info")
    env = assess_environment(scan_environment(prefix))
    (finding,) = env.findings
    assert finding.code == "replaced-foreign"
    assert "1.16.0" in finding.message and "1.17.0" in finding.message


def test_cli_json_document(mkl_channel: Path, conda_prefix: CondaPrefixFactory) -> None:
    prefix = conda_prefix(mkl_channel, ["numpy", "mpi4py", "libblas=*=*mkl"])
    result = run_vbridge("scan", "--json", str(prefix))
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    (env,) = doc["environments"]
    assert env["path"] == str(prefix) and env["ecosystems"] == ["conda"]
    numpy = next(d for d in env["distributions"] if d["name"] == "numpy")
    assert numpy["installer"] == "conda"
    assert numpy["owner"] == {
        "ecosystem": "conda", "name": "numpy", "version": "1.26.4",
        "build": "py311h64a7726_0", "channel": mkl_channel.as_uri(),
    }
    assert numpy["dist_info"].endswith("numpy-1.26.4.dist-info")
    assert "blas_lapack :: provider :: mkl" in numpy["properties"]
    assert set(numpy["evidence"]) == set(numpy["properties"])
    assert env["findings"] == []


def test_cli_mixed_mpi_is_a_refusal(tmp_path: Path, conda_prefix: CondaPrefixFactory) -> None:
    """Two MPI implementations linked in one environment: exit 1, both named."""
    packages = [
        condaenv.CondaPackage("openmpi", "4.1.6", "h1_101", files={"lib/libmpi.so.40": b""}),
        condaenv.CondaPackage("mpich", "4.2.1", "h2_100", files={"lib/libmpi.so.12": b""}),
        condaenv.python_package("mpi4py", "3.1.5", "py311h3_1", ["openmpi >=4.1"]),
        condaenv.python_package("petsc4py", "3.21.0", "py311h4_0", ["mpich >=4.2"]),
    ]
    channel = condaenv.build_channel(tmp_path / "mixed", packages)
    prefix = conda_prefix(channel, ["mpi4py", "petsc4py"])
    result = run_vbridge("scan", str(prefix))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "[refuse] mixed-mpi" in result.stdout
    assert "mpich (petsc4py)" in result.stdout and "openmpi (mpi4py)" in result.stdout


def test_cli_bad_input_exit_2(tmp_path: Path) -> None:
    result = run_vbridge("scan", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert result.stderr.startswith("vbridge: ") and "nowhere" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_malformed_record_is_one_line_and_scan_completes(
    mkl_channel: Path, conda_prefix: CondaPrefixFactory
) -> None:
    prefix = conda_prefix(mkl_channel, ["numpy", "six"])
    broken = next((prefix / "conda-meta").glob("six-*.json"))
    broken.write_text(broken.read_text()[:200])
    result = run_vbridge("scan", str(prefix))
    assert result.returncode == 0
    (line,) = result.stderr.splitlines()
    assert str(broken) in line and "malformed JSON" in line
    assert "numpy" in result.stdout

    # --strict: the same output, and exit status 2 (for CI jobs that must not pass
    # over an unreadable record), whether one environment is scanned or several.
    strict = run_vbridge("scan", "--strict", str(prefix))
    assert strict.returncode == 2
    assert strict.stdout == result.stdout and strict.stderr == result.stderr
    other = conda_prefix(mkl_channel, ["six"])
    assert run_vbridge("scan", "--strict", str(other)).returncode == 0
    assert run_vbridge("scan", "--strict", str(other), str(prefix)).returncode == 2
    assert run_vbridge("scan", str(other), str(prefix)).returncode == 0


def test_demo_shows_a_finding() -> None:
    result = run_vbridge("scan", "--demo", "--json")
    # conda's scipy pins numpy <2.0a0 and Python imports pip's numpy 2.1.3: a refusal.
    assert result.returncode == 1, result.stderr
    env = json.loads(result.stdout)["environments"][0]
    codes = {f["code"] for f in env["findings"]}
    assert "replaced-foreign" in codes
    (broken,) = [f for f in env["findings"] if f["code"] == "broken-dependent"]
    assert broken["severity"] == "refuse"
    assert broken["message"].startswith(
        "scipy 1.11.4 (conda, py311h64a7726_0) needs numpy >=1.23.5,<2.0a0; "
        "Python imports numpy 2.1.3 (pip)"
    )
    scipy = next(d for d in env["distributions"] if d["name"] == "scipy")
    assert "blas_lapack :: provider :: mkl" in scipy["properties"]


def test_scan_limited_to_some_distributions(
    openblas_channel: Path, conda_prefix: CondaPrefixFactory
) -> None:
    # What conda-post-link asks for: one package's distributions translated, as a full
    # scan translates them; the others listed without properties.
    prefix = conda_prefix(openblas_channel, ["scipy", "libblas=*=*openblas"])
    full = scan_environment(prefix)
    scipy = next(d for d in full.distributions if d.name == "scipy")
    limited = scan_environment(prefix, only=[scipy.dist_info])
    assert [d.dist_info for d in limited.distributions] == [
        d.dist_info for d in full.distributions
    ]
    assert [r.key for r in limited.records] == [r.key for r in full.records]
    for dist in limited.distributions:
        if dist.dist_info == scipy.dist_info:
            assert dist.properties == scipy.properties
            assert "blas_lapack :: provider :: openblas" in _props([dist], "scipy")
        else:
            assert not dist.properties, dist.name
    assert any(d.properties for d in full.distributions if d.name != "scipy")


def test_a_distribution_and_its_conda_record_name_its_dist_info_by_one_path(
    mkl_channel: Path, conda_prefix: CondaPrefixFactory
) -> None:
    """The layer's listing, the wheel adapter and the conda record name each metadata
    directory by one Path object (made once, its text and hash worked out once)."""
    prefix = conda_prefix(mkl_channel, ["numpy", "libblas=*=*mkl"])
    env = scan_environment(prefix)
    numpy = next(d for d in env.distributions if d.name == "numpy")
    assert numpy.owner_record is not None and numpy.owner_record.ecosystem == "conda"
    (owned,) = numpy.owner_record.python_dists
    assert owned == numpy.dist_info and owned is numpy.dist_info
    described = [r for r in env.records if r.ecosystem == "wheel" and r.name == "numpy"]
    assert described and described[0].python_dists[0] is numpy.dist_info

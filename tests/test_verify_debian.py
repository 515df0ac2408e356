"""vbridge verify on the live Debian system, against dpkg -S and threadpoolctl.

``/usr/bin/python3`` is the target; its numpy, scipy, mpi4py and h5py are Debian's
(tools/debian-packages.txt). The BLAS/LAPACK alternatives are switched with the real
``update-alternatives --set`` (the fixture of tests/test_apt_system.py, which restores
them); run these under ``flock /tmp/vbridge-system.lock``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import run_vbridge
from debian_root import (
    DEBIAN_PYTHON,
    debian_installed,
    dpkg_owners,
    requires_debian_numpy,
    requires_root,
)
from test_apt_system import FAMILY_OF_DIR, alternatives, candidates, multiarch
from vbridge.model import Environment
from vbridge.scan import scan_python
from vbridge.verify import verify_environment
from vbridge.verify.verdict import DistributionVerification, FeatureVerdict, Verification

pytestmark = [pytest.mark.debian, requires_debian_numpy]
__all__ = ["alternatives"]  # the fixture, imported for the tests below

BLAS = "blas_lapack :: provider"


def verify(*names: str) -> tuple[Environment, Verification]:
    env = scan_python(str(DEBIAN_PYTHON))
    return env, verify_environment(env, str(DEBIAN_PYTHON), names, timeout=120)


def outcome(verification: Verification, name: str) -> DistributionVerification:
    return next(d for d in verification.distributions if d.name == name)


def feature(result: DistributionVerification, name: str) -> FeatureVerdict:
    return next(f for f in result.features if f.feature == name)


def scan_values(env: Environment, dist: str, namespace: str) -> set[str]:
    d = next(d for d in env.distributions if d.name == dist)
    return {p.value for p in d.properties if p.namespace == namespace}


def test_numpy_now_confirmed_with_dpkg_owners() -> None:
    env, verification = verify("numpy")
    numpy = outcome(verification, "numpy")
    blas = feature(numpy, BLAS)
    assert blas.status == "confirmed"
    assert {v.value for v in blas.loaded} == scan_values(env, "numpy", "blas_lapack")
    paths = [v.library.real_path for v in blas.loaded]
    truth = dpkg_owners(paths)
    assert {v.library.real_path: v.owner.name for v in blas.loaded if v.owner} == truth
    assert verification.exit_code == 0


@requires_root
@pytest.mark.root
@pytest.mark.parametrize(
    ("blas_dir", "lapack_dir"),
    [
        ("openblas-pthread", "openblas-pthread"),
        ("blis-openmp", "openblas-pthread"),
        ("blas", "openblas-pthread"),
        ("openblas-pthread", "lapack"),
        ("blis-openmp", "lapack"),
    ],
)
def test_loaded_provider_equals_the_adapters_under_every_alternative(
    alternatives: Callable[[str, str], None], blas_dir: str, lapack_dir: str
) -> None:
    blas_name, lapack_name = f"libblas.so.3-{multiarch()}", f"liblapack.so.3-{multiarch()}"
    blas_paths, lapack_paths = candidates(blas_name), candidates(lapack_name)
    if blas_dir not in blas_paths or lapack_dir not in lapack_paths:
        pytest.skip(f"{blas_dir}/{lapack_dir} is not installed (tools/debian-packages.txt)")
    alternatives(blas_name, blas_paths[blas_dir])
    alternatives(lapack_name, lapack_paths[lapack_dir])

    env, verification = verify("numpy", "scipy")
    expected = {FAMILY_OF_DIR[blas_dir], FAMILY_OF_DIR[lapack_dir]}
    for name in ("numpy", "scipy"):
        result = outcome(verification, name)
        blas = feature(result, BLAS)
        assert blas.status == "confirmed", blas.line()
        assert {v.value for v in blas.loaded} == expected == scan_values(env, name, "blas_lapack")
        owners = dpkg_owners([v.library.real_path for v in blas.loaded])
        assert all(v.owner is not None and v.owner.name == owners[v.library.real_path]
                   for v in blas.loaded)

    numpy = outcome(verification, "numpy")
    selected = next(v for v in feature(numpy, BLAS).loaded
                    if v.library.real_path == blas_paths[blas_dir]
                    or Path(v.library.real_path).parent.name == blas_dir)
    assert selected.value == FAMILY_OF_DIR[blas_dir]
    process = verification.process
    if blas_dir == "blis-openmp":
        # BLIS under the name libblas.so.3: the file the alternative selects, owned by
        # libblis4-openmp, and invisible to threadpoolctl (it matches file names).
        assert selected.library.name == "libblas.so.3"
        assert selected.owner is not None and selected.owner.name.startswith("libblis")
        assert feature(numpy, "openmp :: provider").status == "confirmed"
        assert any(v.value == "blis" for v in process.unseen_by_threadpoolctl)
        assert process.threadpoolctl is not None
        assert "blis" not in {i["internal_api"] for i in process.threadpoolctl}
    runtimes = {v.value for v in process.runtimes[BLAS]}
    assert runtimes == expected
    # Forwarders (OpenBLAS's libblas.so.3/liblapack.so.3 -> libopenblas.so.0) are not
    # runtimes of their own: one OpenBLAS, however many of its names are mapped.
    assert len(process.runtimes[BLAS]) == len(expected)


def test_mpi4py_open_mpi_confirmed() -> None:
    if not debian_installed("python3-mpi4py"):
        pytest.skip("python3-mpi4py is in tools/debian-packages.txt")
    _, verification = verify("mpi4py")
    mpi = feature(outcome(verification, "mpi4py"), "mpi :: implementation")
    assert mpi.status == "confirmed"
    (loaded,) = {v.library.real_path: v for v in mpi.loaded}.values()
    assert loaded.value == "openmpi" and loaded.library.name.startswith("libmpi.so.40")
    assert loaded.owner is not None
    assert loaded.owner.name == dpkg_owners([loaded.library.real_path])[loaded.library.real_path]


@pytest.mark.parametrize("use_mpi", [False, True])
def test_h5py_build_follows_the_selection_variables(
    use_mpi: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not (debian_installed("python3-h5py-serial") and debian_installed("python3-h5py-mpi")):
        pytest.skip("python3-h5py-serial and python3-h5py-mpi are not both installed")
    monkeypatch.delenv("H5PY_ALWAYS_USE_MPI", raising=False)
    monkeypatch.delenv("OMPI_COMM_WORLD_SIZE", raising=False)
    monkeypatch.delenv("MPI_LOCALNRANKS", raising=False)
    if use_mpi:
        monkeypatch.setenv("H5PY_ALWAYS_USE_MPI", "1")
    _, verification = verify("h5py-debian-h5py-mpi", "h5py-debian-h5py-serial")
    parallel = outcome(verification, "h5py-debian-h5py-mpi")
    serial = outcome(verification, "h5py-debian-h5py-serial")
    hdf5_mpi = feature(parallel, "hdf5 :: parallel")
    hdf5_serial = feature(serial, "hdf5 :: parallel")
    if use_mpi:
        assert hdf5_mpi.status == "confirmed"
        assert feature(parallel, "mpi :: implementation").status == "confirmed"
        assert {v.library.name.split(".so")[0] for v in hdf5_mpi.loaded} == {"libhdf5_openmpi"}
        assert hdf5_serial.status == "differs"
        assert "import h5py loaded not this build but h5py-debian-h5py-mpi" in serial.note
    else:
        assert hdf5_serial.status == "confirmed"
        assert hdf5_mpi.status == "differs"
        assert {v.value for v in hdf5_mpi.loaded} == {"off"}
        (lib,) = hdf5_mpi.loaded
        assert lib.owner is not None
        assert lib.owner.name == dpkg_owners([lib.library.real_path])[lib.library.real_path]
        line = hdf5_mpi.line()
        assert line.startswith("hdf5 :: parallel: differs: records say on (apt:python3-h5py-mpi-")
        assert f"loaded off: {lib.library.real_path} (apt {lib.owner.name} " in line
        assert feature(parallel, "mpi :: implementation").status == "not-seen"
        assert "not this build but h5py-debian-h5py-serial" in parallel.note
        assert "H5PY_ALWAYS_USE_MPI" in parallel.note
    assert verification.exit_code == 0  # differs warns; only failed imports refuse


def test_db_stores_the_verification_with_its_scan(tmp_path: Path) -> None:
    if not debian_installed("python3-h5py-mpi"):
        pytest.skip("python3-h5py-mpi is in tools/debian-packages.txt")
    db = tmp_path / "inventory.db"
    result = run_vbridge(
        "verify", "--python", str(DEBIAN_PYTHON), "--db", str(db), "h5py-debian-h5py-mpi", "numpy"
    )
    assert result.returncode == 0, result.stderr
    assert f"stored in {db}" in result.stderr
    listed = run_vbridge("inventory", "verified", "--db", str(db), "--json")
    rows = json.loads(listed.stdout)
    assert [(r["distribution"], r["feature"], r["status"]) for r in rows] == [
        ("h5py-debian-h5py-mpi", "hdf5 :: parallel", "differs")
    ]
    assert rows[0]["recorded"] == ["on"] and rows[0]["loaded"] == ["off"]
    history = json.loads(run_vbridge("inventory", "history", "/usr", "--db", str(db), "--json")
                         .stdout)
    assert rows[0]["scan_id"] == history[-1]["id"]
    confirmed = json.loads(
        run_vbridge("inventory", "verified", "--db", str(db), "--status", "confirmed",
                    "--json").stdout
    )
    assert ("numpy", BLAS) in {(r["distribution"], r["feature"]) for r in confirmed}
    table = run_vbridge("inventory", "verified", "--db", str(db)).stdout
    assert "h5py-debian-h5py-mpi" in table and "differs" in table

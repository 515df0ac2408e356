"""The apt adapter against the live Debian system, checked against what really loads.

Ground truth comes from Debian's own interpreter in a subprocess: ``/usr/bin/python3``
imports numpy (or mpi4py, h5py) and reports threadpoolctl's ``threadpool_info()`` and
the shared libraries mapped into the process (``/proc/self/maps``); ``dpkg -S`` names
the package that owns each loaded library. The alternatives are switched with the real
``update-alternatives --set`` and restored afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from debian_root import (
    DEBIAN_PYTHON,
    debian_installed,
    dpkg_owners,
    requires_debian_numpy,
    requires_root,
)
from vbridge.decide.assess import assess_environment
from vbridge.model import Distribution, Environment
from vbridge.scan import scan_environment

pytestmark = [pytest.mark.debian, requires_debian_numpy]

# Runs under /usr/bin/python3: import a module, report what the process loaded.
PROBE = r"""
import json, os, sys
module = sys.argv[1]
if module == "mpi4py":
    import mpi4py
    mpi4py.rc.initialize = False  # load libmpi without starting MPI
    from mpi4py import MPI
else:
    __import__(module)
report = {"maps": sorted({line.split()[-1] for line in open("/proc/self/maps")
                          if ".so" in line and line.split()[-1].startswith("/")})}
if module == "numpy":
    import numpy.core._multiarray_umath as umath
    from threadpoolctl import threadpool_info
    report["threadpool_info"] = threadpool_info()
    report["c_abi"] = umath._get_ndarray_c_version()
print(json.dumps(report))
"""

# Which BLAS/LAPACK family a Debian library directory holds (independent of vbridge).
FAMILY_OF_DIR = {
    "openblas-pthread": "openblas",
    "openblas-openmp": "openblas",
    "openblas-serial": "openblas",
    "blis-openmp": "blis",
    "blis-pthread": "blis",
    "blis-serial": "blis",
    "blas": "netlib",
    "lapack": "netlib",
    "atlas": "atlas",
}


def probe(module: str, env: dict[str, str] | None = None) -> dict[str, object]:
    result = subprocess.run(
        [str(DEBIAN_PYTHON), "-c", PROBE, module],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    report: dict[str, object] = json.loads(result.stdout)
    return report


def loaded(report: dict[str, object], *names: str) -> list[str]:
    maps = report["maps"]
    assert isinstance(maps, list)
    return [m for m in maps if any(Path(m).name.startswith(n) for n in names)]


def multiarch() -> str:
    code = "import sysconfig; print(sysconfig.get_config_var('MULTIARCH'))"
    return subprocess.run(
        [str(DEBIAN_PYTHON), "-c", code],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def scan_root() -> Environment:
    return assess_environment(scan_environment(Path("/")))


def dist(env: Environment, name: str) -> Distribution:
    return next(d for d in env.distributions if d.name == name)


def values(d: Distribution, namespace: str) -> set[str]:
    return {p.value for p in d.properties if p.namespace == namespace}


def candidates(name: str) -> dict[str, str]:
    """Installed candidates of an alternative, keyed by their directory name."""
    out = subprocess.run(
        ["update-alternatives", "--list", name], capture_output=True, text=True, check=False
    ).stdout
    return {Path(p).parent.name: p for p in out.split()}


@pytest.fixture
def alternatives() -> Iterator[Callable[[str, str], None]]:
    """``update-alternatives --set`` for BLAS and LAPACK, restored afterwards."""
    names = [f"libblas.so.3-{multiarch()}", f"liblapack.so.3-{multiarch()}"]
    saved: dict[str, tuple[str, str]] = {}
    for name in names:
        query = subprocess.run(
            ["update-alternatives", "--query", name], capture_output=True, text=True, check=True
        ).stdout
        fields = dict(
            line.split(": ", 1) for line in query.splitlines() if ": " in line and line[0] != " "
        )
        saved[name] = (fields["Status"], fields["Value"])

    def set_alternative(name: str, path: str) -> None:
        subprocess.run(
            ["update-alternatives", "--set", name, path], check=True, capture_output=True
        )

    try:
        yield set_alternative
    finally:
        for name, (status, value) in saved.items():
            args = ["--auto", name] if status == "auto" else ["--set", name, value]
            subprocess.run(["update-alternatives", *args], check=True, capture_output=True)


def test_numpy_blas_matches_what_debian_python_loads_now() -> None:
    env = scan_root()
    numpy = dist(env, "numpy")
    assert numpy.owner is not None and numpy.owner.name == "python3-numpy"
    report = probe("numpy")
    libraries = loaded(report, "libblas.so", "liblapack.so")
    assert libraries, report["maps"]
    truth = {FAMILY_OF_DIR[Path(p).parent.name] for p in libraries}
    assert values(numpy, "blas_lapack") == truth
    # The packages vbridge names are the packages dpkg says own the loaded libraries.
    selected = {
        e.value for p, evs in numpy.properties.items() if p.namespace == "blas_lapack" for e in evs
    }
    assert selected == set(dpkg_owners(libraries).values())


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
def test_switching_alternatives(
    alternatives: Callable[[str, str], None], blas_dir: str, lapack_dir: str
) -> None:
    blas_name, lapack_name = f"libblas.so.3-{multiarch()}", f"liblapack.so.3-{multiarch()}"
    blas_paths, lapack_paths = candidates(blas_name), candidates(lapack_name)
    if blas_dir not in blas_paths or lapack_dir not in lapack_paths:
        pytest.skip(
            f"{blas_dir}/{lapack_dir} is not installed (libblas3, liblapack3 and "
            "libblis4-openmp are in tools/debian-packages.txt)"
        )
    alternatives(blas_name, blas_paths[blas_dir])
    alternatives(lapack_name, lapack_paths[lapack_dir])

    env = scan_root()
    numpy = dist(env, "numpy")
    expected = {FAMILY_OF_DIR[blas_dir], FAMILY_OF_DIR[lapack_dir]}
    assert values(numpy, "blas_lapack") == expected

    report = probe("numpy")
    libraries = loaded(report, "libblas.so", "liblapack.so")
    assert {FAMILY_OF_DIR[Path(p).parent.name] for p in libraries} == expected
    selected = {
        e.value for p, evs in numpy.properties.items() if p.namespace == "blas_lapack" for e in evs
    }
    assert selected == set(dpkg_owners(libraries).values())

    # OpenMP: BLIS's openmp build links GCC's runtime (its Depends: libgomp1); the
    # pthread builds and reference BLAS/LAPACK load none.
    gomp = loaded(report, "libgomp.so")
    assert values(numpy, "openmp") == ({"gnu"} if gomp else set())
    assert bool(gomp) == (blas_dir == "blis-openmp")
    if gomp:
        (evidence,) = [
            e for p, evs in numpy.properties.items() if p.namespace == "openmp" for e in evs
        ]
        blas_owner = dpkg_owners(loaded(report, "libblas.so"))
        assert evidence.record.startswith(f"apt:{next(iter(blas_owner.values()))}-")
        assert evidence.via[-2:] == ("libblas.so.3", next(iter(blas_owner.values())))
        assert evidence.value.startswith("libgomp1")
        assert dpkg_owners(gomp)[gomp[0]].startswith("libgomp1")

    several = [f for f in env.findings if f.code == "several-blas-lapack"]
    if len(expected) == 1:
        assert several == []
    else:
        assert len(several) == 1 and "numpy" in several[0].distributions
        assert f"numpy {numpy.version}" in several[0].message

    # threadpoolctl only sees libraries it knows by file name and thread-pool API.
    info = report["threadpool_info"]
    assert isinstance(info, list)
    apis = {i["internal_api"] for i in info}
    blas_apis = {i["internal_api"] for i in info if i["user_api"] == "blas"}
    assert blas_apis <= values(numpy, "blas_lapack")
    if "openblas" in expected:
        # OpenBLAS's libblas.so.3 / liblapack.so.3 load libopenblas.so.0: visible.
        assert "openblas" in apis
    else:
        assert "openblas" not in apis
    if blas_dir == "blis-openmp":
        # threadpoolctl cannot see Debian's BLIS: it is loaded under the name
        # libblas.so.3, not libblis*. It does see BLIS's OpenMP runtime (libgomp).
        assert "openmp" in apis
        assert "blis" in values(numpy, "blas_lapack")
    if "netlib" in expected:
        # Reference BLAS/LAPACK (libblas3, liblapack3) have no thread pool: threadpoolctl
        # reports nothing for them; /proc/self/maps and dpkg -S above are the check.
        assert "netlib" not in apis


def test_openmp_is_read_from_the_extension_package_and_matches_what_loads() -> None:
    if not debian_installed("python3-sklearn"):
        pytest.skip("python3-sklearn is not installed (tools/debian-packages.txt)")
    env = scan_root()
    sklearn = dist(env, "scikit-learn")
    assert values(sklearn, "openmp") == {"gnu"}
    (evidence,) = [
        e for p, evs in sklearn.properties.items() if p.namespace == "openmp" for e in evs
    ]
    # Debian splits the Python code (python3-sklearn, which owns the egg-info) from the
    # compiled extensions (python3-sklearn-lib, whose Depends dpkg-shlibdeps wrote).
    assert evidence.record.startswith("apt:python3-sklearn-lib-")
    assert evidence.via == ("python3-sklearn", "python3-sklearn-lib")
    assert evidence.value.startswith("libgomp1")
    gomp = loaded(probe("sklearn"), "libgomp.so")
    assert len(gomp) == 1 and dpkg_owners(gomp)[gomp[0]].startswith("libgomp1")

    # python3-sklearn-lib depends on python3-numpy; that does not make it numpy's build.
    numpy = dist(env, "numpy")
    records = {e.record for evs in numpy.properties.values() for e in evs}
    assert not any(r.startswith("apt:python3-sklearn") for r in records)
    if not loaded(probe("numpy"), "libgomp.so"):
        assert values(numpy, "openmp") == set()


def test_mpi_is_read_from_dependencies_and_matches_the_loaded_libmpi() -> None:
    env = scan_root()
    mpi4py = dist(env, "mpi4py")
    assert values(mpi4py, "mpi") == {"openmpi"}
    (evidence,) = [e for evs in mpi4py.properties.values() for e in evs]
    libmpi = loaded(probe("mpi4py"), "libmpi.so", "libmpich.so")
    assert len(libmpi) == 1
    assert evidence.record.startswith(f"apt:{dpkg_owners(libmpi)[libmpi[0]]}-")


def test_both_h5py_builds_are_reported_truthfully() -> None:
    if not (debian_installed("python3-h5py-serial") and debian_installed("python3-h5py-mpi")):
        pytest.skip("python3-h5py-serial and python3-h5py-mpi are not both installed")
    env = scan_root()
    serial = dist(env, "h5py-debian-h5py-serial")
    parallel = dist(env, "h5py-debian-h5py-mpi")
    assert values(serial, "hdf5") == {"off"} and values(serial, "mpi") == set()
    assert values(parallel, "hdf5") == {"on"} and values(parallel, "mpi") == {"openmpi"}
    for d in (serial, parallel):
        assert d.facts["import_name"] == "h5py"

    # What `import h5py` really loads, without and with the variable the fact names.
    plain = probe("h5py")
    assert loaded(plain, "libhdf5_serial.so")
    assert not loaded(plain, "libhdf5_openmpi.so", "libmpi.so")
    assert "H5PY_ALWAYS_USE_MPI" in str(parallel.facts["selected_at_import"])
    mpi_env = {
        "H5PY_ALWAYS_USE_MPI": "1",
        # Open MPI refuses to initialise as root unless told it may.
        "OMPI_ALLOW_RUN_AS_ROOT": "1",
        "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    }
    chosen = probe("h5py", mpi_env)
    hdf5 = loaded(chosen, "libhdf5_openmpi.so")
    libmpi = loaded(chosen, "libmpi.so")
    assert hdf5 and libmpi
    owners = dpkg_owners(hdf5 + libmpi)
    records = {e.record for evs in parallel.properties.values() for e in evs}
    assert any(r.startswith(f"apt:{owners[libmpi[0]]}-") for r in records)


def test_numpy_c_abi_is_recorded() -> None:
    env = scan_root()
    numpy = dist(env, "numpy")
    scipy = dist(env, "scipy")
    report = probe("numpy")
    c_abi = report["c_abi"]
    assert isinstance(c_abi, int)
    # NPY_ABI_VERSION 0x01000009 is what python3-numpy-abi9 promises.
    assert numpy.facts["abi_provides"] == [f"python3-numpy-abi{c_abi & 0xFFFF}"]
    assert scipy.facts["abi_requires"] == [f"python3-numpy-abi{c_abi & 0xFFFF}"]

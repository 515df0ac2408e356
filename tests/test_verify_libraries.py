"""data/verify.toml: which loaded file implements which value, and which files are
runtimes of their own; owners of files in the trees real conda and real Spack wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import realsite
from debian_root import debian_installed
from vbridge.model import Environment
from vbridge.verify.libraries import LibraryRules, LoadedLibrary, closure, read_links, runtimes
from vbridge.verify.owners import LibraryOwner, OwnerIndex

REAL_CONDA = Path(__file__).parent / "fixtures/real-tools/conda/conda-26.7-create-p3"
LIBDIR = Path("/usr/lib/x86_64-linux-gnu")


@pytest.fixture(scope="module")
def rules() -> LibraryRules:
    return LibraryRules.load()


@pytest.mark.parametrize(
    ("path", "needed", "feature", "value"),
    [
        ("/env/lib/libmkl_rt.so.2", (), "blas_lapack :: provider", "mkl"),
        ("/env/lib/libopenblasp-r0.3.25.so", (), "blas_lapack :: provider", "openblas"),
        ("/v/numpy.libs/libscipy_openblas64_-56d6093b.so", (), "blas_lapack :: provider",
         "openblas"),
        ("/env/lib/libblis.so.4", (), "blas_lapack :: provider", "blis"),
        (f"{LIBDIR}/blis-openmp/libblas.so.3", ("libgomp.so.1",), "blas_lapack :: provider",
         "blis"),
        (f"{LIBDIR}/openblas-pthread/liblapack.so.3", ("libopenblas.so.0",),
         "blas_lapack :: provider", "openblas"),
        (f"{LIBDIR}/lapack/liblapack.so.3.11.0", ("libblas.so.3",), "blas_lapack :: provider",
         "netlib"),
        ("/env/lib/libcblas.so.3", ("libmkl_rt.so.2",), "blas_lapack :: provider", "mkl"),
        ("/usr/lib/libgomp.so.1.0.0", (), "openmp :: provider", "gnu"),
        ("/v/scikit_learn.libs/libgomp-a34b3233.so.1.0.0", (), "openmp :: provider", "gnu"),
        ("/usr/lib/llvm-14/lib/libomp.so.5", (), "openmp :: provider", "llvm"),
        ("/env/lib/libiomp5.so", (), "openmp :: provider", "intel"),
        ("/usr/lib/libmpi.so.40.30.4", (), "mpi :: implementation", "openmpi"),
        ("/env/lib/libmpi.so.12.4.0", (), "mpi :: implementation", "mpich"),
        ("/opt/intel/oneapi/mpi/lib/libmpi.so.12", (), "mpi :: implementation", "intel_mpi"),
        (f"{LIBDIR}/libhdf5_openmpi.so.103", ("libmpi.so.40",), "hdf5 :: parallel", "on"),
        ("/env/lib/libhdf5.so.310", ("libmpi.so.40", "libz.so.1"), "hdf5 :: parallel", "on"),
        ("/env/lib/libhdf5.so.310", ("libz.so.1",), "hdf5 :: parallel", "off"),
        (f"{LIBDIR}/libhdf5_serial.so.103", (), "hdf5 :: parallel", "off"),
    ],
)
def test_rules(
    rules: LibraryRules, path: str, needed: tuple[str, ...], feature: str, value: str
) -> None:
    found = {m.feature: m.value for m in rules.classify(path, needed)}
    assert found == {feature: value}


@pytest.mark.parametrize(
    "path", ["/usr/lib/libhdf5_hl.so.100", "/usr/lib/libgfortran.so.5", "/usr/lib/libz.so.1"]
)
def test_other_libraries_have_no_value(rules: LibraryRules, path: str) -> None:
    assert rules.classify(path, ()) == []


def test_debian_openblas_names_forward_to_one_runtime(rules: LibraryRules) -> None:
    if not debian_installed("libopenblas0-pthread"):
        pytest.skip("libopenblas0-pthread is in tools/debian-packages.txt")
    files = [LIBDIR / "openblas-pthread/libblas.so.3", LIBDIR / "openblas-pthread/liblapack.so.3",
             LIBDIR / "openblas-pthread/libopenblas.so.0"]
    libraries = {str(p.resolve()): LoadedLibrary.read(str(p), rules) for p in files}
    blas = libraries[str((LIBDIR / "openblas-pthread/libblas.so.3").resolve())]
    assert blas.soname == "libblas.so.3" and "libopenblas.so.0" in blas.needed
    (runtime,) = runtimes(libraries.values(), "blas_lapack :: provider")
    assert runtime[0].name.startswith("libopenblasp-r") and runtime[1].value == "openblas"
    reached = closure([blas.real_path], libraries)
    assert [lib.name for lib in reached] == [runtime[0].name]


def test_read_links_refuses_what_is_not_elf(tmp_path: Path) -> None:
    (tmp_path / "libx.so").write_bytes(b"\x7fELF")  # a stub, as the recorded trees hold
    assert read_links(str(tmp_path / "libx.so")) == (None, ())
    assert read_links(str(tmp_path)) == (None, ())


def test_conda_owner_is_the_record_listing_the_file() -> None:
    index = OwnerIndex(Environment(path=REAL_CONDA), debian_root=Path("/nonexistent"))
    found = index.owners([str(REAL_CONDA / "lib/libmpi.so.40"),
                          str(REAL_CONDA / "lib/libmkl_rt.so.2"),
                          str(REAL_CONDA / "lib/not-listed.so")])
    record = json.loads((REAL_CONDA / "conda-meta/openmpi-4.1.6-hc5af2df_101.json").read_text())
    assert "lib/libmpi.so.40" in record["files"]
    assert found[str(REAL_CONDA / "lib/libmpi.so.40")] == LibraryOwner(
        "conda", "openmpi", "4.1.6", "hc5af2df_101"
    )
    assert found[str(REAL_CONDA / "lib/libmkl_rt.so.2")] == LibraryOwner(
        "conda", "mkl", "2023.2.0", "h84fe81f_50496"
    )
    assert found[str(REAL_CONDA / "lib/not-listed.so")] is None


def test_spack_owner_is_the_prefix_spec(tmp_path: Path) -> None:
    site = realsite.spack_site(tmp_path / "site")
    (prefix,) = site.glob("store/linux-x86_64_v4/openblas-*")
    spec = json.loads((prefix / ".spack/spec.json").read_text())
    node = spec["spec"]["nodes"][0]
    index = OwnerIndex(Environment(path=site), debian_root=Path("/nonexistent"))
    owner = index.owners([str(prefix / "lib/libopenblas.so")])[str(prefix / "lib/libopenblas.so")]
    assert owner == LibraryOwner("spack", "openblas", node["version"], node["hash"][:7])
    assert owner.describe() == f"spack openblas {node['version']} ({node['hash'][:7]})"


def test_dpkg_owner_as_dpkg_says() -> None:
    if not debian_installed("libgomp1"):
        pytest.skip("not the Debian test machine")
    from debian_root import dpkg_owners

    path = str((LIBDIR / "libgomp.so.1").resolve())
    owner = OwnerIndex(Environment(path=Path("/"))).owners([path])[path]
    assert owner is not None and owner.ecosystem == "apt"
    assert owner.name == dpkg_owners([path])[path]

"""Translation rules in data/conda.toml, one family at a time, on conda-forge and
Anaconda build strings taken from the real feedstocks (see the research notes)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from vbridge.adapters.conda import ADAPTER as CONDA
from vbridge.errors import RuleError
from vbridge.model import InstallRecord
from vbridge.rules import Rule, RuleSet, dependency_names

RULES = RuleSet.load("conda", CONDA)


def props(
    name: str,
    version: str,
    build: str,
    depends: tuple[str, ...] = (),
    flags: tuple[str, ...] = (),
    track_features: tuple[str, ...] = (),
) -> dict[str, str]:
    record = InstallRecord(
        "conda",
        name,
        version,
        build,
        depends=depends,
        flags=flags,
        track_features=track_features,
    )
    return {p.to_str(): e.rule for p, e in RULES.record_properties(record)}


@pytest.mark.parametrize(
    ("name", "build", "value"),
    [
        ("libblas", "20_linux64_mkl", "mkl"),
        ("libblas", "20_osxarm64_openblas", "openblas"),
        ("libblas", "31_h59b9bed_openblas", "openblas"),
        ("libcblas", "22_linux64_blis", "blis"),
        ("liblapack", "20_osxarm64_accelerate", "accelerate"),
        ("libblas", "23_osxarm64_newaccelerate", "accelerate"),
        ("libblas", "20_linux64_netlib", "netlib"),
        ("blas", "mkl", "mkl"),  # Anaconda defaults blas-1.0-mkl
        ("blas", "openblas", "openblas"),
        ("blas", "20_linux64_mkl", "mkl"),  # conda-forge blas metapackage
    ],
)
def test_blas_build_strings(name: str, build: str, value: str) -> None:
    assert set(props(name, "3.9.0", build)) == {f"blas_lapack :: provider :: {value}"}


def test_nomkl_selector() -> None:
    assert props("nomkl", "3.0", "0") == {"blas_lapack :: provider :: openblas": "nomkl-selector"}


def test_cep45_flags_beat_build_strings() -> None:
    # A record whose flags and build disagree: CEP 45 flags are the stronger evidence.
    found = props("libblas", "3.9.0", "20_linux64_openblas", flags=("blas:mkl",))
    assert found == {"blas_lapack :: provider :: mkl": "cep45-flag-blas"}


def test_unrelated_packages_get_nothing() -> None:
    assert props("zlib", "1.3.1", "h4ab18f5_1") == {}
    assert props("libblas", "3.9.0", "h12345_0") == {}


@pytest.mark.parametrize(
    ("name", "build", "depends", "expected"),
    [
        ("mpi", "openmpi", (), {"mpi :: implementation :: openmpi"}),
        ("mpi", "impi", (), {"mpi :: implementation :: intel_mpi"}),
        ("mpi", "mpi_serial", (), set()),
        (
            "hdf5",
            "mpi_openmpi_h8367ee7_8",
            (),
            {"mpi :: implementation :: openmpi", "hdf5 :: parallel :: on"},
        ),
        (
            "hdf5",
            "mpi_mpich_h5d83325_1",
            (),
            {"mpi :: implementation :: mpich", "hdf5 :: parallel :: on"},
        ),
        ("h5py", "nompi_py311h439e445_102", (), {"hdf5 :: parallel :: off"}),
        (
            "mpi4py",
            "py312h5f1e6f8_1",
            ("mpich >=4.2.2,<5.0a0", "python >=3.12"),
            {"mpi :: implementation :: mpich"},
        ),
        ("openmpi", "5.0.5", (), {"mpi :: implementation :: openmpi"}),
    ],
)
def test_mpi_and_hdf5(name: str, build: str, depends: tuple[str, ...], expected: set[str]) -> None:
    assert set(props(name, "1.0", build, depends)) == expected


@pytest.mark.parametrize(
    ("build", "value"),
    [("20_gnu", "gnu"), ("2_kmp_llvm", "llvm"), ("7_vcomp_kmp_intel", "intel"), ("1_llvm", "llvm")],
)
def test_openmp_mutex(build: str, value: str) -> None:
    assert set(props("_openmp_mutex", "4.5", build)) == {f"openmp :: provider :: {value}"}


def test_cuda_from_metapackage_and_build_strings() -> None:
    assert set(props("cuda-version", "12.5", "hd4f0392_3")) == {
        "nvidia :: cuda_version_lower_bound :: 12.5"
    }
    assert set(props("pytorch", "2.4.0", "cuda118_py39hbf661d7_301")) == {
        "nvidia :: cuda_version_lower_bound :: 11.8"
    }
    assert set(props("jaxlib", "0.4.23", "cuda120py311h5a49573_202")) == {
        "nvidia :: cuda_version_lower_bound :: 12.0"
    }
    assert props("cupy", "13.2.0", "py312had87585_0") == {}


def test_cuda_build_strings_of_majors_7_to_9() -> None:
    # Single-digit majors (CUDA 7.5 to 9.2) sit in build strings as cudaXY.
    assert set(props("tensorflow", "1.12.0", "cuda92py36h_0")) == {
        "nvidia :: cuda_version_lower_bound :: 9.2"
    }
    assert set(props("cupy", "5.0.0", "py36_cuda80_0")) == {
        "nvidia :: cuda_version_lower_bound :: 8.0"
    }
    assert set(props("cudnn", "7.1.2", "cuda75_0")) == {"nvidia :: cuda_version_lower_bound :: 7.5"}
    assert props("cudatoolkit", "6.5", "cuda65_0") == {}  # before CUDA 7: not a major we read


@pytest.mark.parametrize("level", ["1", "2", "3", "4"])
def test_microarch_level(level: str) -> None:
    assert set(props("_x86_64-microarch-level", level, f"2_x86_64_v{level}")) == {
        f"x86_64 :: level :: v{level}"
    }


def test_microarch_levels_beyond_v4_do_not_exist() -> None:
    assert props("_x86_64-microarch-level", "5", "2_x86_64_v5") == {}


@pytest.mark.parametrize("level", ["v1", "v4"])
def test_spack_binaries_x86_64_level(level: str) -> None:
    record = InstallRecord(
        "spack", "py-numpy", "2.1.0", "abcdefg", extra={"binaries_x86_64_level": level}
    )
    found = {p.to_str() for p, _ in RuleSet.load("spack").record_properties(record)}
    assert found == {f"x86_64 :: level :: {level}"}


def test_dependency_names() -> None:
    assert dependency_names("hdf5 >=1.14.3,<1.14.4.0a0 mpi_openmpi_*") == ["hdf5"]
    assert dependency_names("libopenmpi3 (>= 4.1.4)") == ["libopenmpi3"]


def test_full_matchspec_rules_use_conda_semantics() -> None:
    rule = Rule.from_table(
        {"id": "t", "match": "libblas 3.9.* *_mkl", "property": "blas_lapack :: provider :: mkl"},
        "test",
    )
    rules = RuleSet("conda", [rule], syntax=CONDA)
    yes = InstallRecord("conda", "libblas", "3.9.0", "20_linux64_mkl", subdir="linux-64")
    no_build = InstallRecord("conda", "libblas", "3.9.0", "20_linux64_openblas", subdir="linux-64")
    no_version = InstallRecord("conda", "libblas", "3.8.0", "20_linux64_mkl", subdir="linux-64")
    assert [p.to_str() for p, _ in rules.record_properties(yes)] == [
        "blas_lapack :: provider :: mkl"
    ]
    assert rules.record_properties(no_build) == []
    assert rules.record_properties(no_version) == []


def test_bad_rule_is_a_clear_error() -> None:
    with pytest.raises(RuleError, match="bad rule 'x'"):
        Rule.from_table({"id": "x", "match": "a", "pattern": "(", "property": "a :: b :: c"}, "f")


@pytest.mark.parametrize("ecosystem", ["conda", "spack", "apt", "wheel"])
def test_every_shipped_rule_pattern_compiles(ecosystem: str) -> None:
    # vbridge's own rule files are loaded without compiling their patterns (a scan
    # searches with a few of them); this is where a bad one is caught.
    from vbridge.rules import load_data

    tables = load_data(ecosystem)["rules"]
    assert any("pattern" in t for t in tables)
    for table in tables:
        Rule.from_table(table, f"data/{ecosystem}.toml", checked=True)


def test_a_rule_file_of_ones_own_is_checked_when_loaded(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[[rules]]\nid = "x"\nmatch = "a"\nfield = "build"\npattern = "("\n'
        'property = "a :: b :: {value}"\n'
    )
    with pytest.raises(RuleError, match=r"rules.toml: bad rule 'x'"):
        RuleSet.load("conda", CONDA, path=rules)


def test_a_shipped_rule_compiles_its_pattern_when_first_searched() -> None:
    rule = Rule.from_table(
        {"id": "x", "match": "a", "field": "build", "pattern": "(", "property": "a :: b :: c"},
        "data/x.toml",
        checked=False,
    )
    with pytest.raises(re.error):
        list(rule.apply(InstallRecord("conda", "a", "1", "b")))
    good = Rule.from_table(
        {
            "id": "y",
            "match": "a",
            "field": "build",
            "pattern": "_(?P<value>mkl)$",
            "property": "blas_lapack :: provider :: {value}",
        },
        "data/y.toml",
        checked=False,
    )
    found = [p.to_str() for p, _ in good.apply(InstallRecord("conda", "a", "1", "x_mkl"))]
    assert found == ["blas_lapack :: provider :: mkl"]
    assert list(good.apply(InstallRecord("conda", "a", "1", "x_openblas"))) == []


def test_a_non_string_pattern_is_a_clear_error() -> None:
    with pytest.raises(RuleError, match="pattern should be a string"):
        Rule.from_table({"id": "x", "match": "a", "pattern": 3, "property": "a :: b :: c"}, "f")

"""The apt adapter on the real dpkg database captured on Debian 12, laid out in tmp_path.

Real-system tests (the live /var/lib/dpkg, update-alternatives, threadpoolctl) are in
test_apt_system.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import compare_full_scan_with_scans_alone
from debian_root import (
    BLAS,
    BLAS_TARGETS,
    LAPACK,
    LAPACK_TARGETS,
    lay_out_fixture_root,
    point_alternative,
)
from typer.testing import CliRunner
from vbridge.adapters import apt
from vbridge.cli import app
from vbridge.decide.assess import assess_environment
from vbridge.model import Distribution, Environment, RecordProblem
from vbridge.scan import scan_environment

DIST_PACKAGES = "usr/lib/python3/dist-packages"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return lay_out_fixture_root(tmp_path / "root")


def by_name(env: Environment) -> dict[str, Distribution]:
    return {d.name: d for d in env.distributions}


def props(dist: Distribution) -> set[str]:
    return {p.to_str() for p in dist.properties}


def blas(dist: Distribution) -> set[str]:
    return {p.value for p in dist.properties if p.namespace == "blas_lapack"}


def test_find_root_accepts_the_root_and_its_dist_packages(root: Path, tmp_path: Path) -> None:
    assert apt.find_root(root) == root
    assert apt.find_root(root / DIST_PACKAGES) == root
    assert apt.find_root(root / "usr/lib") is None
    assert apt.find_root(tmp_path) is None


def test_fixture_root_scan(root: Path) -> None:
    env = scan_environment(root)
    assert env.ecosystems == ["apt"]
    dists = by_name(env)

    numpy = dists["numpy"]
    assert numpy.dist_info == root / DIST_PACKAGES / "numpy-1.24.2.egg-info"
    assert numpy.owner is not None
    assert (numpy.owner.ecosystem, numpy.owner.name, numpy.owner.version) == (
        "apt",
        "python3-numpy",
        "1:1.24.2-1+deb12u1",
    )
    # libblas3 and liblapack3 are installed too, but the alternatives point at OpenBLAS.
    assert props(numpy) == {"blas_lapack :: provider :: openblas"}
    evidence = next(iter(numpy.properties.values()))
    assert {e.source for e in evidence} == {
        str(root / "etc/alternatives" / BLAS),
        str(root / "etc/alternatives" / LAPACK),
    }
    assert {e.value for e in evidence} == {"libopenblas0-pthread"}
    assert {e.via for e in evidence} == {
        ("python3-numpy", "libblas.so.3"),
        ("python3-numpy", "liblapack.so.3"),
    }
    assert numpy.facts["abi_provides"] == ["python3-numpy-abi9"]

    scipy = dists["scipy"]
    assert scipy.owner is not None and scipy.owner.name == "python3-scipy"
    assert props(scipy) == {"blas_lapack :: provider :: openblas"}
    assert scipy.facts["abi_requires"] == ["python3-numpy-abi9"]

    assert props(dists["mpi4py"]) == {"mpi :: implementation :: openmpi"}
    h5py_mpi = dists["h5py-debian-h5py-mpi"]
    h5py_serial = dists["h5py-debian-h5py-serial"]
    # numpy is another distribution with its own properties: h5py does not inherit them.
    assert props(h5py_mpi) == {"hdf5 :: parallel :: on", "mpi :: implementation :: openmpi"}
    assert props(h5py_serial) == {"hdf5 :: parallel :: off"}
    for dist in (h5py_mpi, h5py_serial):
        assert dist.facts["import_name"] == "h5py"
        assert "H5PY_ALWAYS_USE_MPI" in str(dist.facts["selected_at_import"])
    assert props(dists["threadpoolctl"]) == set()
    assert env.findings == []
    # The capture holds the file lists of a few of its packages: one line says so.
    status = (root / "var/lib/dpkg/status").read_text()
    without_list = status.count("\nStatus: install ok installed\n") - len(
        list((root / "var/lib/dpkg/info").glob("*.list"))
    )
    assert len(env.problems) == 1
    assert env.problems[0].path == root / "var/lib/dpkg/info"
    assert f"no file list for {without_list} installed package(s)" in env.problems[0].problem


def test_only_installed_packages_are_records(root: Path) -> None:
    status = root / "var/lib/dpkg/status"
    text = status.read_text()
    stanza = "Package: python3-threadpoolctl\nStatus: install ok installed\n"
    assert stanza in text
    status.write_text(
        text.replace(stanza, "Package: python3-threadpoolctl\nStatus: deinstall ok config-files\n")
    )
    problems: list[RecordProblem] = []
    names = {r.name for r in apt.read_records(root, problems)}
    assert "python3-numpy" in names
    assert "python3-threadpoolctl" not in names
    dists = by_name(scan_environment(root))
    assert dists["threadpoolctl"].owner is None
    assert dists["numpy"].owner is not None


def test_pending_updates_journal_overrides_status(root: Path) -> None:
    # dpkg journals status changes in updates/ until it merges them into status.
    updates = root / "var/lib/dpkg/updates"
    updates.mkdir()
    (updates / "0000").write_text(
        "Package: python3-threadpoolctl\nStatus: deinstall ok config-files\n"
        "Architecture: all\nVersion: 3.1.0-1\n\n"
    )
    dists = by_name(scan_environment(root))
    assert dists["threadpoolctl"].owner is None
    assert dists["numpy"].owner is not None


@pytest.mark.parametrize(
    ("blas_choice", "lapack_choice"),
    [("blis", "openblas"), ("netlib", "openblas"), ("openblas", "netlib"), ("netlib", "netlib")],
)
def test_blas_and_lapack_alternatives_are_both_reported(
    root: Path, blas_choice: str, lapack_choice: str
) -> None:
    point_alternative(root, BLAS, BLAS_TARGETS[blas_choice])
    point_alternative(root, LAPACK, LAPACK_TARGETS[lapack_choice])
    env = assess_environment(scan_environment(root))
    numpy = by_name(env)["numpy"]
    assert blas(numpy) == {blas_choice, lapack_choice}
    several = [f for f in env.findings if f.code == "several-blas-lapack"]
    if blas_choice == lapack_choice:
        assert several == []
        return
    assert len(several) == 1
    finding = several[0]
    assert "numpy" in finding.distributions and "scipy" in finding.distributions
    assert "numpy 1.24.2" in finding.message
    packages = {"openblas": "libopenblas0-pthread", "blis": "libblis4-openmp"}
    assert f"{blas_choice} (libblas.so.3 -> {packages.get(blas_choice, 'libblas3')})" in (
        finding.message
    )
    assert f"{lapack_choice} (liblapack.so.3 -> " in finding.message


def test_alternative_chain_is_followed_inside_the_root(root: Path) -> None:
    # etc/alternatives -> an intermediate link (absolute) -> blis; all inside root.
    middle = root / "usr/lib/x86_64-linux-gnu/libblas-chosen.so.3"
    middle.symlink_to(BLAS_TARGETS["blis"])
    point_alternative(root, BLAS, "/usr/lib/x86_64-linux-gnu/libblas-chosen.so.3")
    env = scan_environment(root)
    assert blas(by_name(env)["numpy"]) == {"blis", "openblas"}


def test_relative_link_cannot_climb_out_of_the_root(root: Path) -> None:
    point_alternative(root, BLAS, "../../../../../../../.." + BLAS_TARGETS["blis"])
    env = scan_environment(root)
    assert blas(by_name(env)["numpy"]) == {"blis", "openblas"}


def test_absolute_link_is_never_resolved_on_the_host(root: Path) -> None:
    # A target that exists on this machine but not in the root is dangling there.
    host_file = str(Path(__file__).resolve())
    link = point_alternative(root, BLAS, host_file)
    env = scan_environment(root)
    numpy = by_name(env)["numpy"]
    assert blas(numpy) == {"openblas"}  # from LAPACK only
    assert all("libblas.so.3" not in e.via for evs in numpy.properties.values() for e in evs)
    dangling = [p for p in env.problems if p.path == link]
    assert len(dangling) == 1
    assert "dangling alternatives link" in dangling[0].problem
    assert host_file in dangling[0].problem


def test_cli_scan_root(root: Path) -> None:
    result = CliRunner().invoke(app, ["scan", "--root", str(root)])
    assert result.exit_code == 0, result.output
    numpy_row = next(line for line in result.stdout.splitlines() if line.startswith("numpy "))
    assert "apt" in numpy_row
    assert "python3-numpy 1:1.24.2-1+deb12u1" in numpy_row
    assert numpy_row.endswith("blas_lapack :: provider :: openblas")


def test_cli_scan_root_that_is_not_debian(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["scan", "--root", str(tmp_path)])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert str(tmp_path) in lines[0] and "var/lib/dpkg/status" in lines[0]


def test_list_lines_found_anywhere_in_the_file(root: Path) -> None:
    # The .list is searched as bytes: the metadata directory on the last line without a
    # newline, a nested egg-info (not a distribution) and a path that is not UTF-8 on
    # the lines around it change nothing.
    listing = root / "var/lib/dpkg/info/python3-numpy.list"
    egg_info = f"/{DIST_PACKAGES}/numpy-1.24.2.egg-info"
    lines = [line for line in listing.read_bytes().split(b"\n") if line]
    lines.remove(egg_info.encode())
    lines += [
        f"/{DIST_PACKAGES}/numpy/core/tests/data/x.egg-info".encode(),
        f"/{DIST_PACKAGES}/numpy/caf\xe9.py".encode("latin-1"),
        egg_info.encode(),
    ]
    listing.write_bytes(b"\n".join(lines))
    env = scan_environment(root)
    numpy = by_name(env)["numpy"]
    assert numpy.dist_info == root / egg_info.lstrip("/")
    assert numpy.owner is not None and numpy.owner.name == "python3-numpy"
    assert blas(numpy) == {"openblas"}
    record = next(r for r in apt.read_records(root, []) if r.name == "python3-numpy")
    assert record.python_dists == (root / egg_info.lstrip("/"),)


def test_an_alternative_target_is_owned_by_the_list_holding_it_as_a_whole_line(
    root: Path,
) -> None:
    # The owner's list holds the targets on its first line and on its last, without a
    # newline after it; a list read before it (libblas3) holds them only inside longer
    # paths, which do not make it the owner.
    point_alternative(root, BLAS, BLAS_TARGETS["openblas"])
    point_alternative(root, LAPACK, LAPACK_TARGETS["openblas"])
    info = root / "var/lib/dpkg/info"
    owner = info / "libopenblas0-pthread:amd64.list"
    blas_line, lapack_line = BLAS_TARGETS["openblas"].encode(), LAPACK_TARGETS["openblas"].encode()
    lines = [line for line in owner.read_bytes().split(b"\n") if line]
    lines.remove(blas_line)
    lines.remove(lapack_line)
    owner.write_bytes(b"\n".join([blas_line, *lines, lapack_line]))
    decoy = info / "libblas3:amd64.list"
    decoy.write_bytes(decoy.read_bytes() + b"/srv" + blas_line + b"\n" + lapack_line + b".old\n")
    selected = {
        r.name: r.extra["selected_package"]
        for r in apt.read_records(root, [])
        if r.extra.get("kind") == "alternative"
    }
    assert selected == {
        "libblas.so.3": "libopenblas0-pthread",
        "liblapack.so.3": "libopenblas0-pthread",
    }
    assert apt._common_part([b"\n/usr/lib/a/libblas.so.3\n", b"\n/lib/a/liblapack.so.3\n"]) == (
        b"/lib/a/lib"
    )


def test_relations_are_split_with_whitespace_runs_as_one_space() -> None:
    # Every clause as " ".join(clause.split()), empty ones left out, whatever whitespace
    # the field holds (values with single spaces only take a shorter way).
    whitespace = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
    values = ["libc6 (>= 2.34), libblas3 | libblas.so.3", "a ,b", ", a, ", "a,,b", " a , b "]
    values += [f"a{w}(>= 1),{w}b, c{w}" for w in whitespace] + ["a  b, c", "x,\n y"]
    for value in values:
        expected = tuple(c for part in value.split(",") if (c := " ".join(part.split())))
        assert apt.split_relations(value) == expected, repr(value)


def test_a_full_scan_gives_each_distribution_what_a_scan_for_it_alone_gives(root: Path) -> None:
    owned, with_via = compare_full_scan_with_scans_alone(root)
    assert owned >= 5
    assert with_via >= 3  # numpy, scipy, h5py: BLAS and MPI found through dependencies


def test_requirements_skip_only_relations_that_reach_no_dist_info(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vbridge.model import RecordIndex

    records = list(apt.read_records(root, []))
    index = RecordIndex(records)
    names = apt._names_leading_to_dists(index)
    assert {"python3-numpy", "python3-numpy-abi9", "python3-mpi4py"} <= names
    assert "libc6" not in names
    skipping = [req for r in records for req in apt.requirements(r, index)]

    class Everything:  # every name leads to a dist-info: no relation is skipped
        def isdisjoint(self, names: object) -> bool:
            return False

    monkeypatch.setattr(apt, "_names_leading_to_dists", lambda index: Everything())
    fresh = RecordIndex(records)  # what is kept for ``index`` was worked out skipping
    walking = [req for r in records for req in apt.requirements(r, fresh)]
    assert skipping == walking
    assert {req.kind for req in skipping} == {"abi", "version"}

"""Bad Debian records: one clear line naming the file (and line), the rest still scanned."""

from __future__ import annotations

from pathlib import Path

import pytest
from debian_root import BLAS, lay_out_fixture_root, point_alternative
from typer.testing import CliRunner
from vbridge.cli import app
from vbridge.model import Distribution, Environment, RecordProblem
from vbridge.scan import scan_environment


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return lay_out_fixture_root(tmp_path / "root")


def status_of(root: Path) -> Path:
    return root / "var/lib/dpkg/status"


def by_name(env: Environment) -> dict[str, Distribution]:
    return {d.name: d for d in env.distributions}


def blas(dist: Distribution) -> set[str]:
    return {p.value for p in dist.properties if p.namespace == "blas_lapack"}


def line_of(text: str, needle: str) -> int:
    """1-based number of the line that starts with ``needle``."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith(needle))


def status_problems(env: Environment, root: Path) -> list[RecordProblem]:
    return [p for p in env.problems if p.path == status_of(root)]


def assert_rest_scanned(env: Environment) -> None:
    dists = by_name(env)
    assert blas(dists["numpy"]) == {"openblas"}
    assert dists["mpi4py"].owner is not None
    assert {p.to_str() for p in dists["mpi4py"].properties} == {
        "mpi :: implementation :: openmpi"
    }


def test_malformed_line_names_file_and_line(root: Path) -> None:
    status = status_of(root)
    lines = status.read_text().splitlines(keepends=True)
    at = line_of("".join(lines), "Package: python3-scipy")
    lines.insert(at + 1, "this line is not a field\n")  # becomes line at + 2
    status.write_text("".join(lines))

    env = scan_environment(root)
    problems = status_problems(env, root)
    assert len(problems) == 1
    text = str(problems[0])
    assert text.startswith(f"{status}: line {at + 2}: not a 'Field: value' line")
    assert "python3-scipy" in text and "\n" not in text
    dists = by_name(env)
    assert dists["scipy"].owner is None  # that stanza is skipped
    assert_rest_scanned(env)


def test_truncated_mid_line(root: Path) -> None:
    status = status_of(root)
    text = status.read_text()
    start = text.index("Package: python3-scipy\n")
    cut = text.index("Depends: ", start) + len("Depends: python3-deco")
    status.write_text(text[:cut])
    last_line = text[:cut].count("\n") + 1

    env = scan_environment(root)
    problems = status_problems(env, root)
    assert len(problems) == 1
    assert str(problems[0]).startswith(
        f"{status}: line {last_line}: the file ends in the middle of a line of the stanza "
        "for python3-scipy (truncated)"
    )
    dists = by_name(env)
    assert dists["scipy"].owner is None
    # Packages before the cut, and the alternatives (libblas3, libopenblas0-pthread sort
    # before python3-*), are all read.
    assert blas(dists["numpy"]) == {"openblas"}
    assert dists["mpi4py"].owner is not None


def test_truncated_at_a_line_end_misses_version(root: Path) -> None:
    status = status_of(root)
    text = status.read_text()
    start = text.index("Package: python3-scipy\n")
    cut = text.index("\n", text.index("Status: ", start)) + 1
    status.write_text(text[:cut])
    first_line = line_of(text, "Package: python3-scipy")

    env = scan_environment(root)
    problems = status_problems(env, root)
    assert len(problems) == 1
    assert str(problems[0]).startswith(
        f"{status}: line {first_line}: the stanza for python3-scipy has no Version "
        "(the file looks truncated)"
    )
    assert by_name(env)["scipy"].owner is None
    assert blas(by_name(env)["numpy"]) == {"openblas"}


def test_stanza_without_version_in_the_middle(root: Path) -> None:
    status = status_of(root)
    text = status.read_text()
    start = text.index("Package: python3-scipy\n")
    version_at = text.index("\nVersion: ", start) + 1
    end = text.index("\n", version_at) + 1
    status.write_text(text[:version_at] + text[end:])

    env = scan_environment(root)
    problems = status_problems(env, root)
    assert len(problems) == 1
    line = line_of(text, "Package: python3-scipy")
    assert f"line {line}: the stanza for python3-scipy has no Version" in problems[0].problem
    assert "truncated" not in problems[0].problem
    assert by_name(env)["scipy"].owner is None
    assert_rest_scanned(env)


def test_dangling_alternatives_link(root: Path) -> None:
    link = point_alternative(root, BLAS, "/usr/lib/x86_64-linux-gnu/gone/libblas.so.3")
    env = scan_environment(root)
    problems = [p for p in env.problems if p.path == link]
    assert len(problems) == 1
    assert "dangling alternatives link: /usr/lib/x86_64-linux-gnu/gone/libblas.so.3" in str(
        problems[0]
    )
    assert "update-alternatives --auto libblas.so.3-x86_64-linux-gnu" in problems[0].hint
    numpy = by_name(env)["numpy"]
    assert blas(numpy) == {"openblas"}  # LAPACK's link still says OpenBLAS
    assert all(e.via[-1] == "liblapack.so.3" for evs in numpy.properties.values() for e in evs)
    assert by_name(env)["scipy"].owner is not None


def test_alternatives_entry_that_is_not_a_link(root: Path) -> None:
    link = root / "etc/alternatives" / BLAS
    link.unlink()
    link.write_text("not a link\n")
    env = scan_environment(root)
    problems = [p for p in env.problems if p.path == link]
    assert len(problems) == 1
    assert "not a symbolic link" in problems[0].problem
    assert blas(by_name(env)["numpy"]) == {"openblas"}


def test_alternative_pointing_at_an_unowned_file(root: Path) -> None:
    stray = root / "usr/lib/x86_64-linux-gnu/stray-libblas.so.3"
    stray.touch()
    link = point_alternative(root, BLAS, "/usr/lib/x86_64-linux-gnu/stray-libblas.so.3")
    env = scan_environment(root)
    problems = [p for p in env.problems if p.path == link]
    assert len(problems) == 1
    assert "which no installed package owns" in problems[0].problem


@pytest.mark.parametrize("how", ["directory", "symlink loop"])
def test_unreadable_list_file(root: Path, how: str) -> None:
    # Root reads any file whatever its mode, so the .list is made unreadable by kind.
    listing = root / "var/lib/dpkg/info/python3-numpy.list"
    listing.unlink()
    if how == "directory":
        listing.mkdir()
    else:
        listing.symlink_to(listing.name)
    env = scan_environment(root)
    problems = [p for p in env.problems if p.path == listing]
    assert len(problems) == 1
    assert str(problems[0]).startswith(f"{listing}: cannot read the file list of python3-numpy")
    dists = by_name(env)
    assert dists["numpy"].owner is None
    assert dists["scipy"].owner is not None
    assert blas(dists["scipy"]) == {"openblas"}


def test_cli_reports_each_problem_on_one_line_and_still_scans(root: Path) -> None:
    status = status_of(root)
    lines = status.read_text().splitlines(keepends=True)
    at = line_of("".join(lines), "Package: python3-scipy")
    lines.insert(at + 1, "garbage\n")
    status.write_text("".join(lines))
    point_alternative(root, BLAS, "/usr/lib/x86_64-linux-gnu/gone/libblas.so.3")

    result = CliRunner().invoke(app, ["scan", "--root", str(root)])
    assert result.exit_code == 0
    errors = result.stderr.splitlines()
    assert any(e.startswith(f"vbridge: {status}: line {at + 2}: ") for e in errors)
    link = root / "etc/alternatives" / BLAS
    assert any(e.startswith(f"vbridge: {link}: dangling") for e in errors)
    numpy_row = next(r for r in result.stdout.splitlines() if r.startswith("numpy "))
    assert numpy_row.endswith("blas_lapack :: provider :: openblas")

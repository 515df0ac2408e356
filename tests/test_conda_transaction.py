"""What a transaction touches: conda's history format and the affected packages, on
real records (conda 4.x history files, rattler-written conda-meta)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from vbridge.adapters import conda
from vbridge.integrations.conda.transaction import (
    PackageRef,
    TransactionChange,
    affected_packages,
    last_history_change,
    parse_history,
)
from vbridge.model import InstallRecord, RecordProblem
from vbridge.rules import RuleSet

FIXTURES = Path(__file__).parent / "fixtures" / "conda"
STOP_AT = RuleSet.load("conda").stop_at


def records(prefix: Path) -> list[InstallRecord]:
    problems: list[RecordProblem] = []
    found = list(conda.read_records(prefix, problems))
    assert not problems
    return found


def rattler_prefix(tmp_path: Path) -> Path:
    """The rattler test-data records are a bare conda-meta folder: give it a prefix."""
    prefix = tmp_path / "env"
    shutil.copytree(FIXTURES / "rattler-conda-meta", prefix / "conda-meta")
    return prefix


def test_conda_history_blocks_oldest_first() -> None:
    text = (FIXTURES / "history-conda-update" / "history").read_text()
    blocks = parse_history(text)
    assert len(blocks) == 6
    # The oldest format lists the whole state without signs: read as linked.
    assert len(blocks[0].linked) == 16 and not blocks[0].unlinked
    update = blocks[1]
    assert {r.name for r in update.unlinked} == {r.name for r in update.linked}
    assert PackageRef("openssl", "1.0.2d", "0") in update.unlinked
    assert PackageRef("openssl", "1.0.2f", "0") in update.linked
    assert [r.name for r in blocks[-1].linked] == ["pyflakes"]


def test_last_history_change_of_a_conda_prefix(
    fixture_copy: Callable[[str], Path],
) -> None:
    prefix = fixture_copy("conda/py36-osx-whl")
    change = last_history_change(prefix)
    assert change is not None and not change.unlinked
    # "+defaults::numpy-base-1.15.1-py36h42e5f7b_0": channel dropped, name kept whole.
    assert PackageRef("numpy-base", "1.15.1", "py36h42e5f7b_0") in change.linked
    assert PackageRef("blas", "1.0", "openblas") in change.linked


def test_rattler_writes_an_empty_history(tmp_path: Path) -> None:
    (tmp_path / "conda-meta").mkdir()
    (tmp_path / "conda-meta" / "history").write_text("")
    assert last_history_change(tmp_path) is None
    assert last_history_change(tmp_path / "missing") is None


def test_a_blas_library_change_reaches_numpy_and_scipy_not_python_packages(
    tmp_path: Path,
) -> None:
    recs = records(rattler_prefix(tmp_path))
    change = TransactionChange(linked=(PackageRef("libopenblas", "0.3.26", "openmp_h0"),))
    affected = affected_packages(recs, change, STOP_AT)
    assert {"libopenblas", "libblas", "libcblas", "liblapack", "numpy", "scipy"} <= affected
    assert not {"requests", "urllib3", "pip", "python"} & affected


def test_python_itself_does_not_reach_every_package(tmp_path: Path) -> None:
    recs = records(rattler_prefix(tmp_path))
    change = TransactionChange(linked=(PackageRef("python", "3.11.9", "h932a869_0_cpython"),))
    assert affected_packages(recs, change, STOP_AT) == {"python"}


def test_a_python_distribution_is_a_boundary(tmp_path: Path) -> None:
    """scipy depends on numpy, but carries its own properties: numpy's change stops."""
    recs = records(rattler_prefix(tmp_path))
    change = TransactionChange(linked=(PackageRef("numpy", "1.26.4", "py311h7125741_0"),))
    assert affected_packages(recs, change, STOP_AT) == {"numpy"}


def test_a_metapackage_reaches_the_distribution_it_pins(
    fixture_copy: Callable[[str], Path],
) -> None:
    """Anaconda's numpy metapackage pins numpy-base, which owns the dist-info."""
    prefix = fixture_copy("conda/py36-osx-whl")
    change = TransactionChange(linked=(PackageRef("numpy", "1.15.1", "py36had7ef94_0"),))
    assert "numpy-base" in affected_packages(records(prefix), change, STOP_AT)


def test_an_unlinked_library_known_only_by_name_still_travels(
    fixture_copy: Callable[[str], Path],
) -> None:
    """From history there are no files: an unlinked package is taken for a library."""
    prefix = fixture_copy("conda/py36-osx-whl")
    change = TransactionChange(unlinked=(PackageRef("nomkl", "3.0", "0"),))
    assert affected_packages(records(prefix), change, STOP_AT) == {"nomkl"}
    change = TransactionChange(unlinked=(PackageRef("libopenblas", "0.3.2", "hdc02c5d_1"),))
    assert "numpy-base" in affected_packages(records(prefix), change, STOP_AT)

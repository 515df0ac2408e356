"""The conda adapter on real records from conda, micromamba, rattler and pip."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from vbridge.adapters import conda
from vbridge.model import InstallRecord, RecordProblem
from vbridge.scan import scan_environment

FIXTURES = Path(__file__).parent / "fixtures" / "conda"


def _records(prefix: Path) -> tuple[dict[str, InstallRecord], list[RecordProblem]]:
    problems: list[RecordProblem] = []
    records = {Path(r.source).name: r for r in conda.read_records(prefix, problems) if r.source}
    return records, problems


def _prefix_with_meta(tmp_path: Path, meta: Path) -> Path:
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "conda-meta").symlink_to(meta)
    return tmp_path / "env"


def _lay_out_conda_metadata(prefix: Path) -> Path:
    """The fixture keeps conda-meta and the pip-installed dist-infos only; recreate the
    metadata directories the conda records list, as conda had linked them."""
    problems: list[RecordProblem] = []
    for record in conda.read_records(prefix, problems):
        for dist in record.python_dists:
            dist.mkdir(parents=True, exist_ok=True)
            (dist / "PKG-INFO").write_text(f"Name: {record.name}\nVersion: {record.version}\n")
    return prefix


def test_every_real_record_parses(tmp_path: Path) -> None:
    prefix = _prefix_with_meta(tmp_path, FIXTURES / "rattler-conda-meta")
    records, problems = _records(prefix)
    assert problems == []
    on_disk = sorted(p.name for p in (FIXTURES / "rattler-conda-meta").glob("*.json"))
    assert sorted(records) == on_disk


def test_channel_with_and_without_subdir_is_the_same_channel(tmp_path: Path) -> None:
    prefix = _prefix_with_meta(tmp_path, FIXTURES / "rattler-conda-meta")
    records, _ = _records(prefix)
    # rattler writes ".../conda-forge/", micromamba ".../conda-forge/noarch", some "conda-forge"
    raw = {
        name: json.loads((FIXTURES / "rattler-conda-meta" / name).read_text())["channel"]
        for name in records
    }
    assert len(set(raw.values())) > 2
    assert {r.channel for r in records.values()} == {"conda-forge"}


def test_writer_differences_are_normalised(tmp_path: Path) -> None:
    prefix = _prefix_with_meta(tmp_path, FIXTURES / "rattler-conda-meta")
    records, _ = _records(prefix)
    requests = records["requests-2.28.2-pyhd8ed1ab_0.json"]  # micromamba on Windows
    assert requests.track_features == ()  # written as ""
    assert requests.python_dists == (prefix / "Lib/site-packages/requests-2.28.2.dist-info",)
    vc = records["vc-14.3-hb6edc58_10.json"]
    assert vc.track_features == ("vc14",)
    numpy = records["numpy-1.26.4-py311h7125741_0.json"]
    assert numpy.python_dists == (prefix / "lib/python3.11/site-packages/numpy-1.26.4.dist-info",)
    assert numpy.extra["purls"] == ["pkg:pypi/numpy"]


def test_requested_spec_none_string_is_dropped(tmp_path: Path) -> None:
    meta = tmp_path / "meta"
    meta.mkdir()
    src = json.loads((FIXTURES / "rattler-conda-meta" / "pip-23.0-pyhd8ed1ab_0.json").read_text())
    src["requested_spec"] = "None"
    (meta / "pip-23.0-pyhd8ed1ab_0.json").write_text(json.dumps(src))
    records, _ = _records(_prefix_with_meta(tmp_path, meta))
    assert "requested_spec" not in records["pip-23.0-pyhd8ed1ab_0.json"].extra


def test_conda_pypi_record_keeps_pypi_channel(tmp_path: Path) -> None:
    meta = tmp_path / "meta"
    meta.mkdir()
    record = {
        "name": "rich", "version": "13.7.1", "build": "pypi_0", "build_number": 0,
        "channel": "pypi", "subdir": "noarch", "fn": "rich-13.7.1-py3-none-any.whl",
        "depends": [], "files": ["lib/python3.11/site-packages/rich-13.7.1.dist-info/RECORD"],
    }
    (meta / "rich-13.7.1-pypi_0.json").write_text(json.dumps(record))
    records, _ = _records(_prefix_with_meta(tmp_path, meta))
    rich = records["rich-13.7.1-pypi_0.json"]
    assert rich.channel == "pypi" and rich.build == "pypi_0"


def test_malformed_and_foreign_records_are_reported_and_skipped(
    fixture_copy: Callable[[str], Path],
) -> None:
    prefix = _lay_out_conda_metadata(fixture_copy("conda/py36-osx-whl"))
    meta = prefix / "conda-meta"
    (meta / "six-1.11.0-py36_1.json").write_text('{"name": "six", "version": ')
    (meta / "zlib-1.2.11-hf3cbc9b_2.json").write_text('["not", "a", "record"]')
    env = scan_environment(prefix)
    assert {p.path.name for p in env.problems} == {
        "six-1.11.0-py36_1.json",
        "zlib-1.2.11-hf3cbc9b_2.json",
    }
    malformed = next(p for p in env.problems if p.path.name.startswith("six"))
    assert "malformed JSON at line 1" in str(malformed)
    assert str(meta / "six-1.11.0-py36_1.json") in str(malformed)
    # The rest of the scan completes.
    assert "numpy-base" in {r.name for r in env.records}
    assert any(d.name == "numpy" for d in env.distributions)


def test_anaconda_blas_selector_reaches_numpy(fixture_copy: Callable[[str], Path]) -> None:
    # Anaconda defaults: numpy (metapackage, depends `blas 1.0 openblas`) over numpy-base,
    # which owns the egg-info.
    env = scan_environment(_lay_out_conda_metadata(fixture_copy("conda/py36-osx-whl")))
    numpy = next(d for d in env.distributions if d.name == "numpy")
    assert numpy.owner is not None and numpy.owner.name == "numpy-base"
    props = {p.to_str(): ev for p, ev in numpy.properties.items()}
    assert "blas_lapack :: provider :: openblas" in props
    # numpy-base pins the Anaconda `blas 1.0 openblas` selector itself: that dependency is
    # stronger evidence than the libopenblas package further down.
    (evidence,) = props["blas_lapack :: provider :: openblas"]
    assert (evidence.record, evidence.field, evidence.value, evidence.via) == (
        "conda:numpy-base-1.15.1-py36h42e5f7b_0",
        "depends",
        "blas 1.0 openblas",
        (),
    )
    h5py = next(d for d in env.distributions if d.name == "h5py")
    assert "hdf5 :: parallel :: on" not in {p.to_str() for p in h5py.properties}


def test_pip_installed_distributions_are_not_owned(fixture_copy: Callable[[str], Path]) -> None:
    env = scan_environment(_lay_out_conda_metadata(fixture_copy("conda/py36-osx-whl")))
    by_name = {d.name: d for d in env.distributions}
    django = by_name["django"]
    assert django.owner is None and django.installer == "pip"
    six = by_name["six"]
    assert six.owner is not None and six.owner.ecosystem == "conda"
    assert six.owner.channel == "pkgs/main"


def test_eggs_are_listed(fixture_copy: Callable[[str], Path]) -> None:
    env = scan_environment(fixture_copy("conda/envpy27osx"))
    names = {d.name for d in env.distributions}
    assert {"django", "numpy", "twisted"} <= names

"""The record edits on real files: RECORDs written by pip, conda-meta records written by
conda 4.5, micromamba and rattler (tests/fixtures/conda). vbridge's rows go in and come
out again leaving the exact original bytes; the tools' own parsers still read the result."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import rattler
from installer.records import RecordEntry, parse_record_file
from vbridge.destinations.conda_meta import meta_paths, meta_with
from vbridge.destinations.ledger import Ledger, state_dir
from vbridge.destinations.record import record_paths, record_with

FIXTURES = Path(__file__).parent / "fixtures" / "conda"
RECORDS = sorted(FIXTURES.rglob("*.dist-info/RECORD"))
METAS = sorted(FIXTURES.rglob("conda-meta/*.json"))


def test_fixtures_are_there() -> None:
    assert len(RECORDS) >= 10 and len(METAS) >= 40


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: p.parent.name)
def test_record_rows_in_and_out(path: Path, tmp_path: Path) -> None:
    original = path.read_bytes()
    dist = path.parent.name
    added = {f"{dist}/variant.json": b'{"x": 1}\n', f"{dist}/sboms/vbridge.cdx.json": b"{}\n"}
    edited = record_with(original, added, managed=added)
    assert record_paths(edited) == record_paths(original) | set(added)
    rows = [RecordEntry.from_elements(*r) for r in parse_record_file(edited.decode().splitlines())]
    by_path = {r.path: r for r in rows}
    for rel, data in added.items():
        assert by_path[rel].validate(data)
    # Every line pip wrote is still there, unchanged and in order.
    original_lines = original.splitlines(keepends=True)
    known = set(original_lines)
    kept = [line for line in edited.splitlines(keepends=True) if line in known]
    assert kept == original_lines
    assert record_with(edited, added, managed=added) == edited
    assert record_with(edited, {}, managed=added) == original


@pytest.mark.parametrize("path", METAS, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_conda_meta_registration_in_and_out(path: Path, tmp_path: Path) -> None:
    original = path.read_bytes()
    record = json.loads(original)
    if not record.get("files"):
        pytest.skip("a record without files (a metapackage) never owns a dist-info")
    added = {"lib/site-packages/x-1.dist-info/variant.json": b"{}\n"}
    edited = meta_with(original, added, managed=added, rewritten={})
    assert meta_paths(edited) == meta_paths(original) | set(added)
    assert meta_with(edited, added, managed=added, rewritten={}) == edited
    assert meta_with(edited, {}, managed=added, rewritten={}) == original
    copy = tmp_path / path.name
    copy.write_bytes(edited)
    if "rattler" in str(path):  # the rattler fixtures are full PrefixRecords
        parsed = rattler.PrefixRecord.from_path(copy)
        assert set(added) <= {str(f) for f in parsed.files}
        entry = next(p for p in parsed.paths_data.paths if str(p.relative_path) in added)
        assert entry.size_in_bytes == 3 and entry.path_type.hardlink


def test_sha256_in_prefix_follows_an_edited_record() -> None:
    rec = "lib/python3.11/site-packages/a-1.dist-info/RECORD"
    original = json.dumps({"files": [rec], "paths_data": {"paths_version": 1, "paths": [
        {"_path": rec, "path_type": "hardlink", "sha256": "aa", "sha256_in_prefix": "aa",
         "size_in_bytes": 1}]}}, indent=2, sort_keys=True).encode()
    added = {"lib/python3.11/site-packages/a-1.dist-info/variant.json": b"{}"}
    edited = json.loads(meta_with(original, added, added, rewritten={rec: b"new RECORD"}))
    entries = {e["_path"]: e for e in edited["paths_data"]["paths"]}
    assert entries[rec]["sha256_in_prefix"] == hashlib.sha256(b"new RECORD").hexdigest()
    assert entries[rec]["sha256"] == "aa"  # the package's own hash is not ours to change
    new = entries["lib/python3.11/site-packages/a-1.dist-info/variant.json"]
    assert new["sha256_in_prefix"] == new["sha256"] == hashlib.sha256(b"{}").hexdigest()


def test_ledger_round_trip_and_location() -> None:
    assert state_dir(Path("/")) == Path("/var/lib/vbridge")
    assert state_dir(Path("/opt/env")) == Path("/opt/env/.vbridge")
    assert Ledger.from_bytes(Ledger().to_bytes()) == Ledger()

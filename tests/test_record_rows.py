"""vbridge reads RECORD rows as installer's RECORD model does (installer is the
reference here; vbridge does not import it at run time, see vbridge.destinations.record)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from installer.records import InvalidRecordEntry, RecordEntry, parse_record_file
from vbridge.destinations.record import parse_record, record_entry

FIXTURES = Path(__file__).parent / "fixtures"
RECORDS = sorted(FIXTURES.rglob("RECORD"))

ROWS = [
    "a.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0",
    "pkg-1.0.dist-info/RECORD,,",
    '"dir, with comma/file.py",sha256=abc,12',
    'a.py,"sha256=ab=c",3',
    "win\\path\\file.py,,",
    "a.py,md5=xyz,",
    "a.py,nohash,1",
    "a.py,sha999=abc,1",
    "a.py,sha3_256=abc,1",
    "a.py,blake2b=abc,1",
    "a.py,sha512_256=abc,1",
    "a.py,md5-sha1=abc,1",
    "a.py,SHA256=abc,1",
    "a.py,sha256=abc,twelve",
    ",sha256=abc,1",
    "a.py,sha256=abc",
    "a.py,sha256=abc,1,extra",
    "a.py",
    'a.py,"sha256=abc,1',
]


def _installer(text: str) -> tuple[str, str, int | None] | None:
    try:
        (row,) = list(parse_record_file([text]))
        entry = RecordEntry.from_elements(*row)
    except (InvalidRecordEntry, ValueError):
        return None
    return entry.path, str(entry.hash_ or ""), entry.size


def _vbridge(text: str) -> tuple[str, str, int | None] | None:
    try:
        (line,) = parse_record(text.encode() + b"\n")
    except ValueError:
        return None
    assert line.entry is not None
    return line.entry.path, line.entry.hash, line.entry.size


@pytest.mark.parametrize("text", ROWS)
def test_rows_read_as_installer_reads_them(text: str) -> None:
    assert _vbridge(text) == _installer(text)


def test_rejections_are_both_ways() -> None:
    verdicts = {text: _installer(text) is None for text in ROWS}
    assert any(verdicts.values()) and not all(verdicts.values())


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_fixture_records_read_as_installer_reads_them(path: Path) -> None:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert [_vbridge(line) for line in lines] == [_installer(line) for line in lines]


def test_the_algorithms_checked_without_hashlib_are_hashlibs_guaranteed_ones() -> None:
    """A row's algorithm is looked up in hashlib (which loads OpenSSL) only when it is
    not one hashlib guarantees, and those are always available."""
    import hashlib

    from vbridge.destinations import record

    assert hashlib.algorithms_guaranteed == record._GUARANTEED_ALGORITHMS
    assert hashlib.algorithms_guaranteed <= hashlib.algorithms_available
    assert record._available_algorithm("sha512_256") == (
        "sha512_256" in hashlib.algorithms_available
    )


def test_written_rows_are_what_installer_writes(tmp_path: Path) -> None:
    ours = record_entry("pkg-1.0.dist-info/variant.json", b'{"x": 1}\n')
    theirs = RecordEntry.from_elements(*ours.to_row())
    assert ours.to_row() == theirs.to_row()
    with open(tmp_path / "RECORD", "w", newline="") as fh:
        csv.writer(fh).writerow(theirs.to_row())
    assert _vbridge((tmp_path / "RECORD").read_text().strip()) == _installer(
        (tmp_path / "RECORD").read_text().strip()
    )


def test_written_hashes_are_urlsafe_base64_of_sha256() -> None:
    import base64
    import hashlib
    import random

    rng = random.Random(3)
    spellings: set[str] = set()
    for size in range(300):
        data = rng.randbytes(size)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode().rstrip("=")
        entry = record_entry("a/b", data)
        assert (entry.hash, entry.size) == (f"sha256={digest}", size)
        spellings.update(c for c in digest if c in "-_")
    assert spellings == {"-", "_"}  # both characters the alphabets differ in were written

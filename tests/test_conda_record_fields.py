"""`read_fields` decodes only the fields vbridge reads of a PrefixRecord (`paths_data`
is skipped) and must read them exactly as `json.loads` reads them, type-check them, and
fail on malformed JSON exactly as `json.loads` fails."""

from __future__ import annotations

import codecs
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from vbridge.adapters.conda import PrefixRecordFields, read_fields
from vbridge.errors import UnreadableFile

FIXTURES = Path(__file__).parent / "fixtures" / "conda"
FIELDS = {f.encode_name for f in msgspec.structs.fields(PrefixRecordFields)}


def _expected(data: bytes) -> dict[str, Any]:
    """What json.loads reads of the fields PrefixRecordFields declares."""
    parsed = json.loads(data)
    return {k: v for k, v in parsed.items() if k in FIELDS and v is not None}


def _read(data: bytes) -> dict[str, Any]:
    return {k: v for k, v in msgspec.structs.asdict(read_fields(data)).items() if v is not None}


@pytest.mark.parametrize(
    "path", sorted(FIXTURES.glob("**/conda-meta/*.json")), ids=lambda p: p.name
)
def test_real_records_read_as_json_loads_reads_them(path: Path) -> None:
    # conda (sorted keys, paths_data before platform/size/version...), micromamba and
    # rattler (paths_data before link) layouts.
    data = path.read_bytes()
    try:
        expected = _expected(data)
    except (ValueError, AttributeError):
        pytest.skip("a deliberately broken fixture")
    assert _read(data) == expected


def _record(**members: object) -> dict[str, object]:
    return {"name": "x", "version": "1.0", **members}


PATHS = {"paths_version": 1, "paths": [{"_path": "lib/a.so", "path_type": "hardlink"}]}


@pytest.mark.parametrize(
    "document",
    [
        {"paths_data": PATHS, **_record(), "subdir": "linux-64"},
        {**_record(), "paths_data": PATHS, "subdir": "linux-64", "link": {"type": 1}},
        {**_record(), "files": ["lib/a.so"], "paths_data": PATHS},
        {
            **_record(),
            "files": ['odd}, "name": "y', "paths_data", 'q"paths_data":{'],
            "paths_data": {"paths": [{"_path": 'odd}, "name": "y'}], "paths_version": 1},
            "track_features": "blas_mkl",
        },
        {**_record(), "flags": ["blas:mkl"], "noarch": "python", "features": ["a", "b"]},
        {**_record(), "paths_data": None, "subdir": "noarch", "noarch": {"type": "python"}},
        {**_record(), "depends": None, "files": None, "requested_spec": "None"},
    ],
)
@pytest.mark.parametrize("indent", [None, 2])
def test_layouts(document: dict[str, object], indent: int | None) -> None:
    data = json.dumps(document, indent=indent).encode()
    assert _read(data) == _expected(data)


def test_utf8_bom_and_non_ascii() -> None:
    document = _record(files=["lib/python3.11/site-packages/ñ-1.0.dist-info/METADATA"])
    document["paths_data"] = PATHS
    document["summary"] = "naïve"
    data = json.dumps(document, ensure_ascii=False).encode()
    assert _read(codecs.BOM_UTF8 + data) == _expected(data)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            _record(files=["a", 1]),
            "field files should be a list of strings, found a number",
        ),
        (_record(files="a"), "field files should be a list of strings, found a string"),
        (
            _record(depends=[["numpy"]]),
            "field depends should be a list of strings, found a list",
        ),
        ({"version": "1"}, "field name is missing"),
        (_record(name=3), "field name should be a string, found a number"),
        (
            _record(track_features=5),
            "field track_features should be a string or a list of strings, found a number",
        ),
        (_record(subdir=True), "field subdir should be a string, found true or false"),
        ([1, 2], "should be an object, found a list"),
    ],
)
def test_mistyped_fields_are_named_with_what_they_should_be(document: object, message: str) -> None:
    with pytest.raises(UnreadableFile) as raised:
        read_fields(json.dumps(document).encode(), "conda-meta/x-1.0-0.json")
    assert raised.value.problem == message
    assert str(raised.value).startswith(f"conda-meta/x-1.0-0.json: {message} (reinstall")


@pytest.mark.parametrize(
    "data",
    [
        b'{"name": "x", "paths_data": {"paths": [{"_path": "a"}]}, "version": "1"',  # truncated
        b'{"name": "x", "paths_data": {"paths": []}, "version": }',
        b'{"name": "x" "paths_data": {"paths": []}, "version": "1"}',
        b'{"name": "x", "paths_data": {"paths": [}, "version": "1"',
        b"",
    ],
)
def test_malformed_records_fail_as_json_loads_fails(data: bytes) -> None:
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(data)
    with pytest.raises(UnreadableFile) as raised:
        read_fields(data)
    exc = expected.value
    assert raised.value.problem == (
        f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
    )


def test_not_utf8_is_one_line_too() -> None:
    with pytest.raises(UnreadableFile, match="not UTF-8"):
        read_fields(b'{"name": "x", "paths_data": {"paths": []}, "version": "\xff"}')


def test_values_only_json_accepts_are_read_as_json_reads_them() -> None:
    # NaN and numbers beyond a double are not JSON for msgspec; json.loads takes them.
    data = b'{"name": "x", "version": "1", "size": NaN, "timestamp": 1e400}'
    assert read_fields(data).name == "x"

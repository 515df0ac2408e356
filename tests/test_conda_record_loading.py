"""`load_record` skips `paths_data` but must read every other member exactly as
`json.loads` does, and fail exactly as it fails."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest
from vbridge.adapters.conda import load_record

FIXTURES = Path(__file__).parent / "fixtures" / "conda"


def _expected(data: bytes) -> object:
    parsed = json.loads(data)
    if isinstance(parsed, dict):
        parsed.pop("paths_data", None)
    return parsed


@pytest.mark.parametrize(
    "path", sorted(FIXTURES.glob("**/conda-meta/*.json")), ids=lambda p: p.name
)
def test_real_records_read_as_json_loads_reads_them(path: Path) -> None:
    # conda (sorted keys, paths_data before platform/size/version...), micromamba and
    # rattler (paths_data before link) layouts.
    data = path.read_bytes()
    assert load_record(data) == _expected(data)


def _record(**members: object) -> dict[str, object]:
    return {"name": "x", "version": "1.0", **members}


PATHS = {"paths_version": 1, "paths": [{"_path": "lib/a.so", "path_type": "hardlink"}]}


@pytest.mark.parametrize(
    "document",
    [
        # paths_data first, in the middle, last (whole-file fallback)
        {"paths_data": PATHS, **_record(), "subdir": "linux-64"},
        {**_record(), "paths_data": PATHS, "subdir": "linux-64", "link": {"type": 1}},
        {**_record(), "files": ["lib/a.so"], "paths_data": PATHS},
        # paths inside strings that look like structure: }, "  and the key itself
        {
            **_record(),
            "files": ['odd}, "name": "y', "paths_data", 'q"paths_data":{'],
            "paths_data": {
                "paths": [{"_path": 'odd}, "name": "y'}, {"_path": "paths_data"}],
                "paths_version": 1,
            },
            "track_features": "blas_mkl",
        },
        # an object nested inside paths_data followed by more of its members
        {
            **_record(),
            "paths_data": {"meta": {"a": 1}, "paths_version": 1, "paths": []},
            "flags": ["blas:mkl"],
        },
        # no paths_data at all; paths_data not an object
        _record(files=["a"]),
        {**_record(), "paths_data": None, "subdir": "noarch"},
    ],
)
@pytest.mark.parametrize("indent", [None, 2])
def test_layouts_and_tricky_paths(document: dict[str, object], indent: int | None) -> None:
    data = json.dumps(document, indent=indent).encode()
    assert load_record(data) == _expected(data)


def test_utf8_bom_and_non_ascii() -> None:
    document = _record(files=["lib/python3.11/site-packages/ñ-1.0.dist-info/METADATA"])
    document["paths_data"] = PATHS
    document["summary"] = "naïve"
    data = codecs.BOM_UTF8 + json.dumps(document, ensure_ascii=False).encode()
    assert load_record(data) == _expected(data)


@pytest.mark.parametrize(
    "data",
    [
        b'{"name": "x", "paths_data": {"paths": [{"_path": "a"}]}, "version": "1"',  # truncated
        b'{"name": "x", "paths_data": {"paths": []}, "version": }',  # bad tail
        b'{"name": "x" "paths_data": {"paths": []}, "version": "1"}',  # bad head
        b'{"name": "x", "paths_data": {"paths": [}, "version": "1"',  # broken inside, truncated
        b"",
        b"[1, 2]",
    ],
)
def test_malformed_records_fail_as_json_loads_fails(data: bytes) -> None:
    try:
        expected: object = json.loads(data)
    except json.JSONDecodeError as exc:
        with pytest.raises(json.JSONDecodeError) as raised:
            load_record(data)
        assert (raised.value.msg, raised.value.pos) == (exc.msg, exc.pos)
    else:
        assert load_record(data) == expected


@pytest.mark.parametrize(
    "data",
    [
        b'  \n{"paths_data": {"paths": []}, "name": "x", "version": "1"}\n',
        codecs.BOM_UTF8 + b'{"paths_data": {"paths": []}, "name": "x", "version": "1"}',
        b'{"name": "x", "paths_data": {"paths": []}, "version": "\xff"}',  # not UTF-8
    ],
)
def test_leading_space_bom_and_bad_bytes(data: bytes) -> None:
    try:
        expected = _expected(data)
    except ValueError as exc:
        with pytest.raises(type(exc)):
            load_record(data)
    else:
        assert load_record(data) == expected

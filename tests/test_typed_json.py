"""typed_json: what a mistyped field is called, wherever it sits, and what decoding
refuses (malformed text as json.loads words it, nesting too deep to read)."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from vbridge.typed_json import FieldTypeError, convert, decode, describe


class Edge(msgspec.Struct):
    name: str
    deptypes: list[str] = []


class Node(msgspec.Struct):
    name: str
    edges: list[Edge] = []
    parameters: dict[str, Any] = {}
    arch: str | dict[str, str] | None = None


class Tree(msgspec.Struct):
    installs: dict[str, Node]
    meta: dict[str, int] = msgspec.field(default_factory=dict, name="_meta")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            {"installs": {"h": {"name": 1}}},
            "field installs.*.name should be a string, found a number",
        ),
        (
            {"installs": {"h": {"name": "z", "edges": [{"name": "a", "deptypes": "link"}]}}},
            "field installs.*.edges.deptypes should be a list of strings, found a string",
        ),
        (
            {"installs": {"h": {"name": "z", "edges": [{"name": "a", "deptypes": [True]}]}}},
            "field installs.*.edges.deptypes should be a list of strings, found true or false",
        ),
        ({"installs": {"h": {"edges": []}}}, "field installs.*.name is missing"),
        ({"installs": []}, "field installs should be an object of objects, found a list"),
        (
            {"installs": {}, "_meta": {"v": "8"}},
            "field _meta.* should be a whole number, found a string",
        ),
        (
            {"installs": {"h": {"name": "z", "arch": 3}}},
            "field installs.*.arch should be a string or an object of strings, found a number",
        ),
        ({}, "field installs is missing"),
        ("x", "should be an object, found a string"),
    ],
)
def test_field_errors_name_the_field_what_it_should_be_and_what_was_found(
    document: object, message: str
) -> None:
    data = json.dumps(document).encode()
    with pytest.raises(FieldTypeError) as raised:
        decode(data, Tree)
    assert str(raised.value) == message
    with pytest.raises(FieldTypeError) as converted:
        convert(document, Tree)  # the same words for an already parsed value
    assert str(converted.value) == message


def test_what_is_not_declared_is_skipped_whatever_its_type() -> None:
    data = b'{"installs": {"h": {"name": "z", "paths": [1, {"a": null}]}}, "other": [[]]}'
    assert decode(data, Tree).installs["h"] == Node(name="z")


@pytest.mark.parametrize("data", [b'{"installs": {', b'{"installs" {}}', b"", b"nul"])
def test_malformed_json_fails_as_json_loads_fails(data: bytes) -> None:
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(data)
    with pytest.raises(json.JSONDecodeError) as raised:
        decode(data, Tree)
    assert (raised.value.msg, raised.value.lineno, raised.value.colno) == (
        expected.value.msg,
        expected.value.lineno,
        expected.value.colno,
    )


def test_nesting_too_deep_is_a_value_error_not_a_crash() -> None:
    with pytest.raises(ValueError, match="nested too deeply"):
        decode(b'{"installs": {}, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", Tree)


def test_describe() -> None:
    assert describe(list[str]) == "a list of strings"
    assert describe(dict[str, list[int]]) == "an object of lists"
    assert describe(str | None) == "a string"
    assert describe(Node) == "an object"


def test_a_value_out_of_range_is_named_with_its_field() -> None:
    from vbridge.errors import UnreadableFile
    from vbridge.typed_json import load

    class Counter(msgspec.Struct):
        count: int

    with pytest.raises(UnreadableFile) as raised:
        load(b'{"count": 1e400}', Counter, "x.json")
    assert raised.value.problem.startswith("field count")

"""json_text.dumps gives json.dumps byte for byte (indented or on one line, ASCII-escaped
or not): on every JSON fixture (real conda-meta records, Spack databases, lockfiles)
and on generated documents built to tell the encoders apart (strings holding
separators, nested and empty containers, non-ASCII and astral characters, floats,
NaN, big integers, non-string keys, subclasses)."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

import pytest
from vbridge.destinations.json_text import dumps

FIXTURES = Path(__file__).parent / "fixtures"


def _json_fixtures() -> list[Path]:
    found = []
    for path in sorted(FIXTURES.rglob("*.json")):
        try:
            json.loads(path.read_bytes())
        except ValueError:
            continue  # the deliberately malformed ones
        found.append(path)
    return found


JSON_FIXTURES = _json_fixtures()


def test_there_are_real_records_to_compare() -> None:
    assert len(JSON_FIXTURES) > 50
    assert any("conda-meta" in str(p) for p in JSON_FIXTURES)


@pytest.mark.parametrize("path", JSON_FIXTURES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_same_bytes_as_json_dumps_on_fixtures(path: Path) -> None:
    document = json.loads(path.read_bytes())
    for indent in (None, 1, 2, 4):
        for ensure_ascii in (True, False):
            for sort_keys in (False, True):
                expected = json.dumps(
                    document, indent=indent, ensure_ascii=ensure_ascii, sort_keys=sort_keys
                )
                got = dumps(document, indent, ensure_ascii=ensure_ascii, sort_keys=sort_keys)
                assert got == expected


AWKWARD_STRINGS = [
    "},\n  {",
    "}, {",
    "[{",
    "}]",
    '"',
    "\\",
    "é",
    "\u2028",
    "😀",
    "\ud83d",  # a lone surrogate
    "\x7f\x1f\b\f\n\r\t",
    "\x00",
    "",
    ",\n",
    "a: b",
]


def _scalar(rng: random.Random) -> Any:
    return rng.choice(
        [
            rng.choice(AWKWARD_STRINGS),
            rng.randint(-(10**20), 10**20),
            rng.random() * 1e6,
            rng.random() * 1e20,
            rng.random() * 1e-9,
            -0.0,
            rng.randint(-(2**63), 2**63),
            float("nan"),
            float("inf"),
            -float("inf"),
            True,
            False,
            None,
        ]
    )


def _document(rng: random.Random, depth: int) -> Any:
    if depth <= 0 or rng.random() < 0.3:
        return _scalar(rng)
    shape = rng.randrange(5)
    size = rng.randrange(0, 5)
    if shape == 0:
        return [_scalar(rng) for _ in range(size)]
    if shape == 1:  # a list of flat objects, like paths_data.paths
        return [
            {rng.choice(AWKWARD_STRINGS) + str(i): _scalar(rng) for i in range(rng.randrange(0, 4))}
            for _ in range(size)
        ]
    if shape == 2:
        return [_document(rng, depth - 1) for _ in range(size)]
    if shape == 3:
        return {rng.choice(AWKWARD_STRINGS) + str(i): _scalar(rng) for i in range(size)}
    return {rng.choice(AWKWARD_STRINGS) + str(i): _document(rng, depth - 1) for i in range(size)}


@pytest.mark.parametrize("seed", range(20))
def test_same_bytes_as_json_dumps_on_generated_documents(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(50):
        document = _document(rng, 4)
        for indent in (None, 0, 1, 2, 3):
            for ensure_ascii in (True, False):
                for sort_keys in (False, True):
                    expected = json.dumps(
                        document, indent=indent, ensure_ascii=ensure_ascii, sort_keys=sort_keys
                    )
                    got = dumps(document, indent, ensure_ascii=ensure_ascii, sort_keys=sort_keys)
                    assert got == expected, document


def test_values_it_leaves_to_json_dumps() -> None:
    class Name(str):
        pass

    for document in (
        {1: "a", None: [1, {"x": [2]}], 2.5: {"y": [3]}},
        [Name("x"), {"k": Name("v"), "n": [1]}],
        {"t": (1, 2), "n": [(3, [4])]},
    ):
        assert dumps(document, 2) == json.dumps(document, indent=2)
        assert dumps(document, None) == json.dumps(document)


def test_what_json_dumps_refuses_is_refused() -> None:
    with pytest.raises(TypeError):
        dumps({"a": [{1, 2}]}, 2)


def test_the_same_document_gives_the_same_bytes_every_time() -> None:
    rng = random.Random(7)
    documents = [_document(rng, 4) for _ in range(50)]
    assert [dumps(d, 2) for d in documents] == [dumps(d, 2) for d in documents]


def test_records_and_reports_never_reach_the_json_encoder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What makes it fast: real conda-meta records (files, paths_data) and a scan report
    are written by msgspec, without json's pure-Python encoder (``_make_iterencode``)."""
    import json.encoder

    from vbridge.destinations.report import render_json
    from vbridge.scan import scan_environment

    env = scan_environment(FIXTURES / "conda" / "py36-osx-whl")
    expected_report = json.dumps(
        json.loads(render_json([env])), indent=2
    )  # computed before the pure-Python encoder is taken away
    records = [p for p in JSON_FIXTURES if "conda-meta" in str(p)]
    documents = [json.loads(p.read_bytes()) for p in records]
    expected = [json.dumps(d, indent=2) for d in documents]

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the pure-Python JSON encoder was used")

    monkeypatch.setattr(json.encoder, "_make_iterencode", refuse)
    assert [dumps(d, 2) for d in documents] == expected
    assert render_json([env]) == expected_report + "\n"
    if sys.version_info < (3, 13):  # 3.13's C encoder indents by itself
        with pytest.raises(AssertionError, match="pure-Python"):
            json.dumps(documents[0], indent=2)


def test_sorted_keys_by_code_point_and_keys_json_sorts_itself() -> None:
    # Code point order, which msgspec's byte order of UTF-8 keys is: "Z" < "a" < "é" <
    # U+FFFF < U+1F600 (a UTF-16 order would put the astral one before U+FFFF).
    document = {"é": 1, "a": [{"y": 1, "x": {}}], "Z": 2, "\U0001f600": 3, "\uffff": 4}
    for indent in (None, 2, 4):
        for ensure_ascii in (True, False):
            expected = json.dumps(
                document, indent=indent, ensure_ascii=ensure_ascii, sort_keys=True
            )
            assert dumps(document, indent, ensure_ascii=ensure_ascii, sort_keys=True) == expected
    # json sorts integer keys as integers (10 after 9), then writes them as strings.
    numbers = {10: "a", 9: "b", 100: "c"}
    assert dumps(numbers, 2, sort_keys=True) == json.dumps(numbers, indent=2, sort_keys=True)
    assert dumps({"nested": numbers}, 2, sort_keys=True) == json.dumps(
        {"nested": numbers}, indent=2, sort_keys=True
    )
    with pytest.raises(TypeError):  # mixed key types: json's own error
        dumps({1: "a", "b": 2}, 2, sort_keys=True)

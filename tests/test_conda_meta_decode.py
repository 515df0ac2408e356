"""conda_meta reads a record as json.loads does and finds its layout as before, with
msgspec and from the head of the text: on every JSON fixture, on generated documents
and on texts built to tell the decoders apart (floats, NaN, a BOM, lone surrogates,
UTF-16, duplicate keys, big integers); a plain document (no float) is encoded by
json_text without its check, byte for byte as json.dumps."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from test_json_text import JSON_FIXTURES, _document
from vbridge.destinations import conda_meta
from vbridge.destinations.json_text import dumps

FIXTURES = Path(__file__).parent / "fixtures"


def _same(a: Any, b: Any) -> bool:
    """Equal, with the same types and the same key order throughout."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and a != a:
        return bool(b != b)  # NaN
    return bool(a == b)


def _has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_float(v) for v in value)
    return False


def _check(data: bytes) -> bool:
    """Read as json.loads reads it; a result said to be plain holds no float. Whether
    it was said to be plain."""
    expected = json.loads(data)
    got, plain = conda_meta._load(data)
    assert _same(got, expected)
    assert not (plain and _has_float(expected))
    if plain:
        for indent in (None, 1, 2):
            for ascii_only in (True, False):
                text = json.dumps(expected, indent=indent, ensure_ascii=ascii_only)
                assert dumps(got, indent, ensure_ascii=ascii_only, plain=True) == text
    return plain


@pytest.mark.parametrize("path", JSON_FIXTURES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_fixtures_read_as_json_loads_reads_them(path: Path) -> None:
    plain = _check(path.read_bytes())
    if "conda-meta" in path.parts:
        assert plain  # real records hold no float: msgspec reads them


@pytest.mark.parametrize("seed", range(10))
def test_generated_documents_read_as_json_loads_reads_them(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(50):
        document = _document(rng, 4)
        for indent in (None, 2):
            for ascii_only in (True, False):
                text = json.dumps(document, indent=indent, ensure_ascii=ascii_only)
                _check(text.encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize(
    "data",
    [
        b'{"a": 1, "b": 2, "a": 3}',
        b'{"n": 123456789012345678901234567890, "m": -18446744073709551617}',
        b'{"f": 1.0}',
        b'{"f": 1e5, "g": 1E400}',
        b'{"f": NaN, "g": -Infinity}',
        b'\xef\xbb\xbf{"bom": true}',
        b'{"s": "\\ud800 lone"}',
        b'{"s": "\\ud83d\\ude00 pair", "t": "\\u00e9"}',
        b'{"s": "\xed\xa0\x80"}',  # a surrogate as UTF-8 bytes (json: surrogatepass)
        '{"utf16": "é"}'.encode("utf-16"),
        b' \r\n\t{"x" : [ ] , "y":{}}\n ',
        b'{"n": -0, "z": 0, "e": ""}',
    ],
)
def test_texts_that_tell_the_decoders_apart(data: bytes) -> None:
    _check(data)


def _layout_reference(data: bytes) -> tuple[int | None, bool, bool]:
    """What the layout was worked out from before: every line of the text."""
    text = data.decode("utf-8")
    indent: int | None = None
    for line in text.splitlines()[1:]:
        stripped = line.lstrip(" ")
        if stripped and len(stripped) != len(line):
            indent = len(line) - len(stripped)
            break
    return indent, text.endswith("\n"), data.isascii()


def _layout(data: bytes) -> tuple[int | None, bool, bool]:
    layout = conda_meta._Layout.of(data)
    return layout.indent, layout.trailing_newline, layout.ascii_only


def test_the_layout_is_the_one_every_line_gives() -> None:
    head = conda_meta._HEAD
    texts = [p.read_bytes() for p in JSON_FIXTURES]
    long_line = "x" * (head + 10)
    for cut in range(head - 6, head + 3):  # the head ends before, in and after an indent
        filler = "y" * (cut - 2)
        texts += [
            f'{{\n{filler}\n    "a": 1\n}}'.encode(),
            f'{{\n{filler}\n\n   \n\t"a": 1,\n  "b": 2\n}}'.encode(),
        ]
    texts += [
        f'{{"a": "{long_line}",\n   "b": 1}}\n'.encode(),  # the first line longer than the head
        f"{{\n{long_line}\n\u2028  x\n}}".encode(),  # a line break splitlines knows
        b'{"a": 1}',
        b'{\r\n\t"a": 1\r\n}',
        '{\n "é": 1\n}'.encode(),
    ]
    for text in texts:
        assert _layout(text) == _layout_reference(text)

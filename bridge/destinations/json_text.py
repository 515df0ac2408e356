"""JSON text as ``json.dumps`` writes it, byte for byte, encoded by msgspec.

Everything vbridge writes as JSON (the ``--json`` document, conda-meta records it
registers files in, the ledger) is the text :func:`json.dumps` would give, so readers
that compare bytes (conda's records round-trip unchanged; a re-run writes identical
files) see no difference; only the encoder is faster: ``json.dumps(indent=N)`` before
Python 3.13 walks the document in Python, msgspec encodes and indents in C.

msgspec writes non-ASCII characters as UTF-8 and floats in its own shortest form
(``1e16`` where json writes ``1e+16``), so: with ``ensure_ascii`` the non-ASCII runs are
escaped afterwards (outside strings JSON text is ASCII, so only string contents
change), and a document holding a float (or anything msgspec does not encode exactly
as json does) is left to :func:`json.dumps`.

>>> import json
>>> doc = {"name": "x", "files": ["a", "é"], "paths": [{"_path": "a", "size": 1}], "e": []}
>>> dumps(doc, indent=2) == json.dumps(doc, indent=2)
True
>>> dumps(doc, indent=None, ensure_ascii=False) == json.dumps(doc, ensure_ascii=False)
True
>>> print(dumps({"files": ["a", "b"]}, indent=1))
{
 "files": [
  "a",
  "b"
 ]
}
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

__all__ = ["dumps"]

# What json.dumps(ensure_ascii=True) escapes that msgspec writes as is: DEL and every
# non-ASCII character (control characters msgspec escapes as json does). Compiled when
# a text has one (most of what vbridge writes is ASCII).
_NON_ASCII = r"[^\x00-\x7e]+"


class _Unusual(Exception):
    """A value msgspec would not encode as json does: json.dumps writes it."""


def _refuse(value: Any) -> Any:
    raise _Unusual


# Floats are encoded through enc_hook only if msgspec is told to: it is not, so a float
# is caught by the check in dumps (msgspec has no float hook on encode).
_ENCODER = msgspec.json.Encoder(enc_hook=_refuse)
# sort_keys: msgspec orders a dict's keys as json.dumps(sort_keys=True) orders string
# keys (by code point: UTF-8's byte order is the same); other keys are left to json.
_SORTED_ENCODER = msgspec.json.Encoder(enc_hook=_refuse, order="sorted")


def _escape(match: re.Match[str]) -> str:
    out = []
    for char in match.group():
        code = ord(char)
        if code > 0xFFFF:  # a surrogate pair, as json writes it
            code -= 0x10000
            out.append(f"\\u{0xD800 | (code >> 10):04x}\\u{0xDC00 | (code & 0x3FF):04x}")
        else:
            out.append(f"\\u{code:04x}")
    return "".join(out)


def dumps(
    value: Any,
    indent: int | None,
    *,
    ensure_ascii: bool = True,
    plain: bool = False,
    sort_keys: bool = False,
) -> str:
    """The text of ``json.dumps(value, indent=indent, ensure_ascii=ensure_ascii,
    sort_keys=sort_keys)``.

    ``plain``: the caller knows ``value`` holds only dicts (with string keys, when
    ``sort_keys``), lists, strings, ints, bools and None (no float, no subclass), so it
    is not walked to check (the ledger; a conda-meta record decoded without a float).
    """

    def by_json() -> str:
        import json  # what msgspec does not write as json does (rare): json.dumps itself

        return json.dumps(value, indent=indent, ensure_ascii=ensure_ascii, sort_keys=sort_keys)

    try:
        encoded = (_SORTED_ENCODER if sort_keys else _ENCODER).encode(value)
    except (_Unusual, TypeError, OverflowError, UnicodeEncodeError):
        return by_json()
    # indent 0 is json's one-line ", " / ": " layout (json.dumps' default separators);
    # json.dumps(indent=0) puts every item on a line of its own: left to json.
    if indent == 0:
        return by_json()
    text = msgspec.json.format(encoded, indent=indent if indent is not None else 0).decode()
    if not plain and _has_float(value, string_keys=sort_keys):
        return by_json()
    if ensure_ascii and (not text.isascii() or "\x7f" in text):
        text = re.sub(_NON_ASCII, _escape, text)
    return text


def _has_float(value: Any, *, string_keys: bool = False) -> bool:
    """Whether ``value`` holds a float anywhere (msgspec and json spell some apart), or
    a value of a type json.dumps should judge (a subclass, a set...); with
    ``string_keys``, also a dict key that is not a ``str`` (json sorts those its own way).

    The type check is one C-level ``set(map(type, ...))`` per container: the documents
    vbridge writes are mostly long lists of strings.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        kinds = {type(item)}
        if kinds <= _CONTAINERS:
            if type(item) is dict:
                if string_keys and not set(map(type, item)) <= _STRING:
                    return True
                children: Any = item.values()
            else:
                children = item
            kinds = set(map(type, children))
            if kinds & _CONTAINERS:
                stack.extend(c for c in children if type(c) in _CONTAINERS)
                kinds -= _CONTAINERS
        if not kinds <= _EXACT:
            return True
    return False


_CONTAINERS = frozenset({dict, list, tuple})
_STRING = frozenset({str})
# What msgspec encodes exactly as json.dumps does.
_EXACT = frozenset({str, int, bool, type(None)})

"""``json.dumps(value, indent=N)``, byte for byte, at the speed of the C encoder.

With ``indent`` set, :func:`json.dumps` before Python 3.13 falls back to the
pure-Python encoder (3.13's C encoder indents, and is used as is there): some
25 ms for a conda-meta record of a few thousand files, paid by every post-link script
that registers vbridge's files in it. Most of a JSON document vbridge rewrites is
containers of scalars (``files``) and lists of flat objects (``paths_data.paths``).
Those are encoded here in one call of the C encoder each, with the newline and
indentation of their level as the item separator: a literal newline never occurs inside
an encoded string (it is escaped as ``\\n``), so the separators are the only newlines in
the output and can be re-indented safely. Everything else is walked in Python.

>>> doc = {"name": "x", "files": ["a", "b"], "paths": [{"_path": "a", "size": 1}], "e": []}
>>> dumps_indented(doc, 2) == json.dumps(doc, indent=2)
True
>>> print(dumps_indented({"files": ["a", "b"]}, 1))
{
 "files": [
  "a",
  "b"
 ]
}
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any

__all__ = ["dumps_indented"]

_SCALARS = frozenset({str, int, float, bool, type(None)})
# From Python 3.13 json's C encoder indents by itself: json.dumps is the fast way there.
_C_INDENTS = sys.version_info >= (3, 13)


class _Writer:
    def __init__(self, indent: int, ensure_ascii: bool) -> None:
        self.step = " " * indent
        self.ensure_ascii = ensure_ascii
        self.string: Callable[[str], str] = (
            encode_basestring_ascii if ensure_ascii else encode_basestring
        )
        self._flat: dict[str, Callable[[Any], str]] = {}

    def flat(self, separator: str) -> Callable[[Any], str]:
        """The C encoder with ``separator`` between items (no indentation of its own)."""
        encode = self._flat.get(separator)
        if encode is None:
            encode = self._flat[separator] = json.JSONEncoder(
                separators=(separator, ": "), ensure_ascii=self.ensure_ascii
            ).encode
        return encode

    def write(self, value: Any, pad: str) -> str:
        kind = type(value)
        if kind is str:
            return self.string(value)
        if kind in _SCALARS:
            return self.flat(",")(value)
        inner = pad + self.step
        if kind is dict:
            if not value:
                return "{}"
            if _scalars_only(value.values()):
                return "{" + inner + self.flat("," + inner)(value)[1:-1] + pad + "}"
            parts = []
            for key, item in value.items():
                if type(key) is not str:
                    raise _Unusual
                parts.append(f"{self.string(key)}: {self.write(item, inner)}")
            return "{" + inner + ("," + inner).join(parts) + pad + "}"
        if kind is list or kind is tuple:
            if not value:
                return "[]"
            if _scalars_only(value):
                return "[" + inner + self.flat("," + inner)(value)[1:-1] + pad + "]"
            if all(type(v) is dict and v and _scalars_only(v.values()) for v in value):
                return self._flat_objects(value, pad, inner)
            items = ("," + inner).join([self.write(v, inner) for v in value])
            return "[" + inner + items + pad + "]"
        raise _Unusual

    def _flat_objects(self, value: Any, pad: str, inner: str) -> str:
        """A list of non-empty objects of scalars (``paths_data.paths``), in one C call.

        Encoded with the objects' item separator throughout; between two objects that
        gives ``},<deeper pad>{``, which only occurs there, and is re-indented.
        """
        deeper = inner + self.step
        text = self.flat("," + deeper)(value)[2:-2]  # without the outer "[{" and "}]"
        text = text.replace("}," + deeper + "{", inner + "}," + inner + "{" + deeper)
        return "[" + inner + "{" + deeper + text + inner + "}" + pad + "]"


class _Unusual(Exception):
    """A value this writer leaves to :func:`json.dumps` (non-string keys, subclasses)."""


def _scalars_only(values: Iterable[Any]) -> bool:
    return all(type(v) in _SCALARS for v in values)


def dumps_indented(value: Any, indent: int, *, ensure_ascii: bool = True) -> str:
    """The same text as ``json.dumps(value, indent=indent, ensure_ascii=ensure_ascii)``."""
    if _C_INDENTS:
        return json.dumps(value, indent=indent, ensure_ascii=ensure_ascii)
    try:
        return _Writer(indent, ensure_ascii).write(value, "\n")
    except _Unusual:
        return json.dumps(value, indent=indent, ensure_ascii=ensure_ascii)

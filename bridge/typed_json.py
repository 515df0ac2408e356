"""Typed partial decoding of JSON records: only the fields a reader uses, type-checked.

A reader declares the fields it uses as a :class:`msgspec.Struct`; :func:`decode` builds
only those (everything else, such as a conda record's ``paths_data``, is skipped at C
speed without building a Python object) and checks their types. A field of the wrong
type is a :class:`FieldTypeError` worded for the person who has to fix the file:

>>> import msgspec
>>> class Record(msgspec.Struct):
...     name: str
...     files: list[str] = []
>>> decode(b'{"name": "zlib", "paths_data": {"paths": []}}', Record)
Record(name='zlib', files=[])
>>> try:
...     decode(b'{"name": "zlib", "files": ["a", 1]}', Record)
... except FieldTypeError as exc:
...     print(exc)
field files should be a list of strings, found a number

Malformed JSON raises :class:`json.JSONDecodeError` with the line and column
:mod:`json` gives (the message is the one ``json.loads`` would give).

Readers of environment files use :func:`read` (or :func:`load` for bytes they have):
the file is opened by :func:`vbridge.safefs.read_regular` (regular files only, size
cap, containment) and every failure is one :class:`~vbridge.errors.UnreadableFile`
naming it, worded as :func:`vbridge.safefs.load_json` words malformed JSON:

>>> try:
...     load(b'{"name": 1}', Record, "conda-meta/zlib-1.3-0.json")
... except UnreadableFile as exc:
...     print(exc)
conda-meta/zlib-1.3-0.json: field name should be a string, found a number (skipped)
"""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar, Union

import msgspec
from vbridge.errors import UnreadableFile
from vbridge.safefs import MAX_READ_BYTES, load_json, read_regular

__all__ = ["FieldTypeError", "InvalidValue", "convert", "decode", "describe", "load", "read"]

T = TypeVar("T")

_BOM = b"\xef\xbb\xbf"
# msgspec's error messages, read when a record is refused (re compiles each pattern on
# its first use: ~0.6 M instructions each, on every scan and link script otherwise).
_EXPECTED = r"Expected `(?P<expected>[^`]+)`, got `(?P<got>[^`]+)`(?: - at `\$(?P<at>.*)`)?$"
_MISSING = r"Object missing required field `(?P<field>[^`]+)`(?: - at `\$(?P<at>.*)`)?$"
_AT = r" - at `\$(?P<at>.*)`$"
_SEGMENT = r"\.([^.\[]+)|\[(\d+|\.\.\.)\]"
# msgspec's names of JSON types, as a person reads them.
_FOUND = {
    "str": "a string",
    "int": "a number",
    "float": "a number",
    "bool": "true or false",
    "null": "null",
    "array": "a list",
    "object": "an object",
}
_DECODERS: dict[Any, msgspec.json.Decoder[Any]] = {}


class FieldTypeError(ValueError):
    """A field of a JSON document is missing or of the wrong type.

    ``field`` is its dotted path (``spec.nodes.*.name``: ``*`` stands for any key or
    item); ``str()`` is the sentence to show after the file name.
    """

    def __init__(self, field: str, expected: str | None, found: str | None) -> None:
        self.field = field
        self.expected = expected
        self.found = found
        if expected is None:
            text = f"field {field} is missing"
        elif not field:
            text = f"should be {expected}, found {found}"
        else:
            text = f"field {field} should be {expected}, found {found}"
        super().__init__(text)


def decode(data: bytes, into: type[T]) -> T:
    """``data`` decoded as ``into`` (a Struct of the fields the caller uses).

    Raises :class:`FieldTypeError` for a missing or mistyped field,
    :class:`json.JSONDecodeError` for malformed JSON, ``ValueError`` for JSON nested
    too deeply to decode.
    """
    decoder = _DECODERS.get(into)
    if decoder is None:
        decoder = _DECODERS[into] = msgspec.json.Decoder(into)
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    try:
        return typing.cast(T, decoder.decode(data))
    except msgspec.ValidationError as exc:
        raise _field_error(str(exc), into) from None
    except msgspec.DecodeError:
        pass
    except RecursionError:
        raise ValueError("JSON nested too deeply to read") from None
    # What msgspec refuses the json module may accept (NaN, numbers beyond a double):
    # then its value is checked as msgspec would; else json says where the text goes
    # wrong, in the words users know (line, column).
    import json  # rare: msgspec decodes every well-formed record

    try:
        loaded = json.loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deeply to read") from None
    return convert(loaded, into)


def load(data: bytes, into: type[T], path: Path | str, *, hint: str = "skipped") -> T:
    """:func:`decode` of the bytes of the file ``path``; every failure (malformed JSON,
    not UTF-8, nested too deeply, a missing or mistyped field) is one
    :class:`~vbridge.errors.UnreadableFile` naming ``path``, with ``hint``."""
    try:
        return decode(data, into)
    except (FieldTypeError, InvalidValue) as exc:
        raise UnreadableFile(path, str(exc), hint) from None
    except (ValueError, UnicodeDecodeError):
        pass
    load_json(data, path, hint=hint)  # raises, in its words (line and column)
    raise UnreadableFile(path, "JSON nested too deeply to read", hint)


def read(
    path: Path | str,
    into: type[T],
    *,
    root: Path | None = None,
    limit: int = MAX_READ_BYTES,
    hint: str = "skipped",
) -> T:
    """:func:`load` of :func:`vbridge.safefs.read_regular`: a typed JSON file of an
    environment. Raises :class:`FileNotFoundError` if there is no such file."""
    return load(read_regular(path, root=root, limit=limit, hint=hint), into, path, hint=hint)


def convert(value: Any, into: type[T]) -> T:
    """An already parsed JSON value (``json.load``'s) checked and converted to ``into``.

    Raises :class:`FieldTypeError` as :func:`decode` does.
    """
    try:
        return msgspec.convert(value, into)
    except msgspec.ValidationError as exc:
        raise _field_error(str(exc), into) from None


class InvalidValue(ValueError):
    """A value msgspec refuses although its type is right (a number out of range)."""


def _field_error(message: str, root: Any) -> FieldTypeError | InvalidValue:
    match = re.match(_EXPECTED, message)
    if match is not None:
        field, expected_type = _resolve(match["at"] or "", root)
        expected = describe(expected_type) if expected_type is not None else match["expected"]
        return FieldTypeError(field, expected, _FOUND.get(match["got"], match["got"]))
    match = re.match(_MISSING, message)
    if match is not None:
        field, _ = _resolve(match["at"] or "", root)
        return FieldTypeError(f"{field}.{match['field']}" if field else match["field"], None, None)
    # Anything else msgspec checks (a number out of range...): its words, our path.
    at = re.search(_AT, message)
    if at is None:
        return InvalidValue(message)
    field, _ = _resolve(at["at"], root)
    return InvalidValue(f"field {field}: {message[: at.start()]}")


def _resolve(at: str, root: Any) -> tuple[str, Any]:
    """The dotted field path of a msgspec error location and the type declared for the
    innermost *named* field on it (an item's error is told as its list's)."""
    names: list[str] = []
    current: Any = root
    declared: Any = root
    for name, index in re.findall(_SEGMENT, at):
        if name:
            names.append(name)
            current = _member(current, name)
            declared = current
        else:
            if index == "...":
                names.append("*")
            current = _item(current)
            if index == "...":
                declared = current
    return ".".join(names), declared


def _options(tp: Any) -> list[Any]:
    origin = typing.get_origin(tp)
    if origin is Union or origin is types.UnionType:
        return [a for a in typing.get_args(tp) if a is not type(None)]
    return [tp]


def _member(tp: Any, name: str) -> Any:
    for option in _options(tp):
        if isinstance(option, type) and issubclass(option, msgspec.Struct):
            for field in msgspec.structs.fields(option):
                if field.encode_name == name:
                    return field.type
        origin = typing.get_origin(option)
        if origin is dict:
            return typing.get_args(option)[1]
    return None


def _item(tp: Any) -> Any:
    for option in _options(tp):
        origin = typing.get_origin(option)
        if origin in (list, tuple, set, frozenset):
            args = typing.get_args(option)
            return args[0] if args else Any
        if origin is dict:
            return typing.get_args(option)[1]
    return None


def describe(tp: Any) -> str:
    """A type annotation in words.

    >>> describe(list[str])
    'a list of strings'
    >>> describe(str | list[str] | None)   # null is an optional field's absence
    'a string or a list of strings'
    """
    origin = typing.get_origin(tp)
    if origin is Union or origin is types.UnionType:
        # An optional field's null is its absence: it is not what the field "should be".
        words = [describe(a) for a in typing.get_args(tp) if a is not type(None)]
        return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]
    if origin in (list, tuple, set, frozenset):
        args = typing.get_args(tp)
        return f"a list of {_plural(args[0])}" if args and args[0] is not Any else "a list"
    if origin is dict:
        value = typing.get_args(tp)[1]
        return "an object" if value is Any else f"an object of {_plural(value)}"
    if origin is typing.Literal:
        import json

        return " or ".join(json.dumps(v) for v in typing.get_args(tp))
    return _SINGULAR.get(tp, "an object")


_SINGULAR: dict[Any, str] = {
    str: "a string",
    int: "a whole number",
    float: "a number",
    bool: "true or false",
    type(None): "null",
    Any: "any value",
}
_PLURALS: dict[Any, str] = {
    str: "strings",
    int: "whole numbers",
    float: "numbers",
    bool: "booleans",
    Any: "values",
}


def _plural(tp: Any) -> str:
    if tp in _PLURALS:
        return _PLURALS[tp]
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        return "lists"
    if origin is Union or origin is types.UnionType:
        return " or ".join(_plural(a) for a in typing.get_args(tp))
    return "objects"

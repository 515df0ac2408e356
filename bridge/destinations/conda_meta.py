"""Registering vbridge's files in the owning ``conda-meta/<pkg>.json`` PrefixRecord.

conda removes what a record's ``files`` lists; rattler/pixi (and mamba) remove what
``paths_data.paths`` lists. vbridge adds its files to both, with ``path_type``
``hardlink``, ``sha256`` and ``size_in_bytes``, so removing the package with any conda
installer removes them and no ghost ``.dist-info`` is left. When a ``paths_data`` entry
of an edited file (``RECORD``) carries ``sha256_in_prefix`` (conda's record of what is
on disk, which ``conda doctor`` checks), it is updated to the new content.

The record is re-serialised in the layout it was read in (indentation, key order,
trailing newline, escaped or raw non-ASCII): records written by conda, micromamba and
rattler round-trip byte for byte, so only vbridge's entries differ.

>>> import json
>>> text = json.dumps({"name": "numpy", "files": ["a"], "paths_data": {"paths_version": 1,
...     "paths": [{"_path": "a", "path_type": "hardlink", "sha256": "00", "size_in_bytes": 0}]}},
...     indent=2).encode()
>>> edited = meta_with(text, {"b": b"{}"}, managed={"b"}, rewritten={})
>>> json.loads(edited)["files"]
['a', 'b']
>>> meta_with(edited, {}, managed={"b"}, rewritten={}) == text
True
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Mapping
from typing import Any

import msgspec
from vbridge.destinations.json_text import dumps
from vbridge.destinations.record import REGISTRAR as RECORD
from vbridge.destinations.registrar import Registrar
from vbridge.safefs import sha256_hex

__all__ = ["REGISTRAR", "CondaMetaRecord", "meta_paths", "meta_with"]


class _Layout(msgspec.Struct, frozen=True):
    """How a JSON document was written: indentation, final newline, escaped non-ASCII."""

    indent: int | None
    trailing_newline: bool
    ascii_only: bool

    @classmethod
    def of(cls, data: bytes) -> _Layout:
        text = data.decode("utf-8")
        # The first indented line tells the indentation: it is near the top (the lines
        # of the head are the text's lines, the last one maybe cut after its indent).
        head = text[:_HEAD]
        indent = _indent_of(head)
        if indent is None and len(head) < len(text):
            indent = _indent_of(text)
        return cls(indent, text.endswith("\n"), data.isascii())

    def dump(self, record: dict[str, Any], plain: bool = False) -> bytes:
        text = dumps(record, self.indent, ensure_ascii=self.ascii_only, plain=plain)
        return (text + ("\n" if self.trailing_newline else "")).encode("utf-8")


_HEAD = 4096


def _indent_of(text: str) -> int | None:
    """The indentation of the first line after the first that has both leading spaces
    and something after them."""
    for line in text.splitlines()[1:]:
        stripped = line.lstrip(" ")
        if stripped and len(stripped) != len(line):
            return len(line) - len(stripped)
    return None


class _Float(Exception):
    """A float in a record: decoded by the json module (msgspec spells some apart)."""


def _refuse_float(text: str) -> Any:
    raise _Float


# What json.loads gives, for every document this decoder accepts without a float; the
# rest (a float, NaN, a BOM, a lone surrogate, UTF-16...) is left to json.loads.
_DECODER = msgspec.json.Decoder(float_hook=_refuse_float)


def _load(data: bytes) -> tuple[Any, bool]:
    """``json.loads(data)``, and whether the result is plain (no float in it)."""
    try:
        return _DECODER.decode(data), True
    except (msgspec.DecodeError, _Float):
        import json  # rare: what the decoder leaves to json.loads

        return json.loads(data), False


def _insert_sorted(items: list[Any], item: Any, key: Any) -> None:
    keys = [key(i) for i in items]
    if keys == sorted(keys):
        items.insert(bisect.bisect(keys, key(item)), item)
    else:
        items.append(item)


def meta_paths(data: bytes) -> set[str]:
    """Every path a PrefixRecord lists, in ``files`` or ``paths_data``."""
    record, _ = _load(data)
    paths = {p for p in record.get("files") or [] if isinstance(p, str)}
    for entry in (record.get("paths_data") or {}).get("paths") or []:
        if isinstance(entry, dict) and isinstance(entry.get("_path"), str):
            paths.add(entry["_path"])
    return paths


def meta_with(
    data: bytes,
    added: Mapping[str, bytes],
    managed: Collection[str],
    rewritten: Mapping[str, bytes],
) -> bytes:
    """``data`` with vbridge's ``managed`` paths removed and ``added`` ones registered.

    Paths are relative to the prefix. ``rewritten`` maps files the record already owns
    (a RECORD vbridge edited) to their new content, for ``sha256_in_prefix``.
    Raises ``ValueError`` if ``data`` is not a PrefixRecord object. When nothing changes
    (none of vbridge's paths there, nothing added), ``data`` itself is returned: a record
    vbridge never touched keeps its bytes whatever its layout (a BOM, CRLF, tabs, ``\\/``,
    a duplicate key), so the original annotate backs up is the file as it was.

    >>> layout = b'\\xef\\xbb\\xbf{"files":["a\\\\/b"],\\r\\n\\t"name":"x","name":"y","v":0.0e0}'
    >>> meta_with(layout, {}, managed={"c"}, rewritten={}) == layout
    True
    """
    record, plain = _load(data)
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    layout = _Layout.of(data)
    drop = set(managed) | set(added)

    changed = bool(added)
    files = record.get("files")
    if files is None and added:
        files = record["files"] = []
    if not isinstance(files, list | None):
        raise ValueError("'files' is not a list")
    if files is not None:
        before = len(files)
        files[:] = [f for f in files if not (isinstance(f, str) and f in drop)]
        changed = changed or len(files) != before
        for path in sorted(added):
            _insert_sorted(files, path, key=str)

    paths_data = record.get("paths_data")
    if paths_data is None:
        if not added:
            return layout.dump(record, plain) if changed else data
        paths_data = record["paths_data"] = {"paths_version": 1, "paths": []}
    entries = paths_data.get("paths") if isinstance(paths_data, dict) else None
    if not isinstance(entries, list):
        raise ValueError("'paths_data.paths' is not a list")
    before = len(entries)
    entries[:] = [e for e in entries if not (isinstance(e, dict) and _entry_path(e) in drop)]
    changed = changed or len(entries) != before
    with_in_prefix = any(isinstance(e, dict) and "sha256_in_prefix" in e for e in entries)
    for entry in entries:
        if (
            isinstance(entry, dict)
            and _entry_path(entry) in rewritten
            and ("sha256_in_prefix" in entry)
        ):
            digest = sha256_hex(rewritten[_entry_path(entry)])
            changed = changed or entry["sha256_in_prefix"] != digest
            entry["sha256_in_prefix"] = digest
    if not changed:
        return data
    for path in sorted(added):
        content = added[path]
        digest = sha256_hex(content)
        new: dict[str, Any] = {"_path": path, "path_type": "hardlink", "sha256": digest}
        if with_in_prefix:
            new["sha256_in_prefix"] = new["sha256"]
        new["size_in_bytes"] = len(content)
        _insert_sorted(entries, new, key=_entry_path)
    return layout.dump(record, plain)


def _entry_path(entry: Any) -> str:
    path = entry.get("_path", "") if isinstance(entry, dict) else ""
    return path if isinstance(path, str) else ""  # a list is not a path (and not hashable)


class CondaMetaRecord(Registrar):
    """The owning ``conda-meta/<pkg>.json``: prefix-relative ``files`` and
    ``paths_data``; the RECORDs it lists are edited first (their ``sha256_in_prefix``)."""

    ORDER = 1

    def claims(self, path: str) -> bool:
        return path.startswith("conda-meta/") and path.endswith(".json")

    def edited(
        self,
        path: str,
        current: bytes,
        added: Mapping[str, bytes],
        dropped: Collection[str],
        earlier: Mapping[str, bytes],
    ) -> bytes:
        rewritten = {p: data for p, data in earlier.items() if RECORD.claims(p)}
        return meta_with(current, added, dropped, rewritten)


REGISTRAR = CondaMetaRecord()

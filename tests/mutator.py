"""A seeded mutator of install records: what a damaged disk, a half-written file or a
hostile user could leave where vbridge reads.

``mutate(rng, data, kind)`` returns new bytes for one file: JSON documents are mutated
in their structure (a value replaced by one of another type, a key dropped, a huge
integer, deep nesting, a duplicate key) or as text (truncated, bytes flipped, inserted,
deleted, duplicated, a BOM, invalid UTF-8); line-based formats (dpkg status, ``.list``,
RECORD, METADATA) by lines and bytes; zip archives by bytes of their headers and data.
The same seed gives the same cases, so a failure names the seed and case that found it.

>>> import random
>>> mutate(random.Random(1), b'{"a": [1]}', "json") != b'{"a": [1]}'
True
"""

from __future__ import annotations

import json
import random
from typing import Any

__all__ = ["is_json", "mutate"]

_HUGE_INT = "9" * 5000
_DEEP = 5000


def _random_value(rng: random.Random) -> Any:
    return rng.choice(
        [
            0,
            -1,
            1.5,
            1e308,
            "",
            "libblas",
            "x" * rng.randint(1, 300),
            "é\u0000\ud7ff",
            [],
            [1, 2],
            ["a", None],
            {},
            {"a": 1},
            None,
            True,
            False,
            "__HUGE_INT__",
            "__DEEP__",
        ]
    )


def _nodes(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a JSON value (capped, so a large record stays cheap)."""
    found = [path]
    stack: list[tuple[tuple[Any, ...], Any]] = [(path, value)]
    while stack and len(found) < 4000:
        where, node = stack.pop()
        items: list[tuple[Any, Any]] = []
        if isinstance(node, dict):
            items = list(node.items())
        elif isinstance(node, list):
            items = list(enumerate(node))
        for key, child in items:
            found.append((*where, key))
            stack.append(((*where, key), child))
    return found


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


def _dumps(value: Any, rng: random.Random) -> bytes:
    indent = rng.choice([None, 1, 2, 4])
    text = json.dumps(value, indent=indent, ensure_ascii=rng.random() < 0.5)
    text = text.replace('"__HUGE_INT__"', _HUGE_INT)
    text = text.replace('"__DEEP__"', "[" * _DEEP + "]" * _DEEP)
    return text.encode("utf-8", "surrogatepass")


def _structural(rng: random.Random, data: bytes) -> bytes | None:
    try:
        document = json.loads(data)
    except ValueError:
        return None
    paths = _nodes(document)
    path = rng.choice(paths)
    op = rng.random()
    if not path:
        return _dumps(_random_value(rng), rng)
    parent = _get(document, path[:-1])
    key = path[-1]
    if op < 0.6:
        parent[key] = _random_value(rng)
    elif op < 0.8:
        del parent[key]
    elif op < 0.9 and isinstance(parent, dict):
        text = _dumps(document, rng)
        # A duplicate key: the same member written twice, the second time changed.
        member = json.dumps(str(key)).encode() + b": " + _dumps(_random_value(rng), rng)
        at = text.find(b"{")
        return text[: at + 1] + member + b"," + text[at + 1 :] if at >= 0 else text
    else:
        parent[key] = [parent[key]] if rng.random() < 0.5 else {"x": parent[key]}
    return _dumps(document, rng)


def _textual(rng: random.Random, data: bytes) -> bytes:
    op = rng.randrange(11)
    n = len(data)
    at = rng.randint(0, max(n - 1, 0))
    if op == 0:
        return data[: rng.randint(0, n)]  # truncated
    if op == 1 and n:
        flipped = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(n)
            flipped[i] ^= 1 << rng.randrange(8)
        return bytes(flipped)
    if op == 2:
        return data[:at] + rng.randbytes(rng.randint(1, 64)) + data[at:]
    if op == 3:
        return data[:at] + data[at + rng.randint(1, 256) :]
    if op == 4:
        end = min(n, at + rng.randint(1, 512))
        return data[:end] + data[at:end] * rng.randint(1, 4) + data[end:]
    if op == 5:
        return b"\xef\xbb\xbf" + data
    if op == 6:
        return data[:at] + b"\xff\xfe\xc3(" + data[at:]
    if op == 7:
        return data[:at] + b"\x00" * rng.randint(1, 16) + data[at:]
    if op == 8:
        return rng.choice([b"", b"[]", b"{}", b"null", b"1", b'"x"', b"\n", b"[" * _DEEP])
    if op == 9:
        return data.replace(b"\n", b"\r\n")
    return data + data  # two documents back to back


def _lines(rng: random.Random, data: bytes) -> bytes:
    lines = data.split(b"\n")
    if not lines:
        return data
    i = rng.randrange(len(lines))
    op = rng.randrange(7)
    if op == 0:
        del lines[i]
    elif op == 1:
        lines.insert(i, lines[i])
    elif op == 2:
        lines.insert(i, rng.choice([b"garbage", b" continuation", b":", b"A" * 100000, b"X: y"]))
    elif op == 3:
        lines[i] = lines[i][: rng.randint(0, len(lines[i]))]
    elif op == 4:
        j = rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    elif op == 5:
        lines[i] = lines[i].replace(b":", b"", 1)
    else:
        lines[i] = b"/" + b"../" * rng.randint(1, 20) + b"etc/passwd"
    return b"\n".join(lines)


def is_json(data: bytes) -> bool:
    """Whether ``data`` is one JSON document Python reads (as vbridge's readers would)."""
    try:
        json.loads(data)
    except (ValueError, RecursionError):
        return False
    return True


def mutate(rng: random.Random, data: bytes, kind: str) -> bytes:
    """One mutation of ``data``, a file of ``kind`` ("json", "lines" or "zip")."""
    if kind == "json" and rng.random() < 0.6:
        out = _structural(rng, data)
        if out is not None:
            return out
    if kind == "lines" and rng.random() < 0.6:
        return _lines(rng, data)
    if kind == "zip" and data:
        # Header and central-directory bytes matter most: mutate near the ends too.
        spot = rng.choice([0, len(data) - 22, rng.randrange(len(data))])
        spot = max(0, min(spot, len(data) - 1))
        damaged = bytearray(data)
        for i in range(spot, min(len(data), spot + rng.randint(1, 30))):
            if rng.random() < 0.5:
                damaged[i] = rng.randrange(256)
        return bytes(damaged) if rng.random() < 0.8 else _textual(rng, data)
    return _textual(rng, data)

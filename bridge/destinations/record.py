"""Edits to a ``.dist-info/RECORD`` (PEP 376 / PEP 627), row by row.

vbridge only ever adds rows for the files it writes, so ``pip uninstall`` removes them.
Every other row is kept byte for byte; vbridge's rows go, sorted, just before the row of
``RECORD`` itself (or at the end), so editing an original RECORD and re-editing an
edited one give the same bytes.

>>> original = b"pkg/__init__.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\\n" \\
...            b"pkg-1.0.dist-info/RECORD,,\\n"
>>> added = {"pkg-1.0.dist-info/variant.json": b"{}"}
>>> edited = record_with(original, added, managed=added)
>>> print(edited.decode(), end="")
pkg/__init__.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0
pkg-1.0.dist-info/variant.json,sha256=RBNvo1WzZ4oRRq0W9-hknpT7T8If536DEMBg9hyq_4o,2
pkg-1.0.dist-info/RECORD,,
>>> record_with(edited, added, managed=added) == edited
True
>>> record_with(edited, {}, managed=added) == original
True
"""

from __future__ import annotations

import binascii
import csv
import io
from collections.abc import Collection, Mapping

import msgspec
from vbridge.destinations.registrar import Registrar
from vbridge.safefs import sha256_digest

__all__ = [
    "REGISTRAR",
    "DistInfoRecord",
    "RecordEntry",
    "RecordLine",
    "parse_record",
    "record_entry",
    "record_paths",
    "record_with",
]


class RecordEntry(msgspec.Struct, frozen=True):
    """One RECORD row: a path, its hash (``sha256=<urlsafe b64, unpadded>``) and size.

    The rows are read and written with the csv module as PEP 376 says (comma-separated,
    ``"`` quoting) and checked as installer's RECORD model checks them (a path; a
    ``name=value`` hash of an algorithm hashlib knows; an integer size), without
    importing installer: its package imports the email package, ~30 ms of every conda
    post-link script. ``tests/test_record_rows.py`` compares the two row by row.
    """

    path: str
    hash: str = ""
    size: int | None = None

    @classmethod
    def from_row(cls, row: list[str]) -> RecordEntry:
        """Check one parsed row; ``ValueError`` says what is wrong with it."""
        if len(row) != 3:
            raise ValueError(f"expected 3 elements, got {len(row)}")
        path, hash_, size = row
        issues = []
        if not path:
            issues.append("`path` cannot be empty")
        if hash_:
            name, sep, _ = hash_.partition("=")
            if not sep:
                issues.append("`hash` does not follow the required format")
            elif name not in _GUARANTEED_ALGORITHMS and not _available_algorithm(name):
                issues.append(f"invalid hash algorithm '{name}'")
        if size:
            try:
                size_value: int | None = int(size)
            except ValueError:
                issues.append("`size` cannot be non-integer")
        else:
            size_value = None
        if issues:
            raise ValueError(", ".join(issues))
        return cls(path.replace("\\", "/"), hash_, size_value)

    def to_row(self) -> tuple[str, str, str]:
        return (self.path, self.hash, "" if self.size is None else str(self.size))


class RecordLine(msgspec.Struct, frozen=True):
    """One physical line of a RECORD: its raw bytes and the entry it holds."""

    raw: bytes
    entry: RecordEntry | None  # None for a blank line


# hashlib.algorithms_guaranteed, which hashlib.algorithms_available always holds: a
# RECORD row's usual algorithm is checked without importing hashlib (it loads
# OpenSSL's library, ~11 M instructions of a post-link hook).
_GUARANTEED_ALGORITHMS = frozenset(
    ("md5", "sha1", "sha224", "sha256", "sha384", "sha512", "blake2b", "blake2s",
     "sha3_224", "sha3_256", "sha3_384", "sha3_512", "shake_128", "shake_256")
)  # fmt: skip


def _available_algorithm(name: str) -> bool:
    import hashlib

    return name in hashlib.algorithms_available


# The URL-safe base64 alphabet (RFC 4648 section 5); binascii spares importing base64.
_URLSAFE = bytes.maketrans(b"+/", b"-_")


def record_entry(path: str, data: bytes) -> RecordEntry:
    """The RECORD entry for a file with content ``data``: sha256 and size."""
    encoded = binascii.b2a_base64(sha256_digest(data), newline=False)
    digest = encoded.translate(_URLSAFE).decode("ascii")  # base64.urlsafe_b64encode
    return RecordEntry(path, f"sha256={digest.rstrip('=')}", len(data))


def parse_record(data: bytes) -> list[RecordLine]:
    """Split a RECORD into lines and parse each one; ``ValueError`` names a bad row."""
    lines: list[RecordLine] = []
    for number, raw in enumerate(data.splitlines(keepends=True), start=1):
        text = raw.decode("utf-8").rstrip("\r\n")
        if not text.strip():
            lines.append(RecordLine(raw, None))
            continue
        try:
            (row,) = list(csv.reader([text], delimiter=",", quotechar='"'))
            entry = RecordEntry.from_row(row)
        except (csv.Error, ValueError) as exc:
            raise ValueError(f"row {number} is not a RECORD row ({exc})") from exc
        lines.append(RecordLine(raw, entry))
    return lines


def record_paths(data: bytes) -> set[str]:
    """The paths a RECORD lists."""
    return {line.entry.path for line in parse_record(data) if line.entry is not None}


def _row_bytes(entry: RecordEntry, newline: str) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=",", quotechar='"', lineterminator=newline).writerow(
        entry.to_row()
    )
    return buffer.getvalue().encode("utf-8")


def record_with(data: bytes, added: Mapping[str, bytes], managed: Collection[str]) -> bytes:
    """``data`` with the rows of ``managed`` paths removed and rows for ``added`` put in.

    ``added`` maps RECORD paths (relative to site-packages) to file contents;
    ``managed`` are all the paths vbridge owns in this RECORD (added ones included).
    """
    lines = parse_record(data)
    drop = set(managed) | set(added)
    kept = [line for line in lines if line.entry is None or line.entry.path not in drop]
    newline = "\r\n" if lines and lines[0].raw.endswith(b"\r\n") else "\n"
    rows = [_row_bytes(record_entry(path, added[path]), newline) for path in sorted(added)]
    if not rows:
        return b"".join(line.raw for line in kept)
    at = len(kept)
    for i, line in enumerate(kept):
        if line.entry is not None and line.entry.path.endswith(".dist-info/RECORD"):
            at = i
            break
    before = [line.raw for line in kept[:at]]
    if before and not before[-1].endswith(b"\n"):
        before[-1] += newline.encode()
    return b"".join([*before, *rows, *(line.raw for line in kept[at:])])


class DistInfoRecord(Registrar):
    """A dist-info's ``RECORD``: rows relative to the site-packages directory."""

    ORDER = 0

    def claims(self, path: str) -> bool:
        return path.endswith("/RECORD")

    def edited(
        self,
        path: str,
        current: bytes,
        added: Mapping[str, bytes],
        dropped: Collection[str],
        earlier: Mapping[str, bytes],
    ) -> bytes:
        base = path[: -len("/RECORD")].rsplit("/", 1)[0]  # the site-packages directory
        return record_with(
            current,
            {_relative(base, p): data for p, data in added.items()},
            {_relative(base, p) for p in dropped},
        )


def _relative(base: str, path: str) -> str:
    """A path from the root as RECORD spells it (relative to site-packages)."""
    return path[len(base) + 1 :] if path.startswith(base + "/") else path


REGISTRAR = DistInfoRecord()

"""TOML files parsed once per change: vbridge's rule and data files, kept parsed.

Every conda post-link script (one process per package an install links) and every
scan reads the same few TOML files of ``data/`` (the ecosystem's rules,
``annotate.toml``, ``variant_plugins.toml``); importing :mod:`tomllib` and parsing
three of them is ~23 M instructions of a ~280 M hook. :func:`load_toml` keeps what a
file parsed to in ``$XDG_CACHE_HOME/vbridge/toml/`` (:mod:`marshal` data, as the kept
scan's, keyed by the file's size, mtime, ctime and inode, and the Python version) and
gives it back while the file is unchanged, without importing tomllib.

Nothing is kept for a file changed less than a second ago (it could change again with
the same size and mtime), nor for a value marshal cannot hold exactly (TOML's dates
and times: parsed each time). ``VBRIDGE_NO_CACHE=1`` turns this off; a damaged,
foreign or unreadable kept file is a miss, never an error.

>>> import tempfile
>>> path = Path(tempfile.mkdtemp()) / "x.toml"
>>> _ = path.write_text('[a]\\nb = [1, 2.5, "c"]\\n')
>>> load_toml(path)
{'a': {'b': [1, 2.5, 'c']}}
"""

from __future__ import annotations

import marshal
import os
import sys
import time
import zlib
from pathlib import Path
from typing import Any

from vbridge.scan_cache import RACY_NS, cache_home, read_kept

__all__ = ["load_toml", "toml_decode_error", "toml_module"]

_FORMAT = 1
# TOML files kept parsed: the directory is pruned to those read last.
_KEPT_FILES = 256


def load_toml(path: Path) -> dict[str, Any]:
    """``tomllib.loads`` of the file at ``path`` (UTF-8), kept while it is unchanged.

    Raises what reading and parsing it raise (``OSError``, ``UnicodeDecodeError``,
    ``tomllib.TOMLDecodeError``).
    """
    st = os.stat(path)
    key = (_FORMAT, sys.version_info[:2], os.path.abspath(path), *_signature(st))
    kept_path = _kept_file(key) if not os.environ.get("VBRIDGE_NO_CACHE") else None
    if kept_path is not None:
        kept = _load(kept_path, key)
        if kept is not None:
            return kept
    data: dict[str, Any] = toml_module().loads(path.read_text(encoding="utf-8"))
    if kept_path is not None and st.st_mtime_ns <= time.time_ns() - RACY_NS:  # not racily clean
        _save(kept_path, key, data)
    return data


def toml_module() -> Any:
    """tomllib (tomli before Python 3.11), imported when a file is parsed (~12 M
    instructions, with the module :mod:`string` it imports)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    return tomllib


def toml_decode_error() -> type[ValueError]:
    """The error :func:`load_toml` raises for a file that is not TOML
    (``tomllib.TOMLDecodeError``): imported only when one is raised."""
    error: type[ValueError] = toml_module().TOMLDecodeError
    return error


def _signature(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def _kept_file(key: tuple[Any, ...]) -> str:
    return os.path.join(cache_home(), "toml", f"{zlib.crc32(marshal.dumps(key)):08x}.marshal")


def _load(kept_path: str, key: tuple[Any, ...]) -> dict[str, Any] | None:
    """The kept data for ``key``, None when there is none (or it cannot be trusted:
    marshal data is trusted data, so a file another user owns or could write is
    not read)."""
    try:
        stored_key, data = read_kept(kept_path)
    except (ValueError, TypeError):
        return None  # missing, damaged, another Python's marshal: a miss
    if stored_key != key or type(data) is not dict:
        return None
    return data


def _save(kept_path: str, key: tuple[Any, ...], data: dict[str, Any]) -> None:
    if not _marshal_exact(data):
        return
    from vbridge.safefs import write_cache_file

    write_cache_file(Path(kept_path), marshal.dumps((key, data)), keep=_KEPT_FILES)


def _marshal_exact(value: object) -> bool:
    """Whether marshal gives ``value`` back as it is: tables, arrays, strings, integers,
    floats and booleans (not TOML's dates and times, which marshal cannot hold)."""
    if type(value) is dict:
        return all(type(k) is str and _marshal_exact(v) for k, v in value.items())
    if type(value) is list:
        return all(_marshal_exact(v) for v in value)
    return type(value) in (str, int, float, bool)

"""The environment as Python imports it: which copy of each import name is active.

A distribution's *import names* are the top-level names it puts on ``sys.path``
(``top_level.txt``, else the first component of each ``RECORD`` row, else its name):
Debian's ``h5py._debian_h5py_mpi`` distribution provides ``h5py``, ``PyYAML`` provides
``yaml`` and ``_yaml``. Layers are searched in ``sys.path`` order, so a name is imported
from the first layer that holds a distribution claiming it; every copy in a later layer
is shadowed by that one. Within one layer every claimant is active (Debian's two h5py
builds: ``h5py/__init__.py`` picks one at import), except two copies of one
distribution: the last one written holds the files.

>>> top_level_from_record(["yaml/__init__.py", "_yaml/__init__.py",
...     "PyYAML-6.0.dist-info/RECORD", "../../bin/x", "six.py",
...     "numpy.libs/libopenblas.so", "_cffi.cpython-311-x86_64-linux-gnu.so"])
('_cffi', '_yaml', 'six', 'yaml')
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from vbridge.errors import UnreadableFile
from vbridge.model import Distribution, Environment
from vbridge.safefs import open_regular, read_regular

__all__ = [
    "active_copies",
    "assign_active",
    "import_names_of",
    "record_paths",
    "resolve_active",
    "top_level_from_record",
]

_MAX_METADATA_BYTES = 16 << 20  # a RECORD larger than this is not read


def record_paths(text: str, *, strict: bool = False) -> list[str]:
    """The paths (first column) of a ``RECORD``: CSV, quoted only where a path holds a
    comma, a quote or a line break; without a quote (or a carriage return) the path is
    what precedes the first comma of each line (no csv reader, nor its import, needed:
    most RECORDs quote nothing). Lines end at ``\\n`` alone, as the csv reader's do
    (not at the form feeds and Unicode separators a path may hold). Not CSV: ``[]``,
    or ``ValueError`` when ``strict``.

    >>> record_paths('a/b.py,sha256=x,12\\n"c,d.py",,\\n')
    ['a/b.py', 'c,d.py']
    >>> record_paths('a\\x0cb.py,,\\nc\\u2028d.py,,\\n')
    ['a\\x0cb.py', 'c\\u2028d.py']
    """
    if '"' not in text and "\r" not in text:
        return [line.split(",", 1)[0] for line in text.split("\n") if line]
    import csv  # a quoted RECORD only

    try:
        return [row[0] for row in csv.reader(io.StringIO(text, newline="")) if row]
    except csv.Error as exc:
        if strict:
            raise ValueError(f"not CSV: {exc}") from None
        return []


def top_level_from_record(paths: Iterable[str]) -> tuple[str, ...]:
    """Importable top-level names among the paths of a ``RECORD``."""
    names: set[str] = set()
    for path in paths:
        head = path.replace("\\", "/").split("/", 1)[0]
        if not head or head.startswith("..") or head == "__pycache__":
            continue
        if head.endswith((".dist-info", ".egg-info", ".data", ".pth")):
            continue
        if "/" not in path.replace("\\", "/"):  # a module file at the top
            if head.endswith(".py"):
                head = head[:-3]
            elif head.endswith((".so", ".pyd")):
                head = head.split(".", 1)[0]
            else:
                continue
        if head.isidentifier():
            names.add(head)
    return tuple(sorted(names))


def _read_text(path: Path | str) -> str | None:
    """A metadata file's text: regular files only, at most ``_MAX_METADATA_BYTES``."""
    try:
        data = read_regular(path, limit=_MAX_METADATA_BYTES)
    except (OSError, UnreadableFile):
        return None
    return data.decode("utf-8", errors="replace")


def _join(directory: str, name: str) -> str:
    """``os.path.join(directory, name)`` of a name without separators, as text on POSIX
    (a scan joins two names for each of hundreds of distributions)."""
    if os.sep == "/" and directory and not directory.endswith("/"):
        return f"{directory}/{name}"
    return os.path.join(directory, name)


def _from_wheel(wheel: Path) -> tuple[str, ...]:
    """The top-level names of a wheel file's members (a candidate not installed yet)."""
    import zipfile  # only for a wheel file (a candidate): a scan imports no zipfile

    try:
        with zipfile.ZipFile(open_regular(wheel)) as zf:
            return top_level_from_record(zf.namelist())
    except (OSError, UnreadableFile, zipfile.BadZipFile, ValueError):
        return ()


def import_names_of(dist: Distribution) -> tuple[str, ...]:
    """The top-level names ``dist`` provides, from what its metadata directory says.

    ``top_level.txt`` (setuptools, Debian), else ``RECORD``, else the distribution's
    name as an identifier (``python-dateutil`` -> ``python_dateutil``): what pip
    itself would guess. A wheel file (a candidate) is read from its file list.
    """
    meta = dist.dist_info
    suffix = meta.suffix
    if suffix == ".whl":
        found = _from_wheel(meta)
        if found:
            return found
    else:
        # Only opened: joined as text (a Path per file is most of the cost of a small read).
        base = _join(str(meta), "EGG-INFO") if suffix == ".egg" else str(meta)
        text = _read_text(_join(base, "top_level.txt"))
        if text is not None:
            names = tuple(sorted({n.strip().split("/")[0] for n in text.splitlines()} - {""}))
            if names:
                return names
        text = _read_text(_join(base, "RECORD"))
        if text is not None:
            found = top_level_from_record(record_paths(text))
            if found:
                return found
    return (dist.name.replace("-", "_"),)


def resolve_active(env: Environment) -> None:
    """Give every distribution its import names and, when a copy in an earlier layer
    wins all of them, ``shadowed_by`` that copy.

    A collection of environments (a Spack install tree) is never one ``sys.path``: all
    its copies count as active.
    """
    assign_active(env.distributions, env.site_packages, collection=env.collection)


def assign_active(
    dists: Sequence[Distribution], layers: Sequence[Path], collection: bool = False
) -> None:
    """:func:`resolve_active` for any set of distributions (the gate's state after an
    install): ``layers`` in ``sys.path`` order."""
    for dist in dists:
        if not dist.import_names:
            dist.import_names = import_names_of(dist)
        dist.shadowed_by = None
    if collection:
        return
    for dist, winner in _shadows(dists, layers):
        dist.shadowed_by = winner


def _shadows(
    dists: Sequence[Distribution], layers: Sequence[Path]
) -> list[tuple[Distribution, Distribution]]:
    """``(shadowed copy, the copy that wins its first name)`` pairs."""
    order = {str(layer): i for i, layer in enumerate(layers)}

    def rank(d: Distribution) -> int:
        return order.get(d.layer, len(order))

    first_layer: dict[str, int] = {}
    winner_of: dict[str, Distribution] = {}
    for dist in sorted(dists, key=rank):
        for name in (*dist.import_names, f"dist:{dist.name}"):
            if name not in first_layer:
                first_layer[name] = rank(dist)
                winner_of[name] = dist
    shadowed: list[tuple[Distribution, Distribution]] = []
    for dist in dists:
        names = dist.import_names or (f"dist:{dist.name}",)
        if max(first_layer[n] for n in names) < rank(dist):  # every name won elsewhere
            shadowed.append((dist, winner_of[names[0]]))
    # Two copies of one distribution in one layer (pip --target --upgrade beside
    # conda's): the files on disk are the last install's, so its copy is the one used.
    done = {id(d) for d, _ in shadowed}
    same: dict[tuple[int, str], list[Distribution]] = {}
    for dist in dists:
        if id(dist) not in done:
            same.setdefault((rank(dist), dist.name), []).append(dist)
    for group in same.values():
        if len(group) > 1:
            newest = max(group, key=_written_at)
            shadowed.extend((d, newest) for d in group if d is not newest)
    return shadowed


def _written_at(dist: Distribution) -> int:
    try:
        return dist.dist_info.stat().st_mtime_ns
    except OSError:
        return -1


def active_copies(dists: Iterable[Distribution]) -> dict[str, Distribution]:
    """The copy of each distribution name that Python imports (its metadata is the one
    ``importlib.metadata`` finds first): the first active one, in the order given."""
    chosen: dict[str, Distribution] = {}
    for dist in dists:
        if dist.shadowed_by is None:
            chosen.setdefault(dist.name, dist)
    return chosen

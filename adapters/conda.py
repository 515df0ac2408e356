"""conda: ``<prefix>/conda-meta/*.json`` PrefixRecords (CEP 32).

Reads what conda, mamba/micromamba, rattler/pixi and conda-pypi write, and smooths
over how they differ:

- ``channel`` with or without the subdir (conda: ``.../conda-forge/osx-arm64``,
  rattler: ``.../conda-forge/``) becomes the bare channel name (``conda-forge``);
- ``track_features``/``features`` as a space-separated string or a list;
- ``requested_spec`` ``"None"``; Windows backslash paths in ``files``;
- conda-pypi ``pypi_0`` records keep ``channel`` ``pypi``.

>>> normalise_channel("https://conda.anaconda.org/conda-forge/osx-arm64", "osx-arm64")
'conda-forge'
>>> normalise_channel("https://conda.anaconda.org/conda-forge/", "noarch")
'conda-forge'
>>> normalise_channel("pypi", None)
'pypi'
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vbridge.model import InstallRecord, RecordProblem
from vbridge.safefs import create_temp

__all__ = [
    "ECOSYSTEM",
    "RecordCache",
    "find_root",
    "load_record",
    "normalise_channel",
    "parse_record",
    "read_records",
]

ECOSYSTEM = "conda"

_KNOWN_SUBDIRS = {
    "noarch",
    "linux-64",
    "linux-aarch64",
    "linux-ppc64le",
    "linux-s390x",
    "linux-32",
    "osx-64",
    "osx-arm64",
    "win-64",
    "win-32",
    "win-arm64",
    "emscripten-wasm32",
    "wasi-wasm32",
}
_METADATA_SUFFIXES = (".dist-info", ".egg-info")


def normalise_channel(channel: str | None, subdir: str | None) -> str | None:
    """The channel's short name, without scheme, host or subdir."""
    if not channel:
        return None
    text = channel.rstrip("/")
    last = text.rsplit("/", 1)[-1]
    if last == subdir or last in _KNOWN_SUBDIRS:
        text = text.rsplit("/", 1)[0] if "/" in text else text
    if "://" in text:
        scheme, _, rest = text.partition("://")
        host, _, path = rest.partition("/")
        if scheme == "file":
            return text  # a local channel: its full URL is its name
        if host in {"conda.anaconda.org", "repo.anaconda.com"} or path:
            return path or host
        return host
    return text


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v for v in value.replace(",", " ").split() if v)
    if isinstance(value, list):
        return tuple(str(v) for v in value if v)
    return ()


def find_root(path: Path) -> Path | None:
    """The conda prefix that holds ``path`` (a prefix or one of its site-packages)."""
    for candidate in (path, *list(path.parents)[:4]):
        if (candidate / "conda-meta").is_dir():
            return candidate
    return None


def _metadata_dir_files(files: list[Any]) -> dict[str, str]:
    """Each distinct ``*.dist-info``/``*.egg-info`` directory among a record's files
    (relative, ``/``-separated), with the first file that names it."""
    found: dict[str, str] = {}
    try:
        # A C-speed first pass: a record of a thousand files names a handful of these.
        candidates = [entry for entry in files if "-info" in entry]
    except TypeError:  # a non-string entry: check each one
        candidates = [entry for entry in files if isinstance(entry, str) and "-info" in entry]
    for entry in candidates:
        if not isinstance(entry, str):
            continue
        rel = entry.replace("\\", "/")
        if ".dist-info/" not in rel and ".egg-info" not in rel:
            continue
        parts = rel.split("/")
        for i, part in enumerate(parts):
            if part.endswith(_METADATA_SUFFIXES):
                found.setdefault("/".join(parts[: i + 1]), entry)
                break
    return found


def _owned_metadata_dirs(prefix: Path, files: list[Any]) -> tuple[Path, ...]:
    """Distinct ``*.dist-info``/``*.egg-info`` directories among a record's files."""
    return tuple(prefix / rel for rel in _metadata_dir_files(files))


def parse_record(prefix: Path, path: Path, data: Any) -> InstallRecord:
    """Turn one parsed PrefixRecord into the model; raises ``ValueError`` if unusable."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    missing = [k for k in ("name", "version") if not isinstance(data.get(k), str)]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    build = data.get("build") or data.get("build_string") or ""
    subdir = data.get("subdir") or None
    channel = normalise_channel(data.get("channel"), subdir)
    if build == "pypi_0" and not channel:
        channel = "pypi"
    files = data.get("files") or []
    if not isinstance(files, list):
        raise ValueError("'files' is not a list")
    depends = data.get("depends") or []
    requested = data.get("requested_spec")
    extra: dict[str, object] = {}
    if requested and requested != "None":
        extra["requested_spec"] = requested
    if data.get("noarch"):
        extra["noarch"] = data["noarch"]
    if data.get("python_site_packages_path"):
        extra["python_site_packages_path"] = data["python_site_packages_path"]
    if data.get("purls"):
        extra["purls"] = list(data["purls"])
    if data.get("constrains"):
        extra["constrains"] = list(data["constrains"])
    if data.get("sha256"):
        extra["sha256"] = data["sha256"]
    return InstallRecord(
        ecosystem=ECOSYSTEM,
        name=data["name"],
        version=data["version"],
        build=str(build),
        channel=channel,
        subdir=subdir,
        source=path,
        depends=tuple(str(d) for d in depends if isinstance(d, str)),
        python_dists=_owned_metadata_dirs(prefix, files),
        flags=_as_tuple(data.get("flags")),
        track_features=_as_tuple(data.get("track_features")) + _as_tuple(data.get("features")),
        extra=extra,
    )


_PATHS_DATA = re.compile(rb'"paths_data"\s*:\s*\{')
# Where a member may start right after an object value: `}` `,` `"key"`.
_AFTER_OBJECT = re.compile(rb'\}\s*,\s*"')


def load_record(data: bytes) -> Any:
    """``json.loads`` of a PrefixRecord, minus its ``paths_data`` (never built).

    ``paths_data`` repeats every file with hashes and sizes: some 85% of a record,
    and nothing vbridge reads. The members before it are parsed as one JSON object
    (which proves the cut is at a top-level key), then the members after it, from the
    first ``}``-``,``-``"`` after its start whose remainder parses as the rest of the
    object: from inside ``paths_data`` the braces cannot balance, so the first success
    is the first member after it. Anything unexpected (no ``paths_data``, not an object,
    paths_data last, a malformed file) falls back to parsing the whole file, so errors
    are reported exactly as ``json.loads`` reports them. Only a fault *inside*
    ``paths_data`` goes unnoticed.

    >>> load_record(b'{"name": "x", "paths_data": {"paths": [{"_path": "a"}]}, "version": "1"}')
    {'name': 'x', 'version': '1'}
    """
    match = _PATHS_DATA.search(data)
    if match is None:
        return _without_paths_data(json.loads(data))
    head_bytes = data[: match.start()].rstrip()
    if head_bytes.endswith(b","):
        head_bytes = head_bytes[:-1]
    elif head_bytes.lstrip(b"\xef\xbb\xbf").strip() != b"{":  # only a first member follows `{`
        return _without_paths_data(json.loads(data))
    try:
        head = json.loads(head_bytes + b"}")
    except ValueError:
        return _without_paths_data(json.loads(data))
    for after in _AFTER_OBJECT.finditer(data, match.end()):
        try:
            tail = json.loads(b"{" + data[after.end() - 1 :])
        except ValueError:
            continue
        head.update(tail)
        return _without_paths_data(head)
    return _without_paths_data(json.loads(data))


def _without_paths_data(parsed: Any) -> Any:
    if isinstance(parsed, dict):
        parsed.pop("paths_data", None)
    return parsed


# What parse_record reads of a PrefixRecord: all a cache entry keeps (of ``files``, one
# entry per metadata directory).
_RECORD_KEYS = (
    "name",
    "version",
    "build",
    "build_string",
    "subdir",
    "channel",
    "depends",
    "requested_spec",
    "noarch",
    "python_site_packages_path",
    "purls",
    "constrains",
    "sha256",
    "flags",
    "track_features",
    "features",
)
_CACHE_FORMAT = 2  # 2: one file per metadata directory
# A record modified this close to a scan may change again within the file system's
# timestamp granularity with the same size and mtime: it is not cached ("racily clean").
_RACY_NS = 1_000_000_000


def _essentials(data: dict[str, Any]) -> dict[str, Any]:
    """The part of a parsed record that :func:`parse_record` reads: of ``files``, one
    file per metadata directory (which gives the same directories)."""
    kept = {k: data[k] for k in _RECORD_KEYS if k in data}
    files = data.get("files")
    if files is not None:
        kept["files"] = (
            list(_metadata_dir_files(files).values()) if isinstance(files, list) else files
        )
    return kept


# The record cache file this process read or wrote last: its path, size/mtime/inode
# stamp and entries.
_LAST_LOADED: tuple[Path, list[int], dict[str, list[Any]]] | None = None


class RecordCache:
    """What earlier scans parsed of a prefix's records, keyed by file size, mtime, inode.

    A conda prefix is scanned again and again (every post-link script of an install,
    every ``vbridge scan``) while most of its records stay as they were; re-reading an
    unchanged record costs a ``stat`` instead of a JSON parse. One JSON file per prefix
    under ``$XDG_CACHE_HOME/vbridge/conda-records/`` (``~/.cache`` by default), written
    atomically; ``VBRIDGE_NO_CACHE=1`` turns it off. A missing, unreadable or foreign
    cache file is an empty cache.
    """

    def __init__(self, root: Path, path: Path | None) -> None:
        self.root = root
        self.path = path
        self.entries: dict[str, list[Any]] = {}
        self.changed = False
        self._seen: set[str] = set()
        self._now = time.time_ns()

    @classmethod
    def of(cls, root: Path) -> RecordCache:
        if os.environ.get("VBRIDGE_NO_CACHE"):
            return cls(root, None)
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        real = os.path.realpath(root)
        name = hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()[:24]
        path = Path(base) / "vbridge" / "conda-records" / f"{name}.json"
        cache = cls(root, path)
        try:
            with open(path, "rb") as fh:
                stamp = cls._key(os.fstat(fh.fileno()))
                if _LAST_LOADED is not None and _LAST_LOADED[:2] == (path, stamp):
                    # The file this process read or wrote last, unchanged since (a scan
                    # reads it for the records, then for site_packages): not parsed again.
                    cache.entries = dict(_LAST_LOADED[2])
                    return cache
                stored = json.load(fh)
            if stored.get("format") == _CACHE_FORMAT and stored.get("prefix") == real:
                cache.entries = dict(stored["records"])
                cache._remember(stamp)
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            cache.entries = {}
        return cache

    def _remember(self, stamp: list[int]) -> None:
        global _LAST_LOADED
        if self.path is not None:
            _LAST_LOADED = (self.path, stamp, dict(self.entries))

    @staticmethod
    def _key(st: os.stat_result) -> list[int]:
        return [st.st_size, st.st_mtime_ns, st.st_ino]

    def get(self, name: str, st: os.stat_result) -> dict[str, Any] | None:
        self._seen.add(name)
        entry = self.entries.get(name)
        if entry is not None and entry[:3] == self._key(st):
            return dict(entry[3])
        return None

    def put(self, name: str, st: os.stat_result, essentials: dict[str, Any]) -> None:
        """Remember what :func:`_essentials` kept of a parsed record."""
        if self.path is None or st.st_mtime_ns > self._now - _RACY_NS:
            self.entries.pop(name, None)
            return
        self.entries[name] = [*self._key(st), essentials]
        self.changed = True

    def save(self) -> None:
        """Write the cache if anything changed (records parsed, records gone)."""
        gone = set(self.entries) - self._seen
        for name in gone:
            del self.entries[name]
        if self.path is None or not (self.changed or gone):
            return
        document = {
            "format": _CACHE_FORMAT,
            "prefix": os.path.realpath(self.root),
            "records": self.entries,
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = create_temp(self.path.parent, prefix=".tmp-", suffix=".json")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    # json.dumps, not json.dump: dump streams through the pure-Python
                    # encoder (~50 ms for 600 records), dumps uses the C one; same bytes.
                    fh.write(json.dumps(document, separators=(",", ":")))
                    fh.flush()
                    stamp = self._key(os.fstat(fh.fileno()))
                os.replace(tmp, self.path)
                self._remember(stamp)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError:
            pass  # a cache that cannot be written is only a slower next scan


def read_records(root: Path, problems: list[RecordProblem]) -> Iterator[InstallRecord]:
    """Every ``conda-meta/*.json`` of the prefix ``root``, in file-name order.

    Records unchanged since an earlier scan come from the :class:`RecordCache`.
    """
    meta = root / "conda-meta"
    try:
        entries = sorted((e.name, e) for e in os.scandir(meta) if e.name.endswith(".json"))
    except OSError as exc:
        problems.append(RecordProblem(meta, f"cannot list: {exc.strerror}"))
        return
    cache = RecordCache.of(root)
    for name, entry in entries:
        path = meta / name
        try:
            st = entry.stat()
            data = cache.get(name, st)
            if data is not None:
                yield parse_record(root, path, data)
                continue
            with open(path, "rb") as fh:
                data = load_record(fh.read())
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            kept = _essentials(data)  # gives the same record, with less to walk
            record = parse_record(root, path, kept)
            cache.put(name, st, kept)
            yield record
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(
                RecordProblem(path, f"unreadable: {exc}", "check its permissions; skipped")
            )
        except json.JSONDecodeError as exc:
            problems.append(
                RecordProblem(
                    path,
                    f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                    "reinstall the package with conda to rewrite it; skipped",
                )
            )
        except ValueError as exc:
            problems.append(RecordProblem(path, f"not a conda PrefixRecord: {exc}", "skipped"))
    cache.save()


def fingerprint_paths(root: Path) -> list[Path]:
    """What changes when conda changes the prefix: ``conda-meta/`` gains or loses files."""
    return [root / "conda-meta"]


def site_packages(root: Path) -> list[Path]:
    """The site-packages directories of a conda prefix, as the python record says."""
    found: list[Path] = []
    meta = root / "conda-meta"
    try:
        pythons = [e.name for e in os.scandir(meta) if e.name.startswith("python-3")]
    except OSError:
        pythons = []
    cache = RecordCache.of(root) if pythons else None
    for name in pythons:
        path = meta / name
        try:
            data = cache.get(name, path.stat()) if cache is not None else None
            if data is None:
                data = load_record(path.read_bytes())
        except (OSError, ValueError):
            continue
        rel = data.get("python_site_packages_path")
        if isinstance(rel, str):
            found.append(root / rel)
    for pattern in ("lib/python*/site-packages", "Lib/site-packages"):
        found.extend(sorted(p for p in root.glob(pattern) if p.is_dir()))
    unique: dict[Path, None] = dict.fromkeys(found)
    return list(unique)


def spec_matches(spec: str, record: InstallRecord) -> bool:
    """Conda MatchSpec semantics, from py-rattler (imported only when a rule needs it)."""
    import rattler

    return bool(_match_spec(spec).matches(_package_record(record, rattler)))


_SPECS: dict[str, Any] = {}


def _match_spec(spec: str) -> Any:
    cached = _SPECS.get(spec)
    if cached is None:
        import rattler

        cached = _SPECS[spec] = rattler.MatchSpec(spec, strict=False)
    return cached


def _package_record(record: InstallRecord, rattler: Any) -> Any:
    build_number = 0
    digits = record.build.rsplit("_", 1)[-1]
    if digits.isdigit():
        build_number = int(digits)
    return rattler.PackageRecord(
        name=record.name,
        version=record.version,
        build=rattler.BuildString(record.build),
        build_number=build_number,
        subdir=record.subdir or "noarch",
        depends=list(record.depends),
        flags=list(record.flags) or None,
    )

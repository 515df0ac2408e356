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

import os
import re
import time
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec
from vbridge.adapters import Adapter
from vbridge.adapters._conda_roots import find_root
from vbridge.errors import RecordError, UnreadableFile
from vbridge.model import InstallRecord, RecordIndex, RecordProblem, Requirement
from vbridge.rules import spec_package_name
from vbridge.safefs import open_regular, read_regular, sha256_hex, write_cache_file
from vbridge.scan_cache import RACY_NS, cache_home
from vbridge.sitepackages import metadata_dir_path, split_metadata_dir_name
from vbridge.typed_json import convert, decode, load

if TYPE_CHECKING:
    from vbridge.destinations.registrar import Registrar
    from vbridge.inventory.discover import DiscoveryConfig, Target

__all__ = [
    "ADAPTER",
    "ECOSYSTEM",
    "CondaPrefix",
    "PrefixRecordFields",
    "RecordCache",
    "conda_environments",
    "find_root",
    "metadata_dir_names",
    "normalise_channel",
    "parse_record",
    "pep440_specifier",
    "read_fields",
    "read_prefix_fields",
    "read_records",
    "requirements",
    "spec_matches",
    "version_matches",
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


def _candidates(files: list[str]) -> list[str]:
    """The entries of ``files`` that contain ``-info``, in order, found with C-speed
    string searches: a record of a thousand files names a handful of them."""
    joined = "\0".join(files)  # no file name holds a NUL
    found: list[str] = []
    start = 0
    while (hit := joined.find("-info", start)) != -1:
        begin = joined.rfind("\0", 0, hit) + 1
        end = joined.find("\0", hit)
        end = len(joined) if end == -1 else end
        found.append(joined[begin:end])
        start = end
    return found


def _metadata_dir_files(files: list[str]) -> dict[str, str]:
    """Each distinct ``*.dist-info``/``*.egg-info`` directory among a record's files
    (relative, ``/``-separated), with the first file that names it."""
    found: dict[str, str] = {}
    inside = None  # "<the last directory found>/": its other files name it again
    for entry in _candidates(files):
        rel = entry.replace("\\", "/")
        if inside is not None and rel.startswith(inside):
            continue
        if ".dist-info/" not in rel and ".egg-info" not in rel:
            continue
        parts = rel.split("/")
        for i, part in enumerate(parts):
            if part.endswith(_METADATA_SUFFIXES):
                directory = "/".join(parts[: i + 1])
                found.setdefault(directory, entry)
                inside = directory + "/"
                break
    return found


def metadata_dir_names(files: list[str]) -> list[str]:
    """The distinct ``*.dist-info``/``*.egg-info`` directories among a record's files,
    relative to the prefix (``/``-separated), in order.

    >>> metadata_dir_names(["lib/site-packages/six.py", "lib/site-packages/six-1.dist-info/RECORD"])
    ['lib/site-packages/six-1.dist-info']
    """
    return list(_metadata_dir_files(files))


def _owned_metadata_dirs(prefix: Path, files: list[str]) -> tuple[Path, ...]:
    """Distinct ``*.dist-info``/``*.egg-info`` directories among a record's files."""
    return tuple(metadata_dir_path(prefix, rel) for rel in _metadata_dir_files(files))


class PrefixRecordFields(msgspec.Struct, omit_defaults=True):
    """The fields of a conda-meta PrefixRecord vbridge reads, with the types it needs.

    Decoding a record into this builds nothing else: ``paths_data`` (some 85% of a
    record: every file again, with hashes and sizes) is skipped by msgspec's parser.
    Types are those conda, mamba and rattler write; ``track_features``/``features``
    are a space-separated string or a list, ``flags`` (CEP 45) a list.
    """

    name: str
    version: str
    build: str | None = None
    build_string: str | None = None
    subdir: str | None = None
    channel: str | None = None
    depends: list[str] | None = None
    constrains: list[str] | None = None
    requested_spec: str | None = None
    noarch: str | bool | dict[str, Any] | None = None
    python_site_packages_path: str | None = None
    purls: list[str] | None = None
    sha256: str | None = None
    flags: str | list[str] | None = None
    track_features: str | list[str] | None = None
    features: str | list[str] | None = None
    files: list[str] | None = None


_REWRITE_HINT = "reinstall the package with conda to rewrite it; skipped"


def read_fields(data: bytes, path: Path | str = "conda-meta record") -> PrefixRecordFields:
    """The fields vbridge reads of the bytes of the PrefixRecord ``path``.

    Raises :class:`vbridge.errors.UnreadableFile` naming ``path``: malformed JSON, or a
    missing or mistyped field (``field files should be a list of strings, found a
    number``).

    >>> fields = read_fields(b'{"name": "x", "version": "1", "paths_data": {"paths": []}}')
    >>> fields.name, fields.version, fields.files
    ('x', '1', None)
    """
    return load(data, PrefixRecordFields, path, hint=_REWRITE_HINT)


def parse_record(prefix: Path, path: Path | str, data: Any) -> InstallRecord:
    """Turn one PrefixRecord (its fields, or the parsed JSON object) into the model.

    Raises ``ValueError`` (:class:`~vbridge.typed_json.FieldTypeError` for a mistyped
    field) if it is unusable.
    """
    if isinstance(data, PrefixRecordFields):
        fields = data
    elif isinstance(data, dict):
        fields = convert(data, PrefixRecordFields)
    else:
        raise ValueError("not a JSON object")
    build = fields.build or fields.build_string or ""
    subdir = fields.subdir or None
    channel = normalise_channel(fields.channel, subdir)
    if build == "pypi_0" and not channel:
        channel = "pypi"
    requested = fields.requested_spec
    extra: dict[str, object] = {}
    if requested and requested != "None":
        extra["requested_spec"] = requested
    if fields.noarch:
        extra["noarch"] = fields.noarch
    if fields.python_site_packages_path:
        extra["python_site_packages_path"] = fields.python_site_packages_path
    if fields.purls:
        extra["purls"] = list(fields.purls)
    if fields.constrains:
        extra["constrains"] = list(fields.constrains)
    if fields.sha256:
        extra["sha256"] = fields.sha256
    return InstallRecord(
        ecosystem=ECOSYSTEM,
        name=fields.name,
        version=fields.version,
        build=build,
        channel=channel,
        subdir=subdir,
        source=os.fspath(path),
        depends=tuple(fields.depends or ()),
        python_dists=_owned_metadata_dirs(prefix, fields.files or []),
        flags=_as_tuple(fields.flags),
        track_features=_as_tuple(fields.track_features) + _as_tuple(fields.features),
        extra=extra,
    )


_CACHE_FORMAT = 4  # 4: keyed by ctime too (3: msgspec-typed entries)
# Prefixes whose records are kept: the cache directory is pruned to those scanned last.
_CACHED_PREFIXES = 256


def _essentials(fields: PrefixRecordFields) -> PrefixRecordFields:
    """The fields of a record, with of ``files`` one file per metadata directory (which
    gives the same record: what a cache entry keeps)."""
    if not fields.files:
        return fields
    return msgspec.structs.replace(fields, files=list(_metadata_dir_files(fields.files).values()))


class _CacheEntry(msgspec.Struct, array_like=True):
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    fields: PrefixRecordFields


class _CacheFile(msgspec.Struct):
    format: int
    prefix: str
    records: dict[str, _CacheEntry]


# The record cache file this process read or wrote last: its path, size/mtime/ctime/
# inode stamp and entries.
_LAST_LOADED: tuple[Path, tuple[int, int, int, int], dict[str, _CacheEntry]] | None = None


class RecordCache:
    """What earlier scans read of a prefix's records, keyed by file size, mtime, ctime
    and inode (a rewrite that puts the size and mtime back still changes the ctime).

    A conda prefix is scanned again and again (every post-link script of an install,
    every ``vbridge scan``) while most of its records stay as they were; re-reading an
    unchanged record costs a ``stat`` instead of decoding it (measured in bench/README.md:
    it still pays for the post-link hook, which scans the whole prefix per package).
    One JSON file per prefix under ``$XDG_CACHE_HOME/vbridge/conda-records/``
    (``~/.cache`` by default), written atomically; ``VBRIDGE_NO_CACHE=1`` turns it off.
    A missing, unreadable or foreign cache file is an empty cache.
    """

    def __init__(self, root: Path, path: Path | None) -> None:
        self.root = root
        self.path = path
        self.entries: dict[str, _CacheEntry] = {}
        self.changed = False
        self._seen: set[str] = set()
        self._now = time.time_ns()

    @classmethod
    def of(cls, root: Path) -> RecordCache:
        if os.environ.get("VBRIDGE_NO_CACHE"):
            return cls(root, None)
        real = os.path.realpath(root)
        name = sha256_hex(real.encode("utf-8", "surrogateescape"))[:24]
        path = Path(cache_home()) / "conda-records" / f"{name}.json"
        cache = cls(root, path)
        try:
            with open_regular(path) as fh:
                stamp = cls._key(os.fstat(fh.fileno()))
                if _LAST_LOADED is not None and _LAST_LOADED[:2] == (path, stamp):
                    # The file this process read or wrote last, unchanged since (a scan
                    # reads it for the records, then for site_packages): not read again.
                    cache.entries = dict(_LAST_LOADED[2])
                    return cache
                stored = decode(fh.read(), _CacheFile)
            if stored.format == _CACHE_FORMAT and stored.prefix == real:
                cache.entries = stored.records
                cache._remember(stamp)
        except (OSError, ValueError, RecordError):
            cache.entries = {}  # a damaged cache is an empty one, never a record's fault
        return cache

    def _remember(self, stamp: tuple[int, int, int, int]) -> None:
        global _LAST_LOADED
        if self.path is not None:
            _LAST_LOADED = (self.path, stamp, dict(self.entries))

    @staticmethod
    def _key(st: os.stat_result) -> tuple[int, int, int, int]:
        return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)

    def get(self, name: str, st: os.stat_result) -> PrefixRecordFields | None:
        self._seen.add(name)
        entry = self.entries.get(name)
        if entry is not None and (
            entry.size,
            entry.mtime_ns,
            entry.ctime_ns,
            entry.inode,
        ) == self._key(st):
            return entry.fields
        return None

    def put(self, name: str, st: os.stat_result, essentials: PrefixRecordFields) -> None:
        """Remember what :func:`_essentials` kept of a record."""
        if self.path is None or st.st_mtime_ns > self._now - RACY_NS:  # racily clean
            self.entries.pop(name, None)
            return
        self.entries[name] = _CacheEntry(*self._key(st), essentials)
        self.changed = True

    def save(self) -> None:
        """Write the cache if anything changed (records read, records gone)."""
        gone = set(self.entries) - self._seen
        for name in gone:
            del self.entries[name]
        if self.path is None or not (self.changed or gone):
            return
        document = _CacheFile(_CACHE_FORMAT, os.path.realpath(self.root), self.entries)
        written = write_cache_file(self.path, msgspec.json.encode(document), keep=_CACHED_PREFIXES)
        if written is not None:
            self._remember(self._key(written))


def read_records(root: Path, problems: list[RecordProblem]) -> Iterator[InstallRecord]:
    """Every ``conda-meta/*.json`` of the prefix ``root``, in file-name order.

    Records unchanged since an earlier scan come from the :class:`RecordCache`.
    """
    meta = os.path.join(root, "conda-meta") + os.sep  # joined as text: 600 records a prefix
    for name, fields in read_prefix_fields(root, problems):
        yield parse_record(root, meta + name, fields)


def read_prefix_fields(
    root: Path, problems: list[RecordProblem]
) -> Iterator[tuple[str, PrefixRecordFields]]:
    """What :func:`read_records` reads of every record of the prefix ``root``, in
    file-name order: its file name in ``conda-meta/`` and its fields, with of ``files``
    one file per metadata directory (:func:`parse_record` of them gives the record).
    Unchanged records come from the :class:`RecordCache`; unreadable ones are
    ``problems``.

    A caller that needs a few records (the conda post-link hook: one package and what
    its properties come from) picks them from these and parses only those (a path
    object per record costs more than the cache lookup).
    """
    meta = root / "conda-meta"
    try:
        entries = sorted((e.name, e) for e in os.scandir(meta) if e.name.endswith(".json"))
    except OSError as exc:
        problems.append(RecordProblem(meta, f"cannot list: {exc.strerror}"))
        return
    cache = RecordCache.of(root)
    for name, entry in entries:
        try:
            st = entry.stat()
            cached = cache.get(name, st)
            if cached is not None:
                yield name, cached
                continue
            path = entry.path  # only opened (and named in a problem): no Path object
            fields = read_fields(read_regular(path, hint=_REWRITE_HINT), path)
            kept = _essentials(fields)  # gives the same record, with less to walk
            cache.put(name, st, kept)
            yield name, kept
        except UnreadableFile as exc:  # malformed, mistyped, not a regular file, too big
            problems.append(RecordProblem(meta / name, exc.problem, exc.hint))
        except OSError as exc:
            problems.append(
                RecordProblem(meta / name, f"unreadable: {exc}", "check its permissions; skipped")
            )
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
            fields = cache.get(name, path.stat()) if cache is not None else None
            if fields is None:
                fields = read_fields(read_regular(path), path)
        except (OSError, RecordError):
            continue
        rel = fields.python_site_packages_path
        if isinstance(rel, str):
            found.append(root / rel)
    for pattern in ("lib/python*/site-packages", "Lib/site-packages"):
        found.extend(sorted(p for p in root.glob(pattern) if p.is_dir()))
    unique: dict[Path, None] = dict.fromkeys(found)
    return list(unique)


def spec_name(spec: str) -> str:
    """The package name of a conda MatchSpec or glob, without importing rattler.

    >>> spec_name("conda-forge::libblas >=3.9 *_mkl"), spec_name("libblas[build=*mkl]")
    ('libblas', 'libblas')
    """
    return spec_package_name(spec.split("::")[-1])


def spec_is_exact(spec: str) -> bool:
    """Whether a MatchSpec says more than the name (a version, a build, ``[key=value]``).

    >>> spec_is_exact("libblas"), spec_is_exact("libblas 3.9.* *_mkl")
    (False, True)
    """
    return len(spec.split()) > 1 or "[" in spec


def spec_matches(spec: str, record: InstallRecord) -> bool:
    """Whether ``record`` matches the conda MatchSpec ``spec`` (conda's semantics:
    :mod:`vbridge.adapters._matchspec`; no conda or rattler needed).

    Raises :class:`~vbridge.adapters._matchspec.InvalidSpec` (a ``ValueError``) for a
    spec conda's grammar does not allow.

    >>> numpy = InstallRecord("conda", "numpy", "2.4.6", build="pip")
    >>> spec_matches("numpy >=1.23.5,<2.0a0", numpy)
    False
    """
    from vbridge.adapters._matchspec import MatchSpec  # only rules with full specs need it

    build_number = 0
    digits = record.build.rsplit("_", 1)[-1]
    if digits.isdigit():
        build_number = int(digits)
    return MatchSpec.parse(spec).matches(record.name, record.version, record.build, build_number)


def version_matches(spec: str, version: str) -> bool:
    """Whether ``version`` satisfies the conda version spec ``spec`` (``>=1.23.5,<2.0a0``,
    ``1.26.*``, ``=1.2``...), as conda decides it. Raises ``ValueError`` for a bad spec.

    >>> version_matches(">=1.23.5,<2.0a0", "1.26.4")
    True
    """
    from vbridge.adapters._matchspec import version_matches as matches

    return matches(spec, version)


# --- the environments a machine has ---------------------------------------------------


def _condarc_envs_dirs(text: str) -> list[str]:
    """``envs_dirs`` of a ``.condarc``: the block list or flow list forms conda writes.

    >>> _condarc_envs_dirs("channels:\\n  - conda-forge\\nenvs_dirs:\\n  - ~/envs\\n  - /opt/e\\n")
    ['~/envs', '/opt/e']
    >>> _condarc_envs_dirs("envs_dirs: [/a, '/b']\\n")
    ['/a', '/b']
    """
    found: list[str] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.startswith("envs_dirs:"):
            continue
        rest = line.split(":", 1)[1].split(" #", 1)[0].strip()
        if rest.startswith("["):
            items = rest.strip("[]").split(",")
            found += [item.strip().strip("'\"") for item in items if item.strip()]
            continue
        for item in lines[i + 1 :]:
            stripped = item.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if not stripped.startswith("- "):
                break
            found.append(stripped[2:].split(" #", 1)[0].strip().strip("'\""))
    return found


def _conda_envs_dirs(config: DiscoveryConfig) -> list[Path]:
    env, home = config.environ, config.home
    dirs: list[Path] = []
    for var in ("CONDA_ENVS_PATH", "CONDA_ENVS_DIRS"):
        dirs += [Path(p) for p in env.get(var, "").split(os.pathsep) if p]
    condarcs = [home / ".condarc", home / ".conda" / ".condarc", home / ".config/conda/.condarc"]
    if env.get("XDG_CONFIG_HOME"):
        condarcs.append(Path(env["XDG_CONFIG_HOME"]) / "conda" / ".condarc")
    if env.get("CONDARC"):
        condarcs.append(Path(env["CONDARC"]))
    for rc in condarcs:
        try:
            text = read_regular(rc, limit=1 << 20).decode("utf-8")
        except (OSError, UnicodeDecodeError, RecordError):
            continue
        for entry in _condarc_envs_dirs(text):
            if entry.startswith("~"):
                entry = str(home) + entry[1:]
            dirs.append(Path(os.path.expandvars(entry)))
    dirs.append(home / ".conda" / "envs")
    for var in ("CONDA_ROOT", "MAMBA_ROOT_PREFIX"):
        if env.get(var):
            dirs.append(Path(env[var]) / "envs")
    if env.get("CONDA_EXE"):  # <root>/bin/conda or <root>/condabin/conda
        dirs.append(Path(env["CONDA_EXE"]).parent.parent / "envs")
    return dirs


def conda_environments(config: DiscoveryConfig) -> list[Path]:
    """Every conda prefix the user's conda knows, in the order conda lists them: the
    prefixes in ``~/.conda/environments.txt`` (conda, mamba and micromamba append every
    environment they create), then every prefix under the ``envs_dirs``
    (``$CONDA_ENVS_PATH``, the ``envs_dirs`` of the user's ``.condarc``,
    ``~/.conda/envs``, the root prefix's ``envs/``)."""
    from vbridge.inventory.discover import unique_paths

    found: list[Path] = []
    listing = config.home / ".conda" / "environments.txt"
    try:
        data = read_regular(listing, limit=64 << 20)
        lines = data.decode("utf-8", errors="replace").splitlines()
    except (OSError, RecordError):
        lines = []
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            found.append(Path(line))
    for var in ("CONDA_ROOT", "MAMBA_ROOT_PREFIX"):
        if config.environ.get(var):
            found.append(Path(config.environ[var]))
    for envs_dir in _conda_envs_dirs(config):
        try:
            children = sorted(os.scandir(envs_dir), key=lambda e: e.name)
        except OSError:
            continue
        found += [Path(e.path) for e in children if e.is_dir()]
    return [p for p in unique_paths(found) if (p / "conda-meta").is_dir()]


class CondaPrefix(Adapter):
    """conda prefixes: ``conda-meta/*.json``, MatchSpec dependency specs, files
    registered in the owning record (see the module's functions)."""

    ECOSYSTEM = ECOSYSTEM
    DISCOVER_SETTINGS: ClassVar[Mapping[str, type]] = {"conda": bool}
    DISCOVER_RANK = 10

    def find_root(self, path: Path) -> Path | None:
        return find_root(path)

    def read_records(self, root: Path, problems: list[RecordProblem]) -> Iterator[InstallRecord]:
        return read_records(root, problems)

    def site_packages(self, root: Path) -> list[Path]:
        return site_packages(root)

    def fingerprint_paths(self, root: Path) -> list[Path]:
        return fingerprint_paths(root)

    def discover(self, config: DiscoveryConfig) -> list[Target]:
        from vbridge.inventory.discover import Target

        if not config.enabled("conda"):
            return []
        return [Target(p, "conda") for p in conda_environments(config)]

    def spec_name(self, spec: str) -> str:
        return spec_name(spec)

    def spec_is_exact(self, spec: str) -> bool:
        return spec_is_exact(spec)

    def spec_matches(self, spec: str, record: InstallRecord) -> bool:
        return spec_matches(spec, record)

    # What conda (and mamba, rattler/pixi) writes into the INSTALLER of a dist-info it
    # installs; another value means another tool rewrote the directory since.
    INSTALLERS = ("conda",)
    # conda records name their dependencies themselves: a conda package's
    # Requires-Dist is never held against it.
    RECORDS_DEPENDENCIES = True

    def requirements(self, record: InstallRecord, index: RecordIndex) -> Iterator[Requirement]:
        return requirements(record, index)

    def registrar(self) -> Registrar:
        """The package's ``conda-meta/<pkg>.json``: conda, mamba and rattler remove
        what its ``files``/``paths_data`` list."""
        from vbridge.destinations.conda_meta import REGISTRAR

        return REGISTRAR


# --- what records require of Python distributions --------------------------------------

_CONDA_OPERATOR = re.compile(r"^(>=|<=|==|!=|>|<|~=|=)?\s*([^\s]+)$")


def pep440_specifier(spec: str) -> str | None:
    """The version part of a MatchSpec as a PEP 440 specifier, when it has one.

    >>> pep440_specifier("numpy >=1.23.5,<2.0a0")
    '>=1.23.5,<2.0a0'
    >>> pep440_specifier("numpy 1.26.*")
    '==1.26.*'
    >>> pep440_specifier("numpy") is None
    True
    >>> pep440_specifier("numpy >=1.21|<1.0") is None
    True
    """
    parts = spec.split(None, 1)
    if len(parts) < 2:
        return None
    version = parts[1].split(None, 1)[0]  # a build string may follow
    if "|" in version:
        return None  # an alternative is not a PEP 440 specifier
    out: list[str] = []
    for clause in version.split(","):
        m = _CONDA_OPERATOR.match(clause.strip())
        if m is None:
            return None
        op, value = m.group(1) or "", m.group(2)
        if op in ("", "=") or (op == "==" and value.endswith("*")):
            # conda's bare "1.26" and "=1.26" mean 1.26.*, as does "1.26.*"
            out.append(f"=={value.rstrip('*').rstrip('.')}.*")
        else:
            out.append(f"{op}{value}")
    return ",".join(out)


@lru_cache(maxsize=4096)
def _distribution_names(python_dists: tuple[Path, ...]) -> tuple[str, ...]:
    """The distribution names of a record's dist-infos (a prefix's ~800 requirements
    name a few dozen providers)."""
    return tuple(split_metadata_dir_name(path.name)[0] for path in python_dists)


_specifier_of = lru_cache(maxsize=4096)(pep440_specifier)


def requirements(record: InstallRecord, index: RecordIndex) -> Iterator[Requirement]:
    """What ``record`` requires of the Python distributions other records own: every
    ``depends`` entry naming a package that owns a dist-info (``numpy >=1.23.5,<2.0a0``).
    conda resolved them against each other, so each pins a build (ABI)."""
    source: str | None = None
    for dep in record.depends:
        name = dep.split(None, 1)[0].split("[", 1)[0]
        for provider in index.named(name):
            if not provider.python_dists:
                continue
            if source is None:
                source = str(record.source or "")
            for target in _distribution_names(provider.python_dists):
                yield Requirement(
                    target=target,
                    spec=dep,
                    kind="pin",
                    ecosystem=ECOSYSTEM,
                    dependent=record.key,
                    source=source,
                    provider=provider.key,
                    specifier=_specifier_of(dep),
                    binary=True,
                )


ADAPTER = CondaPrefix()

"""Spack: install database, per-prefix spec files, environments and views.

Reads what Spack writes, without Spack:

- ``<install_tree>/.spack-db/index.json``: database versions 6, 7 and 8, keyed by DAG
  hash (one node per installed spec, its prefix in ``path``);
- ``<prefix>/.spack/spec.json``: specfile versions 1 to 5 (the whole DAG, root first;
  v4 adds ``virtuals`` on edges, v5 records compilers as dependencies);
- ``<env>/spack.lock``: lockfile versions 1 to 7, and the environment's default view;
- ``<view>/.spack/<package>/spec.json``: the packages linked into a view.

One :class:`~vbridge.model.InstallRecord` per node: ``build`` is the short DAG hash,
``depends`` the names of its dependency edges and ``requires`` the exact records it
links or runs with, so two builds of one package never get each other's providers.
Providers come from the edges' ``parameters.virtuals`` only, never from package names:
``extra["providers"]`` lists ``virtual=provider`` (``blas=openblas``), with
``external:<path>`` appended when the provider is an external. Variants are
``extra["variants"]`` (``mpi=true``) and the target's x86-64 level is
``extra["x86_64_level"]`` (archspec); ``extra["binaries_x86_64_level"]``, the level the
node's own Python binaries need, is set on nodes owning Python distributions that are
not all pure Python (:func:`pure_python`). ``data/spack.toml`` maps these facts to
properties. A Python distribution belongs to a node when it sits in that node's
prefix (``lib/python*/site-packages``) and the prefix's ``.spack/spec.json`` names the
same DAG hash; its ``INSTALLER`` says ``pip``, since Spack installs with pip.

>>> node = parse_node({"name": "py-numpy", "version": "1.26.4", "hash": "a" * 32,
...     "dependencies": [{"name": "openblas", "hash": "b" * 32, "parameters":
...         {"deptypes": ["build", "link"], "virtuals": ["blas", "lapack"]}}]}, 5)
>>> [(e.name, e.virtuals, e.linked) for e in node.edges]
[('openblas', ('blas', 'lapack'), True)]
>>> x86_64_level("icelake"), x86_64_level("x86_64_v3"), x86_64_level("m1")
('v4', 'v3', None)
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec
from vbridge.adapters import Adapter
from vbridge.adapters._spack_roots import find_root, projection_views
from vbridge.adapters._spack_roots import is_view as _is_view
from vbridge.adapters._spack_roots import present as _present
from vbridge.errors import RecordError
from vbridge.model import InstallRecord, RecordIndex, RecordProblem, Requirement
from vbridge.safefs import is_normal_absolute, open_regular_fd, read_json, read_regular
from vbridge.sitepackages import (
    iter_metadata_dirs,
    layer_stat,
    split_metadata_dir_name,
)
from vbridge.typed_json import convert
from vbridge.typed_json import decode as decode_typed
from vbridge.typed_json import load as load_typed
from vbridge.typed_json import read as read_typed

if TYPE_CHECKING:
    from vbridge.inventory.discover import DiscoveryConfig, Target

__all__ = [
    "ADAPTER",
    "DATABASE_VERSIONS",
    "ECOSYSTEM",
    "LOCKFILE_VERSIONS",
    "SPECFILE_VERSIONS",
    "DatabaseEntry",
    "Edge",
    "InstalledSpecs",
    "SpackRecords",
    "SpecNode",
    "find_root",
    "is_prefix",
    "is_tree",
    "parse_node",
    "projection_views",
    "pure_python",
    "read_database",
    "read_lockfile",
    "read_records",
    "read_records_and_layers",
    "read_specfile",
    "requirements",
    "site_packages",
    "view_roots",
    "x86_64_level",
]

ECOSYSTEM = "spack"

DATABASE_VERSIONS = (6, 7, 8)
SPECFILE_VERSIONS = (1, 2, 3, 4, 5)
LOCKFILE_VERSIONS = (1, 2, 3, 4, 5, 6, 7)
# The specfile format of the nodes a database or lockfile version holds (Spack's
# database.py and environment.py reader tables).
_DATABASE_SPECFILE = {6: 3, 7: 4, 8: 5}
_LOCKFILE_SPECFILE = {1: 1, 2: 1, 3: 2, 4: 3, 5: 4, 6: 5, 7: 5}
# Spack's hash fields, in the order its readers try them on a dependency edge.
_HASH_FIELDS = ("hash", "package_hash", "full_hash", "build_hash")
_COMPILER_FLAGS = frozenset({"cflags", "cppflags", "cxxflags", "fflags", "ldflags", "ldlibs"})
_SITE_PACKAGES_LIBS = ("lib", "lib64")  # <prefix>/<lib>/python*/site-packages
_HASH_CHARS = 7


class Edge(msgspec.Struct, frozen=True, gc=False):
    """A dependency edge: which node, with which dependency types and virtuals."""

    name: str
    hash: str
    deptypes: tuple[str, ...]
    virtuals: tuple[str, ...]

    @property
    def linked(self) -> bool:
        """True when the dependency is linked or run with, not only used to build."""
        return "link" in self.deptypes or "run" in self.deptypes


class SpecNode(msgspec.Struct, frozen=True, gc=False):
    """One concrete spec node, as any specfile version spells it."""

    name: str
    version: str
    hash: str
    edges: tuple[Edge, ...] = ()
    parameters: Mapping[str, Any] = msgspec.field(default_factory=dict)
    target: str | None = None
    platform: str | None = None
    os: str | None = None
    external: str | None = None
    compiler: str | None = None
    specfile_version: int = 5
    other_hashes: tuple[str, ...] = ()  # full_hash/build_hash older formats link by

    @property
    def virtuals_recorded(self) -> bool:
        """Specfiles before v4 do not say which virtual an edge provides."""
        return self.specfile_version >= 4


class DatabaseEntry(msgspec.Struct, frozen=True, gc=False):
    """One install record of a Spack database: the node and where it is installed
    (``prefix``, as ``str(Path(...))`` writes the database's path)."""

    node: SpecNode
    prefix: str | None
    installed: bool = True
    explicit: bool = False

    @property
    def path(self) -> Path | None:
        """The prefix as a Path (made when asked: a tree has thousands of entries)."""
        return None if self.prefix is None else Path(self.prefix)


def _path_text(raw: str) -> str:
    """``str(Path(raw))``, without making a Path of a path already written that way
    (:func:`vbridge.safefs.is_normal_absolute`).

    >>> [_path_text(p) for p in ("/opt/spack/zlib", "/opt//spack/./zlib/", "opt/zlib")]
    ['/opt/spack/zlib', '/opt/spack/zlib', 'opt/zlib']
    """
    return raw if is_normal_absolute(raw) else str(Path(raw))


# --- parsing ----------------------------------------------------------------------------


# What vbridge reads of Spack's JSON, typed (msgspec Structs: everything else, such as
# a node's package_hash-keyed patches or a database's reference counts, is skipped).
# gc=False: decoded JSON holds no cycles, so the collector need not track the Structs.
# The types are those every format version writes; a field of another type is one line
# naming it ("field database.installs.*.spec.name should be a string, found a number").


# Lists decoded as tuples where an Edge keeps them as they are.
class _DependencyParameters(msgspec.Struct, gc=False):
    deptypes: str | tuple[str, ...] | None = None
    virtuals: tuple[str, ...] | None = None


class DependencyFields(msgspec.Struct, gc=False):
    """A dependency edge of a node (specfile v2-v5: a list entry)."""

    name: str
    hash: str | None = None
    package_hash: str | None = None
    full_hash: str | None = None
    build_hash: str | None = None
    parameters: _DependencyParameters | None = None  # v4+: deptypes and virtuals
    type: str | tuple[str, ...] | None = None  # v1-v3: deptypes


class _TargetFields(msgspec.Struct, gc=False):
    name: str | None = None


class _ArchFields(msgspec.Struct, gc=False):
    platform: str | None = None
    platform_os: str | None = None
    target: str | _TargetFields | None = None


class _ExternalFields(msgspec.Struct, gc=False):
    path: str | None = None


class NodeFields(msgspec.Struct, gc=False):
    """The fields vbridge reads of a concrete spec node, in any specfile version."""

    name: str
    version: str | int | float | None = None
    versions: list[Any] | None = None
    hash: str | None = None
    package_hash: str | None = None
    full_hash: str | None = None
    build_hash: str | None = None
    arch: str | _ArchFields | None = None  # old files: "linux-ubuntu18.04-x86_64"
    external: _ExternalFields | None = None
    parameters: dict[str, Any] | None = None
    # v2+: a list of edges; v1: {"zlib": {"hash": ..., "type": [...]}}
    dependencies: list[DependencyFields] | dict[str, Any] | None = None
    compiler: dict[str, Any] | None = None  # v1-v4: {"name": "gcc", "version": "9.4.0"}
    annotations: dict[str, Any] | None = None  # v5: {"compiler": "gcc@=10.5.0"}


class _InstallFields(msgspec.Struct, gc=False):
    spec: NodeFields
    path: str | None = None
    installed: bool = True
    explicit: bool = False


class _DatabaseHeader(msgspec.Struct, gc=False):
    version: Any = None


class _IndexHeader(msgspec.Struct, gc=False):
    database: _DatabaseHeader | None = None


class _DatabaseFields(msgspec.Struct, gc=False):
    version: Any = None
    installs: dict[str, _InstallFields] | None = None


class _IndexFile(msgspec.Struct, gc=False):
    """``.spack-db/index.json`` (database versions 6-8)."""

    database: _DatabaseFields


class _SpecBody(msgspec.Struct, gc=False):
    meta: dict[str, Any] | None = msgspec.field(default=None, name="_meta")
    # Decoded one by one (a prefix's root alone needs only the first).
    nodes: list[msgspec.Raw] | None = None


class _SpecFile(msgspec.Struct, gc=False):
    """``spec.json``: v2-v5 ``{"spec": {"_meta": ..., "nodes": [root, ...]}}``, v1
    ``{"spec": [{"zlib": {...}}, ...]}``."""

    spec: _SpecBody | list[Any]


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _arch(node: NodeFields) -> tuple[str | None, str | None, str | None]:
    """(platform, os, target) of a node; ``arch`` is an object or, in old files, a string."""
    arch = node.arch
    if isinstance(arch, str):  # "linux-ubuntu18.04-x86_64"
        parts = arch.split("-", 2)
        parts += [""] * (3 - len(parts))
        return _str_or_none(parts[0]), _str_or_none(parts[1]), _str_or_none(parts[2])
    if arch is None:
        return None, None, None
    target = arch.target.name if isinstance(arch.target, _TargetFields) else arch.target
    return _str_or_none(arch.platform), _str_or_none(arch.platform_os), _str_or_none(target)


def _edge_hash(dep: DependencyFields) -> str:
    for value in (dep.hash, dep.package_hash, dep.full_hash, dep.build_hash):
        if value is not None:
            return value
    raise ValueError(f"dependency {dep.name!r} names no hash")


def _edges(node: NodeFields, seen: dict[tuple[Any, ...], Edge] | None = None) -> tuple[Edge, ...]:
    """The node's dependency edges; ``seen`` shares equal edges between the nodes of one
    file (most nodes link the same few: the compiler runtime, libc, BLAS, MPI)."""
    deps = node.dependencies
    if not deps:
        return ()
    if isinstance(deps, dict):  # specfile v1: {"zlib": {"hash": ..., "type": [...]}}
        deps = [
            convert({"name": name, **value}, DependencyFields)
            for name, value in deps.items()
            if isinstance(value, dict)
        ]
    if seen is None:
        seen = {}
    edges: list[Edge] = []
    for dep in deps:
        params = dep.parameters
        if params is not None:  # v4+: {"deptypes": [...], "virtuals": [...]}
            deptypes = params.deptypes or ()
            virtuals = params.virtuals or ()
        else:  # v1-v3: {"type": [...]}, no virtuals
            deptypes = dep.type or ()
            virtuals = ()
        if isinstance(deptypes, str):
            deptypes = (deptypes,)
        if len(virtuals) > 1:
            virtuals = tuple(sorted(set(virtuals)))
        dep_hash = dep.hash if dep.hash is not None else _edge_hash(dep)
        key = (dep.name, dep_hash, deptypes, virtuals)
        edge = seen.get(key)
        if edge is None:
            edge = seen[key] = Edge(*key)
        edges.append(edge)
    return tuple(edges)


def _compiler(node: NodeFields) -> str | None:
    legacy = node.compiler  # specfile v1-v4: {"name": "gcc", "version": "9.4.0"}
    if legacy is not None and isinstance(legacy.get("name"), str):
        version = legacy.get("version") or legacy.get("versions")
        if isinstance(version, list):
            version = ",".join(str(v) for v in version)
        return f"{legacy['name']}@{version}" if version else str(legacy["name"])
    if node.annotations is not None:  # migrated to v5: "gcc@=10.5.0"
        return _str_or_none(node.annotations.get("compiler"))
    return None


def parse_node(
    data: Any,
    version: int,
    key: str | None = None,
    key_is_identity: bool = False,
    edges_seen: dict[tuple[Any, ...], Edge] | None = None,
) -> SpecNode:
    """A node of specfile format ``version`` (1 to 5) as a :class:`SpecNode`: its
    :class:`NodeFields`, or the node as parsed JSON (a dict).

    ``key`` is the hash the node is filed under: v1 lockfile nodes carry none, and
    lockfiles before v4 file nodes by build hash, which then identifies the node
    (``key_is_identity``) since their DAG hashes left build dependencies out and two
    builds can share one. Raises ``ValueError`` when the node is unusable
    (:class:`~vbridge.typed_json.FieldTypeError` for a mistyped field). ``edges_seen``:
    the edges already made for other nodes of the same file, shared.
    """
    if isinstance(data, NodeFields):
        fields = data
    else:
        if not isinstance(data, dict):
            raise ValueError("a node is not a JSON object")
        if version == 1:  # {"zlib": {...}}
            items = list(data.items())
            if len(items) != 1 or not isinstance(items[0][1], dict):
                raise ValueError("a specfile v1 node is not {name: {...}}")
            data = {"name": items[0][0], **items[0][1]}
        fields = convert(data, NodeFields)
    name = fields.name
    if not name:
        raise ValueError("a node without a name")
    raw_version: Any = fields.version
    if raw_version is None and fields.versions:
        raw_version = fields.versions[0]
    if raw_version is None:
        raise ValueError(f"node {name!r} has no version")
    dag_hash = key if key_is_identity and key else (fields.hash or key)
    if dag_hash is None:
        raise ValueError(f"node {name!r} has no hash")
    platform, os_name, target = _arch(fields)
    external = fields.external
    hashes = (fields.hash, fields.package_hash, fields.full_hash, fields.build_hash)
    others = tuple([h for h in hashes if h is not None and h != dag_hash])
    if key is not None and key != dag_hash:
        others += (key,)
    return SpecNode(
        name=name,
        version=str(raw_version),
        hash=dag_hash,
        edges=_edges(fields, edges_seen),
        parameters=fields.parameters or {},
        target=target,
        platform=platform,
        os=os_name,
        external=_str_or_none(external.path) if external is not None else None,
        compiler=_compiler(fields),
        specfile_version=version,
        other_hashes=others,
    )


# A file changed within this long may change again with the same mtime and size (the
# clock's tick): it is read afresh, never from the per-process caches below.
_RACY_NS = 1_000_000_000


def _cache_key(st: os.stat_result) -> tuple[int, int, int] | None:
    """What identifies a file's content for the caches, or None when it is too fresh."""
    if st.st_mtime_ns > time.time_ns() - _RACY_NS:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


@lru_cache(maxsize=32)
def _load_json_cached(path: str, key: tuple[int, int, int] | None) -> Any:
    return read_json(path, hint="")


def _load_json(path: Path) -> Any:
    """Parse a JSON file; a file is parsed once while it is unchanged."""
    try:
        st = path.stat()
        key = _cache_key(st)
        if key is None:
            return _load_json_cached.__wrapped__(str(path), None)
        return _load_json_cached(str(path), key)
    except OSError as exc:
        raise RecordError(f"{path}: unreadable: {exc}") from exc


def _format_version(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


@lru_cache(maxsize=64)
def _read_specfile_cached(path: Path | str, key: tuple[int, int, int] | None) -> _SpecFile:
    return read_typed(path, _SpecFile, hint="")


# How Spack writes a specfile (v2-v5), compact or indented:
# ``{"spec": {"_meta": {...}, "nodes": [root, ...]}}``. The root node is a few KB at the
# head of a file that holds the prefix's whole DAG (hundreds of KB).
class _SpecfileLayout:
    """The patterns of that layout, compiled when a scan first reads a specfile, not
    when this adapter is imported (``vbridge scan --all``, the inventory and the Spack
    extension import it for environments that are not Spack's)."""

    def __init__(self) -> None:
        self.head = re.compile(rb'\s*\{\s*"spec"\s*:\s*\{\s*"_meta"\s*:\s*')
        self.nodes = re.compile(rb'\s*,\s*"nodes"\s*:\s*\[\s*')
        self.next_node = re.compile(rb"\s*[,\]]")
        self.tail = re.compile(rb"\]\s*\}\s*\}\s*\Z")  # the end of that layout: not truncated
        # msgspec's words for the byte after a value (see _RAW_VALUE)
        self.trailing = re.compile(r"trailing characters \(byte (\d+)\)")


@lru_cache(maxsize=1)
def _layout() -> _SpecfileLayout:
    return _SpecfileLayout()


# The head is read in two steps: most roots end in the first (a few KB each on Spack's
# own sites), bigger ones in the second; a root beyond that takes the whole read.
_SPECFILE_HEAD_BYTES = (8 * 1024, 256 * 1024)
_SPECFILE_TAIL_BYTES = 64
_SPECFILE_META = dict[str, Any]
# msgspec reads a JSON value as raw bytes at C speed and names the byte after it, when
# more follows, as "trailing characters (byte N)" (N: that byte's offset + 1).
_RAW_VALUE = msgspec.json.Decoder(msgspec.Raw)


def _specfile_root(path: Path | str) -> SpecNode | None:
    """The root node of a specfile read from its head (``_meta`` and the first node,
    decoded as the whole read decodes them) and its last bytes (``]}}``: not truncated).

    None when the file is laid out otherwise, its root does not fit in the head, or
    anything in those bytes is amiss: :func:`read_specfile` then reads the whole file,
    which reports the error. Bytes between the root node and the end are not read (the
    other nodes of the DAG), so their damage does not stop the root being read.
    """
    # Opened as safefs opens a record (never blocking on a FIFO; regular files only),
    # on the descriptor alone: anything amiss is for the whole read to report.
    try:
        _, fd, st = open_regular_fd(path, None, "skipped")
    except (OSError, RecordError):
        return None
    try:
        size = st.st_size
        tail = os.pread(fd, _SPECFILE_TAIL_BYTES, max(0, size - _SPECFILE_TAIL_BYTES))
        if _layout().tail.search(tail) is None:
            return None
        for limit in _SPECFILE_HEAD_BYTES:
            head = os.pread(fd, limit, 0)
            root = _head_root(head)
            if root is not None or len(head) < limit:
                return root
    except OSError:
        pass
    finally:
        os.close(fd)
    return None


def _value_end(head: bytes, start: int) -> int | None:
    """Where the JSON value at ``start`` of ``head`` is followed by the ``,`` or ``]`` of
    the list or object holding it (whitespace between them is the value's), or None when
    msgspec cannot tell: the value is malformed, cut short, or all there is, or msgspec
    words it otherwise; the json module's scan then decides, as before."""
    try:
        _RAW_VALUE.decode(memoryview(head)[start:])
    except msgspec.DecodeError as exc:
        trailing = _layout().trailing.search(str(exc))
        if trailing is not None:
            end = start + int(trailing.group(1)) - 1
            if head[end : end + 1] in (b",", b"]"):
                return end
    return None


def _scanned_end(head: bytes, start: int, text: list[str]) -> int:
    """Where the JSON value at ``start`` ends, by the json module's scan (``text``: the
    head as latin-1, made once: each byte one character, so its offsets are the bytes'
    offsets; bytes of multi-byte UTF-8 characters only occur inside strings)."""
    import json  # rare: msgspec finds the end of nearly every value

    if not text:
        text.append(head.decode("latin-1"))
    return int(json.JSONDecoder().raw_decode(text[0], start)[1])


def _head_root(head: bytes) -> SpecNode | None:
    """The root node in the first bytes of a specfile, or None (see _specfile_root)."""
    layout = _layout()
    start = layout.head.match(head)
    if start is None:
        return None
    text: list[str] = []
    try:
        meta_end = _value_end(head, start.end()) or _scanned_end(head, start.end(), text)
        nodes = layout.nodes.match(head, meta_end)
        if nodes is None:
            return None
        root_end = _value_end(head, nodes.end())
        if root_end is None:
            root_end = _scanned_end(head, nodes.end(), text)
            if layout.next_node.match(head, root_end) is None:
                return None
        meta = decode_typed(head[start.end() : meta_end], _SPECFILE_META)
        version = _format_version(meta.get("version"))
        if version not in SPECFILE_VERSIONS:
            return None
        assert version is not None
        return parse_node(decode_typed(head[nodes.end() : root_end], NodeFields), version)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


@lru_cache(maxsize=1024)
def _specfile_root_cached(path: Path | str, key: tuple[int, int, int]) -> SpecNode | None:
    return _specfile_root(path)


def read_specfile(path: Path | str, root_only: bool = False) -> list[SpecNode]:
    """The nodes of a ``spec.json``, its root first (only the root with ``root_only``:
    the other nodes, often hundreds of KB of a prefix's DAG, are skipped undecoded).

    Raises :class:`RecordError`.
    """
    try:
        st = os.stat(path)
        key = _cache_key(st)
        if root_only:
            root = _specfile_root(path) if key is None else _specfile_root_cached(path, key)
            if root is not None:
                return [root]
        if key is None:
            document = _read_specfile_cached.__wrapped__(path, None)
        else:
            document = _read_specfile_cached(path, key)
    except OSError as exc:
        raise RecordError(f"{path}: unreadable: {exc}") from exc
    spec = document.spec
    try:
        if isinstance(spec, list):  # v1: {"spec": [{"zlib": {...}}, ...]}
            if not spec:  # the root is the first node: none is no specfile
                raise RecordError(f"{path}: Spack specfile without nodes")
            return [parse_node(n, 1) for n in (spec[:1] if root_only else spec)]
        version = _format_version(spec.meta.get("version")) if spec.meta is not None else None
        if version not in SPECFILE_VERSIONS:
            shown = spec.meta.get("version") if spec.meta is not None else None
            raise RecordError(
                f"{path}: Spack specfile version {shown} is not supported; vbridge reads "
                f"versions {SPECFILE_VERSIONS[0]} to {SPECFILE_VERSIONS[-1]}"
            )
        assert version is not None
        if not spec.nodes:
            raise RecordError(f"{path}: Spack specfile without nodes")
        raw = spec.nodes[:1] if root_only else spec.nodes
        return [parse_node(load_typed(bytes(n), NodeFields, path, hint=""), version) for n in raw]
    except RecordError:
        raise
    except ValueError as exc:
        raise RecordError(f"{path}: not a Spack specfile: {exc}") from exc


def read_database(path: Path) -> list[DatabaseEntry]:
    """The install records of ``.spack-db/index.json``. Raises :class:`RecordError`.

    A database is read once while the file is unchanged.
    """
    try:
        st = path.stat()
    except OSError as exc:
        raise RecordError(f"{path}: unreadable: {exc}") from exc
    key = _cache_key(st)
    if key is None:
        return list(_read_database_cached.__wrapped__(path, None))
    return list(_read_database_cached(path, key))


@lru_cache(maxsize=8)
def _read_database_cached(
    path: Path, state: tuple[int, int, int] | None
) -> tuple[DatabaseEntry, ...]:
    data = read_regular(path, hint="")
    try:
        database: _DatabaseFields | _DatabaseHeader | None = load_typed(
            data, _IndexFile, path, hint=""
        ).database
    except RecordError:
        # What the header says comes first (no database, another version); else the
        # decode's own error. Decoded in one pass when it reads (the header alone is a
        # second pass over the whole file).
        database = load_typed(data, _IndexHeader, path, hint="").database
        if database is not None and _format_version(database.version) in DATABASE_VERSIONS:
            raise
    if database is None:
        raise RecordError(f"{path}: not a Spack install database (no 'database' key)")
    version = _format_version(database.version)
    if version not in DATABASE_VERSIONS:
        raise RecordError(
            f"{path}: Spack install database version {database.version} is not supported; "
            f"vbridge reads versions {', '.join(map(str, DATABASE_VERSIONS))} "
            f"(run `spack reindex` with a Spack that writes one of them)"
        )
    assert version is not None and isinstance(database, _DatabaseFields)
    installs = database.installs
    if installs is None:
        raise RecordError(f"{path}: Spack install database without 'installs'")
    spec_version = _DATABASE_SPECFILE[version]
    entries: list[DatabaseEntry] = []
    edges_seen: dict[tuple[Any, ...], Edge] = {}
    for key, record in installs.items():
        try:
            node = parse_node(record.spec, spec_version, key=key, edges_seen=edges_seen)
        except ValueError as exc:
            raise RecordError(f"{path}: install record {key}: {exc}") from exc
        entries.append(
            DatabaseEntry(
                node=node,
                prefix=_path_text(record.path) if record.path else None,
                installed=record.installed,
                explicit=record.explicit,
            )
        )
    return tuple(entries)


def read_lockfile(path: Path) -> list[SpecNode]:
    """Every concrete node of a ``spack.lock`` (included environments' too)."""
    data = _load_json(path)
    meta = data.get("_meta") if isinstance(data, dict) else None
    if not isinstance(meta, dict) or meta.get("file-type", "spack-lockfile") != "spack-lockfile":
        raise RecordError(f"{path}: not a Spack lockfile (no '_meta' lockfile header)")
    version = _format_version(meta.get("lockfile-version"))
    if version not in LOCKFILE_VERSIONS:
        raise RecordError(
            f"{path}: Spack lockfile version {meta.get('lockfile-version')} is not supported; "
            f"vbridge reads versions {LOCKFILE_VERSIONS[0]} to {LOCKFILE_VERSIONS[-1]}"
        )
    assert version is not None
    spec_version = _LOCKFILE_SPECFILE[version]
    nodes: dict[str, SpecNode] = {}

    def collect(section: Mapping[str, Any]) -> None:
        specs = section.get("concrete_specs") or {}
        if not isinstance(specs, dict):
            raise RecordError(f"{path}: 'concrete_specs' is not a mapping")
        for key, node in specs.items():
            try:
                parsed = parse_node(node, spec_version, key=key, key_is_identity=version < 4)
            except ValueError as exc:
                raise RecordError(f"{path}: concrete spec {key}: {exc}") from exc
            nodes.setdefault(parsed.hash, parsed)
        included = section.get("include_concrete") or {}
        if isinstance(included, dict):
            for sub in included.values():
                if isinstance(sub, dict):
                    collect(sub)

    collect(data)
    return list(nodes.values())


# --- facts ------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def x86_64_level(target: str | None) -> str | None:
    """The x86-64 microarchitecture level (``v1``..``v4``) a Spack target needs.

    archspec knows each target's generic ancestor (``icelake`` -> ``x86_64_v4``);
    non-x86-64 targets and names archspec does not know give None. Worked out once per
    target (a tree's thousands of nodes name a few).
    """
    if not target:
        return None
    import archspec.cpu

    micro = archspec.cpu.TARGETS.get(target)
    if micro is None or micro.family.name != "x86_64":
        return None
    generic = str(micro.generic.name)
    if generic == "x86_64":
        return "v1"
    if generic.startswith("x86_64_v"):
        return generic[len("x86_64_") :]
    return None


def _variant_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(_variant_text(v) for v in value)
    return str(value)


def _facts(
    node: SpecNode, index: Mapping[str, SpecNode], keys: Mapping[str, str]
) -> tuple[dict[str, object], list[str], list[str]]:
    """What rules look at (providers of linked virtuals, variants, target level), and
    the record keys (``keys``: by DAG hash) of the nodes it links or runs with and of
    those it links."""
    providers: list[str] = []
    virtuals: dict[str, list[str]] = {}
    externals: dict[str, str] = {}
    requires: list[str] = []
    linked: list[str] = []
    for edge in node.edges:
        name = edge.name
        edge_virtuals = edge.virtuals
        if edge_virtuals:
            virtuals.setdefault(name, []).extend(edge_virtuals)
        dep = index.get(edge.hash)
        dep_external = dep.external if dep is not None else None
        if dep_external:
            externals[name] = dep_external
        deptypes = edge.deptypes
        links = "link" in deptypes
        if not links and "run" not in deptypes:
            continue  # a build-only provider (a compiler's c/cxx) is not what runs
        for virtual in edge_virtuals:
            if dep_external:
                providers.append(f"{virtual}={name} external:{dep_external}")
            else:
                providers.append(f"{virtual}={name}")
        if dep is not None:
            key = keys[dep.hash]
            requires.append(key)
            if links:
                linked.append(key)
    extra: dict[str, object] = {"hash": node.hash, "specfile_version": node.specfile_version}
    if providers:
        extra["providers"] = providers
    if virtuals:
        extra["virtuals"] = virtuals
    if externals:
        extra["external_dependencies"] = externals
    if not node.virtuals_recorded and any(e.linked for e in node.edges):
        extra["virtuals_recorded"] = False
    variants = [
        f"{k}={v if type(v) is str else _variant_text(v)}"
        for k, v in node.parameters.items()
        if k not in _COMPILER_FLAGS
    ]
    if variants:
        extra["variants"] = variants
    if node.platform:
        extra["platform"] = node.platform
    if node.os:
        extra["os"] = node.os
    if node.target:
        extra["target"] = node.target
    if node.compiler:
        extra["compiler"] = node.compiler
    if node.external:
        extra["external"] = node.external
    if node.external is None:  # an external's target is a label, not how it was built
        level = x86_64_level(node.target)
        if level:
            extra["x86_64_level"] = level
    return extra, requires, linked


def _index(nodes: Iterable[SpecNode]) -> dict[str, SpecNode]:
    """Nodes by every hash an edge may name them by."""
    index: dict[str, SpecNode] = {}
    for node in nodes:
        index.setdefault(node.hash, node)
        for other in node.other_hashes:
            index.setdefault(other, node)
    return index


def _records(
    nodes: Iterable[SpecNode],
    source: Path | None,
    python_dists: Mapping[str, tuple[Path, ...]],
    prefixes: Mapping[str, Path | str] | None = None,
    flags: Mapping[str, Mapping[str, object]] | None = None,
    index: Mapping[str, SpecNode] | None = None,
) -> Iterator[InstallRecord]:
    """One record per node; ``requires`` holds the keys of linked dependencies.
    ``index``: ``_index`` of the nodes, when the caller has made it."""
    node_list = list({n.hash: n for n in nodes}.values())
    source_text = None if source is None else os.fspath(source)
    if index is None:
        index = _index(node_list)
    # InstallRecord.key of each node's record, known before the records are built so
    # each is built once with its requires.
    keys = {
        n.hash: f"{ECOSYSTEM}:{n.name}-{n.version}" + (f"-{n.hash[:_HASH_CHARS]}" if n.hash else "")
        for n in node_list
    }
    for node in node_list:
        extra, requires, linked = _facts(node, index, keys)
        dists = python_dists.get(node.hash, ())
        if dists and "x86_64_level" in extra:
            # The property says what a distribution's own binaries need: only a node
            # that owns Python distributions gives it (the closure would carry a build
            # tool's or a library's target to a pure-Python package), and only when
            # they are not all pure Python.
            if all(map(pure_python, dists)):
                extra["pure_python"] = True
            else:
                extra["binaries_x86_64_level"] = extra["x86_64_level"]
        if prefixes and node.hash in prefixes:
            extra["prefix"] = str(prefixes[node.hash])
        if flags and node.hash in flags:
            extra.update(flags[node.hash])
        if linked:
            extra["link_requires"] = linked
        yield InstallRecord(
            ecosystem=ECOSYSTEM,
            name=node.name,
            version=node.version,
            build=node.hash[:_HASH_CHARS],
            source=source_text,
            depends=tuple([e.name for e in node.edges]),
            python_dists=dists,
            extra=extra,
            requires=tuple(requires),
        )


# --- where the Python distributions are -------------------------------------------------

_COMPILED_SUFFIXES = (".so", ".pyd", ".dylib", ".dll")


def pure_python(dist_info: Path) -> bool:
    """Whether a dist-info shows its distribution is pure Python.

    Its ``WHEEL`` says ``Root-Is-Purelib: true`` with only ``*-none-any`` tags, and its
    ``RECORD`` lists no compiled file (``.so``, ``.so.N``, ``.pyd``, ``.dylib``,
    ``.dll``). A missing or unreadable file shows nothing: False.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()) / "pip-26.1.dist-info"; d.mkdir()
    >>> _ = (d / "WHEEL").write_text("Root-Is-Purelib: true\\nTag: py3-none-any\\n")
    >>> _ = (d / "RECORD").write_text("pip/__init__.py,sha256=x,1\\n")
    >>> pure_python(d)
    True
    >>> _ = (d / "RECORD").write_text("pip/_speedups.cpython-314-x86_64-linux-gnu.so,,\\n")
    >>> pure_python(d)
    False
    """
    try:
        directory = os.fspath(dist_info)
        wheel = read_regular(_join(directory, "WHEEL")).decode("utf-8", errors="replace")
    except (OSError, RecordError):
        return False
    purelib = False
    tags: list[str] = []
    for line in wheel.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == "root-is-purelib":
            purelib = value.strip().lower() == "true"
        elif key.strip().lower() == "tag":
            tags.append(value.strip())
    if not purelib or not tags or not all(t.endswith("-none-any") for t in tags):
        return False  # RECORD need not be read
    try:
        record = read_regular(_join(directory, "RECORD")).decode("utf-8", errors="replace")
    except (OSError, RecordError):
        return False
    for line in record.splitlines():
        path = line.split(",", 1)[0].strip().strip('"').lower()
        name = path.rsplit("/", 1)[-1]
        if name.endswith(_COMPILED_SUFFIXES) or ".so." in name:
            return False
    return True


def _prefix_layers(prefix: Path | str) -> list[Path]:
    """The ``lib/python*/site-packages`` then ``lib64/python*/site-packages`` directories.

    What ``prefix.glob("lib/python*/site-packages")`` finds, with one ``scandir`` of each
    of ``lib`` and ``lib64`` (a tree scan calls this for every install; most have no
    Python, many no prefix on this machine).
    """
    return [layer for layer, _ in _prefix_layer_stats(prefix)]


def _prefix_layer_stats(prefix: Path | str) -> list[tuple[Path, os.stat_result]]:
    """:func:`_prefix_layers` with each layer's ``stat``, which showed it a directory
    (for :func:`~vbridge.sitepackages.iter_metadata_dirs`, which then need not look)."""
    top = os.fspath(prefix)
    found: list[tuple[Path, os.stat_result]] = []
    for lib in _SITE_PACKAGES_LIBS:
        directory = _join(top, lib)
        try:
            with os.scandir(directory) as entries:
                names = [e.name for e in entries if e.name.startswith("python")]
        except OSError:  # none, or not a directory
            continue
        if len(names) > 1:
            names.sort()
        for name in names:
            layer = _join(_join(directory, name), "site-packages")
            st = layer_stat(layer)
            if st is not None:
                found.append((Path(layer), st))
    return found


def _join(directory: str, name: str) -> str:
    """``os.path.join(directory, name)`` of a name without separators (in a few dozen
    instructions on POSIX: a tree scan joins thousands)."""
    if os.sep == "/" and directory and not directory.endswith("/"):
        return f"{directory}/{name}"
    return os.path.join(directory, name)


def _absent_prefixes(prefixes: Iterable[Path | str]) -> set[str]:
    """Those of ``prefixes`` that are not there, seen in one listing of each directory
    holding two or more of them (a tree's ``linux-x86_64_v3/``) instead of a failed
    look into each. A name that differs from a listed one only in case (a
    case-insensitive file system) or is not ASCII is not called absent."""
    by_parent: dict[str, list[tuple[str, str]]] = {}
    split = os.path.split if os.sep != "/" else _split
    for prefix in prefixes:
        text = os.fspath(prefix)
        parent, name = split(text)
        if parent and name not in ("", ".", "..") and name.isascii():
            by_parent.setdefault(parent, []).append((text, name.lower()))
    absent: set[str] = set()
    for parent, paths in by_parent.items():
        if len(paths) < 2:
            continue
        try:
            with os.scandir(parent) as entries:
                listed = {e.name.lower() for e in entries}
        except OSError:
            continue
        absent.update(text for text, name in paths if name not in listed)
    return absent


def _split(text: str) -> tuple[str, str]:
    """``os.path.split`` of a POSIX path written as ``str(Path(...))`` writes it (no
    trailing or repeated ``/``); "" for the parent of a name under ``/`` or of no
    directory (which :func:`_absent_prefixes` then does not list)."""
    parent, _, name = text.rpartition("/")
    return parent, name


def _prefix_owner_hash(spec_file: Path | str) -> str | None:
    """The DAG hash a prefix's ``.spack/spec.json`` names as its root, if readable."""
    try:
        return read_specfile(spec_file, root_only=True)[0].hash
    except RecordError:
        return None


def _prefix_dists(
    prefix: Path | str, dag_hash: str, problems: list[RecordProblem]
) -> tuple[tuple[Path, ...], list[Path]]:
    """The dist-info directories a Spack prefix owns, and its site-packages layers."""
    layer_stats = _prefix_layer_stats(prefix)
    if not layer_stats:
        return (), []
    layers = [layer for layer, _ in layer_stats]
    spec_file = _join(_join(os.fspath(prefix), ".spack"), "spec.json")
    owner = _prefix_owner_hash(spec_file)
    if owner is None:
        problems.append(
            RecordProblem(
                Path(spec_file),
                "missing or unreadable, so the Python distributions in this prefix "
                "are not attributed to Spack",
                "reinstall the package with Spack",
            )
        )
        return (), layers
    if owner != dag_hash:
        problems.append(
            RecordProblem(
                Path(spec_file),
                f"names hash {owner[:_HASH_CHARS]} but the database installed "
                f"{dag_hash[:_HASH_CHARS]} here; its Python distributions are not attributed",
                "run `spack reindex`",
            )
        )
        return (), layers
    dists = tuple(meta.path for layer, st in layer_stats for meta in iter_metadata_dirs(layer, st))
    return dists, layers


class _ViewPackage(msgspec.Struct, frozen=True, gc=False):
    name: str
    spec_file: Path
    nodes: tuple[SpecNode, ...]


def _view_packages(view: Path, problems: list[RecordProblem]) -> list[_ViewPackage]:
    meta = view / ".spack"
    try:
        names = sorted(e.name for e in os.scandir(meta) if e.is_dir())
    except OSError as exc:
        problems.append(RecordProblem(meta, f"cannot list: {exc.strerror}"))
        return []
    packages = []
    for name in names:
        spec_file = meta / name / "spec.json"
        if not spec_file.is_file():
            continue
        try:
            packages.append(_ViewPackage(name, spec_file, tuple(read_specfile(spec_file))))
        except RecordError as exc:
            problems.append(RecordProblem(spec_file, _without_path(exc, spec_file), "skipped"))
    return packages


def _view_package_prefix(package: _ViewPackage) -> tuple[Path | None, list[str]]:
    """Where a view package is installed, and its files that manifest lists.

    A symlinked view links ``.spack/<pkg>/spec.json`` to the prefix's own; a copied or
    hardlinked view still has the prefix's ``install_manifest.json``, keyed by the
    absolute paths of the prefix's files (the prefix itself the shortest).
    """
    real = Path(os.path.realpath(package.spec_file))
    if real != package.spec_file.absolute() and real.parent.name == ".spack":
        return real.parent.parent, []
    manifest_file = package.spec_file.with_name("install_manifest.json")
    try:
        manifest = _load_json(manifest_file)
    except RecordError:
        return None, []
    if not isinstance(manifest, dict) or not manifest:
        return None, []
    paths = [str(k) for k in manifest]
    return Path(min(paths, key=len)), paths


def _view_dists(
    view: Path, packages: Iterable[_ViewPackage]
) -> tuple[dict[str, tuple[Path, ...]], dict[str, Path]]:
    """DAG hash -> the dist-info directories in ``view`` that package links there, and
    DAG hash -> the prefix the package is installed in (where its own files are)."""
    out: dict[str, tuple[Path, ...]] = {}
    prefixes: dict[str, Path] = {}
    for package in packages:
        root = package.nodes[0]
        prefix, manifest = _view_package_prefix(package)
        if prefix is None:
            continue
        prefixes[root.hash] = prefix
        relative: list[str] = []
        if manifest:
            for entry in manifest:
                rel = os.path.relpath(entry, prefix)
                if rel.endswith((".dist-info", ".egg-info")) and "site-packages" in rel:
                    relative.append(rel)
        else:
            for layer, st in _prefix_layer_stats(prefix):
                for meta in iter_metadata_dirs(layer, st):
                    relative.append(os.path.relpath(meta.path, prefix))
        found = tuple(view / rel for rel in sorted(relative) if (view / rel).exists())
        if found:
            out[root.hash] = found
    return out, prefixes


def _environment_views(env: Path) -> list[Path]:
    """The environment's default view (``.spack-env/view``), when it exists."""
    view = env / ".spack-env" / "view"
    return [view] if _is_view(view) else []


def _tree_above(prefix: Path) -> Path | None:
    for candidate in prefix.parents:
        if (candidate / ".spack-db" / "index.json").is_file():
            return candidate
    return None


def _without_path(exc: RecordError, path: Path) -> str:
    text = str(exc)
    lead = f"{path}: "
    return text[len(lead) :] if text.startswith(lead) else text


# --- the adapter protocol ---------------------------------------------------------------


def _kind(root: Path) -> str:
    if _present(root / ".spack-db" / "index.json"):
        return "tree"
    if _present(root / "spack.lock"):
        return "environment"
    if _present(root / ".spack" / "spec.json"):
        return "prefix"
    if _is_view(root):
        return "view"
    return "projections"


def is_tree(root: Path) -> bool:
    """An install tree (``.spack-db/index.json``): its prefixes are where files are."""
    return _kind(root) == "tree"


def is_prefix(root: Path) -> bool:
    """One installed prefix (``.spack/spec.json``)."""
    return _kind(root) == "prefix"


def view_roots(root: Path) -> list[Path]:
    """The views an environment, view or projection view ``root`` shows its
    distributions through (an environment: its default view)."""
    kind = _kind(root)
    if kind == "environment":
        return _environment_views(root)
    if kind in ("view", "projections"):
        return [root]
    return []


def is_collection(root: Path) -> bool:
    """An install tree holds many environments, not one: no single process loads it all;
    nor does a view with projections that holds more than one Python."""
    kind = _kind(root)
    if kind == "projections":
        return sum(1 for v in projection_views(root) if _prefix_layers(v)) > 1
    return kind == "tree"


def read_records(root: Path, problems: list[RecordProblem]) -> Iterator[InstallRecord]:
    """Every node under ``root`` (install tree, environment, view or prefix)."""
    reader = {
        "tree": _read_tree,
        "environment": _read_environment,
        "prefix": _read_prefix,
        "view": _read_view,
        "projections": _read_projections,
    }[_kind(root)]
    yield from reader(root, problems)


def read_records_and_layers(
    root: Path, problems: list[RecordProblem]
) -> tuple[list[InstallRecord], list[Path]]:
    """:func:`read_records` and :func:`site_packages` of ``root`` in one: the layers an
    install tree's read found while it looked for each prefix's Python distributions,
    instead of listing every prefix again (the same layers, in the same order)."""
    kind = _kind(root)
    if kind == "tree":
        layers: list[Path] = []
        return list(_read_tree(root, problems, layers)), layers
    return list(read_records(root, problems)), _site_packages(root, kind)


def site_packages(root: Path) -> list[Path]:
    """The site-packages directories the records under ``root`` install into: the
    layers of each installed prefix with a ``.spack/spec.json`` (a tree), of a view, of
    each projection of a view, of an environment's view, of a prefix and its linked
    dependencies."""
    return _site_packages(root, _kind(root))


def _site_packages(root: Path, kind: str) -> list[Path]:
    if kind == "view":
        return _prefix_layers(root)
    if kind == "projections":
        return [layer for view in projection_views(root) for layer in _prefix_layers(view)]
    if kind == "environment":
        return [layer for view in _environment_views(root) for layer in _prefix_layers(view)]
    if kind == "tree":
        try:
            entries = read_database(root / ".spack-db" / "index.json")
        except RecordError:
            return []
        return _entry_layers(entries)
    return _prefix_environment(root, [])[1]


def _has_spec_file(prefix: Path | str) -> bool:
    return os.path.isfile(os.path.join(prefix, ".spack", "spec.json"))


def _entry_layers(entries: Iterable[DatabaseEntry]) -> list[Path]:
    """The layers of each installed prefix (not an external's) with a spec.json."""
    layers: list[Path] = []
    for entry in entries:
        if entry.prefix is None or not entry.installed or entry.node.external:
            continue
        if _has_spec_file(entry.prefix):
            layers.extend(_prefix_layers(entry.prefix))
    return layers


def _missing_dependencies(
    entries: list[DatabaseEntry], index: Mapping[str, SpecNode]
) -> list[tuple[SpecNode, Edge]]:
    """Linked dependencies that no entry of the database (``index``: its nodes by every
    hash) is: installed in an upstream Spack instance (its database is another tree's
    ``index.json``), or lost."""
    # The hash looked up first: ~10,000 edges of a tree, nearly all in the database.
    return [
        (entry.node, edge)
        for entry in entries
        for edge in entry.node.edges
        if edge.hash not in index and edge.linked
    ]


def _tree_records(
    entries: list[DatabaseEntry],
    source: Path | None,
    problems: list[RecordProblem],
    evidence_source: Path | None = None,
    layers: list[Path] | None = None,
) -> Iterator[InstallRecord]:
    """Records of database entries; ``source`` is the database file they were read from
    (None: Spack's own store handed them over, upstreams included), ``evidence_source``
    what evidence names when that is not ``source``. ``layers`` gets what
    :func:`_entry_layers` gives for the entries, found on the way."""
    nodes = list({e.node.hash: e.node for e in entries}.values())
    index = _index(nodes)
    # Read from a database file (not Spack's own store, which knows its upstreams).
    missing: list[tuple[SpecNode, Edge]] = []
    if source is not None:  # every node's hashes count (two entries may share one)
        everyone = index if len(nodes) == len(entries) else _index(e.node for e in entries)
        missing = _missing_dependencies(entries, everyone)
    if source is not None and missing:
        node, edge = missing[0]
        specs = len({n.hash for n, _ in missing})
        problems.append(
            RecordProblem(
                source,
                f"{len(missing)} linked dependencies of {specs} specs are not in this "
                f"database (e.g. {node.name}/{node.hash[:_HASH_CHARS]} -> "
                f"{edge.name}/{edge.hash[:_HASH_CHARS]}): installed in an upstream Spack, "
                "or lost; the properties they carry are missing",
                "run `spack vbridge scan` inside Spack, which reads upstream databases",
            )
        )
    dists: dict[str, tuple[Path, ...]] = {}
    prefixes: dict[str, Path | str] = {}
    flags: dict[str, dict[str, object]] = {}
    absent = _absent_prefixes(
        e.prefix
        for e in entries
        if e.prefix is not None and e.installed and e.node.external is None
    )
    for entry in entries:
        node = entry.node
        flags[node.hash] = {"installed": entry.installed, "explicit": entry.explicit}
        prefix = entry.prefix
        if prefix is None:
            continue
        prefixes[node.hash] = prefix
        if entry.installed and node.external is None:
            if absent and prefix in absent:
                dists[node.hash] = ()  # what _prefix_dists says of it: no layers
                continue
            owned, found = _prefix_dists(prefix, node.hash, problems)
            dists[node.hash] = owned
            # A prefix's layers count where it has a spec.json: it names the owner.
            if layers is not None and found and (owned or _has_spec_file(prefix)):
                layers.extend(found)
    yield from _records(nodes, source or evidence_source, dists, prefixes, flags, index)


def _read_tree(
    root: Path, problems: list[RecordProblem], layers: list[Path] | None = None
) -> Iterator[InstallRecord]:
    index = root / ".spack-db" / "index.json"
    try:
        entries = read_database(index)
    except RecordError as exc:
        problems.append(RecordProblem(index, _without_path(exc, index), "skipped"))
        return
    yield from _tree_records(entries, index, problems, layers=layers)


def _read_environment(root: Path, problems: list[RecordProblem]) -> Iterator[InstallRecord]:
    lock = root / "spack.lock"
    try:
        nodes = read_lockfile(lock)
    except RecordError as exc:
        problems.append(RecordProblem(lock, _without_path(exc, lock), "skipped"))
        return
    dists: dict[str, tuple[Path, ...]] = {}
    prefixes: dict[str, Path] = {}
    for view in _environment_views(root):
        view_dists, view_prefixes = _view_dists(view, _view_packages(view, problems))
        dists.update(view_dists)
        prefixes.update(view_prefixes)
    yield from _records(nodes, lock, dists, prefixes)


def _read_view(root: Path, problems: list[RecordProblem]) -> Iterator[InstallRecord]:
    packages = _view_packages(root, problems)
    dists, prefixes = _view_dists(root, packages)
    nodes = [n for p in packages for n in p.nodes]
    yield from _records(nodes, root / ".spack", dists, prefixes)


def _read_projections(root: Path, problems: list[RecordProblem]) -> Iterator[InstallRecord]:
    dists: dict[str, tuple[Path, ...]] = {}
    prefixes: dict[str, Path] = {}
    nodes: list[SpecNode] = []
    for view in projection_views(root):
        packages = _view_packages(view, problems)
        view_dists, view_prefixes = _view_dists(view, packages)
        for key, found in view_dists.items():
            dists[key] = dists.get(key, ()) + found
        prefixes.update(view_prefixes)
        nodes.extend(n for p in packages for n in p.nodes)
    yield from _records(nodes, root, dists, prefixes)


def _prefix_environment(
    prefix: Path, problems: list[RecordProblem]
) -> tuple[list[SpecNode], list[Path], dict[str, tuple[Path, ...]], dict[str, Path | str]]:
    """A prefix's DAG, and the Python layers of it and its linked dependencies.

    The prefix's own ``spec.json`` holds its whole DAG; the install tree above it (when
    there is one) says where each dependency is installed.
    """
    spec_file = prefix / ".spack" / "spec.json"
    try:
        nodes = read_specfile(spec_file)
    except RecordError as exc:
        problems.append(RecordProblem(spec_file, _without_path(exc, spec_file), "skipped"))
        return [], [], {}, {}
    root = nodes[0]
    prefixes: dict[str, Path | str] = {root.hash: prefix}
    tree = _tree_above(prefix)
    if tree is not None:
        index_file = tree / ".spack-db" / "index.json"
        try:
            for entry in read_database(index_file):
                if entry.prefix is not None and entry.installed and entry.node.external is None:
                    prefixes.setdefault(entry.node.hash, entry.prefix)
        except RecordError as exc:
            problems.append(RecordProblem(index_file, _without_path(exc, index_file), "skipped"))
    index = _index(nodes)
    reachable: list[SpecNode] = []
    queue = [root]
    seen: set[str] = set()
    while queue:
        node = queue.pop(0)
        if node.hash in seen:
            continue
        seen.add(node.hash)
        reachable.append(node)
        queue.extend(index[e.hash] for e in node.edges if e.linked and e.hash in index)
    layers: list[Path] = []
    dists: dict[str, tuple[Path, ...]] = {}
    for node in reachable:
        where = prefixes.get(node.hash)
        if where is None or node.external:
            continue
        owned, node_layers = _prefix_dists(where, node.hash, problems)
        if owned:
            dists[node.hash] = owned
        layers.extend(node_layers)
    return nodes, layers, dists, prefixes


def _read_prefix(root: Path, problems: list[RecordProblem]) -> Iterator[InstallRecord]:
    nodes, _, dists, prefixes = _prefix_environment(root, problems)
    yield from _records(nodes, root / ".spack" / "spec.json", dists, prefixes)


class SpackRecords(Adapter):
    """Spack install trees, environments, views and prefixes (see the module's
    functions)."""

    ECOSYSTEM = ECOSYSTEM
    DISCOVER_SETTINGS: ClassVar[Mapping[str, type]] = {"spack": list}
    DISCOVER_RANK = 30

    def find_root(self, path: Path) -> Path | None:
        return find_root(path)

    def read_records(self, root: Path, problems: list[RecordProblem]) -> Iterator[InstallRecord]:
        return read_records(root, problems)

    def site_packages(self, root: Path) -> list[Path]:
        return site_packages(root)

    def read_records_and_layers(
        self, root: Path, problems: list[RecordProblem]
    ) -> tuple[list[InstallRecord], list[Path]]:
        return read_records_and_layers(root, problems)

    def is_collection(self, root: Path) -> bool:
        return is_collection(root)

    # A spec names every dependency it was concretized with: a Spack package's
    # Requires-Dist is never held against it.
    RECORDS_DEPENDENCIES = True

    def requirements(self, record: InstallRecord, index: RecordIndex) -> Iterator[Requirement]:
        return requirements(record, index)

    def discover(self, config: DiscoveryConfig) -> list[Target]:
        """The configured install trees and environments (``[discover] spack``) that
        exist."""
        from vbridge.inventory.discover import Target

        return [
            Target(path, "spack")
            for path in config.paths("spack")
            if (path / ".spack-db" / "index.json").is_file() or (path / "spack.lock").is_file()
        ]


ADAPTER = SpackRecords()


class InstalledSpecs(Adapter):
    """An adapter over specs Spack itself hands over (``spack.store.STORE.db``).

    Used by the ``spack vbridge`` command when it runs inside Spack: each entry is
    ``(spec.node_dict_with_hashes(), spec.prefix, installed, explicit)`` in the
    current specfile format, so the records match those read from the files.

    >>> node = {"name": "zlib", "version": "1.3", "hash": "c" * 32}
    >>> source = InstalledSpecs(Path("/opt/spack"), [(node, None, True, True)])
    >>> [r.key for r in source.read_records(Path("/opt/spack"), [])]
    ['spack:zlib-1.3-ccccccc']
    """

    ECOSYSTEM = ECOSYSTEM
    RECORDS_DEPENDENCIES = True

    def requirements(self, record: InstallRecord, index: RecordIndex) -> Iterator[Requirement]:
        return requirements(record, index)

    def __init__(
        self,
        root: Path,
        specs: Iterable[tuple[Mapping[str, Any], str | os.PathLike[str] | None, bool, bool]],
        spec_version: int = SPECFILE_VERSIONS[-1],
        *,
        collection: bool = True,
        source: Path | None = None,
    ) -> None:
        self.root = Path(root)
        self.collection = collection
        # The file the facts are read from, for evidence (Spack's database index).
        self.source = source
        self.entries: list[DatabaseEntry] = []
        for node, prefix, installed, explicit in specs:
            self.entries.append(
                DatabaseEntry(
                    node=parse_node(dict(node), spec_version),
                    prefix=_path_text(os.fspath(prefix)) if prefix else None,
                    installed=installed,
                    explicit=explicit,
                )
            )

    def find_root(self, path: Path) -> Path | None:
        return self.root if Path(path) == self.root else None

    def is_collection(self, root: Path) -> bool:
        """Spack's whole store holds many environments (an environment's specs do not)."""
        return self.collection

    def read_records(self, root: Path, problems: list[RecordProblem]) -> Iterator[InstallRecord]:
        yield from _tree_records(self.entries, None, problems, self.source)

    def site_packages(self, root: Path) -> list[Path]:
        return _entry_layers(self.entries)

    def read_records_and_layers(
        self, root: Path, problems: list[RecordProblem]
    ) -> tuple[list[InstallRecord], list[Path]]:
        layers: list[Path] = []
        records = list(_tree_records(self.entries, None, problems, self.source, layers))
        return records, layers


# --- what records require of Python distributions ----------------------------------------


def requirements(record: InstallRecord, index: RecordIndex) -> Iterator[Requirement]:
    """What ``record`` requires of the Python distributions other specs own: each edge
    to one exact build (``py-numpy@1.26.4/abcdefg``). A ``link`` edge means the
    package's binaries were built against that build (an ABI); a ``run``-only edge
    needs the same version to hold the spec's concretization."""
    by_key = index.by_key
    found: list[Requirement] = []
    linked_keys: set[str] | None = None
    dependent = source = ""
    for key in record.requires or ():
        provider = by_key.get(key)
        if provider is None or not provider.python_dists:
            continue
        if linked_keys is None:  # the first edge to a Python distribution
            linked = record.extra.get("link_requires")
            linked_keys = set(linked) if isinstance(linked, list) else set()
            dependent = record.key
            source = str(record.source or "")
        spec = f"{provider.name}@{provider.version}/{provider.build}"
        binary = key in linked_keys
        for dist_path in provider.python_dists:
            found.append(
                Requirement(
                    target=_distribution_name(dist_path.name),
                    spec=spec,
                    kind="link",
                    ecosystem=ECOSYSTEM,
                    dependent=dependent,
                    source=source,
                    provider=key,  # by_key's key: the provider's own
                    specifier=f"=={provider.version}",
                    binary=binary,
                )
            )
    # Worked out at once, not as a generator: most of a tree's specs (its C libraries)
    # require no Python distribution, and requirements_on takes every one of them.
    return iter(found)


@lru_cache(maxsize=4096)
def _distribution_name(dirname: str) -> str:
    """The PEP 503 name of a metadata directory's distribution, worked out once per
    directory (a tree's shared Python packages are required by hundreds of specs)."""
    return split_metadata_dir_name(dirname)[0]

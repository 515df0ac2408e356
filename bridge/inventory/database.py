"""The inventory: the scans of many environments in one SQLite database.

Written through sqlite-utils, plain enough to browse with Datasette or query with the
``sqlite-utils`` command line. Tables (primary key first; ``->`` is a foreign key):

- ``environments`` (id, path UNIQUE, python, origin, ecosystems, site_packages,
  distributions, findings, problems, refused, fingerprint, first_scan_id, last_scan_id,
  last_scanned_at)
- ``scans`` (id, environment_id -> environments, started_at, seconds, status
  ``new|rescanned|unchanged``, vbridge_version, fingerprint, distributions, findings,
  problems, added, removed): one row per environment per scan, never rewritten
- ``owners`` (id, ecosystem, name, version, build, channel, subdir): the foreign
  packages that own distributions (``conda:libblas-3.9.0-20_linux64_mkl@conda-forge``)
- ``distributions`` (id, environment_id -> environments, name, version, installer,
  installed_by, owner_id -> owners, dist_info, layer, properties)
- ``properties`` (id, environment_id -> environments, distribution_id ->
  distributions, property, namespace, feature, value, record, rule, via, evidence)
- ``findings`` (id, environment_id -> environments, severity, code, message,
  distributions, first_scan_id -> scans, last_scan_id -> scans)
- ``problems`` (id, environment_id -> environments, path, problem, hint)
- ``verifications`` (id, environment_id -> environments, scan_id -> scans, verified_at,
  python, seconds, distributions, confirmed, differs, failed, document): one row per
  ``vbridge verify --db`` run, with the scan it verified and its JSON document
- ``verified`` (id, verification_id -> verifications, environment_id -> environments,
  distribution, version, feature, status, recorded, loaded, message): one row per
  distribution and feature (``feature`` empty for an import that failed, crashed or
  timed out)

Lists are JSON text. Re-scanning upserts each environment's rows in place (rows that are
gone are deleted) and adds a ``scans`` row, so the history of every environment stays.
An environment whose records, site-packages and rules have not changed since its last
scan (same *fingerprint*: sizes and modification times of every file the scan read) is
not scanned again; its ``scans`` row says ``unchanged``.

>>> inventory = Inventory.open(Path(tmp) / "inventory.db")           # doctest: +SKIP
>>> inventory.record(environment_rows(env, Target(env.path)), 0.2)    # doctest: +SKIP
>>> inventory.where("blas_lapack :: provider :: mkl", name="numpy")   # doctest: +SKIP
[{'environment': '/opt/conda/envs/sci', 'name': 'numpy', 'value': 'mkl', ...}]
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from vbridge import __version__
from vbridge.errors import VbridgeError
from vbridge.inventory.discover import Target

if TYPE_CHECKING:
    from sqlite_utils import Database
    from vbridge.model import Environment

__all__ = [
    "SCHEMA_VERSION",
    "EnvironmentRows",
    "Fingerprint",
    "Inventory",
    "InventoryError",
    "ScanSummary",
    "environment_rows",
    "fingerprint",
]

SCHEMA_VERSION = 2  # 2: the verifications and verified tables
# A file modified this close to the moment it was fingerprinted may change again within
# the file system's timestamp granularity without its mtime moving ("racily clean", as
# git calls it): such a fingerprint is not trusted for skipping the next scan.
_RACY_NS = 1_000_000_000


class InventoryError(VbridgeError):
    """The inventory database cannot be used (not SQLite, newer schema, unwritable)."""


# How long a run waits for another run's write to the inventory before giving up: runs
# queue behind each other (SQLite's busy timeout) instead of failing at once.
BUSY_TIMEOUT = 120.0
P = ParamSpec("P")
R = TypeVar("R")


def _database_error(path: Path, exc: sqlite3.Error) -> InventoryError:
    """The one line for what SQLite said about the inventory file."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        return InventoryError(
            f"{path}: another vbridge run has been writing this inventory for over "
            f"{BUSY_TIMEOUT:.0f} s; run again when it is done"
        )
    if "readonly" in text or "read-only" in text:
        return InventoryError(
            f"{path}: read-only; vbridge cannot record scans in it (use a writable file, "
            "or run as its owner)"
        )
    if "full" in text:
        return InventoryError(
            f"{path}: no space left on device; nothing was recorded (free some space and "
            "scan again)"
        )
    if "not a database" in text or "malformed" in text or "no such" in text:
        return InventoryError(
            f"{path}: the inventory is damaged ({text}); remove it (or restore a backup) "
            "and scan again"
        )
    return InventoryError(f"{path}: the inventory cannot be used ({text})")


def _guarded(method: Callable[P, R]) -> Callable[P, R]:
    """An :class:`Inventory` method whose SQLite errors are one line naming the file."""

    @functools.wraps(method)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except sqlite3.Error as exc:
            inventory = args[0]
            assert isinstance(inventory, Inventory)
            raise _database_error(inventory.path, exc) from None

    return run


# --- fingerprints -----------------------------------------------------------------------


@cache
def rules_digest() -> str:
    """A digest of vbridge's version and every rule file it ships (``data/*.toml``)."""
    digest = hashlib.sha256(__version__.encode())
    data = resources.files("vbridge.data")
    for entry in sorted(data.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            digest.update(entry.name.encode() + b"\0" + entry.read_bytes())
    return digest.hexdigest()


def _stat_digest(paths: Sequence[str], extra: str) -> tuple[str, int]:
    """Digest of the sizes and mtimes of ``paths``, and the newest mtime among them."""
    digest = hashlib.sha256(extra.encode())
    newest = 0
    for path in paths:
        try:
            st = os.stat(path)
            lst = os.lstat(path)
        except OSError:
            digest.update(f"{path}\0missing\n".encode())
            continue
        newest = max(newest, st.st_mtime_ns, lst.st_mtime_ns)
        digest.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\0{lst.st_mtime_ns}\n".encode())
    return digest.hexdigest(), newest


@dataclass(frozen=True)
class Fingerprint:
    """What a scan read, by path, and a digest of their sizes and modification times.

    ``digest`` is None when a file changed too recently to trust its mtime.
    """

    paths: tuple[str, ...]
    digest: str | None

    @classmethod
    def of_paths(cls, paths: Iterable[str], target: Target) -> Fingerprint:
        ordered = tuple(sorted(set(paths)))
        taken = time.time_ns()
        digest, newest = _stat_digest(ordered, _target_key(target))
        return cls(ordered, None if newest > taken - _RACY_NS else digest)

    def unchanged(self, target: Target) -> bool:
        """True when every path still has the size and mtime it had."""
        if self.digest is None:
            return False
        return _stat_digest(self.paths, _target_key(target))[0] == self.digest


def _target_key(target: Target) -> str:
    from vbridge.decide.policy import POLICY_ENV_VAR

    # Findings follow the policy: a $VBRIDGE_POLICY set, changed or unset is a change.
    policy = os.environ.get(POLICY_ENV_VAR, "")
    return f"{rules_digest()}\0{target.python or ''}\0{policy}\0"


def fingerprint(env: Environment, target: Target) -> Fingerprint:
    """The fingerprint of a scanned environment: every record file and directory read.

    Record sources and their directories (a package added to or removed from
    ``conda-meta/`` changes the directory's mtime), every site-packages layer and
    ``.dist-info``, the files evidence came from, unreadable records, and whatever the
    adapters name with :meth:`~vbridge.adapters.Adapter.fingerprint_paths`.
    """
    from vbridge.adapters import Adapter, all_adapters

    paths: set[str] = set()
    for layer in env.site_packages:
        paths.add(str(layer))
    for dist in env.distributions:
        paths.add(str(dist.dist_info))
        for evidence in dist.properties.values():
            for item in evidence:
                if item.source:
                    paths.add(item.source)
                    paths.add(os.path.dirname(item.source))
    for record in env.records:
        if record.source is not None:
            source = os.fspath(record.source)  # text, as the adapters here give it
            paths.add(source)
            paths.add(os.path.dirname(source))
    for problem in env.problems:
        paths.add(str(problem.path))
        paths.add(str(problem.path.parent))
    from vbridge.decide.policy import policy_files

    # The policy files findings were judged by; the per-environment one is watched even
    # while it does not exist, so creating it is a change.
    paths.update(str(p) for p in policy_files(env.path))
    for adapter in all_adapters():
        if type(adapter).fingerprint_paths is Adapter.fingerprint_paths:
            continue  # names nothing: spare its find_root on every layer (a Spack tree's)
        for candidate in [env.path, *env.site_packages]:
            root = adapter.find_root(candidate)
            if root is not None:
                paths.update(str(p) for p in adapter.fingerprint_paths(root))
    return Fingerprint.of_paths(paths, target)


# --- rows -------------------------------------------------------------------------------


@dataclass
class EnvironmentRows:
    """One scanned environment as inventory rows (plain data: crosses process borders)."""

    target: Target
    environment: dict[str, Any]
    distributions: list[dict[str, Any]] = field(default_factory=list)
    owners: list[dict[str, Any]] = field(default_factory=list)
    properties: list[dict[str, Any]] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)
    fingerprint: Fingerprint = field(default_factory=lambda: Fingerprint((), None))
    refused: bool = False


def _owner_id(ecosystem: str, name: str, version: str, build: str, channel: str | None) -> str:
    ident = f"{ecosystem}:{name}-{version}" + (f"-{build}" if build else "")
    return f"{ident}@{channel}" if channel else ident


def environment_rows(env: Environment, target: Target) -> EnvironmentRows:
    """The rows of one environment; ``environment_id`` is filled in when recorded."""
    rows = EnvironmentRows(
        target=target,
        environment={
            "path": str(target.path),
            "python": target.python or "",  # not NULL: (path, python) is unique
            "origin": target.origin,
            "ecosystems": json.dumps(env.ecosystems),
            "site_packages": json.dumps([str(p) for p in env.site_packages]),
            "distributions": len(env.distributions),
            "findings": len(env.findings),
            "problems": len(env.problems),
            "refused": sum(1 for f in env.findings if f.severity == "refuse"),
        },
        fingerprint=fingerprint(env, target),
        refused=any(f.severity == "refuse" for f in env.findings),
    )
    owners: dict[str, dict[str, Any]] = {}
    for dist in env.distributions:
        owner_id = None
        if dist.owner is not None:
            o = dist.owner
            owner_id = _owner_id(o.ecosystem, o.name, o.version, o.build, o.channel)
            owners[owner_id] = {
                "id": owner_id,
                "ecosystem": o.ecosystem,
                "name": o.name,
                "version": o.version,
                "build": o.build,
                "channel": o.channel,
                "subdir": o.subdir,
            }
        dist_key = str(dist.dist_info)
        props = sorted(dist.properties)
        rows.distributions.append(
            {
                "key": dist_key,
                "name": dist.name,
                "version": dist.version,
                "installer": dist.installer,
                "installed_by": dist.owner.ecosystem if dist.owner else dist.installer,
                "owner_id": owner_id,
                "dist_info": dist_key,
                "layer": dist.layer,
                "properties": json.dumps([p.to_str() for p in props]),
            }
        )
        for prop in props:
            evidence = dist.properties[prop]
            first = evidence[0] if evidence else None
            rows.properties.append(
                {
                    "distribution_key": dist_key,
                    "property": prop.to_str(),
                    "namespace": prop.namespace,
                    "feature": prop.feature,
                    "value": prop.value,
                    "record": first.record if first else None,
                    "rule": first.rule if first else None,
                    "via": json.dumps(list(first.via)) if first else "[]",
                    "evidence": json.dumps([e.to_dict() for e in evidence]),
                }
            )
    rows.owners = list(owners.values())
    seen: dict[str, int] = {}
    for finding in env.findings:
        key = f"{finding.code}|{','.join(finding.distributions)}"
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            key += f"|{seen[key]}"
        rows.findings.append(
            {
                "key": key,
                "severity": finding.severity,
                "code": finding.code,
                "message": finding.message,
                "distributions": json.dumps(list(finding.distributions)),
            }
        )
    for problem in env.problems:
        rows.problems.append(
            {
                "key": f"{problem.path}|{problem.problem}",
                "path": str(problem.path),
                "problem": problem.problem,
                "hint": problem.hint,
            }
        )
    return rows


# --- the database -----------------------------------------------------------------------


@dataclass(frozen=True)
class ScanSummary:
    """What one environment's scan did to the inventory."""

    path: str
    status: str  # new | rescanned | unchanged
    scan_id: int
    ecosystems: list[str]
    distributions: int
    findings: int
    problems: int
    refused: bool
    python: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "python": self.python,
            "status": self.status,
            "scan_id": self.scan_id,
            "ecosystems": self.ecosystems,
            "distributions": self.distributions,
            "findings": self.findings,
            "problems": self.problems,
        }


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


_INDEXES: dict[str, list[list[str]]] = {
    "scans": [["environment_id"]],
    "owners": [["name"]],
    "distributions": [["environment_id"], ["name"], ["owner_id"]],
    "properties": [
        ["environment_id"],
        ["distribution_id"],
        ["property"],
        ["namespace", "feature"],
    ],
    "findings": [["environment_id"], ["code"]],
    "problems": [["environment_id"]],
    "verifications": [["environment_id"], ["scan_id"]],
    "verified": [["verification_id"], ["environment_id"], ["status"]],
}


def _create_schema(db: Database) -> None:
    db.table("environments").create(
        {
            "id": int,
            "path": str,
            "python": str,
            "origin": str,
            "ecosystems": str,
            "site_packages": str,
            "distributions": int,
            "findings": int,
            "problems": int,
            "refused": int,
            "fingerprint": str,
            "fingerprint_paths": str,
            "first_scan_id": int,
            "last_scan_id": int,
            "last_scanned_at": str,
        },
        pk="id",
        not_null={"path", "python"},
        defaults={"python": ""},
        if_not_exists=True,
    )
    db.table("environments").create_index(["path", "python"], unique=True, if_not_exists=True)
    db.table("scans").create(
        {
            "id": int,
            "environment_id": int,
            "started_at": str,
            "seconds": float,
            "status": str,
            "vbridge_version": str,
            "fingerprint": str,
            "distributions": int,
            "findings": int,
            "problems": int,
            "added": str,
            "removed": str,
        },
        pk="id",
        foreign_keys=[("environment_id", "environments", "id")],
        not_null={"environment_id", "status"},
        if_not_exists=True,
    )
    db.table("owners").create(
        {
            "id": str,
            "ecosystem": str,
            "name": str,
            "version": str,
            "build": str,
            "channel": str,
            "subdir": str,
        },
        pk="id",
        if_not_exists=True,
    )
    db.table("distributions").create(
        {
            "id": str,
            "environment_id": int,
            "name": str,
            "version": str,
            "installer": str,
            "installed_by": str,
            "owner_id": str,
            "dist_info": str,
            "layer": str,
            "properties": str,
        },
        pk="id",
        foreign_keys=[("environment_id", "environments", "id"), ("owner_id", "owners", "id")],
        not_null={"environment_id", "name"},
        if_not_exists=True,
    )
    db.table("properties").create(
        {
            "id": str,
            "environment_id": int,
            "distribution_id": str,
            "property": str,
            "namespace": str,
            "feature": str,
            "value": str,
            "record": str,
            "rule": str,
            "via": str,
            "evidence": str,
        },
        pk="id",
        foreign_keys=[
            ("environment_id", "environments", "id"),
            ("distribution_id", "distributions", "id"),
        ],
        not_null={"environment_id", "distribution_id", "property"},
        if_not_exists=True,
    )
    db.table("findings").create(
        {
            "id": str,
            "environment_id": int,
            "severity": str,
            "code": str,
            "message": str,
            "distributions": str,
            "first_scan_id": int,
            "last_scan_id": int,
        },
        pk="id",
        foreign_keys=[
            ("environment_id", "environments", "id"),
            ("first_scan_id", "scans", "id"),
            ("last_scan_id", "scans", "id"),
        ],
        not_null={"environment_id", "code"},
        if_not_exists=True,
    )
    db.table("problems").create(
        {"id": str, "environment_id": int, "path": str, "problem": str, "hint": str},
        pk="id",
        foreign_keys=[("environment_id", "environments", "id")],
        not_null={"environment_id"},
        if_not_exists=True,
    )
    db.table("verifications").create(
        {
            "id": int,
            "environment_id": int,
            "scan_id": int,
            "verified_at": str,
            "python": str,
            "seconds": float,
            "distributions": int,
            "confirmed": int,
            "differs": int,
            "failed": int,
            "document": str,
        },
        pk="id",
        foreign_keys=[("environment_id", "environments", "id"), ("scan_id", "scans", "id")],
        not_null={"environment_id", "scan_id"},
        if_not_exists=True,
    )
    db.table("verified").create(
        {
            "id": str,
            "verification_id": int,
            "environment_id": int,
            "distribution": str,
            "version": str,
            "feature": str,
            "status": str,
            "recorded": str,
            "loaded": str,
            "message": str,
        },
        pk="id",
        foreign_keys=[
            ("verification_id", "verifications", "id"),
            ("environment_id", "environments", "id"),
        ],
        not_null={"verification_id", "environment_id", "status"},
        if_not_exists=True,
    )
    for table, indexes in _INDEXES.items():
        for columns in indexes:
            db.table(table).create_index(columns, if_not_exists=True)


class Inventory:
    """An inventory database: record scans, skip unchanged environments, answer questions.

    The unchanged check and the queries use the plain ``sqlite3`` connection; the
    sqlite-utils ``Database`` (slower to import) is made only when rows are written.
    """

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self.conn = conn
        self._db: Database | None = None
        self._uncommitted_since: float | None = None
        self._owners_to_prune = False

    @classmethod
    def open(cls, path: Path, create: bool = True) -> Inventory:
        """Open (and, with ``create``, make) the inventory at ``path``."""
        path = Path(path)
        if not create and not path.is_file():
            raise InventoryError(f"{path}: no such inventory; run 'vbridge scan --db {path}' first")
        if path.parent and not path.parent.is_dir():
            raise InventoryError(f"{path}: its directory does not exist; create it first")
        try:
            conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys = ON")
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        except sqlite3.DatabaseError as exc:
            if "not a database" in str(exc):
                raise InventoryError(
                    f"{path}: not an SQLite database ({exc}); give a new file or an inventory"
                ) from None
            raise _database_error(path, exc) from None
        if create and os.access(path, os.W_OK):
            # WAL: readers never wait for a writer, writers queue; where the file system
            # cannot share memory (some network mounts) SQLite keeps its rollback journal.
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA journal_mode = WAL")
        if version > SCHEMA_VERSION:
            conn.close()
            raise InventoryError(
                f"{path}: inventory schema {version} is newer than this vbridge knows "
                f"({SCHEMA_VERSION}); upgrade vbridge"
            )
        if tables and "environments" not in tables:
            conn.close()
            raise InventoryError(
                f"{path}: an SQLite database, but not a vbridge inventory; give another file"
            )
        inventory = cls(path, conn)
        if version < SCHEMA_VERSION and create:
            try:
                conn.execute("BEGIN IMMEDIATE")  # one run creates the schema; others wait
                (version,) = conn.execute("PRAGMA user_version").fetchone()
                if version < SCHEMA_VERSION:
                    _create_schema(inventory.db)
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.commit()
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.rollback()
                conn.close()
                raise _database_error(path, exc) from None
        return inventory

    def _begin(self) -> None:
        if not self.conn.in_transaction:
            # IMMEDIATE: take the write lock now, waiting (busy timeout) for another
            # run's; a deferred transaction that reads first could not wait for it later.
            self.conn.execute("BEGIN IMMEDIATE")

    @_guarded
    def commit(self) -> None:
        """Make every recorded scan durable (one sync for many environments)."""
        if self._owners_to_prune:
            # Owners no distribution points at any more (several environments share one).
            self.conn.execute(
                "DELETE FROM owners WHERE id NOT IN "
                "(SELECT owner_id FROM distributions WHERE owner_id IS NOT NULL)"
            )
            self._owners_to_prune = False
        if self.conn.in_transaction:
            self.conn.commit()
        self._uncommitted_since = None

    def commit_if_due(self, seconds: float = 2.0) -> None:
        """Commit when the oldest uncommitted scan is ``seconds`` old.

        Each environment is written atomically (a savepoint); committing them in groups
        spares a disk sync per environment, and a run that is killed loses at most the
        last group, which the next scan redoes.
        """
        if self._uncommitted_since is None:
            self._uncommitted_since = time.monotonic()
        elif time.monotonic() - self._uncommitted_since >= seconds:
            self.commit()

    def close(self) -> None:
        self.commit()
        self.conn.close()

    @property
    def db(self) -> Database:
        """The sqlite-utils view of the same connection."""
        if self._db is None:
            from vbridge.extras import import_extra

            sqlite_utils = import_extra("sqlite_utils", "inventory", "the SQLite inventory (--db)")
            self._db = sqlite_utils.Database(self.conn)
        return self._db

    # --- recording ----------------------------------------------------------------------

    def _environment(self, target: Target) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.conn.execute(
            "SELECT * FROM environments WHERE path = ? AND python = ?",
            (str(target.path), target.python or ""),
        ).fetchone()
        return row

    @_guarded
    def unchanged(self, target: Target) -> ScanSummary | None:
        """Record an unchanged environment's scan and return it, or None to scan it."""
        row = self._environment(target)
        if row is None or not row["fingerprint"]:
            return None
        stored = Fingerprint(tuple(json.loads(row["fingerprint_paths"])), row["fingerprint"])
        if not stored.unchanged(target):
            return None
        started = _now()
        self._begin()
        self.conn.execute("SAVEPOINT vbridge_unchanged")
        try:
            cursor = self.conn.execute(
                "INSERT INTO scans (environment_id, started_at, seconds, status, "
                "vbridge_version, fingerprint, distributions, findings, problems, added, removed) "
                "VALUES (?, ?, 0, 'unchanged', ?, ?, ?, ?, ?, '[]', '[]')",
                (
                    row["id"],
                    started,
                    __version__,
                    row["fingerprint"],
                    row["distributions"],
                    row["findings"],
                    row["problems"],
                ),
            )
            scan_id = int(cursor.lastrowid or 0)
            self.conn.execute(
                "UPDATE environments SET last_scan_id = ?, last_scanned_at = ? WHERE id = ?",
                (scan_id, started, row["id"]),
            )
        except BaseException:
            self.conn.execute("ROLLBACK TO SAVEPOINT vbridge_unchanged")
            raise
        finally:
            self.conn.execute("RELEASE SAVEPOINT vbridge_unchanged")
        self.commit_if_due()
        return ScanSummary(
            str(target.path),
            "unchanged",
            scan_id,
            json.loads(row["ecosystems"]),
            row["distributions"],
            row["findings"],
            row["problems"],
            bool(row["refused"]),
            target.python,
        )

    def _ids(self, table: str, environment_id: int) -> dict[str, sqlite3.Row]:
        return {
            r["id"]: r
            for r in self.conn.execute(
                f"SELECT * FROM {table} WHERE environment_id = ?", (environment_id,)
            )
        }

    @_guarded
    def record(self, rows: EnvironmentRows, seconds: float) -> ScanSummary:
        """Write one scanned environment: upsert its rows, delete what is gone, log the scan."""
        db = self.db
        started = _now()
        self._begin()
        with db.atomic():
            existing = self._environment(rows.target)
            env_values = {
                **rows.environment,
                "fingerprint": rows.fingerprint.digest,
                "fingerprint_paths": json.dumps(list(rows.fingerprint.paths)),
                "last_scanned_at": started,
            }
            if existing is None:
                env_id = _last_pk(db.table("environments").insert(env_values))
                status = "new"
            else:
                env_id = int(existing["id"])
                db.table("environments").update(env_id, env_values)
                status = "rescanned"
            scan_id = _last_pk(
                db.table("scans").insert(
                    {
                        "environment_id": env_id,
                        "started_at": started,
                        "seconds": round(seconds, 4),
                        "status": status,
                        "vbridge_version": __version__,
                        "fingerprint": rows.fingerprint.digest,
                        "distributions": len(rows.distributions),
                        "findings": len(rows.findings),
                        "problems": len(rows.problems),
                    }
                )
            )
            if existing is None:
                db.table("environments").update(env_id, {"first_scan_id": scan_id})
            db.table("environments").update(env_id, {"last_scan_id": scan_id})

            def dist_id(key: str) -> str:
                return f"{env_id}:{key}"

            old_dists = self._ids("distributions", env_id)
            old_findings = self._ids("findings", env_id)
            distributions = [
                {
                    "id": dist_id(d["key"]),
                    "environment_id": env_id,
                    **{k: v for k, v in d.items() if k != "key"},
                }
                for d in rows.distributions
            ]
            properties = [
                {
                    "id": f"{dist_id(p['distribution_key'])}|{p['property']}",
                    "environment_id": env_id,
                    "distribution_id": dist_id(p["distribution_key"]),
                    **{k: v for k, v in p.items() if k != "distribution_key"},
                }
                for p in rows.properties
            ]
            findings = []
            for f in rows.findings:
                fid = f"{env_id}|{f['key']}"
                first = old_findings[fid]["first_scan_id"] if fid in old_findings else scan_id
                findings.append(
                    {
                        "id": fid,
                        "environment_id": env_id,
                        **{k: v for k, v in f.items() if k != "key"},
                        "first_scan_id": first,
                        "last_scan_id": scan_id,
                    }
                )
            problems = [
                {
                    "id": f"{env_id}|{p['key']}",
                    "environment_id": env_id,
                    **{k: v for k, v in p.items() if k != "key"},
                }
                for p in rows.problems
            ]
            # Children first: foreign keys are enforced.
            self._delete_missing("properties", env_id, {p["id"] for p in properties})
            self._delete_missing("findings", env_id, {f["id"] for f in findings})
            self._delete_missing("problems", env_id, {p["id"] for p in problems})
            self._delete_missing("distributions", env_id, {d["id"] for d in distributions})
            for table, table_rows in (
                ("owners", rows.owners),
                ("distributions", distributions),
                ("properties", properties),
                ("findings", findings),
                ("problems", problems),
            ):
                self._upsert(table, table_rows)
            self._owners_to_prune = True
            new_names = {(d["name"], d["version"]) for d in distributions}
            old_names = {(r["name"], r["version"]) for r in old_dists.values()}
            db.table("scans").update(
                scan_id,
                {
                    "added": json.dumps(
                        [f"{n} {v}" for n, v in sorted(new_names - old_names)] if existing else []
                    ),
                    "removed": json.dumps([f"{n} {v}" for n, v in sorted(old_names - new_names)]),
                },
            )
        self.commit_if_due()
        return ScanSummary(
            str(rows.target.path),
            status,
            scan_id,
            json.loads(rows.environment["ecosystems"]),
            len(distributions),
            len(findings),
            len(problems),
            rows.refused,
            rows.target.python,
        )

    def _upsert(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        """Insert rows, or update the ones whose ``id`` exists, in one ``executemany``.

        The tables are sqlite-utils'; this is its ``upsert_all`` for rows of one shape,
        without its per-value conversions (a thousand rows per environment).
        """
        if not rows:
            return
        columns = list(rows[0])
        names = ", ".join(f'"{c}"' for c in columns)
        updates = ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c != "id")
        sql = (
            f'INSERT INTO "{table}" ({names}) VALUES ({", ".join("?" * len(columns))}) '
            f'ON CONFLICT("id") DO UPDATE SET {updates}'
        )
        self.conn.executemany(sql, [tuple(row[c] for c in columns) for row in rows])

    def _delete_missing(self, table: str, environment_id: int, keep: set[str]) -> None:
        stale = [(i,) for i in self._ids(table, environment_id) if i not in keep]
        if stale:
            self.conn.executemany(f"DELETE FROM {table} WHERE id = ?", stale)

    # --- questions ----------------------------------------------------------------------

    @_guarded
    def findings(
        self, code: str | None = None, severity: str | None = None
    ) -> list[dict[str, Any]]:
        """Every current finding, by environment: ``code='mixed-blas-lapack'`` says who
        mixes BLAS."""
        sql = (
            "SELECT e.path AS environment, f.severity, f.code, f.message, f.distributions, "
            "s.started_at AS first_seen FROM findings f "
            "JOIN environments e ON e.id = f.environment_id "
            "LEFT JOIN scans s ON s.id = f.first_scan_id WHERE 1=1"
        )
        args: list[str] = []
        if code:
            sql += " AND f.code = ?"
            args.append(code)
        if severity:
            sql += " AND f.severity = ?"
            args.append(severity)
        sql += " ORDER BY e.path, f.code, f.id"
        return [
            {**dict(r), "distributions": json.loads(r["distributions"])}
            for r in self.conn.execute(sql, args)
        ]

    @_guarded
    def where(self, prop: str, name: str | None = None) -> list[dict[str, Any]]:
        """Distributions carrying a property: ``ns :: feature :: value`` or any value of
        ``ns :: feature``; ``name`` narrows to one distribution."""
        parts = [p.strip() for p in prop.split("::")]
        if len(parts) not in (2, 3) or not all(parts):
            raise InventoryError(
                f"{prop!r}: give a property 'namespace :: feature :: value' "
                "or a feature 'namespace :: feature'"
            )
        sql = (
            "SELECT e.path AS environment, d.name, d.version, d.installed_by, "
            "o.name AS owner, o.version AS owner_version, o.build AS owner_build, "
            "o.channel AS owner_channel, p.property, p.value, p.record, p.rule, p.via "
            "FROM properties p JOIN distributions d ON d.id = p.distribution_id "
            "JOIN environments e ON e.id = p.environment_id "
            "LEFT JOIN owners o ON o.id = d.owner_id "
            "WHERE p.namespace = ? AND p.feature = ?"
        )
        args = parts[:2]
        if len(parts) == 3:
            sql += " AND p.value = ?"
            args.append(parts[2])
        if name:
            sql += " AND d.name = ?"
            args.append(_normalise(name))
        sql += " ORDER BY e.path, d.name, p.value"
        return [{**dict(r), "via": json.loads(r["via"])} for r in self.conn.execute(sql, args)]

    @_guarded
    def owners(self, name: str) -> list[dict[str, Any]]:
        """Who installed distribution ``name`` in each environment, and which build."""
        sql = (
            "SELECT e.path AS environment, d.name, d.version, d.installer, d.installed_by, "
            "o.ecosystem AS owner_ecosystem, o.name AS owner, o.version AS owner_version, "
            "o.build AS owner_build, o.channel AS owner_channel, d.dist_info, d.properties "
            "FROM distributions d JOIN environments e ON e.id = d.environment_id "
            "LEFT JOIN owners o ON o.id = d.owner_id WHERE d.name = ? "
            "ORDER BY e.path, d.layer"
        )
        return [
            {**dict(r), "properties": json.loads(r["properties"] or "[]")}
            for r in self.conn.execute(sql, (_normalise(name),))
        ]

    # --- verifications (vbridge verify --db) --------------------------------------------

    @_guarded
    def record_verification(self, summary: ScanSummary, document: dict[str, Any]) -> int:
        """Store a verification (``Verification.to_dict()``) with the scan it verified
        (``summary``, what recording or skipping that scan returned); returns its id."""
        row = self.conn.execute(
            "SELECT environment_id FROM scans WHERE id = ?", (summary.scan_id,)
        ).fetchone()
        if row is None:
            raise InventoryError(f"{self.path}: scan {summary.scan_id} is not in the inventory")
        env_id = int(row[0])
        dists = document.get("distributions", [])
        counts = document.get("summary", {})
        failed = sum(counts.get(k, 0) for k in ("import-failed", "crashed", "timed-out"))
        self._begin()
        with self.db.atomic():
            verification_id = _last_pk(
                self.db.table("verifications").insert(
                    {
                        "environment_id": env_id,
                        "scan_id": summary.scan_id,
                        "verified_at": _now(),
                        "python": str(document.get("python", "")),
                        "seconds": float(document.get("seconds", 0.0)),
                        "distributions": len(dists),
                        "confirmed": int(counts.get("confirmed", 0)),
                        "differs": int(counts.get("differs", 0)),
                        "failed": failed,
                        "document": json.dumps(document),
                    }
                )
            )
            rows = []
            for dist in dists:
                base = {
                    "verification_id": verification_id,
                    "environment_id": env_id,
                    "distribution": dist["name"],
                    "version": dist["version"],
                }
                if dist["status"] != "ok":
                    failures = dist.get("failures") or []
                    message = dist.get("note") or (
                        f"{failures[0]['module']}: {failures[0]['error']}" if failures else ""
                    )
                    rows.append(
                        {
                            **base,
                            "id": f"{verification_id}|{dist['dist_info']}|",
                            "feature": "",
                            "status": dist["status"],
                            "recorded": "[]",
                            "loaded": "[]",
                            "message": message,
                        }
                    )
                for feature in dist.get("features", []):
                    recorded = sorted({r["value"] for r in feature["recorded"]})
                    loaded = sorted({v["value"] for v in feature["loaded"]})
                    rows.append(
                        {
                            **base,
                            "id": f"{verification_id}|{dist['dist_info']}|{feature['feature']}",
                            "feature": feature["feature"],
                            "status": feature["status"],
                            "recorded": json.dumps(recorded),
                            "loaded": json.dumps(loaded),
                            "message": feature.get("message", ""),
                        }
                    )
            self._upsert("verified", rows)
        self.commit()
        return verification_id

    @_guarded
    def verified(self, statuses: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """The latest verification of every environment, its rows whose status is in
        ``statuses`` (default: ``differs`` and the failed imports)."""
        tables = {
            r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        if "verified" not in tables:
            return []
        wanted = list(statuses or ("differs", "import-failed", "crashed", "timed-out"))
        marks = ", ".join("?" * len(wanted))
        sql = (
            "SELECT e.path AS environment, v.verified_at, v.scan_id, r.distribution, "
            "r.version, r.feature, r.status, r.recorded, r.loaded, r.message "
            "FROM verified r JOIN verifications v ON v.id = r.verification_id "
            "JOIN environments e ON e.id = r.environment_id "
            "WHERE v.id = (SELECT MAX(id) FROM verifications WHERE environment_id = e.id) "
            f"AND r.status IN ({marks}) ORDER BY e.path, r.distribution, r.feature"
        )
        return [
            {**dict(r), "recorded": json.loads(r["recorded"]), "loaded": json.loads(r["loaded"])}
            for r in self.conn.execute(sql, wanted)
        ]

    @_guarded
    def history(self, path: str) -> list[dict[str, Any]]:
        """Every scan of one environment, oldest first."""
        sql = (
            "SELECT s.* FROM scans s JOIN environments e ON e.id = s.environment_id "
            "WHERE e.path = ? ORDER BY s.id"
        )
        return [
            {
                **dict(r),
                "added": json.loads(r["added"] or "[]"),
                "removed": json.loads(r["removed"] or "[]"),
            }
            for r in self.conn.execute(sql, (path,))
        ]


def _last_pk(table: Any) -> int:
    """The integer key sqlite-utils just inserted."""
    return int(table.last_pk)


def _normalise(name: str) -> str:
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(name))


def render_rows(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain-text table of ``columns`` (lists joined with commas).

    >>> rows = [{"name": "numpy", "via": ["numpy", "libblas"]}]
    >>> print(render_rows(rows, ["name", "via"]), end="")
    NAME   VIA
    numpy  numpy, libblas
    """

    def cell(value: object) -> str:
        if value is None:
            return "-"
        if isinstance(value, list):
            return ", ".join(str(v) for v in value) or "-"
        return str(value)

    table = [[c.upper() for c in columns]] + [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
    lines = [
        "  ".join(row[i].ljust(widths[i]) for i in range(len(columns))).rstrip() for row in table
    ]
    if not rows:
        lines.append("(none)")
    return "\n".join(lines) + "\n"

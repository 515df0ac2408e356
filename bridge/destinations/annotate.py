"""The bridge's destination: standard metadata in installed ``.dist-info`` directories.

:func:`annotate_environment` writes what a scan learned into every distribution that has
variant properties: ``variant.json`` (PEP 825) and ``sboms/vbridge.cdx.json`` (PEP 770,
CycloneDX). Each added file is listed in the dist-info's ``RECORD`` (so ``pip
uninstall`` removes it) and, where another package manager owns the dist-info, in
that manager's own record of the package, by its adapter's registrar (conda: the
owning ``conda-meta`` record, so conda, mamba and rattler remove it with the package;
see :mod:`vbridge.destinations.registrar`).
:func:`clean_environment` removes exactly what the ledger says vbridge wrote and puts
every edited file back byte for byte.

Both hold the environment's lock, write every file atomically, never follow a symlink out
of the environment, and check that every directory they will write to is writable
before writing anything. A run killed at any point is finished or undone by the next
``annotate`` or ``clean`` (the ledger is written before the files it describes).

>>> from vbridge.scan import scan_environment
>>> env = scan_environment(prefix)                          # doctest: +SKIP
>>> result = annotate_environment(env)                      # doctest: +SKIP
>>> [(c.action, c.path.name) for c in result.changed][:2]   # doctest: +SKIP
[('create', 'vbridge.cdx.json'), ('create', 'variant.json')]
>>> clean_environment(prefix).to_dict()["changes"][0]       # doctest: +SKIP
{'path': '.../numpy-1.26.4.dist-info/variant.json', 'action': 'remove', ...}
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast

import msgspec
from vbridge.destinations.envlock import EnvironmentLock
from vbridge.destinations.ledger import DistEntry, EditEntry, Ledger, LedgerStore
from vbridge.destinations.record import REGISTRAR as RECORD
from vbridge.destinations.record import record_paths
from vbridge.destinations.registrar import Registrar
from vbridge.destinations.sbom import SBOM_PATH, sbom_text
from vbridge.destinations.variant_json import VARIANT_JSON, Layout, layout_of, variant_json_text
from vbridge.errors import RecordError
from vbridge.model import Distribution, Environment, Finding, InstallRecord, RecordProblem
from vbridge.rules import load_data
from vbridge.safefs import (
    atomic_write_all,
    contained,
    is_normal_absolute,
    read_bytes,
    read_json,
    remembered_digests,
    remove_file,
    require_replaceable,
    require_writable,
    sha256_hex,
    sweep_temporary_files,
)

if TYPE_CHECKING:
    from vbridge.adapters import Adapter

__all__ = [
    "AnnotateResult",
    "Change",
    "CleanResult",
    "annotate_environment",
    "clean_environment",
    "desired_files",
    "kept_layout",
    "mark_metadata_status",
]

Action = Literal["create", "update", "remove", "restore", "unchanged"]
Strategy = Literal["record", "owner", "hook", "skip"]


class Change(msgspec.Struct, frozen=True):
    """One file (or directory) a run wrote, removed, restored or left unchanged."""

    path: Path
    action: Action
    distribution: str

    def to_dict(self) -> dict[str, str]:
        return {"path": str(self.path), "action": self.action, "distribution": self.distribution}


def _dist_info_of(path: Path) -> str:
    """The dist-info directory a changed path belongs to, for counting distributions
    (not names: an install tree holds several builds of one): a view's dist-info, whose
    files link to a prefix's, counts as the prefix's."""
    for candidate in (path, *path.parents):
        if candidate.name.endswith((".dist-info", ".egg-info")):
            metadata = candidate / "METADATA"
            if metadata.is_symlink():
                return os.path.dirname(os.path.realpath(metadata))
            return str(candidate)
    return str(path)


class _Result(msgspec.Struct):
    root: Path
    dry_run: bool
    ledger: Path
    changes: list[Change] = msgspec.field(default_factory=list)
    findings: list[Finding] = msgspec.field(default_factory=list)

    @property
    def changed(self) -> list[Change]:
        """The changes that are not ``unchanged``."""
        return [c for c in self.changes if c.action != "unchanged"]

    @property
    def unchanged(self) -> list[Change]:
        return [c for c in self.changes if c.action == "unchanged"]

    def report_lines(self, verb: str) -> list[str]:
        """What a person reads: each change, each finding, then a one-line summary."""
        prefix = "would " if self.dry_run else ""
        lines = [f"{prefix}{c.action} {c.path}" for c in self.changed]
        lines += [f"  [{f.severity}] {f.code}: {f.message}" for f in self.findings]
        touched = {_dist_info_of(c.path) for c in self.changed}
        lines.append(
            f"vbridge {verb}: {self.root}: {len(self.changed)} file(s) "
            f"{'to change' if self.dry_run else 'changed'} in {len(touched)} "
            f"distribution(s), {len(self.unchanged)} unchanged"
        )
        return lines

    def to_dict(self) -> dict[str, object]:
        return {
            "root": str(self.root),
            "dry_run": self.dry_run,
            "ledger": str(self.ledger),
            "changes": [c.to_dict() for c in self.changes],
            "findings": [f.to_dict() for f in self.findings],
        }


class AnnotateResult(_Result):
    """What :func:`annotate_environment` wrote (or, with ``dry_run``, would write)."""

    annotated: list[str] = msgspec.field(default_factory=list)  # dist-infos carrying metadata
    # Environment files (pip.conf...) the ledger keeps after the run, not in to_dict.
    environment_files: list[str] = msgspec.field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "annotated": list(self.annotated)}


class CleanResult(_Result):
    """What :func:`clean_environment` removed and restored."""


# --------------------------------------------------------------------------------------
# What should be in a dist-info


def _rel(root: Path, path: Path | str) -> str:
    return Path(os.path.abspath(path)).relative_to(Path(os.path.abspath(root))).as_posix()


def _inside(root: Path, path: Path) -> bool:
    try:
        _rel(root, path)
    except ValueError:
        return False
    return True


def kept_layout(dist_info: Path) -> Layout:
    """The ``variant.json`` layout a dist-info keeps: PEP 825 0.1.1 while the file there
    is in that layout (``annotate --variant-json pep825-0.1.1`` chose it), else
    ``providers``."""
    current = read_bytes(dist_info / VARIANT_JSON)
    if current is not None and layout_of(current) == "pep825-0.1.1":
        return "pep825-0.1.1"
    return "providers"


def desired_files(
    dist: Distribution,
    env: Environment,
    records: Mapping[str, InstallRecord] | None = None,
    layout: Layout | None = None,
) -> dict[str, bytes]:
    """The files vbridge writes into ``dist``'s dist-info, keyed by path from the root.

    Empty for a distribution without properties (it gets nothing). ``records`` maps
    record keys to the environment's records (computed from ``env`` if not given).
    ``layout`` is the ``variant.json`` layout (default: :func:`kept_layout`).
    """
    if not dist.properties:
        return {}
    base = _rel(env.path, dist.dist_info)
    if records is None:
        records = {r.key: r for r in env.records}
    layout = layout or kept_layout(dist.dist_info)
    return {
        f"{base}/{VARIANT_JSON}": variant_json_text(dist.properties, layout).encode("utf-8"),
        f"{base}/{SBOM_PATH}": sbom_text(dist, records, Path(os.path.abspath(env.path))).encode(
            "utf-8"
        ),
    }


def _strategy(dist: Distribution, root: Path, findings: list[Finding]) -> Strategy:
    """How files added to ``dist`` leave again with its package (``data/annotate.toml``)."""
    data = load_data("annotate")
    if dist.owner is None:
        # INSTALLER names a package manager whose record of this dist was not found:
        # files added now could never be removed by that manager.
        foreign: list[str] = data.get("foreign_installers", [])
        return "skip" if dist.installer in foreign else "record"
    owners: dict[str, str] = data.get("owners", {})
    value = owners.get(dist.owner.ecosystem, owners.get("default", "skip"))
    if value not in ("record", "owner", "hook", "skip"):
        return "skip"
    if value == "owner":
        from vbridge.adapters import adapter_for

        adapter = adapter_for(dist.owner.ecosystem)
        if adapter is None or adapter.registrar() is None:
            return "skip"  # nothing lists added files with this owner
    if value == "hook":
        hook = data.get("hooks", {}).get(dist.owner.ecosystem, {})
        if not (root / hook.get("path", "")).is_file() or not hook.get("path"):
            if dist.properties:
                findings.append(
                    _finding(
                        "annotate-needs-hook",
                        f"{dist.name} {dist.version}: {dist.owner.ecosystem} owns "
                        f"{dist.dist_info} and vbridge's {dist.owner.ecosystem} hook is not "
                        f"installed; run `{hook.get('install', 'the hook install')}` first",
                        dist.name,
                    )
                )
            return "skip"
    return cast(Strategy, value)


def mark_metadata_status(env: Environment, only: Collection[Path] | None = None) -> None:
    """Set ``facts["vbridge_metadata"]`` to ``current`` or ``stale`` on annotated dists
    (those whose dist-info is in ``only``, if given).

    ``stale``: what vbridge wrote differs from what it would write now (the environment
    changed since); run ``vbridge annotate`` again.
    """
    store = LedgerStore.of(env.path)
    try:
        ledger = store.load()
    except RecordError as exc:
        env.problems.append(RecordProblem(store.path, str(exc).split(": ", 1)[-1]))
        return
    if not ledger.distributions:
        return
    records = {r.key: r for r in env.records}
    for dist in env.distributions:
        if only is not None and dist.dist_info not in only:
            continue
        if not _inside(env.path, dist.dist_info):
            continue
        entry = ledger.distributions.get(_rel(env.path, dist.dist_info))
        if entry is None:
            continue
        wanted = desired_files(dist, env, records)
        current = set(wanted) == set(entry.files) and all(
            read_bytes(env.path / path) == data for path, data in wanted.items()
        )
        dist.facts["vbridge_metadata"] = "current" if current else "stale"


# --------------------------------------------------------------------------------------
# Planning


class _Plan(msgspec.Struct):
    """One dist-info to bring to a desired state (``files`` empty: remove ours)."""

    key: str  # dist-info path from the root
    name: str
    files: dict[str, bytes]
    edits: list[str]  # files (from the root) to list our files in: RECORD, the owner's
    ghost: bool = False  # the owner removed the dist; only vbridge's files remain
    adopted_dirs: list[str] = msgspec.field(default_factory=list)  # see _adopted


def _finding(code: str, message: str, name: str, severity: str = "info") -> Finding:
    return Finding(severity, code, message, (name,))  # type: ignore[arg-type]


def _record_of(dist_info_key: str) -> str:
    return f"{dist_info_key}/RECORD"


def _plan_annotation(
    env: Environment,
    dist: Distribution,
    entry: DistEntry | None,
    records: Mapping[str, InstallRecord],
    findings: list[Finding],
    layout: Layout | None = None,
) -> _Plan | None:
    root = env.path
    name = dist.name
    key = _rel(root, dist.dist_info)
    metadata = "METADATA" if dist.dist_info.name.endswith(".dist-info") else "PKG-INFO"
    if not (dist.dist_info / metadata).is_file():
        return _Plan(key, name, {}, list(entry.edits), ghost=True) if entry else None
    strategy = _strategy(dist, root, findings)
    wanted = desired_files(dist, env, records, layout) if dist.properties else {}
    if (
        wanted
        and strategy == "skip"
        and dist.owner is not None
        and dist.owner.ecosystem in (load_data("annotate").get("hooks", {}))
    ):
        wanted = {}  # the missing hook was already said
    if wanted and strategy == "skip":
        if dist.owner is not None:
            owner = dist.owner.ecosystem
            why = f"vbridge cannot register files with {owner}"
        else:
            owner = dist.installer or "another installer"
            why = f"no {owner} record lists it (unreadable or missing)"
        findings.append(
            _finding(
                "annotate-skipped-owner",
                f"{name} {dist.version}: {owner} installed {dist.dist_info} and {why}, so "
                "nothing is written there",
                name,
            )
        )
        wanted = {}
    if wanted or entry is not None:
        contained(root, dist.dist_info)
    record_key = _record_of(key)
    record = read_bytes(root / record_key)
    if wanted and strategy == "record" and record is None:
        findings.append(
            _finding(
                "annotate-skipped-no-record",
                f"{name} {dist.version}: {dist.dist_info} has no RECORD, so no installer "
                "could remove added files; nothing is written there",
                name,
            )
        )
        wanted = {}
    ours, adopted_dirs = (set(entry.files), []) if entry else _adopted(root, dist.dist_info)
    if wanted:
        listed: set[str] = set()
        if record is not None:
            try:
                listed = {f"{_rel(root, dist.dist_info.parent)}/{p}" for p in record_paths(record)}
            except ValueError as exc:
                findings.append(
                    _finding(
                        "annotate-skipped-bad-record",
                        f"{root / record_key}: {exc}; reinstall {name} to rewrite it; "
                        "nothing is written there",
                        name,
                        "warn",
                    )
                )
                return None if entry is None else _Plan(key, name, {}, list(entry.edits))
        foreign = sorted(
            p for p in wanted if p not in ours and ((root / p).exists() or p in listed)
        )
        if foreign:
            findings.append(
                _finding(
                    "annotate-skipped-own-metadata",
                    f"{name} {dist.version}: {root / foreign[0]} was not written by vbridge "
                    "(a variant wheel's own metadata); left alone",
                    name,
                )
            )
            wanted = {}
    if not wanted and entry is None:
        return None
    edits: list[str] = []
    # An installer that records the package after its link scripts (conda, mamba)
    # hashed RECORD already: it is edited, and the record, once the record exists.
    unrecorded = dist.owner_record is not None and dist.owner_record.extra.get("unrecorded")
    if wanted and not unrecorded:
        if record is not None and strategy != "hook":
            edits.append(record_key)  # a hook-owned RECORD belongs to its package manager
        if strategy == "owner" and dist.owner_record and dist.owner_record.source:
            edits.append(_rel(root, dist.owner_record.source))  # its adapter's registrar
    if entry:
        edits = sorted(set(edits) | set(entry.edits))
    return _Plan(key, name, wanted, edits, adopted_dirs=adopted_dirs)


def _adopted(root: Path, dist_info: Path) -> tuple[set[str], list[str]]:
    """vbridge's files (and directory) in a dist-info the ledger does not know (the
    ledger was lost), recognised by the SBOM vbridge writes, which names vbridge."""
    sbom = dist_info / SBOM_PATH
    try:
        bom = read_json(sbom, root=root)
        tools = bom["metadata"]["tools"]["components"]
        if not any(t.get("name") == "vbridge" for t in tools):
            return set(), []
        alone = os.listdir(sbom.parent) == [sbom.name]
    except (OSError, RecordError, KeyError, TypeError, AttributeError):
        return set(), []
    base = _rel(root, dist_info)
    dirs = [_rel(root, sbom.parent)] if alone else []
    return {f"{base}/{VARIANT_JSON}", f"{base}/{SBOM_PATH}"}, dirs


def _plans_for_environment(
    env: Environment,
    ledger: Ledger,
    only: set[str] | None,
    findings: list[Finding],
    layout: Layout | None = None,
) -> list[_Plan]:
    root = env.path
    plans: list[_Plan] = []
    seen: set[str] = set()
    seen_real: set[str] = set()
    records = {r.key: r for r in env.records}
    # The dist-infos ``only`` names, as absolute paths: a distribution not among them
    # and without properties gets nothing and says nothing (checked without a stat).
    wanted = None if only is None else {os.path.join(os.path.abspath(root), k) for k in only}
    for dist in env.distributions:
        if wanted is not None and not dist.properties:
            # A scan's dist-info paths are absolute and in normal form already: their
            # text is what abspath gives (the hook's scan lists ~265 of them).
            text = os.fspath(dist.dist_info)
            if not is_normal_absolute(text):
                text = os.path.abspath(text)
            if text not in wanted:
                continue
        if not dist.dist_info.name.endswith((".dist-info", ".egg-info")):
            continue
        if not dist.dist_info.is_dir():
            continue
        if not _inside(root, dist.dist_info):
            if dist.properties:
                findings.append(
                    _finding(
                        "annotate-skipped-outside",
                        f"{dist.name} {dist.version}: {dist.dist_info} is outside the "
                        f"environment {root}; annotate the environment it belongs to",
                        dist.name,
                    )
                )
            continue
        key = _rel(root, dist.dist_info)
        if only is not None and key not in only:
            continue
        real = os.path.realpath(dist.dist_info)
        if real in seen_real:
            continue  # the same directory reached through another layer (lib64 -> lib)
        seen_real.add(real)
        seen.add(key)
        plan = _plan_annotation(env, dist, ledger.distributions.get(key), records, findings, layout)
        if plan is not None:
            plans.append(plan)
    # Annotated before, gone now (the package was removed or upgraded): undo what is left.
    for key, entry in sorted(ledger.distributions.items()):
        if key in seen or (only is not None and key not in only):
            continue
        dist_info = root / key
        ghost = dist_info.is_dir() and not (dist_info / "METADATA").is_file()
        plans.append(_Plan(key, Path(key).name, {}, list(entry.edits), ghost=ghost))
    return plans


# --------------------------------------------------------------------------------------
# Reconciling: the one code path for annotate, re-annotate, recovery and clean


class _Edit(msgspec.Struct):
    path: str
    registrar: Registrar
    current: bytes | None
    target: bytes | None = None
    restore: bool = False
    # Someone rewrote the file since vbridge edited it (a reinstall): its content
    # without vbridge's rows is the new original.
    rebaseline: bytes | None = None
    original: bytes | None = None  # the bytes before vbridge, where known
    mtime_ns: int | None = None  # of the file as this run found it


class _Registrars:
    """The registrar of each file vbridge lists its files in: the dist-info's RECORD,
    else the one of the adapter that claims it (the adapters at hand first, such as the
    owners' of the scanned environment; every adapter only when none of those does)."""

    def __init__(self, adapters: Iterable[Adapter] = ()) -> None:
        self._adapters = list(adapters)
        self._everyone = False

    @classmethod
    def of_owners(cls, env: Environment) -> _Registrars:
        from vbridge.adapters import adapter_for

        ecosystems = sorted({d.owner.ecosystem for d in env.distributions if d.owner})
        return cls(a for a in map(adapter_for, ecosystems) if a is not None)

    def of(self, root: Path, path: str) -> Registrar:
        if RECORD.claims(path):
            return RECORD
        while True:
            for adapter in self._adapters:
                registrar = adapter.registrar()
                if registrar is not None and registrar.claims(path):
                    return registrar
            if self._everyone:
                raise RecordError(
                    f"{root / path}: vbridge listed its files there, but no adapter knows "
                    "this file; run vbridge clean with the vbridge version that annotated"
                )
            from vbridge.adapters import all_adapters

            self._adapters, self._everyone = all_adapters(), True


class _Changes(msgspec.Struct):
    """What a run will do, worked out before anything is written (the plan step)."""

    # (plan, path, content, action) of every file vbridge writes
    writes: list[tuple[_Plan, str, bytes, Action]] = msgspec.field(default_factory=list)
    removals: list[tuple[_Plan, str]] = msgspec.field(default_factory=list)  # files of ours to go
    managed: dict[str, set[str]] = msgspec.field(default_factory=dict)  # plan key -> rows to strip
    new_dirs: dict[str, list[str]] = msgspec.field(default_factory=dict)  # plan key -> dirs to make
    edits: dict[str, _Edit] = msgspec.field(default_factory=dict)  # registered-in files, in order
    users: dict[str, list[_Plan]] = msgspec.field(default_factory=dict)  # edited file -> its plans

    @property
    def changing(self) -> bool:
        """Whether applying writes, removes or edits anything."""
        return (
            any(action != "unchanged" for *_, action in self.writes)
            or bool(self.removals)
            or any(e.target is not None or e.rebaseline is not None for e in self.edits.values())
        )


def _reconcile(
    root: Path,
    store: LedgerStore,
    ledger: Ledger,
    plans: list[_Plan],
    result: _Result,
    dry_run: bool,
    registrars: _Registrars,
) -> Ledger:
    """Bring every planned dist-info to its desired state; return the final ledger.

    Plan (what each added file and each registered-in file becomes), report, then,
    unless ``dry_run``, apply.
    """
    changes = _Changes()
    _plan_files(root, ledger, plans, changes, result.findings)
    _plan_edits(root, store, ledger, plans, changes, registrars)
    _report(root, changes, result)
    final = _final_ledger(root, ledger, plans, changes.edits, changes.new_dirs)
    if not dry_run:
        _apply(root, store, ledger, plans, changes, result)
    return final


def _plan_files(
    root: Path, ledger: Ledger, plans: list[_Plan], changes: _Changes, findings: list[Finding]
) -> None:
    """What happens to each added file: written, left unchanged, removed, or left in
    place because someone changed it since."""
    for plan in plans:
        entry = ledger.distributions.get(plan.key, DistEntry())
        strip: set[str] = set(plan.files)
        for path, data in sorted(plan.files.items()):
            current = read_bytes(root / path)
            action: Action = (
                "unchanged" if current == data else ("create" if current is None else "update")
            )
            changes.writes.append((plan, path, data, action))
            parent = (root / path).parent
            while _rel(root, parent) != plan.key and not parent.exists():
                changes.new_dirs.setdefault(plan.key, []).append(_rel(root, parent))
                parent = parent.parent
        for path, hashes in sorted(entry.files.items()):
            if path in plan.files:
                continue
            current = read_bytes(root / path)
            if current is None:
                strip.add(path)
            elif sha256_hex(current) in hashes:
                changes.removals.append((plan, path))
                strip.add(path)
            else:
                findings.append(
                    _finding(
                        "clean-left-changed-file",
                        f"{root / path}: changed since vbridge wrote it; left in place",
                        plan.name,
                        "warn",
                    )
                )
        changes.managed[plan.key] = strip
        changes.new_dirs.setdefault(plan.key, []).extend(plan.adopted_dirs)


def _plan_edits(
    root: Path,
    store: LedgerStore,
    ledger: Ledger,
    plans: list[_Plan],
    changes: _Changes,
    registrars: _Registrars,
) -> None:
    """The target content of each file the added files are listed in (RECORD, the
    owner's record), in registrar order: a later kind may record an earlier one."""
    for plan in plans:
        for path in plan.edits:
            changes.users.setdefault(path, []).append(plan)
    planned = {p.key for p in plans}
    kinds = {path: registrars.of(root, path) for path in changes.users}
    for path in sorted(changes.users, key=lambda p: (kinds[p].ORDER, p)):
        current = read_bytes(root / path)
        edit = changes.edits[path] = _Edit(path, kinds[path], current)
        if current is None:
            continue
        with contextlib.suppress(OSError):
            edit.mtime_ns = os.stat(root / path).st_mtime_ns
        known = ledger.edited.get(path)
        added: dict[str, bytes] = {}
        dropped: set[str] = set()
        for plan in changes.users[path]:
            added.update(plan.files)
            dropped |= changes.managed[plan.key]
        remaining = [
            k for k, e in ledger.distributions.items() if path in e.edits and k not in planned
        ] + [p.key for p in changes.users[path] if p.files]
        digest = sha256_hex(current)
        if known is None:
            # First edit, or the ledger was lost: the original is the file without
            # vbridge's rows (the file itself, unless vbridge edited it before).
            stripped = _edited(root, edit, {}, dropped, changes.edits, originals=True)
            if stripped != current:
                edit.rebaseline = stripped
        elif digest not in known.written and digest != known.original:
            edit.rebaseline = _edited(root, edit, {}, dropped, changes.edits, originals=True)
        edit.original = (
            edit.rebaseline
            if edit.rebaseline is not None
            else current
            if known is None
            else store.original(known.original)
        )
        if known is not None and edit.rebaseline is None and not remaining:
            if digest == known.original:
                continue
            if edit.original is not None:
                edit.target, edit.restore = edit.original, True
                continue
        edit.target = _edited(root, edit, added, dropped, changes.edits)
        if edit.target == current:
            edit.target = None


def _report(root: Path, changes: _Changes, result: _Result) -> None:
    """Every change the plan makes, as the result reports it (dry run or not)."""
    for plan, path, _data, action in changes.writes:
        result.changes.append(Change(root / path, action, plan.name))
    for plan, path in changes.removals:
        result.changes.append(Change(root / path, "remove", plan.name))
    for path, edit in sorted(changes.edits.items()):
        name = changes.users[path][0].name
        if edit.target is None:
            if edit.current is not None:
                result.changes.append(Change(root / path, "unchanged", name))
        else:
            action = "restore" if edit.restore else "update"
            result.changes.append(Change(root / path, action, name))


def _apply(
    root: Path,
    store: LedgerStore,
    ledger: Ledger,
    plans: list[_Plan],
    changes: _Changes,
    result: _Result,
) -> None:
    """Carry the plan out: intent in the ledger first, then the files."""
    if changes.changing:
        # Intent: back up originals and record everything this run may leave (on disk
        # together, before any file it describes is written).
        backups: list[tuple[bytes, int | None]] = []
        intent = _intent_ledger(ledger, plans, changes.edits, changes.new_dirs, backups)
        store.save(intent, backups)
        # Added files first, then the files that list them, in registrar order: renamed
        # in that order once all are on disk.
        for dirs in changes.new_dirs.values():
            for rel in sorted(dirs, key=len):
                contained(root, root / rel)
                with contextlib.suppress(FileExistsError):
                    os.mkdir(root / rel)
        writes = [
            (root / path, data, root)
            for _plan, path, data, action in changes.writes
            if action != "unchanged"
        ]
        mtimes: dict[Path, int] = {}
        for path, edit in changes.edits.items():
            if edit.target is not None:
                writes.append((root / path, edit.target, root))
                known = ledger.edited.get(path)
                mtime = store.original_mtime(known.original) if known is not None else None
                if edit.restore and mtime is not None:
                    # Back as it was, mtime too (`spack verify manifest` checks it).
                    mtimes[root / path] = mtime
        atomic_write_all(writes, mtimes)
        for _plan, path in changes.removals:
            remove_file(root / path, root)
    # Directories vbridge created and no longer needs; ghost dist-infos.
    for plan in plans:
        known_dirs = ledger.distributions[plan.key].dirs if plan.key in ledger.distributions else []
        for rel in sorted(known_dirs, key=len, reverse=True):
            if any(p.startswith(rel + "/") for p in plan.files):
                continue
            contained(root, root / rel)
            with contextlib.suppress(OSError):
                (root / rel).rmdir()
                result.changes.append(Change(root / rel, "remove", plan.name))
        if plan.ghost and not plan.files:
            with contextlib.suppress(OSError):
                (root / plan.key).rmdir()
                result.changes.append(Change(root / plan.key, "remove", plan.name))


def _edited(
    root: Path,
    edit: _Edit,
    added: dict[str, bytes],
    dropped: set[str],
    edits: Mapping[str, _Edit],
    originals: bool = False,
) -> bytes:
    """``edit``'s file with vbridge's ``dropped`` rows removed and ``added`` ones put
    in, by its registrar.

    The files of earlier registrars are passed as they will be on disk, or, with
    ``originals``, as they were before vbridge (a conda-meta record's
    ``sha256_in_prefix`` of an edited RECORD follows that RECORD).
    """
    assert edit.current is not None
    earlier: dict[str, bytes] = {}
    for other in edits.values():
        if other.registrar.ORDER >= edit.registrar.ORDER:
            continue
        if originals:
            content = other.original
        else:
            content = other.target if other.target is not None else other.current
        if content is not None:
            earlier[other.path] = content
    try:
        return edit.registrar.edited(edit.path, edit.current, added, dropped, earlier)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RecordError(
            f"{root / edit.path}: cannot be parsed ({exc}); reinstall the package that owns "
            "it, then run vbridge again"
        ) from exc


def _intent_ledger(
    ledger: Ledger,
    plans: list[_Plan],
    edits: dict[str, _Edit],
    new_dirs: dict[str, list[str]],
    backups: list[tuple[bytes, int | None]],
) -> Ledger:
    """The ledger naming everything the run may leave; the originals it names (by
    digest) to back up with it are added to ``backups`` (content, mtime)."""

    def backup(data: bytes, mtime_ns: int | None) -> str:
        backups.append((data, mtime_ns))
        return sha256_hex(data)

    intent = ledger.copy()
    for plan in plans:
        entry = intent.distributions.setdefault(plan.key, DistEntry())
        for path, data in plan.files.items():
            entry.files.setdefault(path, []).append(sha256_hex(data))
        entry.dirs = sorted(set(entry.dirs) | set(new_dirs.get(plan.key, [])))
        entry.edits = sorted(
            set(entry.edits) | {p for p in plan.edits if edits[p].target is not None}
        )
    for path, edit in edits.items():
        if edit.current is None:
            continue
        known = intent.edited.get(path)
        if edit.rebaseline is not None:
            # The original's mtime is not known: the file's as found is the nearest.
            known = intent.edited[path] = EditEntry(backup(edit.rebaseline, edit.mtime_ns))
        if edit.target is None:
            continue
        if known is None:
            known = intent.edited[path] = EditEntry(backup(edit.current, edit.mtime_ns))
        known.written.append(sha256_hex(edit.target))
    return intent


def _final_ledger(
    root: Path,
    ledger: Ledger,
    plans: list[_Plan],
    edits: dict[str, _Edit],
    new_dirs: dict[str, list[str]],
) -> Ledger:
    final = ledger.copy()
    for plan in plans:
        old = final.distributions.pop(plan.key, DistEntry())
        if not plan.files:
            continue
        final.distributions[plan.key] = DistEntry(
            files={p: [sha256_hex(d)] for p, d in plan.files.items()},
            dirs=sorted(set(old.dirs) | set(new_dirs.get(plan.key, []))),
            edits=sorted(p for p in plan.edits if edits[p].current is not None),
        )
    referenced = {p for e in final.distributions.values() for p in e.edits}
    for path, edit in edits.items():
        known = final.edited.get(path)
        if path not in referenced or edit.current is None:
            final.edited.pop(path, None)
            continue
        content = edit.target if edit.target is not None else edit.current
        if edit.rebaseline is not None:
            final.edited[path] = EditEntry(sha256_hex(edit.rebaseline), [sha256_hex(content)])
        elif known is None:
            final.edited[path] = EditEntry(sha256_hex(edit.current), [sha256_hex(content)])
        else:
            known.written = [sha256_hex(content)]
    return final


# --------------------------------------------------------------------------------------
# The public entry points


def _only_keys(root: Path, only: Collection[Path] | None) -> set[str] | None:
    if only is None:
        return None
    keys: set[str] = set()
    for path in only:
        with contextlib.suppress(ValueError):
            keys.add(_rel(root, Path(path)))
    return keys


def _check_targets(root: Path, store: LedgerStore, plans: Iterable[_Plan]) -> None:
    """Before anything is written: every target inside the root and writable."""
    require_writable(store.directory)
    for plan in plans:
        targets = [*plan.files, *plan.edits]
        for path in targets:
            contained(root, root / path)
        if plan.files:
            require_writable(root / plan.key)
            require_replaceable(root / plan.key)
        for path in targets:
            require_writable((root / path).parent)
            require_replaceable(root / path)


def _sweep(root: Path, store: LedgerStore, ledger: Ledger) -> None:
    # The directories as strings: the ledger's paths are relative and normalised
    # (ledger._check_path), and a Path per directory costs more than the listing (a
    # prefix with every conda package annotated names some 500).
    base = os.fspath(root)
    dirs: set[str] = set()
    for key, entry in ledger.distributions.items():
        dirs.add(os.path.join(base, key))
        dirs.update(os.path.join(base, d) for d in entry.dirs)
        dirs.update(os.path.dirname(os.path.join(base, e)) for e in entry.edits)
    # A ledger directory reached through a link out is refused. The ledger names every
    # annotated dist-info: their common parents are resolved once, not per directory.
    real_root = os.path.realpath(root)
    inside = real_root.rstrip("/") + "/"
    resolved: dict[str, str] = {}
    for directory in dirs:
        real = _realpath(directory, resolved)
        if real != real_root and not real.startswith(inside):
            contained(root, Path(directory))  # raises, naming where it leads
    dirs.update((os.fspath(store.directory), os.fspath(store.backups)))
    sweep_temporary_files(sorted(dirs))


def _realpath(path: str, resolved: dict[str, str]) -> str:
    """``os.path.realpath(path)`` for an absolute path, with the parents it resolves
    kept in ``resolved``: as realpath does, a component that is no symlink (or cannot be
    told one) is appended to its resolved parent."""
    found = resolved.get(path)
    if found is None:
        parent, name = os.path.split(path)
        if not name or name in (".", "..") or parent == path or os.path.islink(path):
            found = os.path.realpath(path)
        else:
            found = os.path.join(_realpath(parent, resolved), name)
        resolved[path] = found
    return found


def _finish(store: LedgerStore, lock: EnvironmentLock, final: Ledger) -> None:
    if not final.is_empty():
        store.save(final)
        store.prune_backups(final)
        return
    # Nothing of vbridge's is left: remove the state directory too.
    store.path.unlink(missing_ok=True)
    store.prune_backups(final)
    sweep_temporary_files([store.directory])
    lock.release_and_remove()
    store.legacy_lock.unlink(missing_ok=True)  # an earlier version's lock file (or link)
    with contextlib.suppress(OSError):
        store.directory.rmdir()


def annotate_environment(
    env: Environment,
    *,
    only: Collection[Path] | None = None,
    dry_run: bool = False,
    wait: float = 0.0,
    variant_layout: Layout | None = None,
) -> AnnotateResult:
    """Write ``variant.json`` and the SBOM into every distribution with properties.

    ``variant_layout`` chooses the ``variant.json`` layout (``providers``, or PEP 825's
    strict ``pep825-0.1.1``); by default each dist-info keeps the one it has.

    ``only`` limits the run to these dist-info directories. ``dry_run`` reports what
    would change and writes nothing (not even the lock). ``wait`` is how long to wait
    for another run's lock before :class:`~vbridge.errors.EnvironmentLocked`.
    Raises :class:`~vbridge.errors.ReadOnlyEnvironment` (before writing anything) if
    a directory to write to is read-only, :class:`~vbridge.errors.UnsafePath` if a
    path leaves the environment.
    """
    root = Path(os.path.abspath(env.path))
    store = LedgerStore.of(root)
    result = AnnotateResult(root=root, dry_run=dry_run, ledger=store.path)
    only_keys = _only_keys(root, only)

    def run(lock: EnvironmentLock | None) -> None:
        store.check()
        ledger = store.load()
        if lock is not None:
            _sweep(root, store, ledger)
        plans = _plans_for_environment(env, ledger, only_keys, result.findings, variant_layout)
        _check_targets(root, store, plans)
        registrars = _Registrars.of_owners(env)
        final = _reconcile(root, store, ledger, plans, result, dry_run, registrars)
        result.annotated = sorted(final.distributions)
        result.environment_files = sorted(final.environment)
        if lock is not None:
            _finish(store, lock, final)

    store.check()
    if dry_run:
        with remembered_digests():
            run(None)
        return result
    require_writable(store.directory)
    with EnvironmentLock(store.lock_path, wait=wait) as lock:
        store.check()
        store.directory.mkdir(parents=True, exist_ok=True)
        try:
            with remembered_digests():
                run(lock)
        except BaseException:
            if not store.path.exists():
                _finish(store, lock, Ledger())  # nothing was recorded: leave no trace
            raise
    return result


def clean_environment(
    root: Path,
    *,
    only: Collection[Path] | None = None,
    dry_run: bool = False,
    wait: float = 0.0,
    adapters: Sequence[Adapter] | None = None,
) -> CleanResult:
    """Remove what vbridge wrote into ``root`` and restore every file it edited.

    Works from the ledger alone (no scan): each added file is removed if it still holds
    what vbridge wrote, each edited ``RECORD``/``conda-meta`` file gets its original
    bytes back. ``only`` limits it to these dist-info directories. ``adapters`` are
    asked first which registered-in files are theirs (the conda pre-unlink script
    names conda's, sparing itself the other adapters' imports).
    """
    root = Path(os.path.abspath(root))
    store = LedgerStore.of(root)
    result = CleanResult(root=root, dry_run=dry_run, ledger=store.path)
    only_keys = _only_keys(root, only)
    store.check()
    if not store.path.exists() and not store.directory.exists():
        return result

    def run(lock: EnvironmentLock | None) -> None:
        store.check()
        ledger = store.load()
        if lock is not None:
            _sweep(root, store, ledger)
        plans = []
        for key, entry in sorted(ledger.distributions.items()):
            if only_keys is not None and key not in only_keys:
                continue
            if (root / key).exists():
                contained(root, root / key)
            ghost = (root / key).is_dir() and not (root / key / "METADATA").is_file()
            plans.append(_Plan(key, Path(key).name, {}, list(entry.edits), ghost=ghost))
        _check_targets(root, store, plans)
        final = _reconcile(root, store, ledger, plans, result, dry_run, registrars)
        if lock is not None:
            _finish(store, lock, final)

    registrars = _Registrars(adapters or ())
    if dry_run:
        run(None)
        return result
    require_writable(store.directory)
    with EnvironmentLock(store.lock_path, wait=wait) as lock:
        if not store.path.exists() and not store.directory.exists():
            return result  # a clean before us removed everything while we waited
        run(lock)
    return result

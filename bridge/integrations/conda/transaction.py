"""Keep vbridge's metadata current after a conda transaction, incrementally.

A transaction links and unlinks packages in one prefix. :func:`sync_transaction` reads
the prefix's records (every ``conda-meta/*.json``: the floor, as conda itself does),
then writes metadata only for the distributions the change can have touched:

- the Python distributions of every linked package;
- those of packages that depend, through binary libraries, on a changed package
  (switching ``libblas`` from OpenBLAS to MKL changes what numpy and scipy link);
- those a changed metapackage pins (``numpy`` -> ``numpy-base``);

and removes vbridge's files from the distributions of unlinked packages. The conda
plugin (:mod:`vbridge.integrations.conda.plugin`) calls it with conda's ``link_precs`` and
``unlink_precs``; on conda older than 25.5 the change is read back from the last block
of ``conda-meta/history`` (:func:`last_history_change`).

>>> ref = PackageRef.from_dist_str("conda-forge/linux-64::libblas-3.9.0-20_linux64_mkl")
>>> (ref.name, ref.version, ref.build, ref.record_filename)
('libblas', '3.9.0', '20_linux64_mkl', 'libblas-3.9.0-20_linux64_mkl.json')
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path

import msgspec
from packaging.utils import canonicalize_name
from vbridge.errors import RecordError
from vbridge.model import Environment, InstallRecord
from vbridge.rules import RuleSet, dependency_names
from vbridge.safefs import read_regular

__all__ = [
    "PackageRef",
    "SyncOutcome",
    "TransactionChange",
    "affected_packages",
    "last_history_change",
    "parse_history",
    "sync_transaction",
]

_METADATA_SUFFIXES = (".dist-info", ".egg-info")


class PackageRef(msgspec.Struct, frozen=True):
    """A conda package a transaction linked or unlinked.

    ``depends`` and ``files`` are known when conda handed over a ``PrefixRecord``
    (its unlinked packages are); empty when only the name was known (history).
    """

    name: str
    version: str
    build: str
    depends: tuple[str, ...] = ()
    files: tuple[str, ...] = ()

    @classmethod
    def of(cls, prec: object) -> PackageRef:
        """From a conda ``PackageRecord``/``PrefixRecord`` (or anything shaped like one)."""
        build = getattr(prec, "build", None) or getattr(prec, "build_string", "") or ""
        return cls(
            name=str(getattr(prec, "name")),  # noqa: B009 - any record-shaped object
            version=str(getattr(prec, "version")),  # noqa: B009
            build=str(build),
            depends=tuple(str(d) for d in (getattr(prec, "depends", None) or ())),
            files=tuple(str(f) for f in (getattr(prec, "files", None) or ())),
        )

    @classmethod
    def from_dist_str(cls, text: str) -> PackageRef:
        """From a history line's ``channel/subdir::name-version-build``."""
        dist = text.strip().rsplit("::", 1)[-1]
        name, version, build = dist.rsplit("-", 2)
        return cls(name, version, build)

    @property
    def record_filename(self) -> str:
        """The ``conda-meta`` file conda names after it (CEP 32)."""
        return f"{self.name}-{self.version}-{self.build}.json"

    def metadata_dirs(self, prefix: Path) -> list[Path]:
        """The ``.dist-info``/``.egg-info`` directories among its files."""
        found: dict[Path, None] = {}
        for rel in self.files:
            parts = rel.replace("\\", "/").split("/")
            for i, part in enumerate(parts[:-1]):
                if part.endswith(_METADATA_SUFFIXES):
                    found[prefix.joinpath(*parts[: i + 1])] = None
                    break
        return list(found)


class TransactionChange(msgspec.Struct, frozen=True):
    """What one transaction linked and unlinked."""

    linked: tuple[PackageRef, ...] = ()
    unlinked: tuple[PackageRef, ...] = ()

    @classmethod
    def of(
        cls, link_precs: Iterable[object] | None, unlink_precs: Iterable[object] | None
    ) -> TransactionChange:
        return cls(
            tuple(PackageRef.of(p) for p in (link_precs or ())),
            tuple(PackageRef.of(p) for p in (unlink_precs or ())),
        )

    def __bool__(self) -> bool:
        return bool(self.linked or self.unlinked)


def parse_history(text: str) -> list[TransactionChange]:
    """Every transaction block of a ``conda-meta/history`` file, oldest first.

    ``+dist`` is linked, ``-dist`` unlinked; the oldest format lists the whole state
    without a sign (read as linked). Comment lines (``# cmd:``, specs) are skipped.

    >>> text = "==> 2016-02-16 14:17:47 <==\\n-cas-mirror-1.4.0-py27_x0\\n"
    >>> text += "+cas-mirror-1.4.1-py27_x0\\n"
    >>> [(r.name, r.version) for r in parse_history(text)[-1].unlinked]
    [('cas-mirror', '1.4.0')]
    """
    blocks: list[tuple[list[PackageRef], list[PackageRef]]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("==>") and line.endswith("<=="):
            blocks.append(([], []))
            continue
        if not line or line.startswith("#") or not blocks:
            continue
        linked, unlinked = blocks[-1]
        try:
            if line.startswith("-"):
                unlinked.append(PackageRef.from_dist_str(line[1:]))
            else:
                linked.append(PackageRef.from_dist_str(line.lstrip("+")))
        except ValueError:
            continue  # not a dist string: nothing to learn from it
    return [TransactionChange(tuple(a), tuple(b)) for a, b in blocks]


def last_history_change(prefix: Path) -> TransactionChange | None:
    """The last transaction conda recorded in ``prefix/conda-meta/history``, if any.

    rattler/pixi write an empty history: then there is nothing to read (None).
    """
    try:
        data = read_regular(prefix / "conda-meta" / "history")
    except (OSError, RecordError):
        return None
    text = data.decode("utf-8", errors="replace")
    blocks = [b for b in parse_history(text) if b]
    return blocks[-1] if blocks else None


def affected_packages(
    records: Sequence[InstallRecord], change: TransactionChange, stop_at: Iterable[str] = ()
) -> set[str]:
    """Names of the packages whose distributions' properties the change can alter.

    A change travels from a package to the packages that depend on it, as long as it
    goes through binary libraries: a Python distribution carries its own properties,
    so nothing travels through one, nor through ``stop_at`` (python, python_abi...).
    A changed package without Python distributions (a metapackage) also reaches the
    Python-distribution packages it depends on directly (it chose their build).
    """
    stop = {s.lower() for s in stop_at}
    by_name = {r.name.lower(): r for r in records}
    owns_dists: dict[str, bool] = {name: bool(r.python_dists) for name, r in by_name.items()}
    for ref in change.unlinked:
        # A record gone with the unlink: its files say whether it owned a distribution;
        # when conda did not say (history), assume a library so the change travels.
        owns_dists.setdefault(ref.name.lower(), bool(ref.metadata_dirs(Path("."))))
    dependents: dict[str, set[str]] = {}
    for record in records:
        for spec in record.depends:
            for dep in dependency_names(spec):
                dependents.setdefault(dep.lower(), set()).add(record.name.lower())

    changed = {ref.name.lower() for ref in (*change.linked, *change.unlinked)}
    affected = set(changed)
    for name in changed:
        pinning = by_name.get(name)
        if pinning is None or pinning.python_dists:
            continue
        for spec in pinning.depends:
            for dep in dependency_names(spec):
                target = by_name.get(dep.lower())
                if target is not None and target.python_dists:
                    affected.add(target.name.lower())
    queue: deque[str] = deque(changed)
    while queue:
        name = queue.popleft()
        if name in stop or owns_dists.get(name, False):
            continue
        for dependent in sorted(dependents.get(name, ())):
            if dependent not in affected:
                affected.add(dependent)
                queue.append(dependent)
    return affected


class SyncOutcome(msgspec.Struct):
    """What one sync did in a prefix."""

    prefix: Path
    annotated: list[str] = msgspec.field(default_factory=list)  # distributions (re)written
    cleaned: list[str] = msgspec.field(default_factory=list)  # distributions vbridge's files left
    problems: list[str] = msgspec.field(default_factory=list)
    variants_toml: str = ""  # what happened to variants.toml, if vbridge keeps one
    pip_constraints: list[str] = msgspec.field(default_factory=list)  # constraints/pip.conf changed

    def summary(self) -> str:
        """One line for conda's output.

        >>> SyncOutcome(Path("/env"), ["numpy-1.26.4.dist-info"]).summary()
        'vbridge: variant metadata updated for 1 distribution(s) in /env'
        """
        parts = []
        if self.annotated:
            parts.append(f"updated for {len(self.annotated)} distribution(s)")
        if self.cleaned:
            parts.append(f"removed from {len(self.cleaned)} uninstalled distribution(s)")
        text = "vbridge: variant metadata " + (", ".join(parts) or "unchanged")
        return f"{text} in {self.prefix}"


def _unlinked_metadata_dirs(env: Environment, change: TransactionChange) -> list[Path]:
    """Metadata directories of unlinked packages that no current record owns.

    From the record's files when conda handed them over; otherwise (history) the
    unowned directories left in site-packages under the package's name and version.
    """
    owned = {path for record in env.records for path in record.python_dists}
    relinked = {(r.name, r.version, r.build) for r in change.linked}
    found: dict[Path, None] = {}
    for ref in change.unlinked:
        if (ref.name, ref.version, ref.build) in relinked:
            continue  # the same build went out and back in (a reinstall)
        paths = ref.metadata_dirs(env.path)
        if not ref.files:
            paths = [
                d.dist_info
                for d in env.distributions
                if d.owner is None
                and d.name == canonicalize_name(ref.name)
                and d.version == ref.version
            ]
        for path in paths:
            if path not in owned:
                found[path] = None
    return list(found)


def _gone_from_ledger(prefix: Path) -> list[Path]:
    """Dist-infos vbridge annotated whose package is gone (no METADATA left)."""
    from vbridge.destinations.ledger import LedgerStore

    ledger = LedgerStore.of(prefix).load()
    return [
        prefix / key for key in ledger.distributions if not (prefix / key / "METADATA").is_file()
    ]


def sync_transaction(
    prefix: Path, change: TransactionChange, *, dry_run: bool = False, wait: float = 30.0
) -> SyncOutcome:
    """Bring vbridge's metadata in ``prefix`` up to date with one transaction.

    One annotate run limited to the affected distributions plus those the transaction
    removed (annotate undoes vbridge's files where the package is gone), then
    ``variants.toml`` refreshed if vbridge keeps one there, and plain pip's constraints
    file (:mod:`vbridge.destinations.pip_constraints`) rewritten. ``wait`` is how long to
    queue behind another vbridge run on the prefix. Raises
    :class:`vbridge.errors.VbridgeError` subclasses on bad input (not a prefix,
    read-only, locked); the conda plugin turns them into one line.
    """
    from vbridge.decide.assess import assess_environment
    from vbridge.destinations.annotate import annotate_environment
    from vbridge.destinations.pip_constraints import write_pip_constraints
    from vbridge.integrations.variants_toml import variants_toml_is_ours, write_variants_toml
    from vbridge.scan import scan_environment

    prefix = Path(os.path.abspath(prefix))
    outcome = SyncOutcome(prefix)
    if not change:
        return outcome
    env = assess_environment(scan_environment(prefix))
    outcome.problems.extend(str(p) for p in env.problems)

    stop_at = RuleSet.load("conda").stop_at
    names = affected_packages([r for r in env.records if r.ecosystem == "conda"], change, stop_at)
    targets = [
        d.dist_info
        for d in env.distributions
        if d.owner_record is not None
        and d.owner_record.ecosystem == "conda"
        and d.owner_record.name.lower() in names
    ]
    removed = {*_unlinked_metadata_dirs(env, change), *_gone_from_ledger(prefix)}
    if targets or removed:
        result = annotate_environment(env, only=[*targets, *removed], dry_run=dry_run, wait=wait)
        outcome.problems.extend(f.message for f in result.findings if f.severity != "info")
        gone = {str(p.relative_to(prefix)) for p in removed}
        for change_ in result.changed:
            key = next((k for k in gone if str(change_.path).startswith(f"{prefix}/{k}")), None)
            bucket = outcome.cleaned if key is not None else outcome.annotated
            if change_.distribution not in bucket:
                bucket.append(change_.distribution)
    if variants_toml_is_ours(prefix):
        outcome.variants_toml = write_variants_toml(env, dry_run=dry_run, wait=wait).line()
    # Plain pip's constraints follow every transaction (a BLAS switch, an upgrade).
    pip = write_pip_constraints(env, dry_run=dry_run, wait=wait)
    outcome.pip_constraints = [str(path) for path, _action in pip.changed]
    outcome.problems.extend(pip.notes)
    return outcome

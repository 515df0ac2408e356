"""Dependents, whoever owns them: every recorded requirement on a Python distribution,
held against the copy Python imports.

Each ecosystem's adapter reads its own records' requirements (``requirements(record,
index)``: conda ``depends`` pins, Debian ``Depends`` on ABI virtual packages and
versions, Spack link edges); distributions no such owner records (pip's) give their
``Requires-Dist``, markers evaluated for the environment's Python. Where an owner
records a distribution's dependencies itself, its record is the authority and the
distribution's ``Requires-Dist`` is not held against it (Debian's python3-gi declares
``pycairo>=1.16.0``; Debian does not install pycairo with it).

A requirement holds when the copy Python imports is the one the requirement's record
resolved (the owner's own solver saw to it), or when that copy's version satisfies
the record's spec in the record's own semantics (MatchSpec for conda, the policy's ABI
table for Debian's ``python3-numpy-abi9``, PEP 440 for ``Requires-Dist``).

:func:`requirements_on` is the public question "who needs what of each installed
distribution" (the constraints writer turns ``specifier`` into pip bounds);
:func:`unmet_requirements` and :func:`dependent_findings` answer "what is broken".

>>> from vbridge.model import Environment
>>> requirements_on(Environment(path=Path("/nonexistent")))
{}
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import cast

import msgspec
from vbridge.adapters import adapter_for
from vbridge.decide.policy import CouplingPolicy
from vbridge.imports import active_copies
from vbridge.model import (
    Distribution,
    Environment,
    Finding,
    InstallRecord,
    RecordIndex,
    Requirement,
)
from vbridge.names import canonical_name
from vbridge.safefs import is_normal_absolute

__all__ = [
    "Unmet",
    "copy_text",
    "dependent_findings",
    "marker_environment",
    "requirement_bound",
    "requirement_holds",
    "requirements_on",
    "unmet_requirements",
]

_PYTHON_DIR = re.compile(r"python(\d+)\.(\d+)")


def _records_dependencies(ecosystem: str) -> bool:
    """True when this ecosystem's records name their packages' dependencies."""
    adapter = adapter_for(ecosystem)
    return adapter is not None and adapter.RECORDS_DEPENDENCIES


def marker_environment(layer: str) -> dict[str, str]:
    """PEP 508 marker values for the Python a layer belongs to: this machine's, with the
    Python version read from the layer's path (``lib/python3.11/site-packages``)."""
    from packaging.markers import default_environment

    values = cast("dict[str, str]", dict(default_environment()))
    m = _PYTHON_DIR.search(layer)
    if m:
        version = f"{m.group(1)}.{m.group(2)}"
        values["python_version"] = version
        if not values["python_full_version"].startswith(version + "."):
            values["python_full_version"] = version + ".0"
    values["extra"] = ""
    return values


def _requires_dist(dist: Distribution) -> Iterator[Requirement]:
    from vbridge.adapters.wheel import requires_dist

    env: dict[str, str] | None = None
    for line in requires_dist(dist.dist_info):
        # Imported at the first line (~10 ms: markers, tags, subprocess), not for
        # distributions that require nothing.
        from packaging.requirements import InvalidRequirement
        from packaging.requirements import Requirement as Pep508

        try:
            req = Pep508(line)
        except InvalidRequirement:
            continue  # pip check does not hold it against the distribution either
        if req.marker is not None:
            env = env or marker_environment(dist.layer)
            try:
                if not req.marker.evaluate(env):
                    continue
            except Exception:  # an unknown marker variable says nothing
                continue
        yield Requirement(
            target=canonical_name(req.name),
            spec=line,
            kind="requires-dist",
            ecosystem=dist.installer or "pip",
            dependent=str(dist.dist_info),
            source=str(dist.dist_info),
            specifier=str(req.specifier) or None,
        )


def requirements_on(
    env: Environment, dists: Sequence[Distribution] | None = None
) -> dict[str, list[Requirement]]:
    """Per installed distribution name, the requirements on it from every ecosystem.

    Only dependents Python can import count: a foreign record whose distributions are
    all shadowed (or gone) loads nothing, nor does a shadowed pip copy; a record that
    owns no dist-info (modules without metadata, a metapackage) always counts. ``dists`` is the
    set of distributions to consider (default ``env.distributions``; the gate passes
    the state after an install). Keys are PEP 503 names of the required distributions,
    installed or not (a ``Requires-Dist`` on something missing is listed too).
    """
    dists = list(env.distributions if dists is None else dists)
    active = [d for d in dists if d.active]
    active_owners = {d.owner_record.key for d in active if d.owner_record is not None}
    # Its dist-infos are read from disk: ``dists`` (the gate's state after an install)
    # may lack some, but a record claims them.
    out: dict[str, list[Requirement]] = {}
    by_eco: dict[str, list[InstallRecord]] = {}
    for record in env.records:
        if record.foreign:
            by_eco.setdefault(record.ecosystem, []).append(record)
    for ecosystem, records in by_eco.items():
        adapter = adapter_for(ecosystem)
        if adapter is None:
            continue
        index = RecordIndex(records)
        requirements = adapter.requirements
        for record in records:
            if record.python_dists and record.key not in active_owners:
                continue
            for req in requirements(record, index):
                if req.provider != record.key:
                    out.setdefault(req.target, []).append(req)
    records_dependencies: dict[str, bool] = {}  # per ecosystem, asked once
    for dist in active:
        owner = dist.owner_record
        if owner is not None:
            says = records_dependencies.get(owner.ecosystem)
            if says is None:
                says = records_dependencies[owner.ecosystem] = _records_dependencies(
                    owner.ecosystem
                )
            if says:
                continue  # the owner's record says what it needs
        for req in _requires_dist(dist):
            if req.target != dist.name:
                out.setdefault(req.target, []).append(req)
    return out


def requirement_holds(req: Requirement, copy: Distribution, policy: CouplingPolicy) -> bool | None:
    """Whether ``copy`` (the one Python imports) satisfies ``req``; None: cannot tell.

    >>> policy = CouplingPolicy.load(None)
    >>> numpy2 = Distribution("numpy", "2.1.3", Path("numpy-2.1.3.dist-info"))
    >>> requirement_holds(Requirement("numpy", "python3-numpy-abi9", "abi", "apt",
    ...     "apt:python3-scipy-1.10.1-2", abi=("python3-numpy-abi9",)), numpy2, policy)
    False
    >>> requirement_holds(Requirement("numpy", "numpy>=1.19", "requires-dist", "pip",
    ...     "scipy.dist-info", specifier=">=1.19"), numpy2, policy)
    True
    """
    if copy.owner_record is not None and copy.owner_record.key == req.provider:
        return True  # the copy the record was resolved with
    if req.kind == "abi":
        virtuals = [
            v
            for v in policy.abi
            if v.provides in req.abi and canonical_name(v.distribution) == req.target
        ]
        if not virtuals:
            return None
        return any(v.provided_by(copy.version) for v in virtuals)
    if req.kind != "requires-dist" and req.ecosystem not in policy.version_constraints:
        return None
    if req.kind == "pin":
        adapter = adapter_for(req.ecosystem)
        if adapter is not None:
            name = req.spec.split(None, 1)[0]
            # The imported copy as a record of the pin's ecosystem: its version, and a
            # build string no build constraint of a pin would select (it is not theirs).
            build = copy.owner.build if copy.owner and copy.owner.build else "pip"
            try:
                as_record = InstallRecord(req.ecosystem, name, copy.version, build=build)
                return adapter.spec_matches(req.spec, as_record)
            except Exception:  # a spec the matcher cannot parse says nothing
                return None
    if req.specifier is None:
        return None if req.kind != "requires-dist" else True
    return _specifier_contains(req.specifier, copy.version)


@lru_cache(maxsize=4096)
def _specifier_contains(specifier: str, version: str) -> bool | None:
    """Whether PEP 440 ``specifier`` holds ``version`` (pre-releases too); None when it
    is not a specifier. Worked out once per pair: a Spack tree's unmet edges ask the
    same few hundred pairs again and again (743 asks, 251 pairs on the bench tree).

    ``==`` of a release (``==1.26.4``, a Spack edge's) held against a release is decided
    here, as PEP 440 does (equal release numbers, missing ones zero), without importing
    packaging's specifiers (~30 M instructions) for it:

    >>> _specifier_contains("==1.26", "1.26.0"), _specifier_contains("==1.26.4", "1.26.5")
    (True, False)
    """
    if specifier.startswith("=="):
        wanted = specifier[2:]
        if _RELEASE.fullmatch(wanted) and _RELEASE.fullmatch(version):
            return _release_numbers(wanted) == _release_numbers(version)
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        return SpecifierSet(specifier).contains(version, prereleases=True)
    except InvalidSpecifier:
        return None


# A PEP 440 release segment alone, ASCII digits (no epoch, pre, post, dev or local part).
_RELEASE = re.compile(r"[0-9]+(?:\.[0-9]+)*")


def _release_numbers(release: str) -> tuple[int, ...]:
    """``"1.26.0"`` -> ``(1, 26)``: the numbers of a release, trailing zeros left out
    (PEP 440 pads the shorter release with zeros when comparing)."""
    numbers = [int(n) for n in release.split(".")]
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers.pop()
    return tuple(numbers)


def requirement_bound(req: Requirement, policy: CouplingPolicy) -> str | None:
    """The PEP 440 bound that satisfies ``req`` on its target, for a pip constraint:
    its ``specifier``, or for a Debian ABI package the versions the policy says provide
    it (several alternatives: None, as a specifier set cannot say "or").

    >>> policy = CouplingPolicy.load(None)
    >>> requirement_bound(Requirement("numpy", "python3-numpy-abi9", "abi", "apt",
    ...     "apt:python3-scipy-1.10.1-2", abi=("python3-numpy-abi9",)), policy)
    '<2'
    """
    if req.kind != "abi":
        return req.specifier
    bounds = {
        str(v.versions)
        for v in policy.abi
        if v.provides in req.abi and canonical_name(v.distribution) == req.target
    }
    return bounds.pop() if len(bounds) == 1 else None


class Unmet(msgspec.Struct, frozen=True):
    """A requirement the copy Python imports does not satisfy (``copy`` None: no copy
    of the required distribution is installed at all)."""

    requirement: Requirement
    dependent: Distribution | None
    record: InstallRecord | None
    copy: Distribution | None

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (
            self.requirement.dependent,
            self.requirement.spec,
            self.requirement.target,
            self.copy.version if self.copy else "",
        )


def unmet_requirements(
    env: Environment, policy: CouplingPolicy, dists: Sequence[Distribution] | None = None
) -> list[Unmet]:
    """Every requirement the active copies leave unsatisfied, in a stable order."""
    dists = list(env.distributions if dists is None else dists)
    active = active_copies(dists)
    present = {d.name for d in dists}
    by_key = {r.key: r for r in env.records}
    owned_by = {d.owner_record.key: d for d in dists if d.owner_record is not None and d.active}
    by_meta = {str(d.dist_info): d for d in dists}
    out: list[Unmet] = []
    for target, reqs in sorted(requirements_on(env, dists).items()):
        copy = active.get(target)
        for req in reqs:
            record = by_key.get(req.dependent)
            dependent = owned_by.get(req.dependent) or by_meta.get(req.dependent)
            if copy is None:
                if req.kind == "requires-dist" and target not in present:
                    out.append(Unmet(req, dependent, record, None))
                continue  # a foreign copy that is gone has its own finding
            if requirement_holds(req, copy, policy) is False:
                out.append(Unmet(req, dependent, record, copy))
    return out


def _who(dist: Distribution | None, record: InstallRecord | None, req: Requirement) -> str:
    """``scipy 1.11.4 (conda, py311h64a7726_0)``: the dependent and its record."""
    if record is not None:
        detail = (
            record.build
            if record.ecosystem == "conda" and record.build
            else (
                f"{record.name} {record.version}"
                + (f"/{record.build}" if record.ecosystem == "spack" and record.build else "")
            )
        )
        if dist is not None:
            return f"{dist.name} {dist.version} ({record.ecosystem}, {detail})"
        if record.ecosystem == "conda" and record.build:
            return f"{record.name} {record.version} ({record.ecosystem}, {record.build})"
        return f"{record.name} {record.version} ({record.ecosystem})"
    if dist is not None:
        return f"{dist.name} {dist.version} ({dist.installer or 'pip'})"
    return req.dependent


def copy_text(copy: Distribution) -> str:
    """``numpy 2.1.3 (pip)``, ``numpy 1.26.4 (conda, py311h64a7726_0)``."""
    if copy.owner is not None:
        detail = (
            copy.owner.build
            if copy.owner.ecosystem == "conda" and copy.owner.build
            else (f"{copy.owner.name} {copy.owner.version}")
        )
        return f"{copy.name} {copy.version} ({copy.owner.ecosystem}, {detail})"
    return f"{copy.name} {copy.version} ({copy.installer or 'pip'})"


def _spec_text(req: Requirement, policy: CouplingPolicy) -> str:
    if req.kind == "abi":
        bounds = [
            f"{v.distribution} {v.versions}"
            for v in policy.abi
            if v.provides in req.abi and str(v.versions)
        ]
        return f"{req.spec} ({', '.join(bounds)})" if bounds else req.spec
    return req.spec


def _said_by(req: Requirement, env: Environment, record: InstallRecord | None) -> str:
    if req.source:
        shown = _shown_path(req.source, env.path)
        if record is not None and record.ecosystem == "apt":
            return f"{shown}: {record.name} Depends"
        if req.kind == "requires-dist":
            return f"{shown}: Requires-Dist"
        return shown
    return req.dependent


def _shown_path(source: str, top: Path) -> str:
    """``source`` relative to ``top`` when under it, else as it is: what
    ``str(Path(source).relative_to(top))`` gives (or ``str(Path(source))``), by text
    when both are absolute POSIX paths in normal form (a tree scan shows hundreds).

    >>> _shown_path("/opt/spack/zlib/.spack/spec.json", Path("/opt/spack"))
    'zlib/.spack/spec.json'
    >>> _shown_path("/opt/spack", Path("/opt/spack")), _shown_path("/opt/other", Path("/opt/spack"))
    ('.', '/opt/other')
    >>> _shown_path("/usr/lib/x", Path("/")), _shown_path("/opt//spack/x", Path("/opt/spack"))
    ('usr/lib/x', 'x')
    """
    base = str(top)
    if is_normal_absolute(source) and is_normal_absolute(base):
        if source == base:
            return "."
        if base == "/":
            return source[1:]
        if source.startswith(base) and source[len(base)] == "/":
            return source[len(base) + 1 :]
        return source
    path = Path(source)
    try:
        return str(path.relative_to(top))
    except ValueError:
        return str(path)


def _first_owned(dists: Sequence[Distribution]) -> dict[str, Distribution]:
    """Per record key, the first of ``dists`` that record owns (looked up once per
    finding: a scan over every distribution per finding was quadratic)."""
    first: dict[str, Distribution] = {}
    for d in dists:
        if d.owner_record is not None:
            first.setdefault(d.owner_record.key, d)
    return first


def _todo(
    req: Requirement,
    unmet: Unmet,
    first_owned: dict[str, Distribution],
    policy: CouplingPolicy,
    would: bool = False,
) -> str:
    target = req.target
    spec = requirement_bound(req, policy)
    bound = f"'{target}{spec}'" if spec else target
    if would:
        return f"Ask for a {target} that fits instead ({bound}), or pass --force"
    if req.provider is not None:
        eco = req.provider.split(":", 1)[0]
        owned = first_owned.get(req.provider)
        if owned is not None and unmet.copy is not None and unmet.copy is not owned:
            return (
                f"Remove {unmet.copy.name} {unmet.copy.version} from {unmet.copy.layer} "
                f"(pip uninstall {target}) so Python imports {eco}'s {target} "
                f"{owned.version} again, or pass --vbridge-force knowing it breaks"
            )
        return f"Reinstall {target} with {eco}, or install a {target} that fits ({bound})"
    if unmet.copy is None:
        return f"Install it (pip install {bound})"
    return f"Install a {target} that fits (pip install {bound}) or change the dependent"


def dependent_findings(
    env: Environment,
    policy: CouplingPolicy,
    dists: Sequence[Distribution] | None = None,
    before: Iterable[Unmet] = (),
    would: bool = False,
) -> list[Finding]:
    """One ``broken-dependent`` (or ``missing-dependency``) finding per unmet requirement.

    ``before`` (the gate: unmet requirements of the environment as it is) are left out,
    so only what an install would break is reported; ``would`` words it so.
    """
    dists = list(env.distributions if dists is None else dists)
    known = {u.key for u in before}
    first_owned = _first_owned(dists)
    findings: list[Finding] = []
    for unmet in unmet_requirements(env, policy, dists):
        if unmet.key in known:
            continue
        req = unmet.requirement
        who = _who(unmet.dependent, unmet.record, req)
        said = _said_by(req, env, unmet.record)
        names = tuple(sorted({req.target, *([unmet.dependent.name] if unmet.dependent else [])}))
        if unmet.copy is None:
            severity = policy.dependents_missing
            if severity is None:
                continue
            findings.append(
                Finding(
                    severity,
                    "missing-dependency",
                    f"{who} needs {_spec_text(req, policy)}, which is not installed "
                    f"({said}). {_todo(req, unmet, first_owned, policy)}.",
                    names,
                )
            )
            continue
        severity = policy.dependents_broken if req.binary else policy.dependents_requires_dist
        if severity is None:
            continue
        imports = "Python would import" if would else "Python imports"
        findings.append(
            Finding(
                severity,
                "broken-dependent",
                f"{who} needs {_spec_text(req, policy)}; {imports} {copy_text(unmet.copy)} "
                f"({said}). {_todo(req, unmet, first_owned, policy)}.",
                names,
            )
        )
    return findings

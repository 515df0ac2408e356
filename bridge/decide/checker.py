"""The checker: would this environment, with these wheels installed, still work?

It compares candidates (wheels pip is about to install, read by the wheel adapter)
with a scanned environment under the coupling policy and returns a :class:`Verdict`:

- a distribution conda, apt or Spack owns is never replaced or shadowed by pip
  (``ownership.replace`` / ``ownership.shadow``), and the message says what would break:
  the owner's dependents built against the old version (conda pins, Debian ABI
  virtual packages: ``dependents.broken``);
- coupled features must agree among what one process loads (``mixed``), duplicate
  runtimes warn (``duplicate``);
- host-bound features must be supported by this machine (``host``);
- ``pip uninstall`` does not remove a distribution another manager owns
  (``ownership.remove``, :func:`check_removals`).

>>> Verdict(()).decision
'ok'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlparse

import msgspec
from packaging.utils import canonicalize_name
from vbridge.decide.findings import host_findings
from vbridge.decide.host import Host
from vbridge.decide.policy import CouplingPolicy, loaded_distributions
from vbridge.errors import RecordError
from vbridge.model import Distribution, Environment, Finding, InstallRecord, Severity
from vbridge.rules import RuleSet, dependency_names

__all__ = [
    "Candidate",
    "Verdict",
    "after_install",
    "check_candidates",
    "check_environment",
    "host_findings",
]

Decision = Literal["refuse", "warn", "ok"]
_PREFIX = {"refuse": "refusing", "warn": "warning", "info": "note"}
_PYPI_HOSTS = ("files.pythonhosted.org", "pypi.org", "pypi.python.org")


class Candidate(msgspec.Struct, frozen=True):
    """A wheel pip would install, described by the wheel adapter.

    ``dist`` is the distribution as it would be installed (its ``dist_info`` is the
    wheel file until then); ``url`` is where pip found the wheel.
    """

    dist: Distribution
    wheel: Path
    url: str | None = None

    @classmethod
    def from_wheel(
        cls, wheel: Path, layer: Path | None = None, url: str | None = None
    ) -> Candidate:
        """Read a wheel file (not installed) into a candidate.

        Raises :class:`~vbridge.errors.RecordError` for a file that is not a wheel.
        """
        from vbridge.adapters.wheel import wheel_record

        try:
            record = wheel_record(wheel)
        except ValueError as exc:
            raise RecordError(f"{wheel}: {exc}; give a .whl file or a requirement") from exc
        dist = Distribution(
            name=record.name,
            version=record.version,
            dist_info=wheel,
            installer="pip",
            layer=str(layer) if layer else "",
            facts={k: v for k, v in record.extra.items() if v not in ([], "")},
        )
        for prop, evidence in RuleSet.load("wheel").record_properties(record):
            dist.add(prop, evidence)
        return cls(dist, wheel, url)

    @property
    def source(self) -> str:
        """``from PyPI``, ``from <host>``, ``from <directory>``: where the wheel came from."""
        if not self.url:
            return f"from {self.wheel}"
        parsed = urlparse(self.url)
        if parsed.scheme == "file":
            return f"from {Path(unquote(parsed.path)).parent}"
        if parsed.hostname in _PYPI_HOSTS:
            return "from PyPI"
        return f"from {parsed.hostname or self.url}"

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.dist.name,
            "version": self.dist.version,
            "wheel": str(self.wheel),
            "url": self.url,
            "properties": [p.to_str() for p in sorted(self.dist.properties)],
            "facts": self.dist.facts,
        }


class Verdict(msgspec.Struct, frozen=True):
    """What the checker decided, and why: the findings, worst first."""

    findings: tuple[Finding, ...]
    candidates: tuple[Candidate, ...] = ()

    @property
    def decision(self) -> Decision:
        severities = {f.severity for f in self.findings}
        if "refuse" in severities:
            return "refuse"
        return "warn" if "warn" in severities else "ok"

    @property
    def exit_code(self) -> int:
        return 1 if self.decision == "refuse" else 0

    def lines(self, forced: bool = False) -> list[str]:
        """One line per finding: ``refusing: ...``, ``warning: ...``, ``note: ...``."""
        out = []
        for f in self.findings:
            prefix = _PREFIX[f.severity]
            if forced and f.severity == "refuse":
                prefix = "forced past a refusal"
            out.append(f"{prefix}: {f.message}")
        return out

    def softened(self) -> Verdict:
        """The same findings with every refusal turned into a warning (``--warn-only``)."""
        findings = tuple(
            Finding("warn", f.code, f.message, f.distributions, f.evidence)
            if f.severity == "refuse"
            else f
            for f in self.findings
        )
        return Verdict(findings, self.candidates)

    def to_dict(self) -> dict[str, object]:
        return {
            "decision": self.decision,
            "findings": [f.to_dict() for f in self.findings],
            "candidates": [c.to_dict() for c in self.candidates],
        }


def _ordered(findings: list[Finding]) -> tuple[Finding, ...]:
    rank = {"refuse": 0, "warn": 1, "info": 2}
    return tuple(sorted(findings, key=lambda f: rank[f.severity]))


def check_environment(
    env: Environment, policy: CouplingPolicy | None = None, host: Host | None = None
) -> Verdict:
    """Is this environment consistent? Its scan's findings (which include what this
    host cannot run), worst first; ``host`` replaces the scan's view of this machine."""
    if host is None:
        return Verdict(_ordered(list(env.findings)))
    policy = policy or CouplingPolicy.load(env.path)
    active = [d for d in env.distributions if d.active]
    kept = [f for f in env.findings if not f.code.startswith("host-")]
    return Verdict(_ordered([*kept, *host_findings(active, policy, host, installed=True)]))


def after_install(
    env: Environment, candidates: Sequence[Candidate], target_layer: Path | None
) -> list[Distribution]:
    """The distributions as they would be after pip installs ``candidates`` into
    ``target_layer``: each replaces the copy of its name in that layer, and the copy
    Python imports is worked out again (copies: ``env`` is not changed)."""
    from vbridge.imports import assign_active

    layers = list(env.site_packages)
    if target_layer is not None and target_layer not in layers:
        layers.insert(0, target_layer)
    names = {c.dist.name for c in candidates}
    layer = str(target_layer) if target_layer is not None else ""
    kept = [
        msgspec.structs.replace(d)
        for d in env.distributions
        if not (d.name in names and target_layer is not None and Path(d.layer) == target_layer)
    ]
    new = [msgspec.structs.replace(c.dist, layer=layer) for c in candidates]
    order = {str(p): i for i, p in enumerate(layers)}
    after = sorted([*new, *kept], key=lambda d: order.get(d.layer, len(order)))
    assign_active(after, layers, collection=env.collection)
    return after


def check_candidates(
    env: Environment,
    candidates: Sequence[Candidate],
    target_layer: Path | None = None,
    policy: CouplingPolicy | None = None,
    host: Host | None = None,
) -> Verdict:
    """Would installing ``candidates`` into ``target_layer`` of ``env`` be safe?

    Only what the candidates bring in is reported; conflicts already in the
    environment are ``vbridge check``'s business.
    """
    policy = policy or CouplingPolicy.load(env.path)
    host = host or Host.detect()
    if target_layer is None and env.site_packages:
        target_layer = env.site_packages[0]
    from vbridge.decide.dependents import dependent_findings, unmet_requirements

    records = {r.key: r for r in env.records}
    loaded = loaded_distributions(env.distributions, env.site_packages)
    loaded_by_name = {d.name: d for d in loaded}
    after = after_install(env, candidates, target_layer)
    # What the install would break: the dependents' requirements held against the
    # copies Python would import afterwards, less what is broken already.
    broken = dependent_findings(
        env, policy, after, before=unmet_requirements(env, policy), would=True
    )
    findings: list[Finding] = []
    named: set[str] = set()
    for cand in candidates:
        for finding in _ownership(env, cand, target_layer, loaded_by_name, policy, records, broken):
            findings.append(finding)
            named.add(cand.dist.name)
    # Broken dependents of a foreign copy pip replaces or shadows are in that finding.
    findings.extend(f for f in broken if not set(f.distributions) & named)
    new = {id(d) for d in after if d.dist_info.suffix == ".whl"}
    active = [d for d in after if d.active]
    focus = [d for d in active if id(d) in new]
    findings.extend(policy.coupling_findings(active, focus=focus, records=records))
    findings.extend(host_findings([d for d in after if id(d) in new], policy, host))
    return Verdict(_ordered(findings), tuple(candidates))


def check_removals(
    env: Environment,
    names: Sequence[str],
    target_layer: Path | None = None,
    policy: CouplingPolicy | None = None,
) -> Verdict:
    """Would ``pip uninstall NAMES`` in ``target_layer`` of ``env`` be safe?

    pip removes the copy Python imports (the first on ``sys.path``), and only from the
    environment it installs into. When conda, apt or Spack owns that copy, its record
    would still list the files pip deleted, and the packages built against it lose it
    (``ownership.remove``).
    """
    policy = policy or CouplingPolicy.load(env.path)
    if target_layer is None and env.site_packages:
        target_layer = env.site_packages[0]
    records = {r.key: r for r in env.records}
    loaded_by_name = {
        d.name: d for d in loaded_distributions(env.distributions, env.site_packages)
    }
    severity = policy.ownership.get("remove")
    findings: list[Finding] = []
    for name in dict.fromkeys(canonicalize_name(n) for n in names):
        dist = loaded_by_name.get(name)
        if dist is None or dist.owner is None or dist.owner_record is None:
            continue
        if target_layer is None or Path(dist.layer) != target_layer or severity is None:
            continue  # pip does not remove what lies outside its environment
        eco = dist.owner.ecosystem
        dependents = sorted(
            {
                f"{r.name} {r.version}"
                for r in env.records
                if r.ecosystem == eco
                and r.foreign
                and r.key != dist.owner_record.key
                and any(
                    n.lower() == dist.owner_record.name.lower()
                    for dep in r.depends
                    for n in dependency_names(dep)
                )
            }
        )
        message = (
            f"pip would remove {dist.name} {dist.version}, installed by {eco} "
            f"({_owner_text(dist, policy, records)}): {eco} would still list it, its "
            "files gone. "
        )
        if dependents:
            more = f" and {len(dependents) - 5} more" if len(dependents) > 5 else ""
            message += f"{eco} packages that need it: {', '.join(dependents[:5])}{more}. "
        message += f"Use {eco} to remove {dist.name}, or pass --vbridge-force."
        evidence = tuple(ev[0] for ev in list(dist.properties.values())[:1])
        findings.append(Finding(severity, "removed-foreign", message, (dist.name,), evidence))
    return Verdict(_ordered(findings))


def _ownership(
    env: Environment,
    cand: Candidate,
    target_layer: Path | None,
    loaded_by_name: Mapping[str, Distribution],
    policy: CouplingPolicy,
    records: Mapping[str, InstallRecord],
    broken: Sequence[Finding] = (),
) -> list[Finding]:
    """A foreign copy Python imports now that pip would replace (same directory) or
    shadow (earlier on ``sys.path``), with the dependents that would break."""
    out: list[Finding] = []
    for dist in env.distributions:
        if dist.name != cand.dist.name or dist.owner is None or dist.owner_record is None:
            continue
        replaces = target_layer is not None and Path(dist.layer) == target_layer
        if not replaces and loaded_by_name.get(dist.name) is not dist:
            continue  # already shadowed: its dependents' findings say what changes
        action = "replace" if replaces else "shadow"
        breaks = [f for f in broken if dist.name in f.distributions]
        severity: Severity | None = policy.ownership.get(action)
        for f in breaks:
            if severity is None or _RANK[f.severity] < _RANK[severity]:
                severity = f.severity
        if severity is None:
            continue
        eco = dist.owner.ecosystem
        message = (
            f"pip would {action} {dist.name} {dist.version}, installed by {eco} "
            f"({_owner_text(dist, policy, records)}), with {_candidate_text(cand, policy)}. "
        )
        if breaks:
            listed = "; ".join(f.message.split(";", 1)[0] for f in breaks[:5])
            more = f" and {len(breaks) - 5} more" if len(breaks) > 5 else ""
            message += (
                f"{eco} packages built against this {dist.name} would break: {listed}{more}. "
            )
        elif replaces:
            message += f"{eco} would still list {dist.name} {dist.version}, its files gone. "
        else:
            message += f"Python would import it instead of {eco}'s {dist.name}. "
        message += f"Use {eco} to change {dist.name}, or pass --vbridge-force."
        evidence = tuple(ev[0] for ev in list(dist.properties.values())[:1])
        out.append(Finding(severity, _CODES[action], message, (dist.name,), evidence))
    return out


_RANK = {"refuse": 0, "warn": 1, "info": 2}
_CODES = {"replace": "replaced-foreign", "shadow": "shadowed-foreign"}


def _owner_text(
    dist: Distribution, policy: CouplingPolicy, records: Mapping[str, InstallRecord]
) -> str:
    """``conda-forge, build py311h64a7726_0, BLAS/LAPACK provider: MKL via libblas ...``."""
    owner = dist.owner
    assert owner is not None
    parts: list[str] = []
    if owner.channel:
        parts.append(owner.channel)
    if owner.name != dist.name or owner.ecosystem != "conda":
        parts.append(f"{owner.name} {owner.version}")
    if owner.build:
        parts.append(f"build {owner.build}")
    for feature, rule in policy.features.items():
        for carrier in policy.carriers([dist], feature):
            values = "/".join(rule.name(v) for v in sorted(carrier.values))
            how = policy.evidence_text(carrier.evidence[0], records) if carrier.evidence else ""
            parts.append(f"{rule.label}: {values}{f' {how}' if how else ''}")
    return ", ".join(parts)


def _candidate_text(cand: Candidate, policy: CouplingPolicy) -> str:
    """``numpy 2.4.6 from PyPI (bundled OpenBLAS)``."""
    text = f"{cand.dist.name} {cand.dist.version} {cand.source}"
    parts: list[str] = []
    for feature, rule in policy.features.items():
        for carrier in policy.carriers([cand.dist], feature):
            word = policy.words.get(carrier.evidence[0].field, "") if carrier.evidence else ""
            values = "/".join(rule.name(v) for v in sorted(carrier.values))
            parts.append(f"{word} {values}".strip())
    return f"{text} ({', '.join(parts)})" if parts else text

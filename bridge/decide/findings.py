"""Findings about one scanned environment: what conflicts, and who caused it.

Severities and which features must agree come from the coupling policy
(``data/policy.toml`` merged with the environment's override, see vbridge/decide/policy.py).
"""

from __future__ import annotations

from collections.abc import Iterator

from vbridge.decide.policy import CouplingPolicy
from vbridge.model import Distribution, Environment, Finding
from vbridge.sitepackages import split_metadata_dir_name

__all__ = ["environment_findings"]


def environment_findings(
    env: Environment, policy: CouplingPolicy | None = None
) -> Iterator[Finding]:
    """What conflicts in ``env``, judged by ``policy`` (default: the environment's,
    :meth:`CouplingPolicy.load`)."""
    policy = CouplingPolicy.load(env.path) if policy is None else policy
    yield from _ownership_findings(env, policy)
    yield from _mixed_findings(env, policy)


def _ownership_findings(env: Environment, coupling: CouplingPolicy) -> Iterator[Finding]:
    policy = coupling.ownership
    by_name: dict[str, list[Distribution]] = {}
    for dist in env.distributions:
        by_name.setdefault(dist.name, []).append(dist)
    present = {d.dist_info for d in env.distributions}
    for record in env.records:
        if not record.foreign:
            continue
        for dist_path in record.python_dists:
            name, version = split_metadata_dir_name(dist_path.name)
            others = [d for d in by_name.get(name, []) if d.owner is None]
            if not others:
                continue
            other = others[0]
            who = f"{record.ecosystem} ({record.name} {record.version}"
            who += f", build {record.build})" if record.build else ")"
            installer = other.installer or "another installer"
            if dist_path not in present:
                severity = policy.get("replaced")
                if severity is None:
                    continue
                yield Finding(
                    severity,
                    "replaced-foreign",
                    f"{name} {version} installed by {who} was replaced by {name} "
                    f"{other.version} installed by {installer}; {record.ecosystem} "
                    f"still records its files. Reinstall {name} with {record.ecosystem}.",
                    (name,),
                )
            else:
                severity = policy.get("shadowed")
                if severity is None:
                    continue
                yield Finding(
                    severity,
                    "shadowed-foreign",
                    f"{name} {other.version} installed by {installer} in {other.layer} "
                    f"sits beside {name} {version} installed by {who}; which one Python "
                    f"imports depends on sys.path order.",
                    (name,),
                )


def _mixed_findings(env: Environment, policy: CouplingPolicy) -> Iterator[Finding]:
    """Coupled features that disagree among the distributions of the environment.

    Every distribution counts, shadowed copies too (a shadowed copy has its own
    finding); a collection of environments (a Spack install tree) is never one
    process, so only what one distribution loads by itself is reported there.
    """
    records = {r.key: r for r in env.records}
    yield from policy.coupling_findings(
        env.distributions, records=records, one_process=not env.collection
    )

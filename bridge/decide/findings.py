"""Findings about one scanned environment: what conflicts, what is broken, who caused it.

Severities and which features must agree come from the coupling policy
(``data/policy.toml`` merged with the environment's override, see vbridge/decide/policy.py).
Every code a finding can carry is listed, with its meaning and what to do, in the
README's table of finding codes (``FINDING_CODES`` here; a test keeps them equal).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from vbridge.decide.policy import Carrier, CouplingPolicy
from vbridge.model import Distribution, Environment, Finding, InstallRecord, Property
from vbridge.sitepackages import split_metadata_dir_name

__all__ = [
    "FINDING_CODES",
    "environment_findings",
    "host_findings",
]

# Every code scan, check, the gates, annotate and clean emit (the README table lists each).
FINDING_CODES = (
    "broken-dependent",
    "missing-dependency",
    "replaced-foreign",
    "shadowed-foreign",
    "removed-foreign",
    "rewritten-foreign",
    "claimed-twice",
    "mixed-blas-lapack",
    "mixed-mpi",
    "mixed-openmp",
    "duplicate-blas-lapack",
    "several-blas-lapack",
    "several-mpi",
    "several-openmp",
    "host-x86-64",
    "host-nvidia",
    # vbridge verify: what the imported libraries say differs from the records
    "verify-differs",
    # vbridge annotate / clean (their --json "findings")
    "annotate-needs-hook",
    "annotate-skipped-owner",
    "annotate-skipped-no-record",
    "annotate-skipped-bad-record",
    "annotate-skipped-own-metadata",
    "annotate-skipped-outside",
    "annotate-view-not-linked",
    "clean-left-changed-file",
)


def environment_findings(
    env: Environment, policy: CouplingPolicy | None = None
) -> Iterator[Finding]:
    """Everything a scan reports, judged by ``policy`` (default: the environment's,
    :meth:`CouplingPolicy.load`): ownership (from the records and from content), what
    loads together in one process (active copies only), unmet requirements of the
    dependents, and what this machine cannot run."""
    from vbridge.decide.dependents import dependent_findings

    policy = CouplingPolicy.load(env.path) if policy is None else policy
    yield from _ownership_findings(env, policy)
    yield from _content_findings(env, policy)
    yield from _mixed_findings(env, policy)
    yield from dependent_findings(env, policy)
    yield from _installed_host_findings(env, policy)


def _who(record: InstallRecord) -> str:
    """``conda (numpy 1.26.4, build py311h64a7726_0)``."""
    text = f"{record.ecosystem} ({record.name} {record.version}"
    return text + (f", build {record.build})" if record.build else ")")


def _copy(dist: Distribution) -> str:
    who = dist.owner.ecosystem if dist.owner else (dist.installer or "an unknown installer")
    return f"{dist.name} {dist.version} ({who}, {dist.layer})"


def _ownership_findings(env: Environment, coupling: CouplingPolicy) -> Iterator[Finding]:
    policy = coupling.ownership
    by_name: dict[str, list[Distribution]] = {}
    for dist in env.distributions:
        by_name.setdefault(dist.name, []).append(dist)
    by_path = {d.dist_info: d for d in env.distributions}
    for record in env.records:
        if not record.foreign:
            continue
        eco = record.ecosystem
        for dist_path in record.python_dists:
            found = by_path.get(dist_path)
            if found is not None and (found.owner_record is not record or found.active):
                continue  # Python imports the copy its record owns (or another owns it)
            name, version = split_metadata_dir_name(dist_path.name)
            if found is not None:
                dist = found
                winner = dist.shadowed_by
                assert winner is not None
                seeded = (
                    winner.name in coupling.venv_seeds
                    and winner.owner is None
                    and winner.version == dist.version
                )
                severity = policy.get("shadowed_seed" if seeded else "shadowed")
                if severity is None:
                    continue
                message = (
                    f"Python imports {_copy(winner)}, not {name} {version} installed by "
                    f"{_who(record)} in {dist.layer}"
                )
                if seeded:
                    message += (
                        f": the venv's own {winner.name}, the same version, which venv "
                        "installs in every environment (nothing to do)."
                    )
                else:
                    message += (
                        f"; {eco}'s build and its properties do not apply. If that is not "
                        f"intended, remove the copy (pip uninstall {winner.name} in "
                        f"{winner.layer})."
                    )
                yield Finding(
                    severity, "shadowed-foreign", message, tuple(sorted({name, winner.name}))
                )
                continue
            if not version or dist_path.exists():
                continue  # there, but no distribution pip would list (Debian's extra
                # versionless cryptography.egg-info beside its dist-info)
            others = [d for d in by_name.get(name, []) if d.owner_record is not record]
            if others:
                severity = policy.get("replaced")
                if severity is None:
                    continue
                other = others[0]
                yield Finding(
                    severity,
                    "replaced-foreign",
                    f"{name} {version} installed by {_who(record)} was replaced by "
                    f"{_copy(other)}; {eco} still records its files. Reinstall {name} with "
                    f"{eco}, or remove {eco}'s record of it.",
                    (name,),
                )
            else:
                severity = policy.get("removed")
                if severity is None:
                    continue
                yield Finding(
                    severity,
                    "removed-foreign",
                    f"{name} {version} installed by {_who(record)} is gone: its "
                    f"{dist_path.name} was removed behind {eco}'s back (pip uninstall?), "
                    f"and {eco} still records its files. Reinstall it with {eco}, or "
                    f"remove it with {eco} (its record, {record.source}).",
                    (name,),
                )


def _content_findings(env: Environment, coupling: CouplingPolicy) -> Iterator[Finding]:
    """Ownership as the files say it: a dist-info another tool rewrote after its owner
    recorded it, one that two owners claim."""
    records = {r.key: r for r in env.records}
    for dist in env.distributions:
        claimed = dist.facts.get("claimed_by")
        record = records.get(claimed) if isinstance(claimed, str) else None
        severity = coupling.ownership.get("rewritten")
        if record is not None and severity is not None:
            eco = record.ecosystem
            props = ", ".join(p.to_str() for p in sorted(dist.properties))
            yield Finding(
                severity,
                "rewritten-foreign",
                f"{dist.name} {dist.version} in {dist.layer} is recorded by {_who(record)}, "
                f"but {dist.installer} rewrote it since (its INSTALLER says "
                f"{dist.installer}): its files are {dist.installer}'s build"
                f"{f' ({props})' if props else ''}, not {eco}'s, and {eco} still lists "
                f"them. Reinstall {dist.name} with {eco}, or remove {eco}'s record of it "
                f"to keep {dist.installer}'s.",
                (dist.name,),
            )
        also = dist.facts.get("also_claimed_by")
        severity = coupling.ownership.get("claimed_twice")
        if isinstance(also, list) and dist.owner_record is not None and severity is not None:
            others = [records[k] for k in also if isinstance(k, str) and k in records]
            if others:
                listed = "; ".join(_who(r) for r in [dist.owner_record, *others])
                yield Finding(
                    severity,
                    "claimed-twice",
                    f"{dist.dist_info.name} is claimed by several owners: {listed}. "
                    "Removing either removes the other's files; uninstall it from all but "
                    "one of them.",
                    (dist.name,),
                )


def _mixed_findings(env: Environment, policy: CouplingPolicy) -> Iterator[Finding]:
    """Coupled features that disagree among the distributions Python imports.

    Shadowed copies never load, so they do not count; a collection of environments
    (a Spack install tree) is never one process, so only what one distribution loads
    by itself is reported there.
    """
    records = {r.key: r for r in env.records}
    active = [d for d in env.distributions if d.active]
    yield from policy.coupling_findings(active, records=records, one_process=not env.collection)


def host_findings(
    dists: Sequence[Distribution],
    policy: CouplingPolicy,
    host: object,
    installed: bool = False,
    carried: Mapping[str, list[Carrier]] | None = None,
) -> list[Finding]:
    """Host-bound features this machine cannot run (a distribution listing several
    values needs only one of them). ``installed``: words it for what is installed
    ("cannot run here"), not for an install. ``carried``: the carriers of ``dists``
    per host-bound feature, when the caller has them already."""
    from vbridge.decide.host import Host

    assert isinstance(host, Host)
    out: list[Finding] = []
    # Per property, asked once: a tree's hundreds of distributions hold a few levels.
    feature_of: dict[tuple[str, str], str] = {}
    supported: dict[Property, bool | None] = {}
    for feature, rule in policy.features.items():
        if rule.host is None:
            continue
        carriers = carried[feature] if carried is not None else policy.carriers(dists, feature)
        for carrier in carriers:
            held = False
            for p in carrier.dist.properties:
                named = feature_of.get((p.namespace, p.feature))
                if named is None:
                    named = feature_of[(p.namespace, p.feature)] = policy.canonical_feature(p)
                if named != feature:
                    continue
                if p in supported:
                    supports = supported[p]
                else:
                    supports = supported[p] = host.supports(p)
                if supports:
                    held = True
                    break
            if held:
                continue
            values = "/".join(sorted(carrier.values))
            how = policy.evidence_text(carrier.evidence[0]) if carrier.evidence else ""
            what = f"{rule.label} {values}{f' ({how})' if how else ''}"
            if installed:
                message = (
                    f"{carrier.dist.name} {carrier.dist.version} is installed but cannot run "
                    f"here: it needs {what}; this machine has {host.describe(feature)}. "
                    f"Reinstall {carrier.dist.name} built for this machine."
                )
            else:
                message = (
                    f"{carrier.dist.name} {carrier.dist.version} needs {what}; this machine "
                    f"has {host.describe(feature)}"
                )
            out.append(
                Finding(
                    rule.host,
                    "host-" + feature.split(" :: ")[0].replace("_", "-"),
                    message,
                    (carrier.dist.name,),
                    carrier.evidence[:1],
                )
            )
    return out


def _installed_host_findings(env: Environment, policy: CouplingPolicy) -> list[Finding]:
    """Host-bound findings of what Python imports; the host is asked only when some
    distribution carries a host-bound feature."""
    active = [d for d in env.distributions if d.active]
    carried = policy.carriers_of(
        active, [f for f, rule in policy.features.items() if rule.host is not None]
    )
    if not any(carried.values()):
        return []
    from vbridge.decide.host import Host

    return host_findings(active, policy, Host.detect(), installed=True, carried=carried)

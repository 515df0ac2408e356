"""Findings about one scanned environment: what conflicts, and who caused it.

Severities and which features must agree come from ``data/policy.toml``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

from vbridge.model import Distribution, Environment, Evidence, Finding, Property, Severity
from vbridge.rules import load_data
from vbridge.sitepackages import split_metadata_dir_name

__all__ = ["canonical_feature", "environment_findings", "feature_values"]


def _policy() -> dict[str, dict[str, object]]:
    return cast("dict[str, dict[str, object]]", load_data("policy").get("features", {}))


def canonical_feature(prop: Property) -> str:
    """``ns :: feature`` with aliases folded (``blas_lapack :: library`` -> provider)."""
    key = f"{prop.namespace} :: {prop.feature}"
    for name, table in _policy().items():
        if key == name or key in cast("list[str]", table.get("aliases", [])):
            return name
    return key


def feature_values(
    dists: list[Distribution], feature: str
) -> dict[str, list[tuple[Distribution, list[Evidence]]]]:
    """For one feature, which distributions carry which value."""
    values: dict[str, list[tuple[Distribution, list[Evidence]]]] = {}
    for dist in dists:
        for prop, evidence in dist.properties.items():
            if canonical_feature(prop) == feature:
                values.setdefault(prop.value, []).append((dist, evidence))
    return values


def environment_findings(env: Environment) -> Iterator[Finding]:
    yield from _ownership_findings(env)
    yield from _several_in_one_findings(env)
    yield from _mixed_findings(env)


def _evidence_label(evidence: Evidence) -> str:
    """``libblas.so.3 -> libblis4-openmp``: the record nearest the fact, and the fact."""
    near = evidence.via[-1] if evidence.via else evidence.record.split(":", 1)[-1]
    return f"{near} -> {evidence.value}"


def _several_in_one_findings(env: Environment) -> Iterator[Finding]:
    """Distributions that themselves carry several values of a coupled feature.

    Debian picks BLAS and LAPACK with two alternatives: when they name different
    providers, numpy loads both into one process. Distributions with the same values
    share one finding.
    """
    for feature, table in _policy().items():
        label = str(table.get("label", feature))
        groups: dict[tuple[str, ...], list[Distribution]] = {}
        for dist in env.distributions:
            carried = tuple(
                sorted({p.value for p in dist.properties if canonical_feature(p) == feature})
            )
            if len(carried) > 1:
                groups.setdefault(carried, []).append(dist)
        for values, dists in groups.items():
            first = dists[0]
            parts: list[str] = []
            evidence: list[Evidence] = []
            for value in values:
                found = [
                    ev
                    for prop, evs in first.properties.items()
                    if canonical_feature(prop) == feature and prop.value == value
                    for ev in evs[:1]
                ]
                evidence.extend(found)
                parts.append(f"{value} ({_evidence_label(found[0])})" if found else value)
            names = ", ".join(f"{d.name} {d.version}" for d in dists)
            verb = "loads" if len(dists) == 1 else "each load"
            yield Finding(
                cast(Severity, table.get("several", table.get("mixed", "warn"))),
                "several-" + feature.split(" :: ")[0].replace("_", "-"),
                f"{names} {verb} several {label}s into one process: {' and '.join(parts)}",
                tuple(sorted({d.name for d in dists})),
                tuple(evidence),
            )


def _ownership_findings(env: Environment) -> Iterator[Finding]:
    policy = cast("dict[str, str]", load_data("policy").get("ownership", {}))
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
                yield Finding(
                    cast(Severity, policy.get("replaced", "warn")),
                    "replaced-foreign",
                    f"{name} {version} installed by {who} was replaced by {name} "
                    f"{other.version} installed by {installer}; {record.ecosystem} "
                    f"still records its files. Reinstall {name} with {record.ecosystem}.",
                    (name,),
                )
            else:
                yield Finding(
                    cast(Severity, policy.get("shadowed", "warn")),
                    "shadowed-foreign",
                    f"{name} {other.version} installed by {installer} in {other.layer} "
                    f"sits beside {name} {version} installed by {who}; which one Python "
                    f"imports depends on sys.path order.",
                    (name,),
                )


def _mixed_findings(env: Environment) -> Iterator[Finding]:
    if env.collection:
        return
    for feature, table in _policy().items():
        values = feature_values(env.distributions, feature)
        if len(values) < 2:
            continue
        label = str(table.get("label", feature))
        parts = []
        names: list[str] = []
        evidence: list[Evidence] = []
        for value, carriers in sorted(values.items()):
            carrier_names = sorted({d.name for d, _ in carriers})
            names.extend(carrier_names)
            parts.append(f"{value} ({', '.join(carrier_names)})")
            for _, ev in carriers:
                evidence.extend(ev[:1])
        yield Finding(
            cast(Severity, table.get("mixed", "warn")),
            "mixed-" + feature.split(" :: ")[0].replace("_", "-"),
            f"several {label}s in one environment: {'; '.join(parts)}",
            tuple(sorted(set(names))),
            tuple(evidence),
        )

"""Destinations for a scan: the stable JSON document and the human table.

JSON document (``schema_version`` 1; stable: keys are only ever added)::

    {"schema_version": 1, "vbridge_version": "0.1.0",
     "environments": [{"path", "ecosystems": [...], "site_packages": [...],
        "distributions": [{"name", "version", "installer", "owner": {...} | null,
                           "dist_info", "layer", "properties": ["ns :: f :: v", ...],
                           "evidence": {"ns :: f :: v": [{"record", "field", "value",
                                                           "rule", "via"?, "source"?}]}}],
        "findings": [{"severity", "code", "message", "distributions": [...]}],
        "problems": [{"path", "problem", "hint"}]}]}
"""

from __future__ import annotations

from collections.abc import Iterable

from vbridge import __version__
from vbridge.destinations.json_text import dumps
from vbridge.model import Distribution, Environment

__all__ = ["SCHEMA_VERSION", "distribution_to_dict", "render_json", "render_table", "to_document"]

SCHEMA_VERSION = 1


def distribution_to_dict(dist: Distribution) -> dict[str, object]:
    props = sorted(dist.properties)
    return {
        "name": dist.name,
        "version": dist.version,
        "installer": dist.installer,
        "owner": dist.owner.to_dict() if dist.owner else None,
        "dist_info": str(dist.dist_info),
        "layer": dist.layer,
        "properties": [p.to_str() for p in props],
        "evidence": {p.to_str(): [e.to_dict() for e in dist.properties[p]] for p in props},
        **({"facts": dist.facts} if dist.facts else {}),
    }


def to_document(envs: Iterable[Environment]) -> dict[str, object]:
    return {
        "schema_version": SCHEMA_VERSION,
        "vbridge_version": __version__,
        "environments": [
            {
                "path": str(env.path),
                "ecosystems": env.ecosystems,
                "site_packages": [str(p) for p in env.site_packages],
                "distributions": [distribution_to_dict(d) for d in env.distributions],
                "findings": [f.to_dict() for f in env.findings],
                "problems": [
                    {"path": str(p.path), "problem": p.problem, "hint": p.hint}
                    for p in env.problems
                ],
            }
            for env in envs
        ],
    }


def render_json(envs: Iterable[Environment]) -> str:
    return dumps(to_document(envs), 2) + "\n"


def _installed_by(dist: Distribution) -> str:
    if dist.owner is not None:
        return dist.owner.ecosystem
    return dist.installer or "unknown"


def _package(dist: Distribution) -> str:
    owner = dist.owner
    if owner is None:
        return "-"
    text = f"{owner.name} {owner.version}"
    if owner.build:
        text += f" {owner.build}"
    if owner.channel:
        text = f"{owner.channel}::{text}"
    return text


def render_table(envs: Iterable[Environment]) -> str:
    """A plain-text table per environment, then its findings."""
    out: list[str] = []
    for env in envs:
        out.append(f"Environment {env.path} ({', '.join(env.ecosystems)})")
        rows = [("NAME", "VERSION", "INSTALLED BY", "PACKAGE (BUILD)", "PROPERTIES")]
        for d in sorted(env.distributions, key=lambda d: (d.name, d.layer)):
            props = ", ".join(p.to_str() for p in sorted(d.properties)) or "-"
            if d.facts.get("vbridge_metadata"):
                props += f"  [vbridge metadata: {d.facts['vbridge_metadata']}]"
            rows.append((d.name, d.version, _installed_by(d), _package(d), props))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for row in rows:
            cells = [row[i].ljust(widths[i]) for i in range(4)]
            out.append("  ".join([*cells, row[4]]).rstrip())
        if env.findings:
            out.append("")
            out.append("Findings:")
            for f in env.findings:
                out.append(f"  [{f.severity}] {f.code}: {f.message}")
        else:
            out.append("")
            out.append("Findings: none")
        if env.problems:
            out.append("")
            out.append("Skipped records:")
            for p in env.problems:
                out.append(f"  {p}")
        out.append("")
    return "\n".join(out)

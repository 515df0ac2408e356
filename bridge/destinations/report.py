"""Destinations for a scan: the stable JSON document and the human table.

JSON document (``schema_version`` 2; stable: keys are only ever added; its JSON Schema
is ``data/environment.schema.json``, shared by ``scan --json`` and ``check --json``)::

    {"schema_version": 2, "vbridge_version": "0.1.0",
     "environments": [{"path", "ecosystems": [...], "site_packages": [...],
        "distributions": [{"name", "version", "installer", "owner": {...} | null,
                           "dist_info", "layer", "active": true,
                           "shadowed_by": {"name", "version", "dist_info"} | null,
                           "import_names": [...], "properties": ["ns :: f :: v", ...],
                           "evidence": {"ns :: f :: v": [{"record", "field", "value",
                                                           "rule", "via"?, "source"?}]}}],
        "findings": [{"severity", "code", "message", "distributions": [...]}],
        "problems": [{"path", "problem", "hint"}]}]}

``check --json`` adds the verdict: ``"decision"``, ``"findings"`` (what the check
found, worst first) and ``"candidates"``.
"""

from __future__ import annotations

from collections.abc import Iterable

from vbridge import __version__
from vbridge.destinations.json_text import dumps
from vbridge.model import Distribution, Environment, Evidence, InstallRecord

__all__ = [
    "SCHEMA_VERSION",
    "distribution_to_dict",
    "only_named",
    "render_json",
    "render_table",
    "render_why",
    "to_document",
]

SCHEMA_VERSION = 2


def distribution_to_dict(dist: Distribution) -> dict[str, object]:
    properties = dist.properties
    props = sorted(properties) if len(properties) > 1 else list(properties)
    texts = [p.to_str() for p in props]
    return {
        "name": dist.name,
        "version": dist.version,
        "installer": dist.installer,
        "owner": dist.owner.to_dict() if dist.owner else None,
        "dist_info": str(dist.dist_info),
        "layer": dist.layer,
        "active": dist.active,
        "shadowed_by": (
            {
                "name": dist.shadowed_by.name,
                "version": dist.shadowed_by.version,
                "dist_info": str(dist.shadowed_by.dist_info),
            }
            if dist.shadowed_by is not None
            else None
        ),
        "import_names": list(dist.import_names),
        "properties": texts,
        "evidence": {
            text: [e.to_dict() for e in properties[p]] for text, p in zip(texts, props, strict=True)
        },
        **({"facts": dist.facts} if dist.facts else {}),
    }


def to_document(envs: Iterable[Environment]) -> dict[str, object]:
    """The JSON document of ``vbridge scan --json`` (and the base of ``check --json``)."""
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
    """The ``--json`` document's text (:func:`json.dumps` with ``indent=2``, written by
    msgspec).

    Every value of the document is one of the model's typed fields (text, flags, lists
    of text), except a distribution's ``facts``, which hold what its records said: only
    those are looked through for a float or a type :func:`json.dumps` would write
    apart (walking the whole document for it was a third of writing a 2,000-install
    Spack tree's). When one has one, :func:`dumps` looks through everything as before.
    """
    envs = list(envs)
    plain = all(_plain(d.facts) for env in envs for d in env.distributions if d.facts)
    return dumps(to_document(envs), 2, plain=plain) + "\n"


def _plain(value: object) -> bool:
    """Whether ``value`` holds only dicts, lists and tuples of text, ints, bools and
    None, each of exactly that type (what msgspec writes as json does).

    >>> _plain({"a": [1, "b", None, (True,)], "c": {"d": {}}}), _plain({"a": [1.5]})
    (True, False)
    """
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            stack.extend(item.values())  # type: ignore[attr-defined]
        elif kind is list or kind is tuple:
            stack.extend(item)  # type: ignore[arg-type]
        elif kind is not str and kind is not int and kind is not bool and item is not None:
            return False
    return True


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


def _imported(dist: Distribution) -> str:
    """``ACTIVE``, or which copy Python imports instead (``shadowed by h5py 3.12.1``)."""
    winner = dist.shadowed_by
    if winner is None:
        return "ACTIVE"
    return f"shadowed by {winner.name} {winner.version} ({_installed_by(winner)})"


def render_table(envs: Iterable[Environment]) -> str:
    """A plain-text table per environment, then its findings."""
    out: list[str] = []
    for env in envs:
        out.append(f"Environment {env.path} ({', '.join(env.ecosystems)})")
        rows = [("NAME", "VERSION", "INSTALLED BY", "IMPORTED", "PACKAGE (BUILD)", "PROPERTIES")]
        for d in sorted(env.distributions, key=lambda d: (d.name, d.layer)):
            props = ", ".join(p.to_str() for p in sorted(d.properties)) or "-"
            if d.facts.get("vbridge_metadata"):
                props += f"  [vbridge metadata: {d.facts['vbridge_metadata']}]"
            rows.append((d.name, d.version, _installed_by(d), _imported(d), _package(d), props))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        for row in rows:
            cells = [row[i].ljust(widths[i]) for i in range(5)]
            out.append("  ".join([*cells, row[5]]).rstrip())
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


def only_named(env: Environment, names: Iterable[str]) -> Environment:
    """``env`` showing only the distributions named (PEP 503 names) and the findings
    that name one of them: what ``vbridge scan NAME...`` prints."""
    import msgspec
    from vbridge.names import canonical_name

    wanted = {canonical_name(n) for n in names}
    return msgspec.structs.replace(
        env,
        distributions=[d for d in env.distributions if d.name in wanted],
        findings=[f for f in env.findings if wanted & set(f.distributions)],
    )


def _chain(dist: Distribution, evidence: Evidence, records: dict[str, InstallRecord]) -> str:
    """``numpy -> libblas 3.9.0 20_linux64_mkl``: from the distribution to the record
    that carries the fact."""
    record = records.get(evidence.record)
    last = (
        " ".join(p for p in (record.name, record.version, record.build) if p)
        if record is not None
        else evidence.record.split(":", 1)[-1]
    )
    # No via: the fact is the distribution's own record's (its owner's, or its files').
    steps = [dist.name, *evidence.via[1:-1], last] if evidence.via else [dist.name]
    return " -> ".join(steps)


def render_why(env: Environment, name: str) -> str:
    """``vbridge why NAME``: one distribution's evidence chain, as a person reads it.

    Who installed each copy, which copy Python imports, each property with the records
    that gave it, who requires it (from every ecosystem) and whether that holds.
    """
    from vbridge.decide.dependents import requirement_holds, requirements_on
    from vbridge.decide.policy import CouplingPolicy
    from vbridge.imports import active_copies
    from vbridge.names import canonical_name

    target = canonical_name(name)
    records = {r.key: r for r in env.records}
    copies = [d for d in env.distributions if d.name == target]
    out: list[str] = []
    if not copies:
        out.append(f"{target}: not installed in {env.path}")
    for dist in copies:
        out.append(f"{dist.name} {dist.version}  {dist.dist_info}")
        who = _installed_by(dist)
        if dist.owner is not None:
            record = dist.owner_record
            source = f" ({record.source})" if record is not None and record.source else ""
            out.append(f"  installed by: {who}, {_package(dist)}{source}")
        else:
            out.append(f"  installed by: {who} (its INSTALLER)")
        claimed = dist.facts.get("claimed_by")
        if isinstance(claimed, str):
            out.append(f"  recorded by {claimed}, but {who} rewrote it since: its files say")
        if dist.shadowed_by is None:
            names = ", ".join(dist.import_names) or "-"
            out.append(f"  Python imports: this copy (import names: {names})")
        else:
            w = dist.shadowed_by
            out.append(
                f"  Python imports: not this copy; {w.name} {w.version} ({_installed_by(w)}) "
                f"in {w.layer} comes first on sys.path"
            )
        if dist.properties:
            out.append("  properties:")
            for prop in sorted(dist.properties):
                for ev in dist.properties[prop]:
                    out.append(
                        f"    {prop.to_str()}: {_chain(dist, ev, records)} -> {prop.value} "
                        f"({ev.field} {ev.value}; rule {ev.rule})"
                    )
        else:
            out.append("  properties: none")
    from vbridge.sitepackages import split_metadata_dir_name

    present = {d.dist_info for d in env.distributions}
    gone = [
        r
        for r in env.records
        if r.foreign
        and any(
            split_metadata_dir_name(p.name)[0] == target and p not in present
            for p in r.python_dists
        )
    ]
    for record in gone:
        out.append(
            f"{record.ecosystem} records {record.name} {record.version}"
            f"{' ' + record.build if record.build else ''} ({record.source}), "
            "but its dist-info is gone"
        )
    policy = CouplingPolicy.load(env.path)
    active = active_copies(env.distributions).get(target)
    reqs = requirements_on(env).get(target, [])
    if reqs:
        against = f"checked against {active.version}" if active else "none installed"
        out.append(f"required by ({against}):")
        by_key = {str(d.dist_info): d for d in env.distributions}
        owned = {d.owner_record.key: d for d in env.distributions if d.owner_record is not None}
        for req in reqs:
            dep = owned.get(req.dependent) or by_key.get(req.dependent)
            who = f"{dep.name} {dep.version}" if dep is not None else req.dependent
            holds = requirement_holds(req, active, policy) if active is not None else False
            verdict = {True: "holds", False: "NOT satisfied", None: "not checked"}[holds]
            out.append(f"  {who} ({req.ecosystem}): {req.spec} [{req.kind}] - {verdict}")
    else:
        out.append("required by: nothing installed")
    related = [f for f in env.findings if target in f.distributions]
    if related:
        out.append("findings:")
        out.extend(f"  [{f.severity}] {f.code}: {f.message}" for f in related)
    return "\n".join(out) + "\n"

"""The one function that wires sources to the model: :func:`scan_environment`.

Given an environment (a prefix, or the layers an interpreter imports from), it lets
every adapter read the records that govern it, ties records to the distributions found
in site-packages, translates records into properties (rules in ``data/``) and carries
coupled properties from binary libraries to the Python distributions that depend on
them (numpy -> libblas -> mkl). It reads and builds the model, nothing more: what
vbridge decides about the environment (findings, the status of written metadata) is
:func:`vbridge.decide.assess.assess_environment`, which callers compose with it.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path

from vbridge.adapters import Adapter, find_roots
from vbridge.errors import NotAnEnvironment
from vbridge.model import (
    Distribution,
    Environment,
    Evidence,
    InstallRecord,
    Owner,
    Property,
)
from vbridge.names import canonical_name
from vbridge.rules import RuleSet
from vbridge.sitepackages import iter_metadata_dirs, layer_stat, read_installer, rewritten_by

__all__ = ["interpreter_layers", "prefix_layers", "scan_environment", "scan_python"]

_LAYER_GLOBS = (
    "lib/python*/site-packages",
    "lib64/python*/site-packages",
    "Lib/site-packages",
    "lib/python3/dist-packages",
    "usr/lib/python3/dist-packages",
    "local/lib/python*/dist-packages",
)


def prefix_layers(prefix: Path) -> list[Path]:
    """site-packages directories directly under an environment prefix.

    One directory reached twice (Debian's merged ``/usr``: ``/lib`` -> ``usr/lib``) is
    listed once, under the path without a symlink inside the prefix.
    """
    found: dict[Path, Path] = {}
    real_prefix = prefix.resolve()
    for pattern in _LAYER_GLOBS:
        for p in sorted(p for p in prefix.glob(pattern) if p.is_dir()):
            real = p.resolve()
            known = found.get(real)
            if known is None or real_prefix / known.relative_to(prefix) != real:
                found[real] = p
    return list(found.values())


# Asked under ``python -I -S`` (vbridge.interpreters): the standard library only, no
# ``site``, so no ``.pth`` file of the environment runs. The layers are those ``site``
# would add, in its order: a venv's own, the user site (unless a venv without system
# site-packages), the base interpreter's.
_LAYERS_QUESTION = r"""
import json, os, site, sys
exe_dir = os.path.dirname(os.path.abspath(sys.executable))
prefix, system_site, venv = sys.prefix, True, False
for cfg in (os.path.join(d, "pyvenv.cfg") for d in (exe_dir, os.path.dirname(exe_dir))):
    if os.path.isfile(cfg):
        prefix, system_site, venv = os.path.dirname(exe_dir), False, True
        with open(cfg, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, eq, value = line.partition("=")
                if eq and key.strip().lower() == "include-system-site-packages":
                    system_site = value.strip().lower() == "true"
        break
sys.prefix = sys.exec_prefix = prefix  # as site.venv() sets them (Debian's site reads them)
own = list(site.getsitepackages([prefix])) if venv else []
user = [site.getusersitepackages()] if system_site else []
if venv:
    base = list(site.getsitepackages([sys.base_prefix])) if system_site else []
else:
    base = list(site.getsitepackages())
layers = own + user + base
print(json.dumps({"prefix": prefix, "layers": layers}))
"""


def interpreter_layers(python: str) -> tuple[Path, list[Path]]:
    """``sys.prefix`` and the site-packages layers of an interpreter, in import order.

    The interpreter is asked in an isolated subprocess (nothing of the environment is
    imported, here or there): a venv's own layer, the user site, then its base's when it
    has ``--system-site-packages``.
    """
    from vbridge.interpreters import ask_python

    info = ask_python(python, _LAYERS_QUESTION)
    try:
        prefix = Path(str(info["prefix"]))
        entries = [str(e) for e in info["layers"]]
    except (TypeError, KeyError):
        raise NotAnEnvironment(
            f"{python}: gave an answer vbridge cannot use; pass a working --python"
        ) from None
    layers: list[Path] = []
    for entry in entries:
        path = Path(entry)
        wanted = entry.endswith(("site-packages", "dist-packages")) and path.is_dir()
        if wanted and path not in layers:
            layers.append(path)
    return prefix, layers


def scan_python(python: str, adapters: Sequence[Adapter] | None = None) -> Environment:
    """Scan the environment of an interpreter, with every layer it imports from."""
    prefix, layers = interpreter_layers(python)
    return scan_environment(prefix, layers=layers, adapters=adapters)


def scan_environment(
    path: Path,
    layers: Iterable[Path] | None = None,
    adapters: Sequence[Adapter] | None = None,
    *,
    only: Collection[Path] | None = None,
) -> Environment:
    """Scan one environment: its records, distributions and their properties.

    ``layers`` are the site-packages directories to list; by default those found under
    ``path`` and those the adapters' records know of. ``only`` (dist-info paths) gives
    properties and ``installer`` to these distributions alone, as a full scan would;
    the others are listed without them (a conda post-link script annotates one package
    of a prefix: it need not translate the rest). ``env.findings`` stays empty:
    :func:`vbridge.decide.assess.assess_environment` adds them.
    """
    path = Path(path)
    if not path.exists():
        raise NotAnEnvironment(
            f"{path}: no such directory; give a conda prefix, a venv or --python"
        )
    env = Environment(path=path)
    layer_list: list[Path] = list(layers) if layers is not None else prefix_layers(path)

    roots: dict[tuple[str, Path], Adapter] = {}
    if adapters is None:  # the shipped adapters, imported where they find a root
        roots = find_roots([path, *layer_list])
    else:
        for candidate in [path, *layer_list]:
            for adapter in adapters:
                root = adapter.find_root(candidate)
                if root is not None:
                    roots.setdefault((adapter.ECOSYSTEM, root), adapter)

    records_by_eco: dict[str, list[InstallRecord]] = {}
    adapter_of: dict[str, Adapter] = {}
    seen_as: dict[Path, os.stat_result] = {}  # the adapters' layers, by their stat
    for (ecosystem, root), adapter in roots.items():
        adapter_of.setdefault(ecosystem, adapter)
        if layers is None:  # the layers its records know of, read with them
            records, known_layers = adapter.read_records_and_layers(root, env.problems)
        else:
            records, known_layers = list(adapter.read_records(root, env.problems)), []
        if adapter.is_collection(root):
            env.collection = True
        records_by_eco.setdefault(ecosystem, []).extend(records)
        env.records.extend(records)
        # Describing adapters (wheel binaries) own nothing: they name no ecosystem.
        if ecosystem not in env.ecosystems and adapter.FOREIGN:
            env.ecosystems.append(ecosystem)
        if layers is None:
            known = set(layer_list)  # a Spack tree names hundreds of layers
            for layer in known_layers:
                if layer not in known:
                    st = layer_stat(layer)
                    if st is not None:  # a directory: listed below as it was seen here
                        known.add(layer)
                        layer_list.append(layer)
                        seen_as[layer] = st
    env.site_packages = layer_list

    owners: dict[Path, InstallRecord] = {}
    claimants: dict[Path, list[InstallRecord]] = {}
    describers: dict[Path, list[InstallRecord]] = {}
    for record in env.records:
        for dist_path in record.python_dists:
            if record.foreign:
                owners.setdefault(dist_path, record)
                claimants.setdefault(dist_path, []).append(record)
            else:
                describers.setdefault(dist_path, []).append(record)

    wanted = set(only) if only is not None else None
    for layer in layer_list:
        for meta in iter_metadata_dirs(layer, seen_as.get(layer)):
            dist = Distribution(
                name=meta.name,
                version=meta.version,
                dist_info=meta.path,
                # A scan for a few distributions reads no other INSTALLER file.
                installer=(
                    read_installer(meta.path) if wanted is None or meta.path in wanted else None
                ),
                layer=str(layer),
            )
            owner = owners.get(meta.path)
            if owner is not None and rewritten_by(owner, dist.installer) is not None:
                # Its content says another tool rewrote it after its owner recorded it
                # (pip --force-reinstall over conda's): the files are not the owner's.
                dist.facts["claimed_by"] = owner.key
                owner = None
            if owner is not None and len(claimants.get(meta.path, ())) > 1:
                dist.facts["also_claimed_by"] = [r.key for r in claimants[meta.path][1:]]
            if owner is not None:
                dist.owner = Owner.of(owner)
                dist.owner_record = owner
                facts = owner.extra.get("dist_facts")
                if isinstance(facts, Mapping):
                    dist.facts.update(facts)
            env.distributions.append(dist)

    _translate(env, records_by_eco, adapter_of, describers, wanted)
    if wanted is None:
        from vbridge.imports import resolve_active  # zipfile: not for a scan of a few dists

        resolve_active(env)
    if not env.ecosystems:
        env.ecosystems.append("pip")
    return env


def _translate(
    env: Environment,
    records_by_eco: dict[str, list[InstallRecord]],
    adapter_of: Mapping[str, Adapter],
    describers: dict[Path, list[InstallRecord]],
    only: set[Path] | None = None,
) -> None:
    """Give every distribution (or those in ``only``) the properties of its owner and
    what the owner links."""
    dists = [d for d in env.distributions if only is None or d.dist_info in only]
    for ecosystem, records in records_by_eco.items():
        adapter = adapter_of[ecosystem]
        rules = adapter.ruleset()
        links = _Links(records, rules.stop_at, adapter)
        own = _OwnProperties(rules, dict(links.keyed))
        # conda metapackages (numpy -> numpy-base): the dist is owned by the base, but
        # the build is chosen by the metapackage that pins it. A record whose exact
        # dependencies are known (``requires``) pins nothing by name.
        pinned_by: dict[str, list[InstallRecord]] = {}
        for record in records if rules.metapackages_pin else ():
            if not record.python_dists and record.requires is None:
                for dep in record.depends:
                    for name in adapter.dependency_names(dep):
                        pinned_by.setdefault(name.lower(), []).append(record)
        # A full scan walks from hundreds of owners through the same graph: records
        # that lead to no record with properties (the C libraries under Python) are
        # left out of every walk, which finds the same properties through the same
        # first paths (a record on the way to one leads to it, so is kept).
        # Worked out when a distribution of this ecosystem first needs a walk (never
        # for describing records such as wheels': they own nothing, and working out
        # their properties reads their binaries).
        walks: list[tuple[Distribution, list[tuple[InstallRecord, tuple[str, ...]]]]] = []
        for dist in dists:
            owner = dist.owner_record
            if owner is None or owner.ecosystem != ecosystem:
                continue
            starts: list[tuple[InstallRecord, tuple[str, ...]]] = [(owner, (owner.name,))]
            starts += [
                (r, (owner.name, r.name))
                for r in pinned_by.get(owner.name.lower(), [])
                if r.name != owner.name
            ]
            walks.append((dist, starts))
        leading: set[str] | None = None
        if walks and only is None:
            leading = _leading_to_properties(
                own, links, [r for _, starts in walks for r, _ in starts]
            )
        walked: _Links | _WithinLeading = links
        if leading is not None:
            walked = _WithinLeading(links, leading)
        for dist, starts in walks:
            if leading is not None:
                starts = [(r, chain) for r, chain in starts if r.key in leading]
            for prop, evidence in _closure(starts, own, walked):
                dist.add(prop, evidence)
    for dist in dists:
        if dist.owner_record is not None:
            continue  # its owner's records say what it is: its binaries need not be read
        for record in describers.get(dist.dist_info, []):
            rules = adapter_of[record.ecosystem].ruleset()
            for prop, evidence in rules.record_properties(record):
                dist.add(prop, evidence)
            dist.facts.update({k: v for k, v in record.extra.items() if v not in ([], "")})


class _OwnProperties:
    """Each record's own properties, by record key, worked out when the closure first
    reaches the record (a scan limited to a few distributions reaches few records)."""

    def __init__(self, rules: RuleSet, records: dict[str, InstallRecord]) -> None:
        self._rules = rules
        self._records = records
        # What get() worked out, by key (read directly by the walks).
        self.found: dict[str, list[tuple[Property, Evidence]]] = {}

    def get(self, key: str) -> list[tuple[Property, Evidence]] | None:
        found = self.found.get(key)
        if found is None:
            record = self._records.get(key)
            if record is None:
                return None
            found = self.found[key] = self._rules.record_properties(record)
        return found


class _Links:
    """The dependency edges of one ecosystem's records, each resolved once.

    A record's ``requires`` (exact record keys) are followed when it has them; otherwise
    its ``depends`` are resolved by name. Edges into ``stop_at`` packages, and into other
    foreign Python distributions (they carry their own properties), are left out.
    Records are known by their keys (no ``id()``: with an audit hook installed, as
    :mod:`vbridge.scan_cache` does, every ``id()`` call runs it).
    """

    def __init__(
        self, records: list[InstallRecord], stop_at: frozenset[str], adapter: Adapter
    ) -> None:
        self.stop_at = stop_at
        self._adapter = adapter
        self.keyed: list[tuple[str, InstallRecord]] = []
        self.by_name: dict[str, tuple[InstallRecord, str]] = {}
        self.by_key: dict[str, InstallRecord] = {}
        for record in records:
            key = record.key
            self.keyed.append((key, record))
            self.by_key.setdefault(key, record)
            self.by_name.setdefault(record.name.lower(), (record, key))
            self.by_name.setdefault(canonical_name(record.name), (record, key))
        # By key, for the record by_key holds (another record of the same key, which
        # only a damaged prefix has, has its edges worked out each time).
        self.known_edges: dict[str, list[tuple[InstallRecord, str]]] = {}
        self.keys_unique = len(self.by_key) == len(self.keyed)
        # The records a dependency spec's text names (a prefix's records repeat the same
        # few hundred specs: `python >=3.11,<3.12.0a0` in every Python package's).
        self._targets_of_spec: dict[str, list[tuple[InstallRecord, str]]] = {}

    def edges(self, record: InstallRecord, key: str) -> list[tuple[InstallRecord, str]]:
        """``(target, target key)`` for every dependency the closure walks into from
        ``record`` (whose key is ``key``)."""
        known = self.by_key.get(key) is record
        found = self.known_edges.get(key) if known else None
        if found is None:
            found = [
                (target, target_key)
                for target, target_key in self._dependencies(record)
                if target.name.lower() not in self.stop_at
                and not (target.python_dists and target.foreign)
            ]
            if known:
                self.known_edges[key] = found
        return found

    def _dependencies(self, record: InstallRecord) -> list[tuple[InstallRecord, str]]:
        if record.requires is not None:
            return [(self.by_key[k], k) for k in record.requires if k in self.by_key]
        targets: list[tuple[InstallRecord, str]] = []
        known = self._targets_of_spec
        for dep in record.depends:
            found = known.get(dep)
            if found is None:
                found = known[dep] = [
                    target
                    for name in self._adapter.dependency_names(dep)
                    if (target := self.by_name.get(name.lower())) is not None
                ]
            targets += found
        return targets


class _WithinLeading:
    """The edges of ``links`` into the records that lead to properties
    (:func:`_leading_to_properties`), each record's worked out once: the walks of a full
    scan go through the same few hundred records again and again."""

    def __init__(self, links: _Links, leading: set[str]) -> None:
        self._links = links
        self._leading = leading
        self.known_edges: dict[str, list[tuple[InstallRecord, str]]] = {}
        self.keys_unique = links.keys_unique

    def edges(self, record: InstallRecord, key: str) -> list[tuple[InstallRecord, str]]:
        found = self.known_edges.get(key)
        if found is None:
            found = [(t, k) for t, k in self._links.edges(record, key) if k in self._leading]
            if self._links.by_key.get(key) is record:  # as _Links.edges keeps its own
                self.known_edges[key] = found
        return found


def _leading_to_properties(
    own: _OwnProperties, links: _Links, starts: list[InstallRecord]
) -> set[str]:
    """The keys of the records that carry properties or depend, directly or not, on
    one that does (along the edges :func:`_closure` walks), among the records the walks
    from ``starts`` can reach (the walks never see the others: 3,000 Debian packages
    hold ~150 Python owners, whose walks reach a few hundred). Records are known by
    key; when two records share one (a damaged prefix), every record is looked at."""
    dependents: dict[str, list[str]] = {}
    found: list[str] = []
    if len(links.by_key) != len(links.keyed):
        reachable = links.keyed
    else:
        reachable = []
        seen: set[str] = set()
        stack = [(r, r.key) for r in starts]
        while stack:
            record, key = stack.pop()
            if key in seen:
                continue
            seen.add(key)
            reachable.append((key, record))
            stack.extend(
                (target, target_key)
                for target, target_key in links.edges(record, key)
                if target_key not in seen
            )
    for key, record in reachable:
        if own.get(key):
            found.append(key)
        for _, target_key in links.edges(record, key):
            dependents.setdefault(target_key, []).append(key)
    leading = set(found)
    while found:
        for key in dependents.get(found.pop(), ()):
            if key not in leading:
                leading.add(key)
                found.append(key)
    return leading


def _closure(
    starts: list[tuple[InstallRecord, tuple[str, ...]]],
    own: _OwnProperties,
    links: _Links | _WithinLeading,
) -> list[tuple[Property, Evidence]]:
    """Properties reachable through dependencies, nearest record first per feature.

    Breadth first; a record is reached through the first path that reaches it (the
    ``via`` chain of its evidence), which is only spelt out for records that carry
    properties. Through :class:`_WithinLeading` links, records that lead to no
    property are not walked into.
    """
    result: list[tuple[Property, Evidence]] = []
    depth_of_feature: dict[tuple[str, str], int] = {}
    depth: dict[str, int] = {}
    parent: dict[str, str] = {}
    name_of: dict[str, str] = {}
    start_chain: dict[str, tuple[str, ...]] = {}
    queue: deque[tuple[InstallRecord, str]] = deque()
    for record, chain in starts:
        key = record.key
        if key not in depth:
            depth[key] = len(chain)
            start_chain[key] = chain
            queue.append((record, key))
    # Walked ~35 records per distribution, 250 distributions a prefix: the lookups
    # each step repeats are bound once (what was worked out is read from the dicts
    # that keep it; a record not worked out yet goes through the method).
    known_properties = own.found
    properties_of = own.get
    # (Two records of one key, only in a damaged prefix: each record's edges asked for.)
    known_edges = links.known_edges if links.keys_unique else {}
    edges_of = links.edges
    popleft, append = queue.popleft, queue.append
    while queue:
        record, key = popleft()
        reached = depth[key]
        found = known_properties.get(key)
        if found is None:
            found = properties_of(key)
        if found:
            via: tuple[str, ...] | None = None
            for prop, evidence in found:
                feature = (prop.namespace, prop.feature)
                best = depth_of_feature.setdefault(feature, reached)
                if reached > best:
                    continue
                if via is None:
                    chain = _chain(key, parent, name_of, start_chain)
                    via = chain if len(chain) > 1 else ()
                result.append((prop, _with_via(evidence, via)))
        targets = known_edges.get(key)
        if targets is None:
            targets = edges_of(record, key)
        for target, target_key in targets:
            if target_key not in depth:
                depth[target_key] = reached + 1
                parent[target_key] = key
                name_of[target_key] = target.name
                append((target, target_key))
    return result


def _chain(
    key: str,
    parent: dict[str, str],
    name_of: dict[str, str],
    start_chain: dict[str, tuple[str, ...]],
) -> tuple[str, ...]:
    """Package names from the distribution's owner to the record ``key``."""
    names: list[str] = []
    while key not in start_chain:
        names.append(name_of[key])
        key = parent[key]
    return start_chain[key] + tuple(reversed(names))


def _with_via(evidence: Evidence, via: tuple[str, ...]) -> Evidence:
    if not via:
        return evidence
    return Evidence(
        evidence.record, evidence.field, evidence.value, evidence.rule, via, evidence.source
    )

"""``*.dist-info/sboms/vbridge.cdx.json``: where an installed distribution came from.

A CycloneDX 1.6 JSON document at the PEP 770 location. The distribution is the main
component (``pkg:pypi/numpy@1.26.4``); the other components are the foreign package that
installed it (``pkg:conda/numpy@1.26.4?build=...&channel=...&subdir=linux-64``) and the
binary providers behind each variant property (libblas, openmpi, ...), each with the
record file it was read from and the field, value and rule that gave the property.
This is the provenance that PEP 825 keeps out of ``variant.json``.

The document has no timestamp or serial number and every list is sorted, so the same
environment always gives the same bytes (annotate twice changes nothing). Paths are
relative to the environment root.

>>> from vbridge.model import InstallRecord
>>> purl_of(InstallRecord("conda", "libblas", "3.9.0", "20_linux64_mkl",
...                       channel="conda-forge", subdir="linux-64"))
'pkg:conda/libblas@3.9.0?build=20_linux64_mkl&channel=conda-forge&subdir=linux-64'
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vbridge import __version__
from vbridge.destinations.json_text import dumps
from vbridge.destinations.variant_json import variant_description
from vbridge.model import Distribution, Evidence, InstallRecord
from vbridge.rules import dependency_names, load_data

__all__ = ["SBOM_PATH", "purl_of", "pypi_purl", "sbom_document", "sbom_text"]

SBOM_PATH = "sboms/vbridge.cdx.json"
_SPEC_VERSION = "1.6"


def _field(record: InstallRecord, name: str) -> str | None:
    if name.startswith("extra."):
        value = record.extra.get(name[len("extra.") :])
    else:
        value = getattr(record, name, None)
    return str(value) if value not in (None, "") else None


def purl_of(record: InstallRecord) -> str:
    """The package URL of an install record, as ``data/annotate.toml`` spells it."""
    table: dict[str, Any] = load_data("annotate").get("purl", {})
    spec = table.get(record.ecosystem) or table.get("default") or {"type": "generic"}
    qualifiers = {
        key: value
        for key, field in dict(spec.get("qualifiers", {})).items()
        if (value := _field(record, str(field))) is not None
    }
    namespace = spec.get("namespace")
    if spec.get("type") == "generic" and not namespace:
        namespace = record.ecosystem
    return package_url(str(spec["type"]), namespace, record.name, record.version, qualifiers)


def pypi_purl(dist: Distribution) -> str:
    """``pkg:pypi/<name>@<version>`` for an installed distribution."""
    return package_url("pypi", None, dist.name, dist.version, {})


# The package URL types purl_of can give (data/annotate.toml), and which of them spell
# the name in lower case (packageurl's normalisation; pypi also turns "_" into "-").
_PLAIN_TYPES = frozenset({"conda", "deb", "generic", "pypi"})
# The characters a plain component is made of: those packageurl-python's quoting
# leaves as they are (urllib's unreserved characters, "/" and ":"), and "+", which it
# writes as "%2B". A component with anything else (a space, "%", "@", "?", "#",
# non-ASCII...) is left to packageurl-python.
_PLAIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~/:+")
_KEY_START = frozenset("abcdefghijklmnopqrstuvwxyz")
_KEY = _KEY_START | frozenset("0123456789._-")  # a qualifier key packageurl keeps as is


def _plain(text: str) -> bool:
    return (
        bool(text) and set(text) <= _PLAIN and not text.startswith("/") and not text.endswith("/")
    )


def package_url(
    kind: str,
    namespace: str | None,
    name: str,
    version: str | None,
    qualifiers: Mapping[str, str],
) -> str:
    """``str(PackageURL(kind, namespace, name, version or None, qualifiers or None))``.

    The components vbridge writes (record names, versions, builds, channels, subdirs)
    are spelt with plain characters, for which packageurl-python's text is put together
    here without importing it (it and its dataclasses and enum are ~5 ms of each conda
    post-link hook); anything else is given to packageurl-python.
    tests/test_sbom.py compares both on every fixture record and generated components.
    """
    values = [v for v in qualifiers.values() if v]
    if (
        kind in _PLAIN_TYPES
        and _plain(name)
        and (not version or _plain(version))
        and (not namespace or (_plain(namespace) and "//" not in namespace))
        and all(_plain(v) for v in values)
        and all(k and k[0] in _KEY_START and set(k) <= _KEY for k in qualifiers)
    ):
        name = name.replace("+", "%2B")
        if kind == "pypi":  # lower case after quoting the name, before the namespace
            name = name.lower().replace("_", "-")
            namespace = namespace.lower() if namespace else namespace
        parts = ["pkg:", kind, "/"]
        if namespace:
            parts += [namespace.replace("+", "%2B"), "/"]
        parts.append(name)
        if version:
            parts += ["@", version.replace("+", "%2B")]
        pairs = sorted((k, v) for k, v in qualifiers.items() if v)
        if pairs:
            parts += ["?", "&".join(f"{k}={v.replace('+', '%2B')}" for k, v in pairs)]
        return "".join(parts)
    from packageurl import PackageURL

    return str(
        PackageURL(
            type=kind,
            namespace=namespace,
            name=name,
            version=version or None,
            qualifiers=dict(qualifiers) or None,
        ).to_string()
    )


def _relative(source: str | Path | None, root: Path) -> str | None:
    if source is None:
        return None
    path = Path(source)
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return os.fspath(path)


def _evidence_text(evidence: Evidence) -> str:
    text = f"{evidence.field} = {evidence.value} (rule {evidence.rule}"
    if evidence.via:
        text += f"; via {' -> '.join(evidence.via)}"
    return text + ")"


def _prop(name: str, value: str) -> dict[str, str]:
    return {"name": f"vbridge:{name}", "value": value}


def sbom_document(
    dist: Distribution, records: Mapping[str, InstallRecord], root: Path
) -> dict[str, Any]:
    """The CycloneDX document for ``dist``; ``records`` maps record keys to records."""
    main_ref = pypi_purl(dist)
    desc = variant_description(dist.properties)
    main_props = [_prop("variant-label", desc.label)]
    main_props += [_prop("variant-property", p.to_str()) for p in desc.properties]

    components: dict[str, dict[str, Any]] = {}
    component_props: dict[str, list[dict[str, str]]] = {}

    def component_for(key: str, record: InstallRecord | None) -> str:
        if record is None:
            ecosystem, _, ident = key.partition(":")
            ref = f"vbridge-record:{key}"
            components.setdefault(ref, {"type": "library", "bom-ref": ref, "name": ident})
            component_props.setdefault(ref, [_prop("ecosystem", ecosystem)])
            return ref
        ref = purl_of(record)
        if ref not in components:
            component: dict[str, Any] = {
                "type": "library",
                "bom-ref": ref,
                "name": record.name,
                "purl": ref,
            }
            if record.version:
                component["version"] = record.version
            location = _relative(record.source, root)
            if location:
                component["evidence"] = {"occurrences": [{"location": location}]}
            components[ref] = component
            component_props[ref] = [_prop("ecosystem", record.ecosystem)]
        return ref

    by_name = {(r.ecosystem, r.name.lower()): r for r in records.values()}

    def linked_record(evidence: Evidence) -> InstallRecord | None:
        """The package a ``depends`` fact names (mpi4py's ``openmpi >=4.1``)."""
        if evidence.field != "depends":
            return None
        ecosystem = evidence.record.partition(":")[0]
        for name in dependency_names(evidence.value):
            found = by_name.get((ecosystem, name.lower()))
            if found is not None:
                return found
        return None

    owner_ref: str | None = None
    if dist.owner_record is not None:
        owner_ref = component_for(dist.owner_record.key, dist.owner_record)
        component_props[owner_ref].append(_prop("role", "installer"))
    provider_refs: set[str] = set()
    for prop in sorted(dist.properties):
        for evidence in dist.properties[prop]:
            ref = component_for(evidence.record, records.get(evidence.record))
            if ref != owner_ref:
                provider_refs.add(ref)
            component_props[ref].append(_prop("provides", prop.to_str()))
            component_props[ref].append(
                _prop("evidence", f"{prop.to_str()}: {_evidence_text(evidence)}")
            )
            linked = linked_record(evidence)
            if linked is not None:
                ref = component_for(linked.key, linked)
                provider_refs.add(ref)
                component_props[ref].append(_prop("provides", prop.to_str()))
                component_props[ref].append(
                    _prop(
                        "evidence",
                        f"{prop.to_str()}: {evidence.record} depends on {evidence.value} "
                        f"(rule {evidence.rule})",
                    )
                )
    for ref in provider_refs:
        component_props[ref].append(_prop("role", "provider"))
    for ref, component in components.items():
        unique = {(p["name"], p["value"]): p for p in component_props[ref]}
        component["properties"] = [unique[k] for k in sorted(unique)]

    dependencies: list[dict[str, Any]] = []
    if owner_ref is not None:
        dependencies.append({"ref": main_ref, "dependsOn": [owner_ref]})
        dependencies.append({"ref": owner_ref, "dependsOn": sorted(provider_refs)})
    else:
        dependencies.append({"ref": main_ref, "dependsOn": sorted(provider_refs)})
    dependencies += [{"ref": ref, "dependsOn": []} for ref in sorted(provider_refs)]

    return {
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": _SPEC_VERSION,
        "version": 1,
        "metadata": {
            "tools": {
                "components": [
                    {
                        "type": "application",
                        "name": "vbridge",
                        "version": __version__,
                        "purl": f"pkg:pypi/vbridge@{__version__}",
                    }
                ]
            },
            "component": {
                "type": "library",
                "bom-ref": main_ref,
                "name": dist.name,
                "version": dist.version,
                "purl": main_ref,
                "properties": sorted(main_props, key=lambda p: (p["name"], p["value"])),
            },
        },
        "components": [components[ref] for ref in sorted(components)],
        "dependencies": dependencies,
    }


def sbom_text(dist: Distribution, records: Mapping[str, InstallRecord], root: Path) -> str:
    """The SBOM as written to disk: sorted keys, two-space indent, final newline."""
    document = sbom_document(dist, records, root)
    return dumps(document, indent=2, sort_keys=True, ensure_ascii=True) + "\n"

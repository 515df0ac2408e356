"""``*.dist-info/variant.json``: the variant of an installed distribution.

Two layouts, one variant each, keyed by its label (variantlib's default: the first 8
hex digits of the SHA-256 of the sorted properties):

- ``providers`` (the default): what the tools that parse ``variant.json`` read today.
  variantlib's ``VariantDistInfo`` (and the wheelnext pip fork's ``pip check`` path,
  which reads every installed ``variant.json`` with variantlib's ``VariantsJson``)
  follows the providers draft (wheelnext/peps pull request #40, schema 0.2.0) and
  requires a ``providers`` table naming every namespace. The variant
  (:class:`Variant`) is variantlib's ``VariantDescription`` without variantlib (its
  sorted properties, its label, its ``to_dict``: a writer need not import it); the
  bytes are those of variantlib's writer (``VariantDistInfo.to_str``), both checked
  against variantlib in tests. Who answers for each namespace is
  data (``data/variant_plugins.toml``): a provider published on the package index
  (``x86_64``: ``provider-variant-x86-64``), vbridge's own plugins
  (``vbridge.variant_plugin:<namespace>``), or the installed values as
  ``static-properties``.
- ``pep825-0.1.1``: PEP 825's format 0.1.1 exactly (``$schema``,
  ``default-priorities``, ``variants``, nothing else). Valid against PEP 825's schema,
  rejected by variantlib; chosen with ``vbridge annotate --variant-json pep825-0.1.1``
  and kept by later runs while the file stays in that layout.

Nothing else goes in (provenance lives in the SBOM).

>>> from vbridge.model import Property
>>> text = variant_json_text([Property.from_str("blas_lapack :: provider :: mkl")])
>>> print(text, end="")
{
    "$schema": "https://variants-schema.wheelnext.dev/v0.2.0.json",
    "default-priorities": {
        "namespace": [
            "blas_lapack"
        ]
    },
    "providers": {
        "blas_lapack": {
            "plugin-api": "vbridge.variant_plugin:blas_lapack",
            "requires": [
                "vbridge"
            ]
        }
    },
    "variants": {
        "dbddea81": {
            "blas_lapack": {
                "provider": [
                    "mkl"
                ]
            }
        }
    }
}
>>> [p.to_str() for p in read_variant_json(text).properties]
['blas_lapack :: provider :: mkl']
>>> layout_of(variant_json_text([Property.from_str("mpi :: implementation :: openmpi")],
...                             layout="pep825-0.1.1"))
'pep825-0.1.1'
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal, cast, get_args

import msgspec
from vbridge.destinations.json_text import dumps
from vbridge.model import Property

if TYPE_CHECKING:
    from variantlib.models.variant import VariantDescription

__all__ = [
    "LAYOUTS",
    "SCHEMA_URL",
    "STRICT_SCHEMA_URL",
    "VARIANT_JSON",
    "Layout",
    "ProviderEntry",
    "layout_of",
    "provider_entries",
    "read_variant_json",
    "variant_description",
    "variant_json_text",
]

VARIANT_JSON = "variant.json"
Layout = Literal["providers", "pep825-0.1.1"]
LAYOUTS: tuple[Layout, ...] = get_args(Layout)
SCHEMA_URL = "https://variants-schema.wheelnext.dev/v0.2.0.json"  # variantlib's writer
STRICT_SCHEMA_URL = "https://variants-schema.wheelnext.dev/peps/825/v0.1.1.json"
_SCHEMA_MAJOR_0 = r"/v0\.\d+\.\d+\.json$"  # compiled where a variant.json is read
# {"requires": [...], "plugin-api": "..."} or {"static-properties": {feature: [values]}}
ProviderEntry = dict[str, object]


NULL_LABEL = "null"  # the label of a variant without properties (variantlib's)
_LABEL_DIGITS = 8


class Variant(msgspec.Struct, frozen=True):
    """The variant of a distribution: its distinct properties, sorted, and its label
    (the first 8 hex digits of the SHA-256 of the properties' text, one per line, as
    variantlib's ``VariantDescription`` computes it; ``null`` without properties)."""

    properties: tuple[Property, ...]
    label: str

    def is_null_variant(self) -> bool:
        return not self.properties

    def to_dict(self) -> dict[str, dict[str, list[str]]]:
        """``{namespace: {feature: [values]}}`` in property order (variantlib's
        ``VariantDescription.to_dict``)."""
        out: dict[str, dict[str, list[str]]] = {}
        for prop in self.properties:
            out.setdefault(prop.namespace, {}).setdefault(prop.feature, []).append(prop.value)
        return out


def variant_description(properties: Iterable[Property]) -> Variant:
    """The variant of a distribution with these properties, labelled by its hash."""
    ordered = tuple(sorted(set(properties)))
    if not ordered:
        return Variant(ordered, NULL_LABEL)
    from vbridge.safefs import sha256_hex  # a writer's: a scan writes no variant.json

    digest = sha256_hex("".join(f"{p.to_str()}\n" for p in ordered).encode())
    return Variant(ordered, digest[:_LABEL_DIGITS])


def _packed(desc: Variant) -> dict[str, dict[str, list[str]]]:
    variants: dict[str, dict[str, list[str]]] = {}
    for prop in desc.properties:
        values = variants.setdefault(prop.namespace, {}).setdefault(prop.feature, [])
        if prop.value not in values:
            values.append(prop.value)
    for features in variants.values():
        for values in features.values():
            values.sort()
    return variants


def provider_entries(desc: Variant) -> dict[str, ProviderEntry]:
    """Who answers for each namespace of ``desc`` (``data/variant_plugins.toml``).

    >>> from vbridge.model import Property
    >>> desc = variant_description([
    ...     Property.from_str("x86_64 :: level :: v3"),
    ...     Property.from_str("nvidia :: cuda_version_lower_bound :: 12.0"),
    ... ])
    >>> provider_entries(desc)["x86_64"]["requires"]
    ['provider-variant-x86-64>=0.0.1']
    >>> provider_entries(desc)["nvidia"]
    {'static-properties': {'cuda_version_lower_bound': ['12.0']}}
    """
    from vbridge.rules import load_data

    data = load_data("variant_plugins")
    published = cast("dict[str, dict[str, object]]", data.get("providers", {}))
    served = cast("dict[str, object]", data.get("namespaces", {}))
    ours = cast("dict[str, object]", data.get("vbridge_provider", {}))
    out: dict[str, ProviderEntry] = {}
    for namespace, features in _packed(desc).items():
        if namespace in published:
            out[namespace] = dict(published[namespace])
        elif namespace in served:
            out[namespace] = {
                "requires": list(cast("list[str]", ours.get("requires", ["vbridge"]))),
                "plugin-api": f"{ours.get('plugin_api_module', 'vbridge.variant_plugin')}"
                f":{namespace}",
            }
        else:
            out[namespace] = {"static-properties": features}
    return out


def _providers_text(desc: Variant) -> str:
    # variantlib's writer is ``VariantDistInfo.to_str()``: json.dumps(indent=4,
    # sort_keys=True) of $schema, default-priorities, providers (requires, plugin-api,
    # static-properties) and variants (``VariantDescription.to_dict()``). Importing it
    # imports packaging.requirements (~100 ms), too much for the conda post-link hook
    # that writes these files, so the same document is built here from the Variant
    # (variantlib's VariantDescription, without it); tests/test_variant_json.py checks
    # that VariantDistInfo parses every file vbridge writes and that its to_str() gives
    # the same bytes back.
    providers = provider_entries(desc)
    for namespace, entry in providers.items():
        # ProviderInfo's rule: exactly one of requires / static-properties.
        if ("requires" in entry) == ("static-properties" in entry):
            raise ValueError(f"provider of {namespace!r}: give requires or static-properties")
    document = {
        "$schema": SCHEMA_URL,
        "default-priorities": {"namespace": sorted(providers)},
        "providers": providers,
        "variants": {desc.label: desc.to_dict()},
    }
    return dumps(document, indent=4, sort_keys=True) + "\n"


def _strict_text(desc: Variant) -> str:
    variants = _packed(desc)
    document = {
        "$schema": STRICT_SCHEMA_URL,
        "default-priorities": {"namespace": sorted(variants)},
        "variants": {desc.label: variants},
    }
    return dumps(document, indent=2, sort_keys=True, ensure_ascii=True) + "\n"


def variant_json_text(properties: Iterable[Property], layout: Layout = "providers") -> str:
    """The ``variant.json`` text for these properties (deterministic, sorted)."""
    desc = variant_description(properties)
    if desc.is_null_variant():
        raise ValueError("a distribution without properties gets no variant.json")
    if layout == "pep825-0.1.1":
        return _strict_text(desc)
    if layout != "providers":
        raise ValueError(f"unknown variant.json layout {layout!r}; use one of {LAYOUTS}")
    return _providers_text(desc)


def layout_of(text: str | bytes) -> Layout | None:
    """The layout of a ``variant.json`` vbridge may have written, or None."""
    import json  # a variant.json is read as installers read it (json.loads)

    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    schema = data.get("$schema")
    if schema == STRICT_SCHEMA_URL and "providers" not in data:
        return "pep825-0.1.1"
    if isinstance(schema, str) and "providers" in data:
        return "providers"
    return None


def read_variant_json(text: str | bytes) -> VariantDescription:
    """Parse an installed ``variant.json`` (format 0.x) into variantlib's model.

    A file with ``providers`` is read by variantlib's ``VariantDistInfo``, as installers
    read it. A PEP 825 0.1.1 file (no ``providers``, which variantlib rejects) is checked
    for what PEP 825 asks of a reader: a known major format version, exactly one
    variant, every namespace listed in ``default-priorities``.
    Raises ``ValueError`` with the reason.
    """
    import json

    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    schema = data.get("$schema")
    if not isinstance(schema, str) or not re.search(_SCHEMA_MAJOR_0, schema):
        raise ValueError(f"unknown variant metadata format {schema!r}")
    if "providers" in data:
        from variantlib.variant_dist_info import VariantDistInfo

        try:
            parsed: VariantDescription = VariantDistInfo(
                text if isinstance(text, str) else text.decode("utf-8")
            ).variant_desc
        except Exception as exc:  # variantlib raises its own ValidationError types
            raise ValueError(f"variantlib rejects it: {exc}") from exc
        return parsed
    variants = data.get("variants")
    if not isinstance(variants, dict) or len(variants) != 1:
        raise ValueError("expected exactly one entry in 'variants'")
    ((label, packed),) = variants.items()
    if not isinstance(packed, dict):
        raise ValueError(f"variant {label!r} is not an object")
    from variantlib.models.variant import VariantDescription

    try:
        desc: VariantDescription = VariantDescription.from_dict(packed, label=label)
    except Exception as exc:  # variantlib raises its own ValidationError types
        raise ValueError(f"variant {label!r}: {exc}") from exc
    priorities = data.get("default-priorities", {})
    listed = priorities.get("namespace", []) if isinstance(priorities, dict) else []
    missing = sorted({p.namespace for p in desc.properties} - set(listed))
    if missing:
        raise ValueError(f"namespaces {missing} missing from default-priorities.namespace")
    return desc

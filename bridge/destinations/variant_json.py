"""``*.dist-info/variant.json``: PEP 825 variant metadata, format 0.1.1.

An installed distribution gets exactly one variant, keyed by its label (variantlib's
default: the first 8 hex digits of the SHA-256 of the sorted properties). Values are
sorted lists; ``default-priorities.namespace`` lists every namespace used. Nothing else
goes in (the schema forbids other keys; provenance lives in the SBOM).

>>> from vbridge.model import Property
>>> text = variant_json_text([Property.from_str("blas_lapack :: provider :: mkl")])
>>> print(text, end="")
{
  "$schema": "https://variants-schema.wheelnext.dev/peps/825/v0.1.1.json",
  "default-priorities": {
    "namespace": [
      "blas_lapack"
    ]
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
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from variantlib.models.variant import VariantDescription
from vbridge.model import Property

__all__ = [
    "SCHEMA_URL",
    "VARIANT_JSON",
    "read_variant_json",
    "variant_description",
    "variant_json_text",
]

VARIANT_JSON = "variant.json"
SCHEMA_URL = "https://variants-schema.wheelnext.dev/peps/825/v0.1.1.json"
_SCHEMA_MAJOR_0 = re.compile(r"/v0\.\d+\.\d+\.json$")


def variant_description(properties: Iterable[Property]) -> VariantDescription:
    """The variant of a distribution with these properties, labelled by its hash."""
    return VariantDescription(sorted(set(properties)))


def variant_json_text(properties: Iterable[Property]) -> str:
    """The ``variant.json`` text for these properties (deterministic, sorted)."""
    desc = variant_description(properties)
    if desc.is_null_variant():
        raise ValueError("a distribution without properties gets no variant.json")
    variants: dict[str, dict[str, list[str]]] = {}
    for prop in desc.properties:
        values = variants.setdefault(prop.namespace, {}).setdefault(prop.feature, [])
        if prop.value not in values:
            values.append(prop.value)
    for features in variants.values():
        for values in features.values():
            values.sort()
    document = {
        "$schema": SCHEMA_URL,
        "default-priorities": {"namespace": sorted(variants)},
        "variants": {desc.label: variants},
    }
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=True) + "\n"


def read_variant_json(text: str | bytes) -> VariantDescription:
    """Parse an installed ``variant.json`` (format 0.x) into variantlib's model.

    Checks what PEP 825 asks of a reader: a known major format version, exactly one
    variant, every namespace listed in ``default-priorities``. variantlib 0.2.2's own
    ``VariantDistInfo`` implements the later providers draft (PEP 850, schema 0.2.0),
    which requires a ``providers`` table the 0.1.1 schema forbids, so the variant is
    read with variantlib's :class:`VariantDescription` directly.
    Raises ``ValueError`` with the reason.
    """
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    schema = data.get("$schema")
    if not isinstance(schema, str) or not _SCHEMA_MAJOR_0.search(schema):
        raise ValueError(f"unknown variant metadata format {schema!r}")
    variants = data.get("variants")
    if not isinstance(variants, dict) or len(variants) != 1:
        raise ValueError("expected exactly one entry in 'variants'")
    ((label, packed),) = variants.items()
    if not isinstance(packed, dict):
        raise ValueError(f"variant {label!r} is not an object")
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

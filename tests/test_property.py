"""vbridge's :class:`~vbridge.model.Property` against variantlib's ``VariantProperty``.

A scan builds properties without importing variantlib (its models cost ~10 ms of every
start); the destinations convert them to variantlib's where a ``variant.json`` is
written. Both must then accept the same texts, print them the same way and sort them
in the same order, or the label (a hash of the sorted properties) and the files would
change. Checked here on every property the shipped rules can give and on texts that
break PEP 825's grammar.
"""

from __future__ import annotations

import itertools
import re
from importlib import resources

import pytest
from variantlib.models.variant import VariantDescription, VariantProperty
from vbridge.destinations.variant_json import variant_description
from vbridge.model import Property
from vbridge.rules import load_data


def _shipped_property_texts() -> list[str]:
    """Every property text of data/*.toml: fixed ones, and templates of one placeholder
    filled with each of their renames that is a whole part (``{value}``, ``{abi}``)."""
    texts: set[str] = set()
    for entry in resources.files("vbridge.data").iterdir():
        if not entry.name.endswith(".toml"):
            continue
        for rule in load_data(entry.name.removesuffix(".toml")).get("rules", []):
            template = str(rule.get("property", ""))
            if "{" not in template:
                texts.add(template)
                continue
            names = re.findall(r"\{(\w+)\}", template)
            for value in rule.get("values", {}).values():
                text = template.format(**{names[0]: value}) if len(names) == 1 else ""
                if text.count("::") == 2:
                    texts.add(text)
    texts.discard("")
    return sorted(texts)


SHIPPED = _shipped_property_texts()
MALFORMED = [
    "blas_lapack :: provider :: MKL",  # upper case
    "blas_lapack :: provider",  # two parts
    "blas-lapack :: provider :: mkl",  # '-' in a namespace
    "blas_lapack :: provider :: mkl :: extra",
    "blas_lapack :: prov.ider :: mkl",  # '.' is for values only
    "blas_lapack :: provider :: ",
    "",
    "blas_lapack::provider::mkl@2",
]
SPACING = [
    "x86_64::level::v3",
    "  x86_64 ::level::  v3 ",
    "nvidia :: cuda_version_lower_bound :: 12.8",
]


def test_the_shipped_rules_give_properties() -> None:
    assert len(SHIPPED) > 10 and "mpi :: implementation :: openmpi" in SHIPPED


@pytest.mark.parametrize("text", SHIPPED + SPACING)
def test_a_valid_text_is_read_as_variantlib_reads_it(text: str) -> None:
    ours, theirs = Property.from_str(text), VariantProperty.from_str(text)
    assert (ours.namespace, ours.feature, ours.value) == (
        theirs.namespace,
        theirs.feature,
        theirs.value,
    )
    assert ours.to_str() == theirs.to_str()
    assert Property.from_str(ours.to_str()) == ours


@pytest.mark.parametrize("text", MALFORMED)
def test_a_text_variantlib_refuses_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        VariantProperty.from_str(text)
    with pytest.raises(ValueError, match="invalid variant property"):
        Property.from_str(text)


def test_built_from_parts_the_grammar_still_holds() -> None:
    assert Property("mpi", "implementation", "openmpi").to_str() == (
        "mpi :: implementation :: openmpi"
    )
    for parts in [("MPI", "implementation", "x"), ("mpi", "impl.ementation", "x"), ("", "a", "b")]:
        with pytest.raises(ValueError):
            Property(*parts)


def test_order_hash_and_label_are_variantlibs() -> None:
    texts = [*SHIPPED, "x86_64 :: level :: v3", "x86_64 :: level :: v10", "a :: b :: c.d"]
    ours = [Property.from_str(t) for t in texts]
    theirs = [VariantProperty.from_str(t) for t in texts]
    assert [p.to_str() for p in sorted(ours)] == [p.to_str() for p in sorted(theirs)]
    assert len(set(ours + [Property.from_str(t) for t in texts])) == len(set(texts))
    for a, b in itertools.combinations(range(len(texts)), 2):
        assert (ours[a] < ours[b]) == (theirs[a] < theirs[b])


@pytest.mark.parametrize("size", [0, 1, 2, 3, 5, len(SHIPPED)])
def test_a_variant_is_labelled_and_packed_as_variantlib_does(size: int) -> None:
    """variant_description gives variantlib's VariantDescription (label, properties'
    order, to_dict) without importing it: every set of shipped properties of a size,
    in several orders, with duplicates."""
    texts = [*SHIPPED, "x86_64 :: level :: v3", "nvidia :: cuda_version_lower_bound :: 12.0"]
    sets = list(itertools.islice(itertools.combinations(texts, size), 200)) or [()]
    for chosen in sets:
        ours = variant_description([Property.from_str(t) for t in reversed(chosen + chosen)])
        theirs = VariantDescription([VariantProperty.from_str(t) for t in chosen])
        assert ours.label == theirs.label
        assert [p.to_str() for p in ours.properties] == [p.to_str() for p in theirs.properties]
        assert ours.to_dict() == theirs.to_dict()
        assert ours.is_null_variant() == theirs.is_null_variant() == (size == 0)

"""vbridge.names.canonical_name agrees with packaging's canonicalize_name."""

from __future__ import annotations

import random
from pathlib import Path

from packaging.utils import canonicalize_name
from vbridge.names import canonical_name
from vbridge.sitepackages import split_metadata_dir_name

FIXTURES = Path(__file__).parent / "fixtures"


def test_fixture_distribution_names() -> None:
    names = set()
    for path in FIXTURES.rglob("*"):
        if path.name.endswith((".dist-info", ".egg-info", ".egg")):
            names.add(path.name.rsplit(".", 1)[0].split("-")[0])
        if path.suffix == ".json" and "conda-meta" in path.parts:
            names.add(path.name.rsplit("-", 2)[0])
    assert len(names) > 50
    for name in names:
        assert canonical_name(name) == canonicalize_name(name), name


def test_generated_names() -> None:
    rng = random.Random(0)
    alphabet = "aZ9-_.É"
    for _ in range(5000):
        name = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 12)))
        assert canonical_name(name) == canonicalize_name(name), name


def test_metadata_directory_names_are_normalised() -> None:
    assert split_metadata_dir_name("Zope.Interface-4.5.0.dist-info") == (
        "zope-interface",
        "4.5.0",
    )

"""conda's MatchSpec and version-spec semantics (adapters/_matchspec.py) decide as
py-rattler's MatchSpec decides (rattler follows conda), on versions built to tell
version orders apart (epochs, local versions, dev/post/rc, trailing zeros, openssl
letters, underscores) and on every spec form conda records and rules use."""

from __future__ import annotations

import itertools

import pytest
import rattler
from vbridge.adapters import conda
from vbridge.adapters._matchspec import InvalidSpec, MatchSpec, VersionOrder, version_matches
from vbridge.model import InstallRecord

VERSIONS = [
    "1.0", "1.0.0", "1", "1.2", "1.2.0", "1.2.3", "1.20", "1.2a1", "1.2.0a0", "1.2rc1",
    "1.2.dev0", "1.2.post1", "1.2.3.4", "2.0", "2.0a0", "2.0.0rc1", "2.0.dev1", "1!1.0",
    "1.2+local", "1.2+local.1", "1.0.1_", "1.0.1a", "1.0.1b", "0.4", "0.4.0", "0.4.1.rc",
    "0.4.1.RC", "0.5a1", "0.5b3", "0.5C1", "0.5", "0.9.6", "0.960923", "1.0.1g", "1.1.0",
    "1.1.0_", "2.4.6", "1.26.4", "1.23.5", "3.9.0", "2024.1", "1.2_3", "11.0", "1.2.3_4",
]  # fmt: skip
SPECS = [
    "numpy", "numpy *", "numpy 1.2", "numpy 1.2.*", "numpy 1.2*", "numpy =1.2",
    "numpy ==1.2", "numpy=1.2", "numpy==1.2.0", "numpy >=1.2", "numpy >1.2", "numpy <2",
    "numpy <2.0a0", "numpy >=1.23.5,<2.0a0", "numpy >=1.2,<2|>=3", "numpy !=1.2",
    "numpy !=1.2.*", "numpy ~=1.2.3", "numpy ~=1.2", "numpy >=1.2.0a0", "numpy <=1.2",
    "numpy 1.2|2.0", "numpy (>=1.2,<1.3)|2.*", "numpy >=1!0.5", "numpy 1.2 *",
    "numpy 1.2 py*", "numpy * *mkl", "numpy=1.2=py*", "numpy[version='>=1.2,<2']",
    "numpy[build=*mkl]", "numpy[version=1.2.*, build='py*']", "conda-forge::numpy >=1.2",
    "numpy >=1.2, <2", "numpy 1.2.3_4", "numpy >=2024", "numpy <1.0.1_",
    "numpy >=0.4.1.rc", "numpy 0.5.*", "numpy =0.5", "numpy >=1.1.0_", "numpy >=1.2.*",
    "numpy 1.2.3.*",
]  # fmt: skip
BUILDS = ["py311h64a7726_0", "20_linux64_mkl", "pip"]


@pytest.mark.parametrize("spec", SPECS)
def test_matches_as_rattler_matches(spec: str) -> None:
    theirs = rattler.MatchSpec(spec, strict=False)
    ours = MatchSpec.parse(spec)
    for version, build in itertools.product(VERSIONS, BUILDS):
        record = rattler.PackageRecord(
            name="numpy",
            version=version,
            build=rattler.BuildString(build),
            build_number=0,
            subdir="linux-64",
        )
        expected = bool(theirs.matches(record))
        assert ours.matches("numpy", version, build) == expected, (spec, version, build)
        as_record = InstallRecord("conda", "numpy", version, build=build)
        assert conda.spec_matches(spec, as_record) == expected


def test_version_order_is_conda_order() -> None:
    # The order conda's VersionOrder documents.
    ordered = [
        "0.4", "0.4.1.rc", "0.4.1", "0.5a1", "0.5b3", "0.5C1", "0.5", "0.9.6", "0.960923",
        "1.0", "1.1dev1", "1.1_", "1.1a1", "1.1.0dev1", "1.1.0", "1.1.0post1", "1.1post1",
        "1996.07.12", "1!0.4.1", "1!3.1.1.6", "2!0.4.1",
    ]  # fmt: skip
    parsed = [VersionOrder.parse(v) for v in ordered]
    assert all(a < b for a, b in itertools.pairwise(parsed)), ordered
    assert VersionOrder.parse("0.4") == VersionOrder.parse("0.4.0")
    assert VersionOrder.parse("1.1.0post1") != VersionOrder.parse("1.1post1")


@pytest.mark.parametrize("spec", ["numpy >=", "numpy ==", "numpy >=1.2,,<2", "numpy ~=1.2.*"])
def test_what_conda_refuses_is_refused(spec: str) -> None:
    with pytest.raises(InvalidSpec):
        MatchSpec.parse(spec)
    with pytest.raises(ValueError):
        conda.spec_matches(spec, InstallRecord("conda", "numpy", "1.0"))


def test_version_matches_is_the_version_part_alone() -> None:
    assert version_matches(">=1.23.5,<2.0a0", "1.26.4")
    assert not conda.version_matches(">=1.23.5,<2.0a0", "2.0.0rc1")
    assert conda.version_matches("1.26.*", "1.26.4")

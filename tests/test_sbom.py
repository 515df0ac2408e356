"""The SBOM vbridge writes (vbridge/destinations/sbom.py): CycloneDX 1.6, valid against
the schema, naming the installer and every provider with the evidence behind each
property, byte-stable."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL
from vbridge.destinations.sbom import package_url, purl_of, pypi_purl, sbom_document, sbom_text
from vbridge.model import Distribution, Evidence, InstallRecord, Owner, Property

ROOT = Path("/srv/env")
SITE = ROOT / "lib/python3.12/site-packages"


def _conda_mpi4py() -> tuple[Distribution, dict[str, InstallRecord]]:
    """mpi4py that conda installed, on Open MPI (its ``depends``), MKL through libblas."""
    owner = InstallRecord("conda", "mpi4py", "4.0.1", "py312h_0", channel="conda-forge",
                          subdir="linux-64", source=str(ROOT / "conda-meta/mpi4py-4.0.1.json"),
                          depends=("openmpi >=5.0.6,<6.0a0",))
    openmpi = InstallRecord("conda", "openmpi", "5.0.6", "h_100", channel="conda-forge",
                            subdir="linux-64", source=str(ROOT / "conda-meta/openmpi-5.0.6.json"))
    libblas = InstallRecord("conda", "libblas", "3.9.0", "20_linux64_mkl",
                            channel="conda-forge", subdir="linux-64",
                            source=str(ROOT / "conda-meta/libblas-3.9.0.json"))
    dist = Distribution("mpi4py", "4.0.1", SITE / "mpi4py-4.0.1.dist-info", installer="conda")
    dist.owner, dist.owner_record = Owner.of(owner), owner
    dist.add(Property.from_str("mpi :: implementation :: openmpi"),
             Evidence(owner.key, "depends", "openmpi >=5.0.6,<6.0a0", "conda-mpi-depends"))
    dist.add(Property.from_str("blas_lapack :: provider :: mkl"),
             Evidence(libblas.key, "build", "20_linux64_mkl", "conda-forge-libblas-build",
                      via=("mpi4py", "libblas"), source=libblas.source))
    return dist, {r.key: r for r in (owner, openmpi, libblas)}


def _component(document: dict[str, Any], name: str) -> dict[str, Any]:
    components = document["components"]
    assert isinstance(components, list)
    return next(c for c in components if c["name"] == name)


def _props(component: dict[str, Any], key: str) -> list[str]:
    values = component["properties"]
    assert isinstance(values, list)
    return [p["value"] for p in values if p["name"] == f"vbridge:{key}"]


def test_the_document_is_valid_cyclonedx_1_6() -> None:
    dist, records = _conda_mpi4py()
    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(sbom_text(dist, records, ROOT))
    assert errors is None, errors


def test_installer_and_providers_with_their_evidence() -> None:
    dist, records = _conda_mpi4py()
    document = sbom_document(dist, records, ROOT)
    main = document["metadata"]["component"]
    assert main["purl"] == "pkg:pypi/mpi4py@4.0.1"
    assert _props(main, "variant-property") == [
        "blas_lapack :: provider :: mkl", "mpi :: implementation :: openmpi"]
    owner = _component(document, "mpi4py")
    assert owner["purl"] == (
        "pkg:conda/mpi4py@4.0.1?build=py312h_0&channel=conda-forge&subdir=linux-64")
    assert _props(owner, "role") == ["installer"]
    assert owner["evidence"] == {"occurrences": [{"location": "conda-meta/mpi4py-4.0.1.json"}]}
    # The depends fact names the package that provides MPI: openmpi is a provider.
    openmpi = _component(document, "openmpi")
    assert _props(openmpi, "role") == ["provider"]
    assert _props(openmpi, "evidence") == [
        "mpi :: implementation :: openmpi: conda:mpi4py-4.0.1-py312h_0 depends on "
        "openmpi >=5.0.6,<6.0a0 (rule conda-mpi-depends)"]
    libblas = _component(document, "libblas")
    assert _props(libblas, "evidence") == [
        "blas_lapack :: provider :: mkl: build = 20_linux64_mkl "
        "(rule conda-forge-libblas-build; via mpi4py -> libblas)"]
    deps = {d["ref"]: d["dependsOn"] for d in document["dependencies"]}
    assert deps["pkg:pypi/mpi4py@4.0.1"] == [owner["purl"]]
    assert deps[owner["purl"]] == sorted([openmpi["purl"], libblas["purl"]])


def test_the_same_distribution_gives_the_same_bytes() -> None:
    first = sbom_text(*_conda_mpi4py(), ROOT)
    assert sbom_text(*_conda_mpi4py(), ROOT) == first
    assert first.endswith("}\n") and "timestamp" not in first and "serialNumber" not in first
    assert json.loads(first)["metadata"]["tools"]["components"][0]["name"] == "vbridge"


def test_a_record_not_among_the_records_is_still_named() -> None:
    dist = Distribution("scipy", "1.17.1", SITE / "scipy-1.17.1.dist-info", installer="pip")
    dist.add(Property.from_str("blas_lapack :: provider :: openblas"),
             Evidence("wheel:scipy-1.17.1", "extra.bundled", "scipy.libs/libopenblas.so", "r"))
    document = sbom_document(dist, {}, ROOT)
    (component,) = document["components"]
    assert component["bom-ref"] == "vbridge-record:wheel:scipy-1.17.1"
    assert _props(component, "ecosystem") == ["wheel"]
    assert document["dependencies"][0] == {
        "ref": "pkg:pypi/scipy@1.17.1", "dependsOn": ["vbridge-record:wheel:scipy-1.17.1"]}


@pytest.mark.parametrize(
    ("record", "purl"),
    [
        (InstallRecord("apt", "libopenblas0-pthread", "0.3.21+ds-4", subdir="amd64",
                       extra={"architecture": "amd64"}),
         "pkg:deb/debian/libopenblas0-pthread@0.3.21%2Bds-4?arch=amd64"),
        (InstallRecord("spack", "openblas", "0.3.28", "abcdefg"),
         "pkg:generic/spack/openblas@0.3.28?hash=abcdefg"),
        (InstallRecord("pip", "six", "1.17.0"), "pkg:pypi/six@1.17.0"),
        (InstallRecord("toy", "thing", "1"), "pkg:generic/toy/thing@1"),
    ],
)
def test_purls_per_ecosystem(record: InstallRecord, purl: str) -> None:
    assert purl_of(record) == purl


def test_pypi_purl() -> None:
    assert pypi_purl(Distribution("Foo_Bar", "1.0", Path("x"))) == "pkg:pypi/foo-bar@1.0"


# Characters to build package URL components from: the plain ones vbridge's own text
# handles, and every kind packageurl-python quotes, strips or refuses.
_PURL_CHARS = "aZz09._-~+:/" + " %@?#&=!é\t_A"


def _purl_component(rng: random.Random) -> str:
    return "".join(rng.choice(_PURL_CHARS) for _ in range(rng.randrange(0, 7)))


def _packageurl(kind: str, namespace: str | None, name: str, version: str | None,
                qualifiers: dict[str, str]) -> str:
    try:
        return str(PackageURL(type=kind, namespace=namespace, name=name,
                              version=version or None, qualifiers=qualifiers or None).to_string())
    except (ValueError, TypeError) as exc:  # packageurl-python's, for components it refuses
        return f"{type(exc).__name__}: {exc}"


def _package_url(kind: str, namespace: str | None, name: str, version: str | None,
                 qualifiers: dict[str, str]) -> str:
    try:
        return package_url(kind, namespace, name, version, qualifiers)
    except (ValueError, TypeError) as exc:  # packageurl-python's, for components it refuses
        return f"{type(exc).__name__}: {exc}"


@pytest.mark.parametrize("seed", range(10))
def test_package_url_is_packageurls_on_generated_components(seed: int) -> None:
    rng = random.Random(seed)
    plain = 0
    for _ in range(2000):
        kind = rng.choice(["conda", "deb", "generic", "pypi", "github", "npm"])
        namespace = rng.choice([None, "", "debian", "spack", _purl_component(rng)])
        name = rng.choice(["numpy", "Foo_Bar", "libblas", _purl_component(rng)])
        version = rng.choice([None, "", "1.26.4", "0.3.21+ds-4", _purl_component(rng)])
        keys = rng.sample(["build", "channel", "subdir", "arch", "hash", "Build", "1x", "a b",
                           "a%b", "é", ""], rng.randrange(0, 4))
        qualifiers = {k: rng.choice(["", "conda-forge", "linux-64", "https://c.org/x",
                                     _purl_component(rng)]) for k in keys}
        expected = _packageurl(kind, namespace, name, version, qualifiers)
        assert _package_url(kind, namespace, name, version, qualifiers) == expected, (
            kind, namespace, name, version, qualifiers)
        plain += expected.startswith("pkg:") and "%" not in expected
    assert plain > 500  # the text vbridge puts together itself was compared too


def test_package_url_is_packageurls_on_every_fixture_record() -> None:
    fixtures = Path(__file__).parent / "fixtures"
    records = [p for p in fixtures.rglob("conda-meta/*.json")]
    assert len(records) > 20
    for path in records:
        try:
            data = json.loads(path.read_bytes())
        except ValueError:
            continue
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            continue
        record = InstallRecord("conda", data["name"], str(data.get("version", "")),
                               str(data.get("build", "")), channel=str(data.get("channel", "")),
                               subdir=str(data.get("subdir", "")))
        qualifiers = {k: v for k, v in (("build", record.build), ("channel", record.channel),
                                        ("subdir", record.subdir)) if v}
        assert purl_of(record) == _packageurl("conda", None, record.name, record.version,
                                              qualifiers)
        dist = Distribution(record.name, record.version, Path("x"))
        assert pypi_purl(dist) == _packageurl("pypi", None, record.name, record.version, {})

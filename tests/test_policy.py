"""The coupling policy's decisions on distributions described by the real rules.

Distributions here are built from install records through the real rule sets
(data/conda.toml, data/wheel.toml) and the shipped policy; no environment on disk is
needed to decide what must agree.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import gateenv
import pytest
from vbridge.adapters import conda
from vbridge.adapters.wheel import inspect_wheel
from vbridge.decide.policy import Carrier, CouplingPolicy
from vbridge.errors import RuleError
from vbridge.model import Distribution, Evidence, InstallRecord, Owner, Property
from vbridge.rules import RuleSet, load_data


def _dist(record: InstallRecord, name: str, owned: bool) -> Distribution:
    dist = Distribution(name, record.version, Path(f"/site/{name}-{record.version}.dist-info"))
    if owned:
        dist.owner = Owner.of(record)
    syntax = conda.ADAPTER if record.ecosystem == "conda" else None
    for prop, evidence in RuleSet.load(record.ecosystem, syntax).record_properties(record):
        dist.add(prop, evidence)
    return dist


def _wheel(name: str, **facts: list[str]) -> Distribution:
    record = InstallRecord("wheel", name, "1.0", extra=facts, foreign=False)
    return _dist(record, name, owned=False)


def _conda_blas(name: str, impl: str) -> Distribution:
    # A conda build that carries its BLAS in its own build string (CEP 45 flag form).
    record = InstallRecord("conda", name, "1.0", "py311_0", flags=(f"blas:{impl}",))
    return _dist(record, name, owned=True)


@pytest.fixture(scope="module")
def policy() -> CouplingPolicy:
    return CouplingPolicy.from_data(load_data("policy"))


def test_candidate_linking_another_shared_blas_is_refused(policy: CouplingPolicy) -> None:
    numpy = _conda_blas("numpy", "mkl")
    candidate = _wheel("sparse-solver", needed=["libopenblas.so.0"])
    (finding,) = policy.coupling_findings([numpy, candidate], focus=[candidate])
    assert finding.severity == "refuse" and finding.code == "mixed-blas-lapack"
    assert finding.message.startswith("sparse-solver 1.0 (OpenBLAS, pip, linked to the")
    assert "beside numpy 1.0 (MKL, conda" in finding.message


def test_the_same_mix_found_by_a_scan_is_a_warning(policy: CouplingPolicy) -> None:
    numpy = _conda_blas("numpy", "mkl")
    other = _conda_blas("scipy", "openblas")
    (finding,) = policy.coupling_findings([numpy, other])
    assert finding.severity == "warn"
    assert finding.message == (
        "several BLAS/LAPACK providers in one environment: mkl (numpy); openblas (scipy)"
    )


def test_private_copies_of_one_provider_are_info(policy: CouplingPolicy) -> None:
    a = _wheel("numpy", bundled=["numpy.libs/libscipy_openblas64_-32a4b2a6.so"])
    b = _wheel("scipy", bundled=["scipy.libs/libscipy_openblas-6cdc3b4a.so"])
    c = _wheel("sklearn", bundled=["sklearn.libs/libgomp-a34b3233.so.1"])
    # Only one private copy: nothing to say.
    assert policy.coupling_findings([a, c]) == []
    # PyPI's numpy and scipy each bundle OpenBLAS: counted, but nothing to do about it.
    (finding,) = policy.coupling_findings([a, b, c])
    assert finding.code == "duplicate-blas-lapack" and finding.severity == "info"
    assert finding.message.startswith("2 copies of OpenBLAS load in one process")
    assert "nothing to do" in finding.message
    # Two different private providers still warn.
    mkl = _wheel("other", bundled=["other.libs/libmkl_rt-1a2b3c4d.so.2"])
    (finding,) = policy.coupling_findings([a, mkl])
    assert finding.severity == "warn" and "2 different BLAS/LAPACK providers" in finding.message
    # The gate reports it only when the candidate adds a copy.
    assert policy.coupling_findings([a, b, c], focus=[c]) == []
    assert [f.code for f in policy.coupling_findings([a, b, c], focus=[b])] == [
        "duplicate-blas-lapack"
    ]


def test_a_library_is_private_only_when_all_its_evidence_says_so(
    policy: CouplingPolicy,
) -> None:
    feature = "blas_lapack :: provider"
    bundled = _wheel("a", bundled=["a.libs/libscipy_openblas-6cdc3b4a.so"])
    (carrier,) = policy.carriers([bundled], feature)
    assert carrier.private
    # Bundles OpenBLAS and also links the environment's: the shared copy counts.
    both = _wheel("b", bundled=["b.libs/libscipy_openblas-6cdc3b4a.so"])
    (prop,) = both.properties
    both.add(prop, Evidence("wheel:b-1.0", "extra.needed", "libopenblas.so.0", "test"))
    (carrier,) = policy.carriers([both], feature)
    assert not carrier.private
    numpy = _conda_blas("numpy", "mkl")
    (finding,) = policy.coupling_findings([numpy, both])
    assert finding.code == "mixed-blas-lapack"  # shared OpenBLAS beside shared MKL
    # A private copy mixes nothing: it is one more runtime in the process.
    assert [f.code for f in policy.coupling_findings([numpy, bundled])] == ["duplicate-blas-lapack"]


def test_duplicate_runtimes_are_counted_only_for_shared_coupling() -> None:
    # OpenMP couples "all" carriers: two wheels bundling libgomp agree (same value);
    # a duplicate severity there says nothing, since only "shared" coupling counts
    # private copies as extra runtimes.
    data = load_data("policy")
    openmp = dict(data["features"]["openmp :: provider"], duplicate="warn")
    policy = CouplingPolicy.from_data({**data, "features": {"openmp :: provider": openmp}})
    a = _wheel("a", bundled=["a.libs/libgomp-a34b3233.so.1"])
    b = _wheel("b", bundled=["b.libs/libgomp-a34b3233.so.1"])
    assert policy.features["openmp :: provider"].couple == "all"
    assert policy.coupling_findings([a, b]) == []
    shared = dict(openmp, couple="shared")
    policy = CouplingPolicy.from_data({**data, "features": {"openmp :: provider": shared}})
    (finding,) = policy.coupling_findings([a, b])
    assert finding.code == "duplicate-openmp"


def test_couple_must_be_all_or_shared() -> None:
    data = load_data("policy")
    bad = dict(data["features"]["openmp :: provider"], couple="some")
    with pytest.raises(RuleError, match="couple must be 'all' or 'shared'"):
        CouplingPolicy.from_data({**data, "features": {"openmp :: provider": bad}})


def test_mpi_agnostic_wheel_agrees_with_either(policy: CouplingPolicy) -> None:
    agnostic = _wheel("mpi4py", needed=["libmpi.so.12", "libmpi.so.40"])
    openmpi = _wheel("h5py", needed=["libmpi.so.40"])
    mpich = _wheel("mpich", provided=["../../../lib/libmpi.so.12"])
    assert policy.coupling_findings([openmpi, agnostic], focus=[agnostic]) == []
    assert policy.coupling_findings([mpich, agnostic], focus=[agnostic]) == []
    # Built for two ABIs is not loading two: no "several" finding for the wheel itself.
    assert policy.coupling_findings([agnostic]) == []
    (finding,) = policy.coupling_findings([openmpi, agnostic, mpich], focus=[mpich])
    assert finding.severity == "refuse" and finding.code == "mixed-mpi"
    # A conflict that was there before the candidate is not the candidate's.
    assert policy.coupling_findings([openmpi, mpich, agnostic], focus=[agnostic]) == []


def test_override_severity_must_be_known(tmp_path: Path) -> None:
    (tmp_path / ".vbridge").mkdir()
    (tmp_path / ".vbridge" / "policy.toml").write_text("[ownership]\nshadow = 'sometimes'\n")
    with pytest.raises(RuleError) as info:
        CouplingPolicy.load(tmp_path)
    assert str(tmp_path / ".vbridge" / "policy.toml") in str(info.value)
    assert "'sometimes'" in str(info.value)
    (tmp_path / ".vbridge" / "policy.toml").write_text("[ownership\n")
    with pytest.raises(RuleError, match="not valid TOML"):
        CouplingPolicy.load(tmp_path)


@pytest.mark.network
def test_auditwheel_sbom_names_the_bundled_library(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A wheel's ``.dist-info/sboms/auditwheel.cdx.json`` (PEP 770), in the shape
    auditwheel writes it; auditwheel itself is not run here, so the SBOM is a stand-in
    added to a real wheel."""
    house = gateenv.wheelhouse(tmp_path_factory.getbasetemp())
    source = gateenv.wheel(house, "six")
    target = tmp_path / source.name
    sbom = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.4",
        "version": 1,
        "metadata": {
            "component": {
                "type": "library",
                "name": "six",
                "version": "1.17.0",
                "purl": "pkg:pypi/six@1.17.0",
            },
            "tools": [{"name": "auditwheel", "version": "6.4.0"}],
        },
        "components": [
            {
                "type": "library",
                "bom-ref": "pkg:rpm/almalinux/openblas@0.3.26#0",
                "name": "openblas",
                "version": "0.3.26",
                "purl": "pkg:rpm/almalinux/openblas@0.3.26",
            },
        ],
    }
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item.filename))
        dst.writestr("six-1.17.0.dist-info/sboms/auditwheel.cdx.json", json.dumps(sbom))
    facts = inspect_wheel(target)
    assert "pkg:rpm/almalinux/openblas@0.3.26" in facts["sbom"]  # type: ignore[operator]
    record = InstallRecord("wheel", "six", "1.17.0", extra=facts, foreign=False)
    props = {p.to_str(): e for p, e in RuleSet.load("wheel").record_properties(record)}
    assert props["blas_lapack :: provider :: openblas"].field == "extra.sbom"


def test_abi_virtual_packages_say_which_versions_provide_them() -> None:
    """The shipped [[abi]] entries: their specifier sets are built when first asked
    for (a scan that meets no Debian ABI package does not import them), and hold."""
    by_provided = {v.provides: v for v in CouplingPolicy.load(None).abi}
    numpy1, numpy2 = by_provided["python3-numpy-abi9"], by_provided["python3-numpy2-abi0"]
    assert numpy1.provided_by("1.26.4") and not numpy1.provided_by("2.0.0")
    assert numpy2.provided_by("2.1.3") and not numpy2.provided_by("1.24.2")
    assert all(str(v.versions) for v in by_provided.values())


def test_an_override_with_a_bad_abi_specifier_is_refused_when_read(tmp_path: Path) -> None:
    (tmp_path / ".vbridge").mkdir()
    (tmp_path / ".vbridge" / "policy.toml").write_text(
        "[[abi]]\ndistribution = 'numpy'\nprovides = 'python3-numpy-abi9'\nversions = '<<2'\n"
    )
    with pytest.raises(RuleError, match=r"bad \[\[abi\]\] entry") as info:
        CouplingPolicy.load(tmp_path)
    assert str(tmp_path / ".vbridge" / "policy.toml") in str(info.value)


def _carriers_one_by_one(
    policy: CouplingPolicy, dists: list[Distribution], feature: str
) -> list[Carrier]:
    """carriers as worked out before carriers_of: every property folded per feature."""
    out: list[Carrier] = []
    for dist in dists:
        values: set[str] = set()
        evidence: list[Evidence] = []
        for prop, ev in dist.properties.items():
            if policy.canonical_feature(prop) == feature:
                values.add(prop.value)
                evidence.extend(ev)
        if values:
            private = bool(evidence) and all(e.field in policy.private_fields for e in evidence)
            out.append(Carrier(dist, frozenset(values), private, tuple(evidence)))
    return out


def test_carriers_of_every_feature_at_once_are_each_features_carriers(
    policy: CouplingPolicy,
) -> None:
    """One pass over the properties gives what each feature's own pass gives: an alias
    and its canonical name folded into one carrier (values and evidence in the
    properties' order), several features in one distribution, private and shared
    evidence, a feature the policy does not name, distributions carrying nothing."""
    mixed = Distribution("mixed", "1.0", Path("/site/mixed-1.0.dist-info"))
    ev = [Evidence(f"conda:r{i}-1.0", "build", f"v{i}", "test") for i in range(5)]
    mixed.add(Property("blas_lapack", "library", "openblas"), ev[0])
    mixed.add(Property("mpi", "implementation", "openmpi"), ev[1])
    mixed.add(Property("blas_lapack", "provider", "mkl"), ev[2])
    mixed.add(Property("blas_lapack", "library", "openblas"), ev[3])
    mixed.add(Property("other", "thing", "x"), ev[4])
    dists = [
        _wheel("bundled", bundled=["bundled.libs/libscipy_openblas-6cdc3b4a.so"]),
        mixed,
        _conda_blas("numpy", "mkl"),
        Distribution("bare", "1.0", Path("/site/bare-1.0.dist-info")),
        _conda_blas("scipy", "openblas"),
    ]
    features = [*policy.features, "other :: thing", "not :: carried"]
    at_once = policy.carriers_of(dists, features)
    assert list(at_once) == features
    for feature in features:
        assert at_once[feature] == _carriers_one_by_one(policy, dists, feature), feature
        assert policy.carriers(dists, feature) == at_once[feature]
    (blas,) = [c for c in at_once["blas_lapack :: provider"] if c.dist is mixed]
    assert blas.values == {"openblas", "mkl"} and blas.evidence == (ev[0], ev[3], ev[2])
    assert [c.dist.name for c in at_once["blas_lapack :: provider"]] == [
        "bundled",
        "mixed",
        "numpy",
        "scipy",
    ]
    assert at_once["not :: carried"] == []
    assert policy.carriers_of(dists) == {f: at_once[f] for f in policy.features}

"""Dependents whoever owns them (vbridge.decide.dependents): every ecosystem's
requirements on a distribution, held against the copy Python imports."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import spacktree
from vbridge.decide.assess import assess_environment
from vbridge.decide.dependents import dependent_findings, requirements_on, unmet_requirements
from vbridge.decide.policy import CouplingPolicy
from vbridge.demo import build_demo_environment
from vbridge.scan import scan_environment, scan_python

DEBIAN_PYTHON = Path("/usr/bin/python3")
DIST_PACKAGES = Path("/usr/lib/python3/dist-packages")


def test_conda_pins_are_requirements_with_pep440_bounds(tmp_path: Path) -> None:
    env = scan_environment(build_demo_environment(tmp_path / "demo"))
    (pin,) = requirements_on(env)["numpy"]
    assert (pin.kind, pin.ecosystem, pin.spec) == ("pin", "conda", "numpy >=1.23.5,<2.0a0")
    assert pin.dependent == "conda:scipy-1.11.4-py311h64a7726_0"
    assert pin.provider == "conda:numpy-1.26.4-py311h64a7726_0" and pin.binary
    assert pin.specifier == ">=1.23.5,<2.0a0"
    (unmet,) = unmet_requirements(env, CouplingPolicy.load(env.path))
    assert unmet.copy is not None and (unmet.copy.version, unmet.copy.installer) == ("2.1.3", "pip")
    (finding,) = dependent_findings(env, CouplingPolicy.load(env.path))
    assert finding.severity == "refuse" and finding.code == "broken-dependent"
    assert finding.message.startswith(
        "scipy 1.11.4 (conda, py311h64a7726_0) needs numpy >=1.23.5,<2.0a0; "
        "Python imports numpy 2.1.3 (pip) (conda-meta/scipy-1.11.4-py311h64a7726_0.json)."
    )


def test_a_matching_pip_copy_satisfies_a_conda_pin(tmp_path: Path) -> None:
    """MatchSpec semantics: pip's numpy 1.26.4 in place of conda's satisfies <2.0a0."""
    prefix = build_demo_environment(tmp_path / "demo")
    site = prefix / "lib/python3.11/site-packages"
    shutil.move(site / "numpy-2.1.3.dist-info", site / "numpy-1.26.4.dist-info")
    env = scan_environment(prefix)
    assert unmet_requirements(env, CouplingPolicy.load(env.path)) == []


def _requires_dist_layer(root: Path, **dists: list[str]) -> Path:
    layer = root / "lib" / "python3.11" / "site-packages"
    for spec, requires in dists.items():
        name, version = spec.split("_")
        meta = layer / f"{name}-{version}.dist-info"
        meta.mkdir(parents=True)
        lines = "".join(f"Requires-Dist: {r}\n" for r in requires)
        (meta / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{lines}\nbody\n"
        )
        (meta / "INSTALLER").write_text("pip\n")
        (meta / "RECORD").write_text(f"{name}/__init__.py,,\n")
    return layer


def test_requires_dist_with_markers_for_pip_side_distributions(tmp_path: Path) -> None:
    _requires_dist_layer(
        tmp_path,
        app_1=[
            "lib<2",
            "absent>=1",
            "winonly; sys_platform == 'win32'",
            "old; python_version < '3.8'",
            "docs; extra == 'doc'",
        ],
        lib_2=[],
    )
    env = scan_environment(tmp_path)
    required = requirements_on(env)
    assert set(required) == {"lib", "absent"}  # markers false for this Python: left out
    findings = {f.code: f for f in dependent_findings(env, CouplingPolicy.load(env.path))}
    assert findings["broken-dependent"].severity == "warn"
    assert findings["broken-dependent"].message.startswith(
        "app 1 (pip) needs lib<2; Python imports lib 2 (pip)"
    )
    assert findings["missing-dependency"].severity == "warn"
    assert "needs absent>=1, which is not installed" in findings["missing-dependency"].message


@pytest.mark.debian
def test_debian_records_are_the_authority() -> None:
    """Debian's scipy needs python3-numpy-abi9 (dpkg's Depends), and python3-gi's
    Requires-Dist on pycairo (which Debian does not install) is not held against it."""
    if not (DIST_PACKAGES / "scipy-1.10.1.dist-info").is_dir():
        pytest.skip("Debian's python3-scipy is not installed")
    env = assess_environment(scan_python(str(DEBIAN_PYTHON)))
    required = requirements_on(env)
    abi = [r for r in required["numpy"] if r.kind == "abi"]
    scipy_abi = next(r for r in abi if r.dependent.startswith("apt:python3-scipy-"))
    assert scipy_abi.abi == ("python3-numpy-abi9",) and scipy_abi.binary
    assert scipy_abi.provider is not None and scipy_abi.provider.startswith("apt:python3-numpy-")
    # The dist-info's own Requires-Dist (numpy<1.27.0,>=1.19.5) is not a requirement here.
    assert not [r for r in required["numpy"] if r.kind == "requires-dist"]
    gi = next(DIST_PACKAGES.glob("PyGObject-*.egg-info"), None)
    if gi is not None and "pycairo" in (gi / "requires.txt").read_text():
        assert "pycairo" not in required
    assert unmet_requirements(env, CouplingPolicy.load(env.path)) == []
    assert not [f for f in env.findings if f.severity in ("warn", "refuse")]


def test_spack_edges_name_the_exact_build(tmp_path: Path) -> None:
    """py-h5py runs with one py-numpy build; pip's numpy over it in the view breaks it."""
    site = spacktree.build_tree(tmp_path / "tree")
    site = spacktree.build_environment(site, tmp_path / "env")
    assert site.view is not None and site.env is not None
    env = scan_environment(site.env)
    numpy_reqs = [r for r in requirements_on(env)["numpy"] if r.ecosystem == "spack"]
    h5py = next(r for r in numpy_reqs if r.dependent.startswith("spack:py-h5py-"))
    assert h5py.kind == "link" and h5py.spec.startswith("py-numpy@")
    assert h5py.specifier == "==" + h5py.spec.split("@")[1].split("/")[0]
    assert not h5py.binary  # a build+run edge: h5py does not link numpy's binaries
    assert unmet_requirements(env, CouplingPolicy.load(env.path)) == []


def test_a_version_bound_is_worked_out_once_per_specifier_and_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Spack tree's unmet edges ask the same (specifier, version) pairs many times:
    each pair is parsed and decided once, with what packaging says (an exact release
    against a release without it)."""
    import packaging.specifiers
    from vbridge.decide import dependents
    from vbridge.model import Distribution, Requirement

    policy = CouplingPolicy.load(None)
    cases = [
        ("==1.26.4", "1.26.4", True),
        ("==1.26.4", "1.26.4+local", True),  # a local label is ignored by ==V
        ("==1.26.4", "2.1.3", False),
        ("==1.0", "1.0.0", True),
        (">=1.23.5,<2.0a0", "2.0.0rc1", False),
        (">=1.23.5,<2.0a0", "1.99.0rc1", True),  # pre-releases count
        ("==develop", "1.0", None),  # not a PEP 440 specifier: cannot tell
    ]
    built: list[str] = []
    real = packaging.specifiers.SpecifierSet

    class Counted(real):  # type: ignore[misc, valid-type]
        def __init__(self, specifiers: str = "", prereleases: bool | None = None) -> None:
            built.append(specifiers)
            super().__init__(specifiers, prereleases)

    monkeypatch.setattr(packaging.specifiers, "SpecifierSet", Counted)
    dependents._specifier_contains.cache_clear()
    for _ in range(3):
        for specifier, version, holds in cases:
            req = Requirement(
                "numpy", f"py-numpy@{specifier}", "link", "spack", "spack:py-scipy-1-a",
                provider="spack:py-numpy-1-b", specifier=specifier,
            )  # fmt: skip
            copy = Distribution("numpy", version, Path(f"numpy-{version}.dist-info"))
            assert dependents.requirement_holds(req, copy, policy) is holds, (specifier, version)
    # Each pair packaging decides is built once; ==release against a release needs none.
    assert sorted(built) == sorted(["==1.26.4", ">=1.23.5,<2.0a0", ">=1.23.5,<2.0a0", "==develop"])


@pytest.mark.parametrize("top", ["/", "/opt/spack", "/opt/spack/", "/opt//spack", "/opt/./spack"])
def test_a_finding_shows_its_source_as_a_path_relative_to_the_environment(top: str) -> None:
    """What Path.relative_to gives (else the normalised path), for paths under the top,
    beside it, equal to it and not in normal form."""
    from vbridge.decide.dependents import _shown_path

    for source in [
        "/opt/spack/zlib/.spack/spec.json",
        "/opt/spack",
        "/opt/spackle/x",
        "/opt/spac",
        "/usr/lib/x",
        "/opt//spack/x",
        "/opt/spack/./x/",
        "/opt/spack/../y",
        "relative/x",
        "/",
    ]:
        try:
            expected = str(Path(source).relative_to(Path(top)))
        except ValueError:
            expected = str(Path(source))
        assert _shown_path(source, Path(top)) == expected, (source, top)


def test_an_exact_release_pin_is_decided_as_packaging_decides_it() -> None:
    """``==`` of a release against a release, decided without packaging, and every other
    specifier left to it: the same answer as SpecifierSet.contains (pre-releases in)."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from vbridge.decide.dependents import _specifier_contains

    specifiers = ["==1.26.4", "==1.26", "==1.26.0.0", "==01.26.4", "==0", "==1.26.*",
                  "== 1.26.4", "==1.26.4 ", "===1.26.4", "==1.26.4,>=1", "==1.26.4+local",
                  "==1.26.4rc1", "==1!1.26.4", "==v1.26.4", "==main", "==\u0661.2", "==1..2",
                  ">=1.26"]  # fmt: skip
    versions = ["1.26.4", "1.26.4.0", "1.26", "1.26.40", "01.26.04", "1.26.4+local",
                "1.26.4rc1", "1.26.4.post1", "0", "0.0", "2", "main", "\u0661.2", "1!1.26.4",
                "v1.26.4"]  # fmt: skip
    for spec in specifiers:
        for version in versions:
            try:
                expected: bool | None = SpecifierSet(spec).contains(version, prereleases=True)
            except InvalidSpecifier:
                expected = None
            assert _specifier_contains(spec, version) is expected, (spec, version)

"""A new ecosystem is one adapter module plus its rules: the toy ecosystem of
tests/toy_adapter.py (a plain manifest file) is scanned, assessed and reported with no
other module knowing of it."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import toy_adapter
import vbridge.adapters
from vbridge.adapters import adapter_for, all_adapters
from vbridge.decide.assess import assess_environment
from vbridge.destinations.report import render_json
from vbridge.scan import scan_environment

SITE = "lib/toy/site"  # not a layer vbridge would find under a prefix by itself


def _dist_info(site: Path, name: str, version: str) -> Path:
    dist_info = site / f"{name}-{version}.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    )
    (dist_info / "INSTALLER").write_text("toy\n")
    (dist_info / "RECORD").write_text(f"{dist_info.name}/METADATA,,\n")
    return dist_info


def _toy_prefix(root: Path, libblas_version: str = "3.9.0") -> Path:
    """numpy on the toy's MKL libblas, mpi4py on Open MPI, h5py on MPICH."""
    site = root / SITE
    for name, version in (("numpy", "1.26.4"), ("mpi4py", "4.0.1"), ("h5py", "3.12.1")):
        _dist_info(site, name, version)
    (root / toy_adapter.MANIFEST).write_text(
        f'site_packages = "{SITE}"\n'
        '[[package]]\nname = "numpy"\nversion = "1.26.4"\nbuild = "py311_0"\n'
        'depends = ["libblas@3", "python"]\ndists = ["numpy-1.26.4.dist-info"]\n'
        f'[[package]]\nname = "libblas"\nversion = "{libblas_version}"\nbuild = "20_mkl"\n'
        '[[package]]\nname = "mpi4py"\nversion = "4.0.1"\n'
        'depends = ["openmpi@5"]\ndists = ["mpi4py-4.0.1.dist-info"]\n'
        '[[package]]\nname = "openmpi"\nversion = "5.0.6"\n'
        '[[package]]\nname = "h5py"\nversion = "3.12.1"\n'
        'depends = ["mpich@4"]\ndists = ["h5py-3.12.1.dist-info"]\n'
        '[[package]]\nname = "mpich"\nversion = "4.2.3"\n'
        '[[package]]\nname = "python"\nversion = "3.11.10"\n'
    )
    return root


def _properties(env: object, name: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """``property -> (rule, via)`` of the distribution ``name``."""
    dist = next(d for d in env.distributions if d.name == name)  # type: ignore[attr-defined]
    return {p.to_str(): (e[0].rule, e[0].via) for p, e in dist.properties.items()}


def test_scan_attributes_ownership_and_properties_through_the_toy_adapter(
    tmp_path: Path,
) -> None:
    prefix = _toy_prefix(tmp_path / "env")
    env = scan_environment(prefix, adapters=[*all_adapters(), toy_adapter.ADAPTER])
    assert env.ecosystems == ["toy"]
    # The layer comes from the adapter's site_packages hook alone.
    assert env.site_packages == [prefix / SITE]
    owners = {d.name: (d.owner.ecosystem, d.owner.name) for d in env.distributions if d.owner}
    assert owners == {"numpy": ("toy", "numpy"), "mpi4py": ("toy", "mpi4py"),
                      "h5py": ("toy", "h5py")}
    # Dependencies are read in the toy's own syntax (libblas@3): the closure reaches
    # libblas, whose rule (an exact spec, libblas@3.9) the adapter's matcher accepts.
    assert _properties(env, "numpy") == {
        "blas_lapack :: provider :: mkl": ("toy-libblas-build", ("numpy", "libblas"))
    }
    assert _properties(env, "mpi4py") == {
        "mpi :: implementation :: openmpi": ("toy-mpi-name", ("mpi4py", "openmpi"))
    }
    assert _properties(env, "h5py") == {
        "mpi :: implementation :: mpich": ("toy-mpi-name", ("h5py", "mpich"))
    }
    # Without the adapter nothing of this is known.
    plain = scan_environment(prefix)
    assert plain.ecosystems == ["pip"] and plain.distributions == []


def test_the_adapter_spec_matcher_decides_exact_rules(tmp_path: Path) -> None:
    prefix = _toy_prefix(tmp_path / "env", libblas_version="3.8.0")
    env = scan_environment(prefix, adapters=[toy_adapter.ADAPTER])
    assert _properties(env, "numpy") == {}  # libblas@3.9 does not match libblas 3.8.0


def test_findings_and_report_through_the_toy_adapter(tmp_path: Path) -> None:
    prefix = _toy_prefix(tmp_path / "env")
    env = assess_environment(scan_environment(prefix, adapters=[toy_adapter.ADAPTER]))
    (mixed,) = [f for f in env.findings if f.code == "mixed-mpi"]
    assert mixed.severity == "refuse" and set(mixed.distributions) == {"mpi4py", "h5py"}
    document = json.loads(render_json([env]))["environments"][0]
    assert document["ecosystems"] == ["toy"]
    numpy = next(d for d in document["distributions"] if d["name"] == "numpy")
    assert numpy["owner"]["ecosystem"] == "toy" and numpy["owner"]["name"] == "numpy"
    assert numpy["properties"] == ["blas_lapack :: provider :: mkl"]


@pytest.fixture
def toy_in_the_package(tmp_path: Path) -> Iterator[None]:
    """The toy module placed where a shipped adapter goes (a directory on
    ``vbridge.adapters.__path__``), its rules beside it."""
    extra = tmp_path / "adapters"
    (extra / "data").mkdir(parents=True)
    shutil.copy(Path(toy_adapter.__file__), extra / "toy.py")
    shutil.copy(toy_adapter.ADAPTER.RULES or "", extra / "data" / "toy.toml")
    saved = list(vbridge.adapters.__path__)
    vbridge.adapters.__path__.append(str(extra))
    try:
        yield
    finally:
        vbridge.adapters.__path__[:] = saved
        sys.modules.pop("vbridge.adapters.toy", None)


@pytest.mark.usefixtures("toy_in_the_package")
def test_a_module_in_the_package_is_found_without_naming_it(tmp_path: Path) -> None:
    assert [a.ECOSYSTEM for a in all_adapters()] == ["apt", "conda", "spack", "toy", "wheel"]
    toy = adapter_for("toy")
    assert toy is not None and type(toy).__module__ == "vbridge.adapters.toy"
    prefix = _toy_prefix(tmp_path / "env")
    env = scan_environment(prefix)  # the default adapters: the toy is among them
    assert env.ecosystems == ["toy"]
    assert "blas_lapack :: provider :: mkl" in _properties(env, "numpy")


def test_find_roots_finds_what_every_adapter_finds(tmp_path: Path) -> None:
    """find_roots, which asks the companion modules, finds each root every adapter's
    own find_root finds, in the same order, for every kind of root there is."""
    from vbridge.adapters import find_roots

    conda_prefix = tmp_path / "conda"
    (conda_prefix / "conda-meta").mkdir(parents=True)
    conda_site = conda_prefix / "lib" / "python3.11" / "site-packages"
    debian = tmp_path / "debian"
    (debian / "var/lib/dpkg").mkdir(parents=True)
    (debian / "var/lib/dpkg/status").write_text("")
    dist_packages = debian / "usr/lib/python3/dist-packages"
    tree = tmp_path / "tree"
    (tree / ".spack-db").mkdir(parents=True)
    (tree / ".spack-db" / "index.json").write_text("{}")
    spack_env = tmp_path / "spack-env"
    spack_env.mkdir()
    (spack_env / "spack.lock").write_text("{}")
    prefix = tmp_path / "prefix"
    (prefix / ".spack").mkdir(parents=True)
    (prefix / ".spack" / "spec.json").write_text("{}")
    prefix_site = prefix / "lib" / "python3.11" / "site-packages"
    view = tmp_path / "view"
    (view / ".spack" / "zlib").mkdir(parents=True)
    (view / ".spack" / "zlib" / "spec.json").write_text("{}")
    for layer in (conda_site, dist_packages, prefix_site):
        layer.mkdir(parents=True)
    candidates = [
        conda_prefix, conda_site, debian, dist_packages, tree, spack_env, prefix,
        prefix_site, view, tmp_path,
    ]  # fmt: skip
    expected: dict[tuple[str, Path], vbridge.adapters.Adapter] = {}
    for candidate in candidates:
        for adapter in all_adapters():
            root = adapter.find_root(candidate)
            if root is not None:
                expected.setdefault((adapter.ECOSYSTEM, root), adapter)
    found = find_roots(candidates)
    assert list(found) == list(expected)
    assert all(found[key] is expected[key] for key in expected)
    assert {eco for eco, _ in found} == {"apt", "conda", "spack", "wheel"}


def test_a_scan_imports_only_the_adapters_whose_roots_it_finds() -> None:
    """A conda prefix's scan asks the apt and Spack adapters' companion modules whether
    it is theirs, and imports neither adapter (~6 M instructions)."""
    import os
    import subprocess

    prefix = Path(__file__).parent / "fixtures" / "conda" / "py36-osx-whl"
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from vbridge.scan import scan_environment\n"
        f"env = scan_environment(Path({str(prefix)!r}))\n"
        "names = [m.rsplit('.', 1)[1] for m in sys.modules if m.startswith('vbridge.adapters.')]\n"
        "print(env.ecosystems, sorted(n for n in names if not n.startswith('_')))\n"
    )
    env = {**os.environ, "VBRIDGE_NO_CACHE": "1"}
    out = subprocess.run(
        [sys.executable, "-I", "-c", code],
        capture_output=True, text=True, env=env, cwd=prefix.parent, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert out == "['conda'] ['conda', 'wheel']\n"

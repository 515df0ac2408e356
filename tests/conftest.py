"""Shared test fixtures: copies of the real records, and real conda prefixes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import condaenv

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def fixture_copy(tmp_path: Path) -> Callable[[str], Path]:
    """Copy a folder of tests/fixtures into tmp_path (tests never write to fixtures)."""

    def copy(rel: str) -> Path:
        target = tmp_path / "fixture" / rel
        shutil.copytree(FIXTURES / rel, target, symlinks=True)
        return target

    return copy


@pytest.fixture(scope="session")
def conda_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rattler-cache")


@pytest.fixture(scope="session")
def mkl_channel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local conda channel with the conda-forge-shaped science stack, MKL and OpenBLAS."""
    root = tmp_path_factory.mktemp("channels")
    return condaenv.build_channel(root / "mkl", condaenv.science_packages(blas="mkl"))


@pytest.fixture(scope="session")
def openblas_channel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("channels")
    return condaenv.build_channel(
        root / "openblas", condaenv.science_packages(blas="openblas", openmp="gnu")
    )


CondaPrefixFactory = Callable[[Path, Sequence[str]], Path]


@pytest.fixture
def conda_prefix(tmp_path: Path, conda_cache: Path) -> CondaPrefixFactory:
    """Install specs from a channel into a fresh prefix with py-rattler."""
    counter = iter(range(1000))

    def make(channel: Path, specs: Sequence[str]) -> Path:
        prefix = tmp_path / f"env{next(counter)}"
        return condaenv.install(channel, specs, prefix, conda_cache)

    return make


def validate_document(doc: object) -> None:
    """Check a ``scan --json`` / ``check --json`` document against the JSON Schema
    shipped in the package (``vbridge/data/environment.schema.json``)."""
    import json

    import jsonschema
    from vbridge.rules import data_path

    schema = json.loads(data_path("environment.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(doc)


def compare_full_scan_with_scans_alone(path: Path) -> tuple[int, int]:
    """Assert that a full scan of ``path`` gives every owned distribution the properties
    a scan limited to it gives (``only=``); return how many were compared and how many
    of them have a property found through a dependency (``via``).

    A full scan leaves out of its dependency walks the records that lead to no property
    (scan._leading_to_properties); a scan for one distribution walks everything it
    reaches: the same properties must come through the same first paths.
    """
    from vbridge.scan import scan_environment

    full = scan_environment(path)
    owned = [d for d in full.distributions if d.owner is not None]
    with_via = 0
    for dist in owned:
        alone = scan_environment(path, only=[dist.dist_info])
        (same,) = [d for d in alone.distributions if d.dist_info == dist.dist_info]
        assert same.properties == dist.properties, dist.name
        with_via += any(e.via for found in dist.properties.values() for e in found)
    return len(owned), with_via


def mark_newest_used(cache_files: Sequence[Path], second: int) -> None:
    """Mark the cache file written last of ``cache_files`` as read and written at
    ``second`` of 2001: the order of use a test of the caches' bounds sets, whatever the
    grain of the file system's clock (two files written within a tick share an mtime)."""
    newest = max(cache_files, key=lambda path: path.stat().st_mtime_ns)
    when = 10**18 + second * 10**9
    os.utime(newest, ns=(when, when))


def run_vbridge(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the installed console script in a subprocess, as a user would.

    Every ``scan --json`` and ``check --json`` document it prints is validated against
    the package's JSON Schema on the way.
    """
    import json

    exe = Path(sys.executable).with_name("vbridge")
    result = subprocess.run(
        [str(exe), *args], capture_output=True, text=True, check=check, timeout=300
    )
    documented = args and args[0] in ("scan", "check") and "--json" in args
    if documented and "--db" not in args and result.returncode in (0, 1) and result.stdout:
        validate_document(json.loads(result.stdout))
    return result


def _slow_tests() -> frozenset[str]:
    text = (Path(__file__).parent / "slow-tests.txt").read_text(encoding="utf-8")
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``slow``: the tests tests/slow-tests.txt names (measured) and every test that
    downloads (``network``), so ``pytest -m "not slow"`` is the quick offline run."""
    slow = _slow_tests()
    for item in items:
        if item.nodeid.split("[", 1)[0] in slow or item.get_closest_marker("network"):
            item.add_marker(pytest.mark.slow)

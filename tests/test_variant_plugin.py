"""vbridge's variant provider plugins, driven by variantlib's own loaders and resolver.

Each test lays a real interpreter over a conda prefix installed by py-rattler, then asks
variantlib (``EntryPointPluginLoader``, ``get_variants_by_priority``,
``check_variant_supported``) which wheel variant to install: the plugin runs in
variantlib's subprocess of that interpreter, exactly as an installer would run it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import condapython
import pytest
from conftest import CondaPrefixFactory
from variantlib.api import check_variant_supported, get_variants_by_priority
from variantlib.models.variant import VariantDescription, VariantProperty
from variantlib.plugins.loader import VARIANT_PROVIDER_CACHE_TABLE, EntryPointPluginLoader
from variantlib.variants_json import VariantsJson

pytestmark = pytest.mark.skipif(
    sys.version_info[:2] != (3, 11), reason="the test channel's python is 3.11"
)

SCHEMA = "https://variants-schema.wheelnext.dev/v0.2.0.json"


def variants_json(namespace: str, feature: str, values: list[str]) -> dict[str, Any]:
    """A package index's ``-variants.json`` with one variant per value, provided by
    vbridge's plugin for that namespace."""
    return {
        "$schema": SCHEMA,
        "default-priorities": {"namespace": [namespace]},
        "providers": {
            namespace: {
                "requires": ["vbridge"],
                "plugin-api": f"vbridge.variant_plugin:{namespace}",
            }
        },
        "variants": {value: {namespace: {feature: [value]}} for value in values} | {"null": {}},
    }


@pytest.fixture
def python_in(conda_prefix: CondaPrefixFactory) -> Any:
    def make(channel: Path, specs: list[str]) -> Path:
        prefix = conda_prefix(channel, specs)
        return condapython.make_python_environment(prefix)

    return make


def labels(python: Path, data: dict[str, Any]) -> list[str]:
    # variantlib 0.2.2 caches plugin answers per (plugin, command) and not per
    # interpreter: another environment would get the previous one's answer.
    VARIANT_PROVIDER_CACHE_TABLE.clear()
    return [
        v.label for v in get_variants_by_priority(variants_json=data, venv_python_executable=python)
    ]


def test_installed_blas_build_is_the_preferred_variant(
    python_in: Any, mkl_channel: Path, openblas_channel: Path
) -> None:
    data = variants_json("blas_lapack", "provider", ["openblas", "mkl", "blis"])
    mkl_python = python_in(mkl_channel, ["numpy", "scipy"])
    openblas_python = python_in(openblas_channel, ["numpy", "scipy"])
    # Mixing BLAS runtimes is a warning, not a crash: every variant stays installable,
    # the one matching the conda build first.
    assert labels(mkl_python, data) == ["mkl", "openblas", "blis", "null"]
    assert labels(openblas_python, data) == ["openblas", "mkl", "blis", "null"]


def test_pep825_library_spelling_gets_the_same_preference(
    python_in: Any, mkl_channel: Path
) -> None:
    python = python_in(mkl_channel, ["numpy"])
    data = variants_json("blas_lapack", "library", ["openblas", "mkl"])
    assert labels(python, data) == ["mkl", "openblas", "null"]


def test_only_the_installed_mpi_is_supported(python_in: Any, mkl_channel: Path) -> None:
    python = python_in(mkl_channel, ["h5py"])  # conda-forge h5py built for OpenMPI
    data = variants_json("mpi", "implementation", ["mpich", "openmpi"])
    assert labels(python, data) == ["openmpi", "null"]
    info = VariantsJson(data)
    VARIANT_PROVIDER_CACHE_TABLE.clear()
    mpich = VariantDescription([VariantProperty("mpi", "implementation", "mpich")])
    openmpi = VariantDescription([VariantProperty("mpi", "implementation", "openmpi")])
    assert (
        check_variant_supported(vdesc=mpich, variant_info=info, venv_python_executable=python)
        is None
    )
    assert (
        check_variant_supported(vdesc=openmpi, variant_info=info, venv_python_executable=python)
        == openmpi
    )


def test_openmp_runtime_follows_the_conda_mutex(
    python_in: Any, mkl_channel: Path, openblas_channel: Path
) -> None:
    data = variants_json("openmp", "provider", ["gnu", "llvm"])
    # mkl channel: _openmp_mutex *_kmp_llvm; openblas channel: *_gnu.
    assert labels(python_in(mkl_channel, ["numpy"]), data)[0] == "llvm"
    assert labels(python_in(openblas_channel, ["numpy"]), data)[0] == "gnu"


def test_nothing_installed_means_no_preference(python_in: Any, mkl_channel: Path) -> None:
    python = python_in(mkl_channel, ["six"])  # a pure-Python package, no BLAS, no MPI
    assert labels(python, variants_json("mpi", "implementation", ["mpich", "openmpi"])) == [
        "openmpi",  # the data file's order: openmpi, mpich, ...
        "mpich",
        "null",
    ]
    data = variants_json("blas_lapack", "provider", ["mkl", "openblas"])
    assert labels(python, data) == ["openblas", "mkl", "null"]


def test_entry_points_are_discovered_by_variantlib() -> None:
    with EntryPointPluginLoader() as loader:
        apis = loader.plugin_api_values
        all_configs = loader.get_all_configs()
    assert apis == {
        "vbridge_blas_lapack": "vbridge.variant_plugin:blas_lapack",
        "vbridge_hdf5": "vbridge.variant_plugin:hdf5",
        "vbridge_mpi": "vbridge.variant_plugin:mpi",
        "vbridge_openmp": "vbridge.variant_plugin:openmp",
    }
    blas = {c.name: c.values for c in all_configs["vbridge_blas_lapack"].configs}
    assert set(blas) == {"provider", "library"}
    assert {"mkl", "openblas", "accelerate"} <= set(blas["provider"])
    assert {c.name for c in all_configs["vbridge_mpi"].configs} == {"implementation"}
    assert [(c.name, c.values) for c in all_configs["vbridge_hdf5"].configs] == [
        ("parallel", ["off", "on"])
    ]


def test_parallel_hdf5_build_is_the_preferred_h5py_variant(
    python_in: Any, mkl_channel: Path
) -> None:
    python = python_in(mkl_channel, ["h5py"])  # conda-forge h5py on hdf5 mpi_openmpi
    data = variants_json("hdf5", "parallel", ["off", "on"])
    assert labels(python, data) == ["on", "off", "null"]

"""``vbridge annotate --variants-toml`` / ``vbridge clean``: the environment's
variants.toml, checked with variantlib's own configuration loader and resolver running
in the environment's interpreter (so ``sys.prefix`` is the conda prefix)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import condaenv
import condapython
import pytest
from conftest import CondaPrefixFactory, run_vbridge
from variantlib.configuration import VariantConfiguration

pytestmark = pytest.mark.skipif(
    sys.version_info[:2] != (3, 11), reason="the test channel's python is 3.11"
)

# A package whose BLAS variants are declared statically (no plugin at all), preferring
# OpenBLAS, as wheelnext's numpy demo index does.
STATIC_VARIANTS = {
    "$schema": "https://variants-schema.wheelnext.dev/v0.2.0.json",
    "default-priorities": {"namespace": ["blas_lapack"]},
    "providers": {"blas_lapack": {"static-properties": {"provider": ["openblas", "mkl"]}}},
    "variants": {
        "openblas": {"blas_lapack": {"provider": ["openblas"]}},
        "mkl": {"blas_lapack": {"provider": ["mkl"]}},
        "null": {},
    },
}
RANK = """
import json, sys
from variantlib.api import get_variants_by_priority
data = json.loads(sys.argv[1])
print(json.dumps([v.label for v in get_variants_by_priority(variants_json=data)]))
"""


def rank_in(python: Path, workdir: Path) -> list[str]:
    """What an installer running in that environment would pick, best first."""
    home = workdir / "home"  # no user-level variants.toml
    result = subprocess.run(
        [str(python), "-c", RANK, json.dumps(STATIC_VARIANTS)],
        capture_output=True,
        text=True,
        cwd=workdir,
        env={**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")},
        check=True,
    )
    labels: list[str] = json.loads(result.stdout)
    return labels


def test_annotate_writes_it_and_installers_rank_the_installed_build_first(
    conda_prefix: CondaPrefixFactory, mkl_channel: Path, tmp_path: Path
) -> None:
    prefix = conda_prefix(mkl_channel, ["numpy", "h5py"])
    python = condapython.make_python_environment(prefix)
    assert rank_in(python, tmp_path) == ["openblas", "mkl", "null"]  # the package's order

    result = run_vbridge("annotate", "--variants-toml", str(prefix))
    assert result.returncode == 0, result.stderr
    assert f"wrote {prefix / 'variants.toml'}" in result.stdout
    config = VariantConfiguration.get_config_from_file(prefix / "variants.toml")
    assert config.property_priorities["blas_lapack"]["provider"] == ["mkl"]
    assert config.property_priorities["blas_lapack"]["library"] == ["mkl"]
    assert config.property_priorities["mpi"]["implementation"] == ["openmpi"]
    assert config.property_priorities["openmp"]["provider"] == ["llvm"]
    assert rank_in(python, tmp_path) == ["mkl", "openblas", "null"]

    again = run_vbridge("annotate", "--variants-toml", str(prefix))
    assert "variants.toml: unchanged" in again.stdout

    cleaned = run_vbridge("clean", str(prefix))
    assert cleaned.returncode == 0, cleaned.stderr
    assert f"removed {prefix / 'variants.toml'}" in cleaned.stdout
    assert not (prefix / "variants.toml").exists()
    assert not (prefix / ".vbridge").exists()  # nothing of vbridge's is left
    assert rank_in(python, tmp_path) == ["openblas", "mkl", "null"]


def test_a_users_own_variants_toml_is_never_touched(
    conda_prefix: CondaPrefixFactory, mkl_channel: Path
) -> None:
    prefix = conda_prefix(mkl_channel, ["numpy"])
    own = b'[property_priorities.blas_lapack]\nprovider = ["openblas"]\n'
    (prefix / "variants.toml").write_bytes(own)
    result = run_vbridge("annotate", "--variants-toml", str(prefix))
    assert result.returncode == 0
    assert "not written by vbridge" in result.stdout
    run_vbridge("clean", str(prefix))
    assert (prefix / "variants.toml").read_bytes() == own


def test_edited_after_writing_is_left_in_place_by_clean(
    conda_prefix: CondaPrefixFactory, mkl_channel: Path
) -> None:
    prefix = conda_prefix(mkl_channel, ["numpy"])
    run_vbridge("annotate", "--variants-toml", str(prefix), check=True)
    edited = (prefix / "variants.toml").read_text() + "\n# my note\n"
    (prefix / "variants.toml").write_text(edited)
    cleaned = run_vbridge("clean", str(prefix))
    assert "edited since vbridge wrote it" in cleaned.stdout
    assert (prefix / "variants.toml").read_text() == edited


def test_dry_run_writes_nothing(conda_prefix: CondaPrefixFactory, mkl_channel: Path) -> None:
    prefix = conda_prefix(mkl_channel, ["numpy"])
    result = run_vbridge("annotate", "--dry-run", "--variants-toml", str(prefix))
    assert f"vbridge: would write {prefix / 'variants.toml'}" in result.stdout
    assert not (prefix / "variants.toml").exists()


def test_nothing_coupled_installed_means_no_file(
    conda_prefix: CondaPrefixFactory, mkl_channel: Path
) -> None:
    prefix = conda_prefix(mkl_channel, ["six"])
    result = run_vbridge("annotate", "--variants-toml", str(prefix))
    assert "no coupled build installed" in result.stdout
    assert not (prefix / "variants.toml").exists()


def test_conda_sync_keeps_it_current(
    tmp_path: Path, conda_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A BLAS switch by a conda transaction rewrites the variants.toml vbridge keeps."""
    from vbridge.integrations.conda.transaction import (
        PackageRef,
        TransactionChange,
        sync_transaction,
    )

    openblas_libs = [
        p
        for p in condaenv.science_packages("openblas")
        if p.name in {"libblas", "libcblas", "liblapack"}
    ]
    channel = condaenv.build_channel(
        tmp_path_factory.mktemp("channels") / "both",
        [*condaenv.science_packages("mkl"), *openblas_libs],
    )
    prefix = condaenv.install(channel, ["numpy", "libblas=*=*mkl"], tmp_path / "env", conda_cache)
    run_vbridge("annotate", "--variants-toml", str(prefix), check=True)
    before = {p.name for p in (prefix / "conda-meta").glob("*.json")}
    condaenv.install(channel, ["numpy", "libblas=*=*openblas"], prefix, conda_cache)
    after = {p.name for p in (prefix / "conda-meta").glob("*.json")}
    change = TransactionChange(
        tuple(PackageRef(*n[:-5].rsplit("-", 2)) for n in sorted(after - before)),
        tuple(PackageRef(*n[:-5].rsplit("-", 2)) for n in sorted(before - after)),
    )
    outcome = sync_transaction(prefix, change)
    assert outcome.variants_toml.startswith("vbridge: rewrote")
    config = VariantConfiguration.get_config_from_file(prefix / "variants.toml")
    assert config.property_priorities["blas_lapack"]["provider"] == ["openblas"]

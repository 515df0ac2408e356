"""``vbridge annotate --variants-toml`` / ``vbridge clean``: the environment's
variants.toml, checked with variantlib's own configuration loader and resolver running
in the environment's interpreter (so ``sys.prefix`` is the conda prefix).

Every location variantlib reads (``variantlib.configuration.get_configuration_files``:
working directory, ``sys.prefix``, user, global; the first found wins) is exercised:
the user's and the global file are merged in (or the write is refused), one in the
working directory is reported by ``vbridge scan``. The user and global directories are
those of platformdirs, moved into the test's directory with ``XDG_CONFIG_HOME`` and
``XDG_CONFIG_DIRS`` for vbridge and the installer alike."""

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
from vbridge.integrations.conda.transaction import PackageRef

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


@pytest.fixture(autouse=True)
def config_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """User and global configuration directories of the test's own (none exists yet)."""
    home = tmp_path / "home"
    dirs = {"user": home / ".config" / "variantlib", "global": tmp_path / "etc-xdg" / "variantlib"}
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "etc-xdg"))
    return dirs


def rank_in(python: Path, workdir: Path) -> list[str]:
    """What an installer running in that environment (and directory) would pick."""
    workdir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [str(python), "-c", RANK, json.dumps(STATIC_VARIANTS)],
        capture_output=True,
        text=True,
        cwd=workdir,
        env=dict(os.environ),
        check=True,
    )
    labels: list[str] = json.loads(result.stdout)
    return labels


def vbridge_in(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("vbridge")
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def write_config(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_the_users_file_is_merged_in_users_priorities_first(
    conda_prefix: CondaPrefixFactory, mkl_channel: Path, tmp_path: Path,
    config_dirs: dict[str, Path],
) -> None:
    prefix = conda_prefix(mkl_channel, ["numpy", "h5py"])
    python = condapython.make_python_environment(prefix)
    user = write_config(
        config_dirs["user"] / "variants.toml",
        'namespace_priorities = ["x86_64", "blas_lapack"]\n'
        "[property_priorities.blas_lapack]\nprovider = [\"openblas\"]\n"
        "[property_priorities.x86_64]\nlevel = [\"v3\"]\n",
    )
    work = tmp_path / "work"
    assert rank_in(python, work) == ["openblas", "mkl", "null"]  # the user's file rules

    result = run_vbridge("annotate", "--variants-toml", str(prefix))
    assert result.returncode == 0, result.stderr
    assert f"merged with {user}" in result.stdout
    config = VariantConfiguration.get_config_from_file(prefix / "variants.toml")
    # The user's order first, then the installed build; the user's other tables kept.
    assert config.property_priorities["blas_lapack"]["provider"] == ["openblas", "mkl"]
    assert config.property_priorities["x86_64"]["level"] == ["v3"]
    assert config.property_priorities["mpi"]["implementation"] == ["openmpi"]
    assert config.namespace_priorities == ["x86_64", "blas_lapack"]
    # The environment's file now wins over the user's, and says the same thing first.
    assert rank_in(python, work) == ["openblas", "mkl", "null"]
    assert "warning" not in vbridge_in(work, "scan", str(prefix)).stderr

    # The user changes their file: the environment's copy is out of date, scan says so.
    user.write_text("[property_priorities.blas_lapack]\nprovider = [\"blis\"]\n")
    scan = vbridge_in(work, "scan", str(prefix))
    assert f"hides {user}, which changed since it was merged" in scan.stderr
    run_vbridge("annotate", "--variants-toml", str(prefix), check=True)
    config = VariantConfiguration.get_config_from_file(prefix / "variants.toml")
    assert config.property_priorities["blas_lapack"]["provider"] == ["blis", "mkl"]
    assert "warning" not in vbridge_in(work, "scan", str(prefix)).stderr


def test_the_global_file_is_merged_when_there_is_no_users(
    conda_prefix: CondaPrefixFactory, mkl_channel: Path, config_dirs: dict[str, Path]
) -> None:
    prefix = conda_prefix(mkl_channel, ["numpy"])
    site = write_config(
        config_dirs["global"] / "variants.toml",
        "[property_priorities.openmp]\nprovider = [\"gnu\"]\n",
    )
    result = run_vbridge("annotate", "--variants-toml", str(prefix))
    assert f"merged with {site}" in result.stdout
    config = VariantConfiguration.get_config_from_file(prefix / "variants.toml")
    assert config.property_priorities["openmp"]["provider"] == ["gnu", "llvm"]
    assert config.property_priorities["blas_lapack"]["provider"] == ["mkl"]


def test_a_user_preference_the_installed_builds_refuse_means_no_file(
    conda_prefix: CondaPrefixFactory, mkl_channel: Path, config_dirs: dict[str, Path]
) -> None:
    prefix = conda_prefix(mkl_channel, ["h5py"])  # built for Open MPI
    user = write_config(
        config_dirs["user"] / "variants.toml",
        "[property_priorities.mpi]\nimplementation = [\"mpich\"]\n",
    )
    result = run_vbridge("annotate", "--variants-toml", str(prefix))
    assert result.returncode == 0, result.stderr
    assert (
        f"{user} prefers mpi :: implementation :: mpich, but the builds installed here need "
        "openmpi" in result.stdout
    )
    assert "Nothing written" in result.stdout
    assert not (prefix / "variants.toml").exists()


def test_an_unreadable_user_file_is_one_line(
    conda_prefix: CondaPrefixFactory, mkl_channel: Path, config_dirs: dict[str, Path]
) -> None:
    prefix = conda_prefix(mkl_channel, ["numpy"])
    user = write_config(config_dirs["user"] / "variants.toml", "[property_priorities\n")
    result = run_vbridge("annotate", "--variants-toml", str(prefix))
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert str(user) in line and "variantlib cannot read it" in line
    assert not (prefix / "variants.toml").exists()


def test_scan_warns_when_the_working_directory_hides_the_environments_file(
    conda_prefix: CondaPrefixFactory, mkl_channel: Path, tmp_path: Path
) -> None:
    prefix = conda_prefix(mkl_channel, ["numpy"])
    python = condapython.make_python_environment(prefix)
    run_vbridge("annotate", "--variants-toml", str(prefix), check=True)
    work = tmp_path / "project"
    local = write_config(
        work / "variants.toml", "[property_priorities.blas_lapack]\nprovider = [\"openblas\"]\n"
    )
    # variantlib reads the working directory's file first: the environment's is ignored.
    assert rank_in(python, work) == ["openblas", "mkl", "null"]
    assert rank_in(python, tmp_path / "elsewhere") == ["mkl", "openblas", "null"]
    scan = vbridge_in(work, "scan", str(prefix))
    assert scan.returncode == 0
    assert f"vbridge: warning: {local} hides {prefix / 'variants.toml'}" in scan.stderr
    assert "warning" not in vbridge_in(tmp_path / "elsewhere", "scan", str(prefix)).stderr


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
        tuple(_package_ref(n) for n in sorted(after - before)),
        tuple(_package_ref(n) for n in sorted(before - after)),
    )
    outcome = sync_transaction(prefix, change)
    assert outcome.variants_toml.startswith("vbridge: rewrote")
    config = VariantConfiguration.get_config_from_file(prefix / "variants.toml")
    assert config.property_priorities["blas_lapack"]["provider"] == ["openblas"]


def _package_ref(record_file: str) -> PackageRef:
    """``numpy-1.26.4-py311h_0.json`` -> the package conda linked or unlinked."""
    name, version, build = record_file[: -len(".json")].rsplit("-", 2)
    return PackageRef(name, version, build)

"""vbridge's provider plugins answer for the target inside pip's real ``BuildEnvironment``.

The wheelnext pip fork installs a package's variant providers into a ``BuildEnvironment``
(``install_requirements(finder, requires, "normal", kind="variant providers")``) and
calls variantlib's ``get_variants_by_priority`` inside ``with build_env:``; variantlib
runs the plugin in a subprocess of the installer's interpreter whose ``sys.path`` holds
only the build environment (pip's sitecustomize drops the interpreter's own
site-packages). This test does exactly that with pip 25.1 (pinned, from the package
index, installed beside the test venv) running in the target's interpreter (a conda
prefix built by py-rattler, MKL build of numpy), vbridge installed into the build
environment from a wheel built from this tree (its dependencies from the index).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import condapython
import pytest
from conftest import CondaPrefixFactory

pytestmark = [
    pytest.mark.network,
    pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="the test channel's python is 3.11"),
]

PIP_VERSION = "25.1"
REPO = Path(__file__).resolve().parent.parent

# Run by the target's interpreter, as the pip fork's variant.py does it.
DRIVER = r"""
import json, subprocess, sys
pip_dir, wheelhouse, variants_json = sys.argv[1:4]
sys.path.insert(0, pip_dir)
import pip
assert pip.__version__ == sys.argv[4], pip.__version__
from pip._internal.build_env import BuildEnvironment
from pip._internal.commands.install import InstallCommand
from pip._internal.utils.temp_dir import global_tempdir_manager, tempdir_registry
from variantlib.api import get_variants_by_priority
from variantlib.variants_json import VariantsJson

info = VariantsJson(json.loads(variants_json))
command = InstallCommand("install", "install")
options, _ = command.parse_args(["--find-links", wheelhouse])
with command.main_context(), global_tempdir_manager(), tempdir_registry():
    session = command.get_default_session(options)
    finder = command._build_package_finder(options, session)
    build_env = BuildEnvironment()
    build_env.install_requirements(
        finder, sorted(info.get_provider_requires()), "normal", kind="variant providers"
    )
    with build_env:
        inside = subprocess.run(
            [sys.executable, "-c",
             "import json, sys, vbridge; print(json.dumps([sys.path, vbridge.__file__]))"],
            capture_output=True, text=True, check=True,
        )
        labels = [v.label for v in get_variants_by_priority(variants_json=info)]
print(json.dumps({"labels": labels, "inside": json.loads(inside.stdout)}))
"""


def variants_json(namespace: str, feature: str, values: list[str]) -> dict[str, object]:
    return {
        "$schema": "https://variants-schema.wheelnext.dev/v0.2.0.json",
        "default-priorities": {"namespace": [namespace]},
        "providers": {
            namespace: {
                "requires": ["vbridge"],
                "plugin-api": f"vbridge.variant_plugin:{namespace}",
            }
        },
        "variants": {value: {namespace: {feature: [value]}} for value in values} | {"null": {}},
    }


@pytest.fixture(scope="module")
def pinned_pip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("pip-25.1")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "--target", str(target), f"pip=={PIP_VERSION}"],
        check=True, timeout=600,
    )
    return target


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheelhouse")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check",
         "--no-deps", "-w", str(out), str(REPO)],
        check=True, timeout=600,
    )
    return out


def test_plugin_answers_for_the_target_inside_pips_build_environment(
    conda_prefix: CondaPrefixFactory, mkl_channel: Path, pinned_pip: Path, wheelhouse: Path
) -> None:
    prefix = conda_prefix(mkl_channel, ["numpy", "scipy", "h5py"])
    python = condapython.make_python_environment(prefix)
    data = variants_json("blas_lapack", "provider", ["openblas", "mkl", "blis"])
    result = subprocess.run(
        [str(python), "-c", DRIVER, str(pinned_pip), str(wheelhouse), json.dumps(data),
         PIP_VERSION],
        capture_output=True, text=True, timeout=900, cwd=prefix,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.splitlines()[-1])
    sys_path, vbridge_file = answer["inside"]
    # Isolation is real: the target's site-packages is not importable in there, and
    # vbridge is the copy pip installed into the build environment.
    site = str(condapython.site_packages(prefix))
    assert not any(entry.startswith(site) for entry in sys_path)
    assert not vbridge_file.startswith(site) and not vbridge_file.startswith(str(REPO))
    # Yet the plugin answers for the target: the MKL build installed there comes first.
    assert answer["labels"] == ["mkl", "openblas", "blis", "null"]

    data = variants_json("mpi", "implementation", ["mpich", "openmpi"])
    result = subprocess.run(
        [str(python), "-c", DRIVER, str(pinned_pip), str(wheelhouse), json.dumps(data),
         PIP_VERSION],
        capture_output=True, text=True, timeout=900, cwd=prefix,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.splitlines()[-1])["labels"] == ["openmpi", "null"]


def test_an_explicit_target_variable_wins(
    conda_prefix: CondaPrefixFactory, mkl_channel: Path, openblas_channel: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An installer that runs providers under an interpreter of its own names the target
    with $VBRIDGE_VARIANT_TARGET (a prefix or an interpreter)."""
    from variantlib.api import get_variants_by_priority
    from variantlib.plugins.loader import VARIANT_PROVIDER_CACHE_TABLE

    mkl = conda_prefix(mkl_channel, ["numpy"])
    openblas = conda_prefix(openblas_channel, ["numpy"])
    data = variants_json("blas_lapack", "provider", ["openblas", "mkl"])
    python = condapython.make_python_environment(mkl)
    for target, first in ((str(openblas), "openblas"), (str(mkl), "mkl"), (str(python), "mkl")):
        monkeypatch.setenv("VBRIDGE_VARIANT_TARGET", target)
        VARIANT_PROVIDER_CACHE_TABLE.clear()
        labels = [v.label for v in get_variants_by_priority(variants_json=data)]
        assert labels[0] == first, (target, labels)

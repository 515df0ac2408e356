"""A venv on Debian's python3 with --system-site-packages: the Debian layer and the venv
layer in one scan.

The venv is real (``/usr/bin/python3 -m venv``), and so is what is in it: pip's
ensurepip wheel and threadpoolctl from the package index, shadowing Debian's
python3-threadpoolctl.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import run_vbridge, validate_document
from debian_root import DEBIAN_PYTHON, debian_installed, requires_debian_numpy
from vbridge.scan import scan_environment

pytestmark = [pytest.mark.debian, pytest.mark.network, requires_debian_numpy]

PROJECT = Path(__file__).resolve().parents[1]
DEBIAN_LAYER = "/usr/lib/python3/dist-packages"
THREADPOOLCTL = "3.5.0"  # a PyPI version Debian 12 does not ship (it has 3.1.0)


@pytest.fixture(scope="module")
def debian_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not debian_installed("python3-venv") or not debian_installed("python3-threadpoolctl"):
        pytest.skip("python3-venv and python3-threadpoolctl are in tools/debian-packages.txt")
    venv = tmp_path_factory.mktemp("debian-venv") / "venv"
    subprocess.run(
        [str(DEBIAN_PYTHON), "-m", "venv", "--system-site-packages", str(venv)],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [str(venv / "bin/python"), "-m", "pip", "install", "-q", "--no-deps",
         "--disable-pip-version-check", f"threadpoolctl=={THREADPOOLCTL}"],
        check=True,
        capture_output=True,
    )
    return venv


def site_packages(venv: Path) -> str:
    return str(next(venv.glob("lib/python3*/site-packages")))


def check_layers(document: dict[str, Any], venv: Path) -> None:
    (env,) = document["environments"]
    assert env["path"] == str(venv)
    assert "apt" in env["ecosystems"]
    layers = env["site_packages"]
    assert layers.index(site_packages(venv)) < layers.index(DEBIAN_LAYER)
    dists = env["distributions"]

    numpy = next(d for d in dists if d["name"] == "numpy")
    assert numpy["layer"] == DEBIAN_LAYER
    assert numpy["owner"]["ecosystem"] == "apt" and numpy["owner"]["name"] == "python3-numpy"
    # The same properties as a scan of the Debian root itself.
    root_numpy = next(d for d in scan_environment(Path("/")).distributions if d.name == "numpy")
    assert numpy["properties"] == sorted(p.to_str() for p in root_numpy.properties)
    assert any(p.startswith("blas_lapack :: provider :: ") for p in numpy["properties"])

    pips = [d for d in dists if d["name"] == "pip" and d["layer"] == site_packages(venv)]
    assert len(pips) == 1 and pips[0]["installer"] == "pip" and pips[0]["owner"] is None

    pools = {d["layer"]: d for d in dists if d["name"] == "threadpoolctl"}
    assert pools[site_packages(venv)]["version"] == THREADPOOLCTL
    assert pools[site_packages(venv)]["installer"] == "pip"
    assert pools[DEBIAN_LAYER]["owner"]["name"] == "python3-threadpoolctl"
    shadowed = [
        f
        for f in env["findings"]
        if f["code"] == "shadowed-foreign" and f["distributions"] == ["threadpoolctl"]
    ]
    assert len(shadowed) == 1
    assert "python3-threadpoolctl" in shadowed[0]["message"]


def test_scan_python_of_a_system_site_packages_venv(debian_venv: Path) -> None:
    result = run_vbridge("scan", "--python", str(debian_venv / "bin/python"), "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    validate_document(doc)
    check_layers(doc, debian_venv)


def test_vbridge_installed_in_that_venv_scans_it_without_arguments(
    debian_venv: Path, tmp_path: Path
) -> None:
    subprocess.run(
        [str(debian_venv / "bin/python"), "-m", "pip", "install", "-q",
         "--disable-pip-version-check", str(PROJECT)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    result = subprocess.run(
        [str(debian_venv / "bin/vbridge"), "scan", "--json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    validate_document(doc)
    check_layers(doc, debian_venv)

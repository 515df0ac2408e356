"""The wheel carries what the conda and variant integrations need: the link-script
templates, the plugin data and both entry point groups."""

from __future__ import annotations

import configparser
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.mark.network  # build isolation installs setuptools from the index
def test_wheel_ships_templates_data_and_entry_points(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheel = zipfile.ZipFile(next(tmp_path.glob("vbridge-*.whl")))
    names = set(wheel.namelist())
    for path in (
        "vbridge/data/post-link.sh",
        "vbridge/data/pre-unlink.sh",
        "vbridge/data/variant_plugins.toml",
        "vbridge/integrations/conda/plugin.py",
        "vbridge/integrations/variant_plugin.py",
    ):
        assert path in names
    entry_points = configparser.ConfigParser()
    entry_points.read_string(
        wheel.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    )
    assert entry_points["conda"]["vbridge"] == "vbridge.integrations.conda.plugin"
    assert dict(entry_points["variant_plugins"]) == {
        "vbridge_blas_lapack": "vbridge.variant_plugin:blas_lapack",
        "vbridge_hdf5": "vbridge.variant_plugin:hdf5",
        "vbridge_mpi": "vbridge.variant_plugin:mpi",
        "vbridge_openmp": "vbridge.variant_plugin:openmp",
    }

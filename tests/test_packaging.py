"""vbridge as users install it: a wheel in a fresh venv, an editable install, a light CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import run_vbridge, validate_document

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    return next(out.glob("vbridge-*.whl"))


@pytest.mark.network
def test_wheel_ships_the_package_adapters_and_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in ("vbridge/cli.py", "vbridge/adapters/conda.py", "vbridge/data/conda.toml"):
        assert module in names
    assert "vbridge/data/demo.json" in names
    assert not any(n.startswith(("bridge/", "adapters/", "tests/")) for n in names)


@pytest.mark.network
def test_wheel_works_in_a_fresh_venv(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "--disable-pip-version-check", str(wheel)], check=True)
    result = subprocess.run(
        [str(venv / "bin" / "vbridge"), "scan", "--demo", "--json"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1, result.stderr  # the demo's broken conda scipy
    validate_document(json.loads(result.stdout))
    env = json.loads(result.stdout)["environments"][0]
    assert any(f["code"] == "replaced-foreign" for f in env["findings"])
    assert any(f["code"] == "broken-dependent" for f in env["findings"])
    # And it sees itself: the venv's own interpreter, vbridge installed by pip.
    result = subprocess.run(
        [str(venv / "bin" / "vbridge"), "scan", "--json"], capture_output=True, text=True
    )
    assert result.returncode in (0, 1), result.stderr
    validate_document(json.loads(result.stdout))
    dists = {d["name"]: d for d in json.loads(result.stdout)["environments"][0]["distributions"]}
    assert dists["vbridge"]["installer"] == "pip" and dists["vbridge"]["owner"] is None


def test_editable_install_is_what_tests_run() -> None:
    import vbridge

    assert Path(vbridge.__file__).resolve().parent == ROOT / "bridge"


def test_version_is_the_installed_distribution_version() -> None:
    from importlib.metadata import version

    result = run_vbridge("--version")
    assert result.returncode == 0
    assert result.stdout == f"vbridge {version('vbridge')}\n"


def test_help_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys\n"
        "from vbridge.cli import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('rattler', 'variantlib.api', 'debian', 'sqlite_utils',"
        " 'elftools', 'archspec', 'vbridge.scan') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "HEAVY []" in out


def test_scan_python_sees_every_layer(tmp_path: Path) -> None:
    # A venv with --system-site-packages over this interpreter: both layers are listed.
    venv = tmp_path / "layered"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        check=True,
    )
    result = run_vbridge("scan", "--json", "--python", str(venv / "bin" / "python"))
    assert result.returncode in (0, 1), result.stderr
    validate_document(json.loads(result.stdout))
    env = json.loads(result.stdout)["environments"][0]
    assert env["path"] == str(venv)
    layers = env["site_packages"]
    assert layers[0].startswith(str(venv))
    assert len(layers) >= 2  # the venv's own, then the base interpreter's
    # The venv (--without-pip) holds nothing itself: everything listed comes from the base.
    assert env["distributions"]
    assert {d["layer"] for d in env["distributions"]} <= set(layers[1:])

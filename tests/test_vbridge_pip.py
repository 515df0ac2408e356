"""`vbridge pip` is pip (issue 14, point 2): its arguments mean what pip takes them to
mean, and what it installs is what plain pip installs.

Real pip in real venvs, real wheels from the package index (pinned): a twin venv gets
the same requirements from plain pip, and the two are compared (`pip freeze`, `pip
inspect`, the files of each dist-info).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import gateenv
import pytest

VBRIDGE = str(Path(sys.executable).with_name("vbridge"))
# Small pure-Python wheels: pytest pulls iniconfig, packaging and pluggy.
PYTEST = "pytest==8.3.3"
INICONFIG = "iniconfig==2.0.0"

pytestmark = pytest.mark.network


def _env(venv: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CONDA_PREFIX")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    if venv is not None:
        env["VIRTUAL_ENV"] = str(venv)
    return env


def vpip(
    venv: Path | None, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``vbridge pip ARGS`` with ``venv`` active (``$VIRTUAL_ENV``)."""
    return subprocess.run(
        [VBRIDGE, "pip", *args], capture_output=True, text=True, env=_env(venv),
        cwd=cwd, timeout=600,
    )


def pip(venv: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Plain pip of ``venv``."""
    return subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", *args], capture_output=True, text=True,
        env=_env(venv), cwd=cwd, timeout=600,
    )


def _site(venv: Path) -> Path:
    return next(venv.glob("lib/python3*/site-packages"))


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    gateenv.make_venv(tmp_path / "venv")
    return tmp_path / "venv"


def test_version_help_and_general_options_are_pips(venv: Path) -> None:
    for args in (["--version"], ["-V"], ["--help"], ["help", "install"], ["install", "-h"]):
        ours, plain = vpip(venv, *args), pip(venv, *args)
        assert (ours.returncode, ours.stdout) == (plain.returncode, plain.stdout), args
    assert f"from {_site(venv)}/pip " in vpip(venv, "-V").stdout  # the active venv's pip
    # General options before the command: pip's -q, -v, --isolated.
    for args in (["-q", "list"], ["-v", "--isolated", "list", "--format", "json"]):
        ours, plain = vpip(venv, *args), pip(venv, *args)
        assert (ours.returncode, ours.stdout) == (plain.returncode, plain.stdout), args
    assert vpip(venv, "-q", "list").stdout == ""  # pip's -q silences even its listing
    listed = vpip(venv, "--isolated", "list", "--format", "json")
    assert "pip" in {d["name"] for d in json.loads(listed.stdout)}
    # pip's own errors, as pip gives them.
    ours = vpip(venv, "install", "--no-such-option")
    plain = pip(venv, "install", "--no-such-option")
    assert ours.returncode == plain.returncode == 2
    assert ours.stderr.splitlines()[-1] == plain.stderr.splitlines()[-1]


def test_python_before_or_after_the_command(tmp_path: Path, venv: Path) -> None:
    other = tmp_path / "other"
    python = gateenv.make_venv(other)
    quiet = vpip(venv, "-q", "--python", str(python), "install", INICONFIG)
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    assert quiet.stdout == ""  # -q reached pip's final install
    assert list(_site(other).glob("iniconfig-2.0.0.dist-info"))
    assert not list(_site(venv).glob("iniconfig-*"))
    # The older spelling, --python after the command, still works.
    late = vpip(None, "uninstall", "--python", str(python), "-y", "iniconfig")
    assert late.returncode == 0, late.stdout + late.stderr
    assert not list(_site(other).glob("iniconfig-*"))


def test_abbreviations_and_joined_values_mean_what_pip_reads(tmp_path: Path, venv: Path) -> None:
    target = tmp_path / "target"
    abbreviated = vpip(venv, "install", "--targ", str(target), INICONFIG)
    assert abbreviated.returncode == 0, abbreviated.stdout + abbreviated.stderr
    assert list(target.glob("iniconfig-2.0.0.dist-info"))
    joined = tmp_path / "joined"
    short = vpip(venv, "install", f"-t{joined}", "--no-compile", INICONFIG)
    assert short.returncode == 0, short.stdout + short.stderr
    assert list(joined.glob("iniconfig-2.0.0.dist-info"))
    assert not list(_site(venv).glob("iniconfig-*"))  # neither went into the venv

    dry = vpip(venv, "install", "--dry", INICONFIG)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "Would install iniconfig-2.0.0" in dry.stderr
    assert not list(_site(venv).glob("iniconfig-*"))

    report = tmp_path / "report.json"
    reported = vpip(venv, "install", f"--repo={report}", INICONFIG)
    assert reported.returncode == 0, reported.stdout + reported.stderr
    (item,) = json.loads(report.read_text())["install"]
    assert item["metadata"]["name"] == "iniconfig" and item["requested"] is True
    assert list(_site(venv).glob("iniconfig-2.0.0.dist-info"))

    before = (_site(venv) / "iniconfig-2.0.0.dist-info" / "RECORD").stat().st_mtime_ns
    again = vpip(venv, "install", "--force-reinstall", INICONFIG)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Successfully installed iniconfig-2.0.0" in again.stdout
    after = (_site(venv) / "iniconfig-2.0.0.dist-info" / "RECORD").stat().st_mtime_ns
    assert after != before
    # `--force` is pip's (an abbreviation of --force-reinstall), not vbridge's.
    forced = vpip(venv, "install", "--force", INICONFIG)
    assert forced.returncode == 0 and "Successfully installed iniconfig" in forced.stdout


def test_installed_result_equals_plain_pips(tmp_path: Path) -> None:
    ours_venv, plain_venv = tmp_path / "ours", tmp_path / "plain"
    gateenv.make_venv(ours_venv)
    gateenv.make_venv(plain_venv)
    ours = vpip(ours_venv, "install", PYTEST)
    plain = pip(plain_venv, "install", PYTEST)
    assert ours.returncode == plain.returncode == 0, ours.stdout + ours.stderr
    # pip's progress reaches the user (the dry run and the download on stderr).
    assert "Collecting pytest==8.3.3" in ours.stderr
    freeze_ours, freeze_plain = pip(ours_venv, "freeze").stdout, pip(plain_venv, "freeze").stdout
    assert freeze_ours == freeze_plain
    assert "@ file:" not in freeze_ours and "pytest==8.3.3" in freeze_ours

    def requested(venv: Path) -> dict[str, bool]:
        doc = json.loads(pip(venv, "inspect").stdout)
        return {d["metadata"]["name"].lower(): d["requested"] for d in doc["installed"]}

    assert requested(ours_venv) == requested(plain_venv)
    seeds = {"pip", "setuptools"}  # what ensurepip installed, requested by venv
    assert {n for n, r in requested(ours_venv).items() if r} - seeds == {"pytest"}
    for dist_info in _site(plain_venv).glob("*.dist-info"):
        twin = _site(ours_venv) / dist_info.name
        assert sorted(p.name for p in twin.iterdir()) == sorted(p.name for p in dist_info.iterdir())
        assert not (twin / "direct_url.json").exists()


def test_pip_failures_keep_pips_exit_status(tmp_path: Path, venv: Path) -> None:
    """A build failure is pip's: its output, its status; never the refusal's 1 plus a
    vbridge message that something was refused."""
    project = tmp_path / "broken"
    project.mkdir()
    (project / "setup.py").write_text("raise SystemExit('this project does not build')\n")
    ours = vpip(venv, "install", "--no-build-isolation", str(project))
    plain = pip(venv, "install", "--no-build-isolation", str(project))
    assert ours.returncode == plain.returncode != 0
    assert "this project does not build" in ours.stderr
    assert "refusing" not in ours.stderr


def test_vbridge_options_carry_its_prefix(venv: Path) -> None:
    unknown = vpip(venv, "install", "--warn-only", INICONFIG)  # pip has no such option
    assert unknown.returncode == 2 and "no such option: --warn-only" in unknown.stderr
    ok = vpip(venv, "install", "--vbridge-warn-only", "--vbridge-force", INICONFIG)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert list(_site(venv).glob("iniconfig-2.0.0.dist-info"))


def test_no_environment_active_means_the_pip_on_path(tmp_path: Path, venv: Path) -> None:
    """With no venv or conda environment active, the interpreter of the first `pip` on
    PATH after vbridge's own (here a venv's bin/ put first)."""
    env = _env(None)
    env["PATH"] = os.pathsep.join([str(Path(VBRIDGE).parent), str(venv / "bin"), env["PATH"]])
    shown = subprocess.run(
        [VBRIDGE, "pip", "-V"], capture_output=True, text=True, env=env, timeout=120
    )
    assert shown.returncode == 0, shown.stderr
    assert f"from {_site(venv)}/pip " in shown.stdout

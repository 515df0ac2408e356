"""A bug in vbridge exits 3 with one line asking for a report and the traceback in a log;
never the 1 of a refusal or the 2 of bad input."""

from __future__ import annotations

import errno
import sys
from pathlib import Path

import pytest
import vbridge.scan
from typer.testing import CliRunner
from vbridge import entry_point
from vbridge.cli import app


def _broken(*args: object, **kwargs: object) -> object:
    raise RuntimeError("an invariant vbridge relies on did not hold")


@pytest.fixture
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setattr(vbridge.scan, "scan_environment", _broken)
    return tmp_path / "state" / "vbridge"


def test_a_bug_in_a_command_exits_3_with_a_log(state_home: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["scan", str(tmp_path)])
    assert result.exit_code == 3
    line = result.stderr.strip()
    assert line.count("\n") == 0
    assert line.startswith("vbridge: internal error (RuntimeError: an invariant")
    assert "please report it" in line
    (log,) = state_home.glob("crash-*.log")
    assert str(log) in line
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "RuntimeError" in text


def test_the_console_script_exits_3_too(
    state_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sys, "argv", ["vbridge", "scan", str(tmp_path)])
    with pytest.raises(SystemExit) as exited:
        entry_point.main()
    assert exited.value.code == 3
    assert "please report it" in capsys.readouterr().err
    (log,) = state_home.glob("crash-*.log")
    assert log.read_text().splitlines()[1] == f"command: vbridge scan {tmp_path}"


def test_a_full_disk_is_not_a_bug(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))

    def full(*args: object, **kwargs: object) -> object:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x"))

    monkeypatch.setattr(vbridge.scan, "scan_environment", full)
    result = CliRunner().invoke(app, ["scan", str(tmp_path)])
    assert result.exit_code == 2
    assert "no space left on device" in result.stderr
    assert not (tmp_path / "state").exists()

"""Nothing of the inspected environment or the working directory runs in an interpreter
vbridge starts, and no interpreter starts where none is needed."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
from vbridge.interpreters import ask_python, run_python
from vbridge.scan import interpreter_layers

VBRIDGE = str(Path(sys.executable).with_name("vbridge"))


def _trap(directory: Path, marker: Path) -> None:
    """Modules named like those vbridge's questions import: each one writes ``marker``."""
    for name in ("json", "site", "os", "sitecustomize", "usercustomize", "sysconfig"):
        (directory / f"{name}.py").write_text(
            f"open({str(marker)!r}, 'a').write({name!r} + '\\n')\n", encoding="utf-8"
        )


@pytest.fixture
def trapped_venv(tmp_path: Path) -> tuple[Path, Path]:
    """A venv whose site-packages holds a .pth that runs code, and its marker file."""
    env = tmp_path / "env"
    venv.EnvBuilder(with_pip=False).create(env)
    marker = tmp_path / "ran"
    layer = next((env / "lib").glob("python*/site-packages"))
    (layer / "evil.pth").write_text(
        f"import os; open({str(marker)!r}, 'a').write('pth\\n')\n", encoding="utf-8"
    )
    (layer / "sitecustomize.py").write_text(
        f"open({str(marker)!r}, 'a').write('sitecustomize\\n')\n", encoding="utf-8"
    )
    return env, marker


def test_the_layer_question_runs_nothing_of_the_environment(
    trapped_venv: tuple[Path, Path],
) -> None:
    env, marker = trapped_venv
    prefix, layers = interpreter_layers(str(env / "bin/python"))
    assert prefix == env
    assert layers[0] == next((env / "lib").glob("python*/site-packages"))
    assert not marker.exists()


def test_a_json_py_in_the_working_directory_is_never_imported(
    trapped_venv: tuple[Path, Path], tmp_path: Path
) -> None:
    env, marker = trapped_venv
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    _trap(cwd, marker)
    for args in (["scan", "--python", str(env / "bin/python")], ["scan", str(env)]):
        result = subprocess.run(
            [VBRIDGE, *args], cwd=cwd, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
    assert not marker.exists()


def test_questions_run_with_a_minimal_environment_in_an_empty_directory(tmp_path: Path) -> None:
    os.environ["VBRIDGE_TEST_SECRET"] = "1"
    try:
        answer = ask_python(
            sys.executable,
            "import json, os, sys; print(json.dumps([sorted(os.environ), os.listdir('.'),"
            " sys.flags.isolated, sys.flags.no_site]))",
        )
    finally:
        del os.environ["VBRIDGE_TEST_SECRET"]
    names, listing, isolated, no_site = answer
    assert "VBRIDGE_TEST_SECRET" not in names and "PYTHONPATH" not in names
    assert listing == [] and isolated == 1 and no_site == 1


def test_an_interpreter_that_hangs_is_one_line(tmp_path: Path) -> None:
    from vbridge.errors import NotAnEnvironment

    with pytest.raises(NotAnEnvironment, match="did not answer within 1 s"):
        run_python(sys.executable, ["-c", "import time; time.sleep(30)"], timeout=1,
                   what="answer")


def _wheel(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("demo/__init__.py", "")
        info = "demo-1.0.dist-info"
        zf.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n")
        wheel = "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        zf.writestr(f"{info}/WHEEL", wheel)
        zf.writestr("demo-1.0.dist-info/RECORD", "")
    return path


def test_check_of_a_local_wheel_starts_no_interpreter(tmp_path: Path) -> None:
    prefix = tmp_path / "prefix"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "lib/python3.11/site-packages").mkdir(parents=True)
    marker = tmp_path / "ran"
    python = prefix / "bin/python"
    python.write_text(f"#!/bin/sh\necho ran >> {marker}\nexit 1\n", encoding="utf-8")
    python.chmod(0o755)
    wheel = _wheel(tmp_path / "demo-1.0-py3-none-any.whl")
    result = subprocess.run(
        [VBRIDGE, "check", str(prefix), "--candidate", str(wheel)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "ok: no conflict found" in result.stdout
    assert not marker.exists()

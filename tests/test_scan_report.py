"""`vbridge scan [--json] [--strict] PREFIX` answers the same through the console
script's typer-free fast path (vbridge.scan_report) and through the typer app: the same
stdout, stderr and exit status, byte for byte; the fast path imports neither typer nor
click, and every other scan command line goes to typer."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from vbridge.scan_report import SCAN_FLAGS, scan_command

FIXTURES = Path(__file__).parent / "fixtures"

_RUN = """
import sys
sys.argv = ["vbridge", *{argv!r}]
from vbridge.{module} import main
try:
    main()
finally:
    print("TYPER" if "typer" in sys.modules or "click" in sys.modules else "NO-TYPER",
          file=sys.stderr)
"""


def _run(module: str, argv: list[str], cwd: Path) -> tuple[int, str, str, bool]:
    code = _RUN.format(argv=argv, module=module)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=120,
        env={"PATH": "/usr/bin:/bin", "XDG_CACHE_HOME": str(cwd / "cache"), "HOME": str(cwd)},
    )  # fmt: skip
    *stderr, marker = result.stderr.splitlines()
    return result.returncode, result.stdout, "\n".join(stderr), marker == "TYPER"


@pytest.fixture
def broken_prefix(tmp_path: Path) -> Path:
    prefix = tmp_path / "broken"
    shutil.copytree(FIXTURES / "conda" / "py36-osx-whl", prefix, symlinks=True)
    (next((prefix / "conda-meta").glob("numpy-*.json"))).write_text('{"name": "numpy", "ver')
    mistyped = next((prefix / "conda-meta").glob("h5py-*.json"))
    record = json.loads(mistyped.read_text())
    record["files"] = [1]
    mistyped.write_text(json.dumps(record))
    return prefix


@pytest.mark.parametrize("flags", [[], ["--json"], ["--strict"], ["--json", "--strict"]])
@pytest.mark.parametrize("which", ["py36-osx-whl", "rattler-conda-meta", "broken", "not-env"])
def test_fast_path_and_typer_print_the_same(
    tmp_path: Path, broken_prefix: Path, flags: list[str], which: str
) -> None:
    if which == "broken":
        prefix = broken_prefix
    elif which == "not-env":
        prefix = tmp_path / "empty"
        prefix.mkdir()
    else:
        prefix = FIXTURES / "conda" / which
    argv = ["scan", *flags, str(prefix)]
    fast = _run("entry_point", argv, tmp_path)
    typer = _run("cli", argv, tmp_path)
    assert fast[:3] == typer[:3]
    assert not fast[3] and typer[3]
    if which == "broken":
        assert "field files should be a list of strings, found a number" in fast[2]
        assert "malformed JSON" in fast[2]
        assert fast[0] == (2 if "--strict" in flags else fast[0])


@pytest.mark.parametrize("flags", [["--json"], ["--strict"]])
@pytest.mark.parametrize("form", ["--root DIR", "--root=DIR"])
def test_a_debian_root_prints_the_same_through_both(
    tmp_path: Path, flags: list[str], form: str
) -> None:
    from debian_root import lay_out_fixture_root

    root = lay_out_fixture_root(tmp_path / "debian")
    argv = ["scan", *flags, *form.replace("DIR", str(root)).split(" ")]
    assert scan_command(argv) == (
        str(root),
        {"as_json": "--json" in flags, "strict": "--strict" in flags},
    )
    fast = _run("entry_point", argv, tmp_path)
    typer = _run("cli", argv, tmp_path)
    assert fast[:3] == typer[:3]
    assert not fast[3] and typer[3]
    assert "no file list for" in fast[2]  # the fixture keeps only some lists
    if "--json" in flags:
        assert '"name": "numpy"' in fast[1]


def test_other_command_lines_go_to_typer(tmp_path: Path) -> None:
    prefix = str(FIXTURES / "conda" / "py36-osx-whl")
    assert scan_command(["scan", "--json", prefix]) == (
        prefix,
        {"as_json": True, "strict": False},
    )
    for argv in (
        ["scan"],
        ["scan", "--help"],
        ["scan", prefix, prefix],
        ["scan", "--db", "x.db", prefix],
        ["scan", "--python", sys.executable],
        ["scan", str(tmp_path / "missing")],
        ["scan", "--root", str(tmp_path)],  # no dpkg database: typer says so
        ["scan", "--root"],
        ["scan", "--root", "--json", prefix],
        ["scan", "--root", prefix, prefix],
        ["scan", "--root", prefix, "--root", prefix],
        ["check", prefix],
    ):
        assert scan_command(argv) is None, argv


def test_the_fast_path_flags_are_typer_scan_options() -> None:
    import typer.main
    from typer.core import TyperGroup  # typer's classes: typer >= 0.25 vendors click
    from vbridge.cli import app

    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    scan = group.commands["scan"]
    options = {opt for param in scan.params for opt in getattr(param, "opts", [])}
    assert set(SCAN_FLAGS) <= options

"""The console script's fast path for the conda link-script commands: it accepts exactly
the command lines the typer commands accept with these flags, runs them without typer,
and leaves everything else (help, mistakes) to the typer app."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
import typer
from typer.core import TyperCommand, TyperGroup, TyperOption
from vbridge.cli import app
from vbridge.entry_point import LINK_SCRIPT_COMMANDS, LINK_SCRIPT_FLAGS, link_script_command

VBRIDGE = Path(sys.executable).with_name("vbridge")


# typer's own classes, not click's: typer >= 0.25 vendors its own copy of click.
def typer_command(name: str) -> TyperCommand:
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    command = group.commands[name]
    assert isinstance(command, TyperCommand)
    return command


@pytest.mark.parametrize("name", sorted(LINK_SCRIPT_COMMANDS))
def test_fast_path_knows_every_option_of_the_typer_command(name: str) -> None:
    options = [p for p in typer_command(name).params if isinstance(p, TyperOption)]
    names = {opt for p in options for opt in (*p.opts, *p.secondary_opts)} - {"--help"}
    assert names == set(LINK_SCRIPT_FLAGS)
    assert all(p.is_flag and not p.secondary_opts for p in options)


@pytest.mark.parametrize("name", sorted(LINK_SCRIPT_COMMANDS))
def test_both_paths_read_the_same_flags(name: str) -> None:
    flags = sorted(LINK_SCRIPT_FLAGS)
    lines = [list(c) for n in range(4) for c in itertools.permutations(flags, n)]
    lines += [["--strict", "--strict"], ["--verbose", "--strict", "--verbose"]]
    for args in lines:
        parsed = link_script_command([name, *args])
        assert parsed is not None, args
        kind, values = parsed
        assert kind == LINK_SCRIPT_COMMANDS[name]
        ctx = typer_command(name).make_context(name, list(args))
        assert ctx.params == values, args


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["scan"],
        ["conda-post-link", "--help"],
        ["conda-post-link", "--stric"],
        ["conda-pre-unlink", "--strict", "extra"],
        ["--verbose", "conda-post-link"],
    ],
)
def test_other_command_lines_go_to_typer(argv: list[str]) -> None:
    assert link_script_command(argv) is None


def test_help_and_mistakes_are_answered_by_typer() -> None:
    shown = subprocess.run(
        [str(VBRIDGE), "conda-post-link", "--help"], capture_output=True, text=True
    )
    assert shown.returncode == 0
    assert "--print-template" in shown.stdout and "post-link.sh" in shown.stdout
    wrong = subprocess.run(
        [str(VBRIDGE), "conda-pre-unlink", "--stric"], capture_output=True, text=True
    )
    assert wrong.returncode == 2
    assert "No such option" in wrong.stderr


@pytest.mark.parametrize("command", ["conda-post-link", "conda-pre-unlink"])
def test_print_template_imports_nothing_of_the_hook_nor_typer(command: str) -> None:
    code = (
        "import sys\n"
        "from vbridge.entry_point import main\n"
        f"sys.argv = ['vbridge', {command!r}, '--print-template']\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
        "heavy = ('vbridge.integrations.conda.link_scripts', 'dataclasses', 'msgspec',"
        " 'typing', 'typer', 'click')\n"
        "print('EXIT', code, [m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=os.environ
    ).stdout
    script = f"{LINK_SCRIPT_COMMANDS[command]}.sh"
    template = resources.files("vbridge.data").joinpath(script).read_text()
    assert out == template + "EXIT 0 []\n"


def test_version_is_printed_without_the_command_line_framework() -> None:
    """`vbridge --version` answers as the typer app does, importing neither typer nor
    click (bench/bench_startup.py measures it against a bare interpreter)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "sys.argv = ['vbridge', '--version']\n"
        "from vbridge.entry_point import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print([m for m in ('typer', 'click', 'vbridge.cli', 'msgspec') if m in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    from vbridge import __version__

    assert out == f"vbridge {__version__}\n[]\n"
    from typer.testing import CliRunner
    from vbridge.cli import app

    assert CliRunner().invoke(app, ["--version"]).output == f"vbridge {__version__}\n"


def test_the_console_script_leaves_a_link_script_command_at_once(tmp_path: Path) -> None:
    """``console()`` (the console script) ends a link-script command with os._exit: no
    interpreter teardown, no atexit handler; ``main()`` exits as usual."""
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('teardown'))\n"
        "from vbridge import entry_point\n"
        "sys.argv = ['vbridge', 'conda-post-link']\n"
        "entry_point.{}()\n"
    )
    variables = {"PREFIX": str(tmp_path), "PKG_NAME": "numpy", "PKG_VERSION": "1.26.4"}
    for function, said in (("console", ""), ("main", "teardown\n")):
        result = subprocess.run(
            [sys.executable, "-c", code.format(function)],
            capture_output=True,
            text=True,
            env={**os.environ, **variables},
        )
        assert (result.returncode, result.stdout) == (0, said), result.stderr
        assert "no conda-meta directory" in (tmp_path / ".messages.txt").read_text()


def test_the_console_script_leaves_a_fast_path_scan_at_once(tmp_path: Path) -> None:
    """A fast-path scan (kept or not) ends with os._exit under ``console()``, after its
    output is flushed: the same stdout and exit status as ``main()``, no teardown."""
    prefix = Path(__file__).parent / "fixtures" / "conda" / "py36-osx-whl"
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('teardown'))\n"
        "from vbridge import entry_point\n"
        f"sys.argv = ['vbridge', 'scan', '--json', {str(prefix)!r}]\n"
        "entry_point.{}()\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "VBRIDGE_NO_CACHE": "1"}
    outputs = {}
    for function in ("console", "main"):
        result = subprocess.run(
            [sys.executable, "-c", code.format(function)], capture_output=True, text=True, env=env
        )
        outputs[function] = (result.returncode, result.stdout)
    assert outputs["main"][1].endswith("}\nteardown\n")
    assert outputs["console"] == (outputs["main"][0], outputs["main"][1][: -len("teardown\n")])
    assert json.loads(outputs["console"][1])["environments"]


# What a scan that writes nothing does without, and what it would cost every start.
NOT_FOR_A_SCAN = {
    "variantlib": "its models, logging, hashlib: ~10 ms; only a variant.json writer needs it",
    "packaging.specifiers": "~5 ms; only Debian ABI packages and Requires-Dist bounds need it",
}


def test_a_scan_that_writes_nothing_imports_none_of_the_writers_parts(tmp_path: Path) -> None:
    """``scan --json`` of a conda prefix builds properties but writes no ``variant.json``
    nor ledger: none of :data:`NOT_FOR_A_SCAN` is imported, and the same scan still
    reports the prefix's properties."""
    prefix = Path(__file__).parent / "fixtures" / "real-tools" / "conda" / "conda-26.7-create-p3"
    code = (
        "import sys\n"
        "from vbridge import entry_point\n"
        f"sys.argv = ['vbridge', 'scan', '--json', {str(prefix)!r}]\n"
        "try:\n    entry_point.main()\nexcept SystemExit:\n    pass\n"
        f"heavy = {sorted(NOT_FOR_A_SCAN)!r}\n"
        "print([m for m in heavy if m in sys.modules], file=sys.stderr)\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "VBRIDGE_NO_CACHE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.stderr.splitlines()[-1] == "[]", NOT_FOR_A_SCAN
    (environment,) = json.loads(result.stdout)["environments"]
    assert any(d["properties"] for d in environment["distributions"])


def test_the_console_script_imports_msgspec_without_typing_extensions(tmp_path: Path) -> None:
    """``scan --json`` through the console script's :func:`main` imports msgspec with
    typing_extensions hidden: the scan reports the prefix's properties, typing_extensions
    is not imported by it, and a later ``import typing_extensions`` in the same process
    still works (the entry is gone again); in a process that imported typing_extensions
    first, nothing is hidden."""
    pytest.importorskip("typing_extensions")  # installed with the test extras' tools
    prefix = Path(__file__).parent / "fixtures" / "real-tools" / "conda" / "conda-26.7-create-p3"
    code = (
        "import sys\n"
        "{first}"
        "from vbridge import entry_point\n"
        f"sys.argv = ['vbridge', 'scan', '--json', {str(prefix)!r}]\n"
        "try:\n    entry_point.main()\nexcept SystemExit:\n    pass\n"
        "during = 'typing_extensions' in sys.modules\n"
        "import typing_extensions, msgspec._utils\n"
        "print(during, msgspec._utils._get_type_hints.__module__, file=sys.stderr)\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "VBRIDGE_NO_CACHE": "1"}
    outputs = {}
    for first in ("", "import typing_extensions\n"):
        result = subprocess.run(
            [sys.executable, "-c", code.format(first=first)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        (environment,) = json.loads(result.stdout)["environments"]
        assert any(d["properties"] for d in environment["distributions"])
        outputs[first] = (result.stdout, result.stderr.splitlines()[-1])
    assert outputs[""][1] == "False typing"
    assert outputs["import typing_extensions\n"][1] == "True typing_extensions"
    assert outputs[""][0] == outputs["import typing_extensions\n"][0]  # the same report

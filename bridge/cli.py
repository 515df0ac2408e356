"""The ``vbridge`` command line.

Exit codes: 0 nothing refused, 1 a refusal-level finding, 2 bad input or usage.
Heavy modules are imported inside the commands so ``vbridge --help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

if TYPE_CHECKING:
    from vbridge.model import Environment

app = typer.Typer(
    name="vbridge",
    help="Bridge conda, apt, Spack and pip install records into standard "
    "wheel-variant metadata (PEP 825) and check environments before pip breaks them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

PrefixArg = Annotated[
    Optional[list[Path]],  # noqa: UP045 - typer needs Optional on Python 3.10
    typer.Argument(
        help="Environment prefixes (conda prefix, venv, Debian root).", show_default=False
    ),
]
PythonOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option("--python", help="Scan the environment of this interpreter, every layer."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the JSON document.")]


@app.callback()
def _root() -> None:
    """Bridge conda, apt, Spack and pip install records into wheel-variant metadata."""


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"vbridge: {message}", err=True)
    return typer.Exit(code)


def resolve_environments(prefixes: list[Path] | None, python: str | None) -> list[Environment]:
    """The environments a command targets: prefixes, an interpreter, or this one."""
    from vbridge.scan import scan_environment, scan_python

    if prefixes and python:
        raise _fail("give environment prefixes or --python, not both")
    if prefixes:
        return [scan_environment(p.absolute()) for p in prefixes]
    return [scan_python(python or sys.executable)]


def _report_problems(envs: list[Environment]) -> None:
    for env in envs:
        for problem in env.problems:
            typer.echo(f"vbridge: {problem}", err=True)


def _exit_code(envs: list[Environment]) -> int:
    return 1 if any(f.severity == "refuse" for e in envs for f in e.findings) else 0


@app.command()
def scan(
    prefixes: PrefixArg = None,
    python: PythonOpt = None,
    as_json: JsonOpt = False,
    demo: Annotated[
        bool, typer.Option("--demo", help="Build the built-in demo environment and scan it.")
    ] = False,
    root: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--root", help="Scan this Debian root (dpkg --root): DIR/var/lib/dpkg."),
    ] = None,
) -> None:
    """Show who installed each distribution, which build it is, and what conflicts."""
    from vbridge.errors import VbridgeError
    from vbridge.report import render_json, render_table

    try:
        if root is not None:
            prefixes = [*(prefixes or []), _debian_root(root)]
        if demo:
            from vbridge.demo import build_demo_environment

            target = build_demo_environment()
            typer.echo(f"vbridge: demo environment built in {target}", err=True)
            prefixes = [target]
        envs = resolve_environments(prefixes, python)
    except VbridgeError as exc:
        raise _fail(str(exc), exc.exit_code) from None
    _report_problems(envs)
    typer.echo(render_json(envs) if as_json else render_table(envs), nl=False)
    raise typer.Exit(_exit_code(envs))


def _debian_root(root: Path) -> Path:
    """``--root DIR``: a directory laid out like ``/`` with a dpkg database."""
    from vbridge.adapters import apt
    from vbridge.errors import NotAnEnvironment

    root = root.absolute()
    if not (root / apt.STATUS).is_file():
        raise NotAnEnvironment(
            f"{root}: no {apt.STATUS}; give the directory dpkg --root would take"
        )
    return root


@app.command()
def sync(
    root: Annotated[
        Path, typer.Option("--root", help="The Debian root to bring in line (dpkg --root).")
    ] = Path("/"),
    apt_hook: Annotated[
        bool,
        typer.Option(
            "--apt-hook", help="Run as apt's hook: log errors, one line on stderr, exit 0."
        ),
    ] = False,
    log: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--log", help="Log file for --apt-hook (default /var/log/vbridge.log)."),
    ] = None,
) -> None:
    """Bring vbridge's metadata in line with dpkg: annotate what is new, clean orphans."""
    from vbridge.apt_hook import DEFAULT_LOG, run_as_hook, sync_debian
    from vbridge.errors import VbridgeError

    if apt_hook:
        raise typer.Exit(run_as_hook(root.absolute(), log or DEFAULT_LOG))
    try:
        result = sync_debian(root)
    except VbridgeError as exc:
        raise _fail(str(exc), exc.exit_code) from None
    for problem in result.problems:
        typer.echo(f"vbridge: {problem}", err=True)
    typer.echo(result.summary())


apt_hook_app = typer.Typer(
    help="Install or remove the apt hook that runs `vbridge sync` after every dpkg run.",
    no_args_is_help=True,
)
app.add_typer(apt_hook_app, name="apt-hook")

ConfDirOpt = Annotated[
    Path, typer.Option("--conf-dir", help="apt's configuration directory.")
]


@apt_hook_app.command("install")
def apt_hook_install(
    conf_dir: ConfDirOpt = Path("/etc/apt/apt.conf.d"),
    log: Annotated[
        Path, typer.Option("--log", help="Where the hook logs what it did and any error.")
    ] = Path("/var/log/vbridge.log"),
    vbridge: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--vbridge", help="The vbridge command the hook runs (default: this one)."),
    ] = None,
) -> None:
    """Write <conf-dir>/90vbridge: DPkg::Post-Invoke runs `vbridge sync --apt-hook`."""
    from vbridge.apt_hook import install_hook, vbridge_executable
    from vbridge.errors import VbridgeError

    try:
        command = vbridge.absolute() if vbridge else vbridge_executable()
        target = install_hook(conf_dir, command, log.absolute())
    except VbridgeError as exc:
        raise _fail(str(exc), exc.exit_code) from None
    typer.echo(f"vbridge: apt hook written to {target}")


@apt_hook_app.command("uninstall")
def apt_hook_uninstall(conf_dir: ConfDirOpt = Path("/etc/apt/apt.conf.d")) -> None:
    """Remove <conf-dir>/90vbridge (only if vbridge wrote it)."""
    from vbridge.apt_hook import HOOK_NAME, uninstall_hook
    from vbridge.errors import VbridgeError

    try:
        removed = uninstall_hook(conf_dir)
    except VbridgeError as exc:
        raise _fail(str(exc), exc.exit_code) from None
    state = "removed" if removed else "was not installed"
    typer.echo(f"vbridge: apt hook {conf_dir / HOOK_NAME} {state}")

spack_extension_app = typer.Typer(
    help="The Spack extension vbridge ships (`spack vbridge scan|annotate|clean`).",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(spack_extension_app, name="spack-extension")


@spack_extension_app.command("path")
def spack_extension_path() -> None:
    """Print the extension directory, for Spack's `config:extensions`."""
    from vbridge.spack_extension import extension_path

    typer.echo(str(extension_path()))


def main() -> None:
    """Console-script entry point."""
    app()

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
    from vbridge.annotate import AnnotateResult, CleanResult
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
) -> None:
    """Show who installed each distribution, which build it is, and what conflicts."""
    from vbridge.errors import VbridgeError
    from vbridge.report import render_json, render_table

    try:
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


WaitOpt = Annotated[
    float,
    typer.Option(
        "--wait",
        help="Seconds to wait for another vbridge run on the same environment "
        "(default: stop at once with a message).",
    ),
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Show what would change; write nothing.")
]
OnlyOpt = Annotated[
    Optional[list[Path]],  # noqa: UP045 - typer needs Optional on Python 3.10
    typer.Option(
        "--only",
        help="Limit the run to this .dist-info directory (repeat for more); for hooks.",
    ),
]


def _print_changes(result: AnnotateResult | CleanResult, verb: str) -> None:
    prefix = "would " if result.dry_run else ""
    for change in result.changed:
        typer.echo(f"{prefix}{change.action} {change.path}")
    for finding in result.findings:
        typer.echo(f"  [{finding.severity}] {finding.code}: {finding.message}")
    touched = {c.distribution for c in result.changed}
    typer.echo(
        f"vbridge {verb}: {result.root}: {len(result.changed)} file(s) "
        f"{'to change' if result.dry_run else 'changed'} in {len(touched)} "
        f"distribution(s), {len(result.unchanged)} unchanged"
    )


def _absolute(paths: list[Path] | None) -> list[Path] | None:
    return [p.absolute() for p in paths] if paths else None


def _print_results(results: list[AnnotateResult | CleanResult]) -> None:
    import json as json_mod

    document = {"environments": [r.to_dict() for r in results]}
    typer.echo(json_mod.dumps(document, indent=2))


@app.command()
def annotate(
    prefixes: PrefixArg = None,
    python: PythonOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
    wait: WaitOpt = 0.0,
    only: OnlyOpt = None,
) -> None:
    """Write variant.json (PEP 825) and an SBOM (PEP 770) into each distribution's
    dist-info, registered so that uninstalling the package removes them.

    JSON (--json): {"environments": [{"root", "dry_run", "ledger", "changes": [{"path",
    "action", "distribution"}], "findings": [...], "annotated": [dist-info, ...]}]}.
    """
    from vbridge.annotate import annotate_environment
    from vbridge.errors import VbridgeError

    results: list[AnnotateResult | CleanResult] = []
    try:
        envs = resolve_environments(prefixes, python)
        _report_problems(envs)
        for env in envs:
            results.append(
                annotate_environment(env, only=_absolute(only), dry_run=dry_run, wait=wait)
            )
            if not as_json:
                _print_changes(results[-1], "annotate")
    except VbridgeError as exc:
        raise _fail(str(exc), exc.exit_code) from None
    if as_json:
        _print_results(results)


@app.command()
def clean(
    prefixes: PrefixArg = None,
    python: PythonOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
    wait: WaitOpt = 0.0,
    only: OnlyOpt = None,
) -> None:
    """Remove everything vbridge wrote and restore every file it edited, byte for byte.

    JSON (--json): as for annotate, without "annotated".
    """
    from vbridge.annotate import clean_environment
    from vbridge.errors import VbridgeError
    from vbridge.scan import interpreter_layers

    results: list[AnnotateResult | CleanResult] = []
    try:
        if prefixes and python:
            raise _fail("give environment prefixes or --python, not both")
        roots = [p.absolute() for p in prefixes] if prefixes else [
            interpreter_layers(python or sys.executable)[0]
        ]
        for root in roots:
            results.append(
                clean_environment(root, only=_absolute(only), dry_run=dry_run, wait=wait)
            )
            if not as_json:
                _print_changes(results[-1], "clean")
    except VbridgeError as exc:
        raise _fail(str(exc), exc.exit_code) from None
    if as_json:
        _print_results(results)


def main() -> None:
    """Console-script entry point."""
    app()

"""The ``vbridge`` command line.

Exit codes: 0 nothing refused, 1 a refusal-level finding, 2 bad input or usage (every
:class:`~vbridge.errors.VbridgeError` a command raises, turned into one line by the
app's command group, whichever way it is run: :func:`main` or a test's ``CliRunner``),
3 a bug in vbridge (one line asking for a report, the traceback in a log:
:mod:`vbridge.crash`).
Heavy modules are imported inside the commands so ``vbridge --help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:
    from collections.abc import Callable

    from vbridge.destinations.annotate import AnnotateResult, CleanResult
    from vbridge.destinations.variant_json import Layout
    from vbridge.inventory.database import Inventory, ScanSummary
    from vbridge.inventory.discover import Target
    from vbridge.model import Environment
    from vbridge.verify.verdict import Verification


# typer's exits and usage errors, from click or from the copy of click typer >= 0.25
# vendors (``typer._click``): found through typer's own names, so both work.
_TYPER_EXITS: tuple[type[BaseException], ...] = (
    typer.Exit,
    typer.Abort,
    next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"),
)


class _Commands(TyperGroup):
    """The command group: the one place a :class:`~vbridge.errors.VbridgeError` from any
    command becomes ``vbridge: <message>`` on stderr and its exit code."""

    # ``Any``: the context is click's, or (typer >= 0.25) the click typer vendors.
    def invoke(self, ctx: Any) -> Any:
        from vbridge.errors import VbridgeError

        try:
            return super().invoke(ctx)
        except VbridgeError as exc:
            raise _fail(str(exc), exc.exit_code) from None
        except _TYPER_EXITS:
            raise  # typer's own exits and usage errors (exit 2 with their message)
        except Exception as exc:  # a bug: exit 3 and a log, never the 1 or 2 of a result
            from vbridge.crash import report_bug

            raise typer.Exit(report_bug(exc)) from None


app = typer.Typer(
    cls=_Commands,
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


def _print_version(value: bool) -> None:
    if value:
        from vbridge import __version__

        typer.echo(f"vbridge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print vbridge's version and exit.",
            callback=_print_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """Bridge conda, apt, Spack and pip install records into wheel-variant metadata."""


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"vbridge: {message}", err=True)
    return typer.Exit(code)


def resolve_environments(prefixes: list[Path] | None, python: str | None) -> list[Environment]:
    """The environments a command targets: prefixes, an interpreter, or this one."""
    from vbridge.decide.assess import assess_environment
    from vbridge.scan import scan_environment, scan_python

    if prefixes and python:
        raise _fail("give environment prefixes or --python, not both")
    if prefixes:
        return [assess_environment(scan_environment(p.absolute())) for p in prefixes]
    return [assess_environment(scan_python(python or sys.executable))]


def _report_problems(envs: list[Environment]) -> None:
    for env in envs:
        for problem in env.problems:
            typer.echo(f"vbridge: {problem}", err=True)


def _exit_code(envs: list[Environment]) -> int:
    return 1 if any(f.severity == "refuse" for e in envs for f in e.findings) else 0


ScanStrictOpt = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="Exit with status 2 when a record could not be read (what could be read "
        "is still shown).",
    ),
]


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
    db: DbOpt = None,
    all_targets: AllOpt = False,
    workers: WorkersOpt = None,
    strict: ScanStrictOpt = False,
) -> None:
    """Show who installed each distribution, which build it is, and what conflicts.

    Arguments that are not directories are distribution names: only those are shown,
    with the findings that name them (vbridge scan numpy scipy).
    """
    names = [str(p) for p in prefixes or [] if _is_name(p)]
    prefixes = [p for p in prefixes or [] if not _is_name(p)] or None
    if root is not None:
        prefixes = [*(prefixes or []), _debian_root(root)]
    if demo:
        from vbridge.demo import build_demo_environment

        target = build_demo_environment()
        typer.echo(f"vbridge: demo environment built in {target}", err=True)
        prefixes = [target]
    if db is not None or all_targets or (prefixes and len(prefixes) > 1):
        raise typer.Exit(
            _scan_many(prefixes, python, as_json, db, all_targets, workers, strict)
        )
    if prefixes and python:
        raise _fail("give environment prefixes or --python, not both")
    from vbridge.scan_report import report_environment

    raise typer.Exit(
        report_environment(
            prefixes[0] if prefixes else None, python, as_json=as_json, strict=strict,
            names=names,
        )
    )


def _is_name(arg: Path) -> bool:
    """A distribution name rather than an environment path: no such directory, no
    path separator (``numpy``, ``scikit-learn``)."""
    import re

    text = str(arg)
    return not arg.exists() and bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", text))


@app.command()
def why(
    name: Annotated[str, typer.Argument(help="A distribution name (numpy, scikit-learn).")],
    prefix: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Argument(help="Environment prefix (default: --python, else this one).",
                       show_default=False),
    ] = None,
    python: PythonOpt = None,
) -> None:
    """Why is NAME what it is: who installed it, which copy Python imports, each
    property with the records that gave it, who requires it and whether that holds."""
    from vbridge.destinations.report import render_why

    (env,) = resolve_environments([prefix] if prefix else None, python)
    _report_problems([env])
    typer.echo(render_why(env, name), nl=False)


CandidateOpt = Annotated[
    Optional[list[str]],  # noqa: UP045
    typer.Option(
        "--candidate",
        help="A wheel file or a requirement pip would install here; repeat for several.",
        show_default=False,
    ),
]


def _target_python(python: str | None) -> str:
    """The interpreter the pip gate acts on: --python, the active venv/conda, or the
    one of the pip on PATH."""
    from vbridge.integrations.pip_gate import target_python

    return target_python(python)


def _prefix_python(prefix: Path) -> str | None:
    for rel in ("bin/python", "bin/python3", "Scripts/python.exe", "python.exe"):
        if (prefix / rel).exists():
            return str(prefix / rel)
    return None


@app.command()
def check(
    prefix: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Argument(help="Environment prefix (conda prefix, venv).", show_default=False),
    ] = None,
    python: PythonOpt = None,
    candidate: CandidateOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Is this environment consistent, and would installing --candidate be safe here?

    Exit 1 on a refusal (policy: data/policy.toml, overridden per environment by
    <prefix>/.vbridge/policy.toml or $VBRIDGE_POLICY), 0 otherwise.
    """
    import json
    import tempfile

    from vbridge.decide.assess import assess_environment
    from vbridge.decide.checker import Candidate, check_candidates, check_environment
    from vbridge.integrations.pip_gate import PipTarget, candidates_for, scan_target
    from vbridge.scan import scan_environment, scan_python

    if prefix is not None and python is not None:
        raise _fail("give an environment prefix or --python, not both")
    wheels = [c for c in candidate or [] if c.endswith(".whl") and Path(c).is_file()]
    requirements = [c for c in candidate or [] if c not in wheels]
    with tempfile.TemporaryDirectory(prefix="vbridge-check-") as tmp:
        if prefix is not None:
            prefix = prefix.absolute()
            interpreter = _prefix_python(prefix)
        else:
            interpreter = python or _target_python(None)
        # A wheel file needs no resolver: pip (the environment's interpreter) runs
        # only for requirements.
        target = PipTarget.for_python(interpreter) if requirements and interpreter else None
        if requirements and target is None:
            raise _fail(
                f"{prefix}: no interpreter in this prefix to resolve requirements with; "
                "give .whl files as --candidate"
            )
        if prefix is not None:
            env = assess_environment(scan_environment(prefix))
        elif target is not None:
            env = scan_target(target)  # assessed
        else:
            env = assess_environment(scan_python(interpreter or ""))
        layer = target.layer if target else next(iter(env.site_packages), None)
        found = [Candidate.from_wheel(Path(w).absolute(), layer) for w in wheels]
        if requirements and target is not None:
            found += candidates_for(target, requirements, Path(tmp))[0]
        verdict = (
            check_candidates(env, found, layer) if candidate else check_environment(env)
        )
    _report_problems([env])
    if as_json:
        from vbridge.destinations.report import to_document

        # The scan's environment document, and the verdict beside it.
        doc = {**to_document([env]), **verdict.to_dict()}
        typer.echo(json.dumps(doc, indent=2))
    else:
        for line in verdict.lines():
            typer.echo(line)
        if verdict.decision == "ok":
            what = "installing these" if candidate else "this environment"
            typer.echo(f"ok: no conflict found for {what} ({env.path})")
    raise typer.Exit(verdict.exit_code)


@app.command(
    "pip",
    context_settings={
        "allow_extra_args": True,
        "ignore_unknown_options": True,
        "help_option_names": [],
    },
    add_help_option=False,
)
def pip_command(ctx: typer.Context) -> None:
    """pip itself, checked before it changes an environment: `vbridge pip ARGS...` means
    what `pip ARGS...` means (install and uninstall go through the gate; --vbridge-force,
    --vbridge-warn-only are vbridge's). `vbridge pip --help` is pip's help."""
    from vbridge.entry_point import run_pip

    raise typer.Exit(run_pip(list(ctx.args)))


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
    from vbridge.integrations.apt_hook import DEFAULT_LOG, run_as_hook, sync_debian

    if apt_hook:
        raise typer.Exit(run_as_hook(root.absolute(), log or DEFAULT_LOG))
    result = sync_debian(root)
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
    from vbridge.integrations.apt_hook import install_hook, vbridge_executable

    command = vbridge.absolute() if vbridge else vbridge_executable()
    target = install_hook(conf_dir, command, log.absolute())
    typer.echo(f"vbridge: apt hook written to {target}")


@apt_hook_app.command("uninstall")
def apt_hook_uninstall(conf_dir: ConfDirOpt = Path("/etc/apt/apt.conf.d")) -> None:
    """Remove <conf-dir>/90vbridge (only if vbridge wrote it)."""
    from vbridge.integrations.apt_hook import HOOK_NAME, uninstall_hook

    removed = uninstall_hook(conf_dir)
    state = "removed" if removed else "was not installed"
    typer.echo(f"vbridge: apt hook {conf_dir / HOOK_NAME} {state}")


# --- many environments and the inventory (scan --db/--all, `vbridge inventory`) --------
# Option types used by `scan` above: typer reads the (postponed) annotations at run time.
DbOpt = Annotated[
    Optional[Path],  # noqa: UP045
    typer.Option(
        "--db",
        help="Record the scan in this SQLite inventory (made if missing); "
        "unchanged environments are not scanned again.",
        show_default=False,
    ),
]
AllOpt = Annotated[
    bool,
    typer.Option(
        "--all",
        help="Also scan every environment found: the user's conda environments, the "
        "Debian system, Spack trees and venv folders from the vbridge config.",
    ),
]
WorkersOpt = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option(
        "--workers", min=1, help="Processes scanning environments (default: 2).", show_default=False
    ),
]


def _targets(prefixes: list[Path] | None, python: str | None, all_targets: bool) -> list[Target]:
    from vbridge.inventory.discover import Target, discover, unique_targets

    targets: list[Target] = discover() if all_targets else []
    targets += [Target(p.absolute()) for p in prefixes or []]
    if python:
        from vbridge.scan import interpreter_layers

        targets.append(Target(interpreter_layers(python)[0], "argument", python=python))
    if not targets and not all_targets:
        targets.append(Target(Path(sys.prefix), "argument", python=sys.executable))
    return unique_targets(targets)


def _scan_many(
    prefixes: list[Path] | None,
    python: str | None,
    as_json: bool,
    db: Path | None,
    all_targets: bool,
    workers: int | None,
    strict: bool = False,
) -> int:
    """Scan several environments (both cores), into the inventory when ``db`` is given."""
    import json
    import time

    from vbridge.inventory.batch import DEFAULT_WORKERS, ProgressLine, Rendered, scan_many

    started = time.perf_counter()
    targets = _targets(prefixes, python, all_targets)
    inventory = None
    if db is not None:
        from vbridge.inventory.database import Inventory

        inventory = Inventory.open(db)
    if not targets:
        typer.echo("vbridge: no environments found", err=True)
    progress = ProgressLine(len(targets), enabled=not as_json)
    summaries: dict[int, ScanSummary] = {}
    printed: dict[int, Rendered] = {}
    to_scan: list[Target] = []
    if inventory is not None:
        for index, target in enumerate(targets):
            summary = inventory.unchanged(target)
            if summary is None:
                to_scan.append(target)
            else:
                summaries[index] = summary
                progress.advance(target.label)
    else:
        to_scan = targets
    order = {id(t): i for i, t in enumerate(targets)}
    code = 0
    try:
        mode = "rows" if inventory is not None else "json" if as_json else "table"
        for outcome in scan_many(to_scan, workers or DEFAULT_WORKERS, mode, progress):
            index = order[id(to_scan[outcome.index])]
            if outcome.error is not None:
                progress.close()
                typer.echo(f"vbridge: {outcome.error}", err=True)
                code = max(code, outcome.exit_code)
            elif inventory is not None and outcome.rows is not None:
                summaries[index] = inventory.record(outcome.rows, outcome.seconds)
            elif outcome.rendered is not None:
                printed[index] = outcome.rendered
    finally:
        progress.close()
        if inventory is not None:
            inventory.close()
    refused = any(s.refused for s in summaries.values()) or any(r.refused for r in printed.values())
    code = max(code, 1 if refused else 0)
    unreadable = any(s.problems for s in summaries.values()) or any(
        r.problems for r in printed.values()
    )
    if strict and unreadable:
        code = 2
    if inventory is None:
        ordered = [printed[i] for i in sorted(printed)]
        for rendered in ordered:
            for problem in rendered.problems:
                typer.echo(f"vbridge: {problem}", err=True)
        if as_json:
            from vbridge.destinations.report import to_document

            document = to_document([])  # as render_json writes it, one environment each
            document["environments"] = [r.document for r in ordered]
            typer.echo(json.dumps(document, indent=2, sort_keys=False) + "\n", nl=False)
        else:
            typer.echo("\n".join(r.table or "" for r in ordered), nl=False)
        return code
    done = [summaries[i] for i in sorted(summaries)]
    if as_json:
        from vbridge import __version__

        document = {
            "schema_version": 1,
            "vbridge_version": __version__,
            "database": str(db),
            "environments": [s.to_dict() for s in done],
        }
        typer.echo(json.dumps(document, indent=2))
    else:
        from vbridge.inventory.database import render_rows

        typer.echo(
            render_rows(
                [s.to_dict() for s in done],
                ["status", "distributions", "findings", "problems", "path"],
            ),
            nl=False,
        )
        counts = {
            k: sum(1 for s in done if s.status == k) for k in ("new", "rescanned", "unchanged")
        }
        typer.echo(
            f"vbridge: {len(done)} environment{'' if len(done) == 1 else 's'} in {db}: "
            f"{counts['new']} new, "
            f"{counts['rescanned']} rescanned, {counts['unchanged']} unchanged "
            f"({time.perf_counter() - started:.2f} s)",
            err=True,
        )
    return code


inventory_app = typer.Typer(
    name="inventory",
    help="Ask the inventory (made by 'vbridge scan --db FILE') about many environments.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.add_typer(inventory_app)

InventoryDbOpt = Annotated[
    Path,
    typer.Option("--db", envvar="VBRIDGE_DB", help="The inventory database (vbridge scan --db)."),
]


def _answer(
    db: Path, ask: Callable[[Inventory], list[dict[str, Any]]], columns: list[str], as_json: bool
) -> None:
    import json

    from vbridge.inventory.database import Inventory, render_rows

    inventory = Inventory.open(db, create=False)
    try:
        rows = ask(inventory)
    finally:
        inventory.close()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        typer.echo(render_rows(rows, columns), nl=False)


@inventory_app.command("findings")
def inventory_findings(
    db: InventoryDbOpt,
    code: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--code",
            help="Only this finding code, e.g. duplicate-blas-lapack (README: finding codes).",
        ),
    ] = None,
    severity: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--severity", help="Only this severity: info, warn or refuse."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Findings of every environment: which mix BLAS, where pip replaced conda's files."""
    _answer(
        db,
        lambda inv: inv.findings(code=code, severity=severity),
        ["environment", "severity", "code", "message"],
        as_json,
    )


@inventory_app.command("where")
def inventory_where(
    prop: Annotated[
        str,
        typer.Argument(
            metavar="PROPERTY",
            help="'namespace :: feature :: value' or 'namespace :: feature'.",
        ),
    ],
    db: InventoryDbOpt,
    name: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--name", help="Only this distribution, e.g. numpy."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Which distributions, in which environments, carry a property (numpy with MKL)."""
    _answer(
        db,
        lambda inv: inv.where(prop, name=name),
        ["environment", "name", "version", "property", "record"],
        as_json,
    )


@inventory_app.command("owners")
def inventory_owners(
    name: Annotated[str, typer.Argument(help="A distribution name, e.g. numpy.")],
    db: InventoryDbOpt,
    as_json: JsonOpt = False,
) -> None:
    """Who installed a distribution in each environment, and which build."""
    _answer(
        db,
        lambda inv: inv.owners(name),
        ["environment", "version", "installed_by", "owner", "owner_build", "owner_channel"],
        as_json,
    )


@inventory_app.command("history")
def inventory_history(
    path: Annotated[Path, typer.Argument(help="An environment recorded in the inventory.")],
    db: InventoryDbOpt,
    as_json: JsonOpt = False,
) -> None:
    """Every scan of one environment: when, what changed, how long it took."""
    _answer(
        db,
        lambda inv: inv.history(str(path.absolute())),
        ["id", "started_at", "status", "seconds", "distributions", "findings", "added", "removed"],
        as_json,
    )


@inventory_app.command("verified")
def inventory_verified(
    db: InventoryDbOpt,
    status: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--status",
            help="Only these outcomes (repeatable): differs, import-failed, crashed, "
            "timed-out, confirmed, not-seen, unrecorded. Default: differs and the failed "
            "imports.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Environments whose last 'vbridge verify --db' found what loads differing from
    the records (or imports failing)."""
    _answer(
        db,
        lambda inv: inv.verified(status),
        ["environment", "verified_at", "distribution", "feature", "status", "recorded",
         "loaded"],
        as_json,
    )


spack_extension_app = typer.Typer(
    help="The Spack extension vbridge ships (`spack vbridge scan|annotate|clean`).",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(spack_extension_app, name="spack-extension")


@spack_extension_app.command("path")
def spack_extension_path() -> None:
    """Print the extension directory, for Spack's `config:extensions`."""
    from vbridge.integrations.spack_extension import extension_path

    typer.echo(str(extension_path()))


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
    typer.echo("\n".join(result.report_lines(verb)))


def _absolute(paths: list[Path] | None) -> list[Path] | None:
    return [p.absolute() for p in paths] if paths else None


def _print_results(results: list[AnnotateResult | CleanResult]) -> None:
    import json as json_mod

    document = {"environments": [r.to_dict() for r in results]}
    typer.echo(json_mod.dumps(document, indent=2))


def _is_conda_prefix(root: Path) -> bool:
    return (root / "conda-meta").is_dir()


def _annotate_one(
    env: Environment,
    only: list[Path] | None,
    dry_run: bool,
    wait: float,
    layout: Layout | None = None,
) -> list[AnnotateResult]:
    """Annotate one environment; a Spack environment or view is annotated where its
    files are (the install tree), and kept consistent with its views."""
    from vbridge.destinations.annotate import annotate_environment

    if "spack" not in env.ecosystems:
        return [
            annotate_environment(
                env, only=only, dry_run=dry_run, wait=wait, variant_layout=layout
            )
        ]
    from vbridge.integrations import spack_store

    done = (
        None
        if only
        else spack_store.annotate_spack(env, dry_run=dry_run, wait=wait, variant_layout=layout)
    )
    if done is not None:
        return done
    result = annotate_environment(env, only=only, dry_run=dry_run, wait=wait, variant_layout=layout)
    spack_store.relink_views(env.path, spack_store.known_views(env.path), result)
    return [result]


@app.command()
def annotate(
    prefixes: PrefixArg = None,
    python: PythonOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
    wait: WaitOpt = 0.0,
    only: OnlyOpt = None,
    variants_toml: VariantsTomlOpt = False,
    variant_json: VariantJsonOpt = None,
) -> None:
    """Write variant.json (PEP 825) and an SBOM (PEP 770) into each distribution's
    dist-info, registered so that uninstalling the package removes them.

    JSON (--json): {"environments": [{"root", "dry_run", "ledger", "changes": [{"path",
    "action", "distribution"}], "findings": [...], "annotated": [dist-info, ...]}]}.
    """
    results: list[AnnotateResult | CleanResult] = []
    envs = resolve_environments(prefixes, python)
    from vbridge.destinations.ledger import LedgerStore

    for env in envs:  # an unreadable ledger stops annotate with its own line: not twice
        ledger = LedgerStore.of(env.path).path
        env.problems = [p for p in env.problems if p.path != ledger]
    _report_problems(envs)
    layout = _variant_layout(variant_json)
    for env in envs:
        done = _annotate_one(env, _absolute(only), dry_run, wait, layout)
        results.extend(done)
        if not as_json:
            for result in done:
                _print_changes(result, "annotate")
        if not only:
            _write_pip_constraints(env, dry_run, as_json, wait)
        if variants_toml:
            _write_variants_toml(env, dry_run, as_json, wait)
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
    from vbridge.destinations.annotate import clean_environment
    from vbridge.scan import interpreter_layers

    results: list[AnnotateResult | CleanResult] = []
    if prefixes and python:
        raise _fail("give environment prefixes or --python, not both")
    scopes: dict[Path, list[Path] | None] = {}
    if prefixes:
        scopes = {p.absolute(): _absolute(only) for p in prefixes}
    else:
        prefix, layers = interpreter_layers(python or sys.executable)
        scopes = _interpreter_roots(prefix, layers, _absolute(only))
    for root, root_only in scopes.items():
        if not only and root_only is None:
            _remove_variants_toml(root, dry_run, as_json, wait)
            _remove_pip_constraints(root, dry_run, as_json, wait)
        done: list[CleanResult] | None = None
        if not _is_conda_prefix(root):
            from vbridge.integrations.spack_store import clean_spack

            done = clean_spack(root, only=root_only, dry_run=dry_run, wait=wait)
        if done is None:
            done = [clean_environment(root, only=root_only, dry_run=dry_run, wait=wait)]
        results.extend(done)
        if not as_json:
            for result in done:
                _print_changes(result, "clean")
    if as_json:
        _print_results(results)


def _interpreter_roots(
    prefix: Path, layers: list[Path], only: list[Path] | None
) -> dict[Path, list[Path] | None]:
    """What ``clean --python`` cleans: the interpreter's prefix, and every other root
    whose records govern one of its layers (Debian's ``/`` for ``/usr/bin/python3``),
    each limited to the dist-infos in those layers; the value is the ``--only`` list
    (None: the whole root)."""
    from vbridge.adapters import all_adapters
    from vbridge.destinations.ledger import LedgerStore

    scopes: dict[Path, list[Path] | None] = {prefix.absolute(): only}
    for layer in layers:
        for adapter in all_adapters():
            root = adapter.find_root(layer)
            if root is None or root.absolute() in scopes:
                continue
            store = LedgerStore.of(root.absolute())
            if not store.path.is_file():
                continue
            keys = store.load().distributions
            wanted = [
                root.absolute() / key for key in keys
                if (root.absolute() / key).parent in layers
                and (only is None or root.absolute() / key in only)
            ]
            if wanted:
                scopes[root.absolute()] = wanted
    return scopes


VariantsTomlOpt = Annotated[
    bool,
    typer.Option(
        "--variants-toml",
        help="Also write the environment's variants.toml (variantlib's configuration, "
        "read from sys.prefix) with the installed builds first.",
    ),
]


VariantJsonOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--variant-json",
        metavar="LAYOUT",
        help="variant.json layout: 'providers' (read by variantlib and the tools built on "
        "it) or 'pep825-0.1.1' (PEP 825's format exactly; variantlib rejects it). "
        "Default: what each dist-info has, else providers.",
    ),
]


def _variant_layout(value: str | None) -> Layout | None:
    from vbridge.destinations.variant_json import LAYOUTS

    if value is None:
        return None
    for layout in LAYOUTS:
        if value == layout:
            return layout
    raise _fail(f"--variant-json {value}: unknown layout; use one of {', '.join(LAYOUTS)}")


def _write_pip_constraints(env: Environment, dry_run: bool, as_json: bool, wait: float) -> None:
    """``annotate``: the constraints file plain pip reads, and the site pip.conf naming
    it (one line per file changed; on stderr with --json)."""
    from vbridge.destinations.pip_constraints import write_pip_constraints

    for line in write_pip_constraints(env, dry_run=dry_run, wait=wait).report_lines():
        typer.echo(line, err=as_json)


def _remove_pip_constraints(root: Path, dry_run: bool, as_json: bool, wait: float) -> None:
    """``clean``: pip.conf back to its original bytes, the constraints file removed."""
    from vbridge.destinations.pip_constraints import remove_pip_constraints

    for line in remove_pip_constraints(root, dry_run=dry_run, wait=wait).report_lines():
        typer.echo(line, err=as_json)


def _write_variants_toml(env: Environment, dry_run: bool, as_json: bool, wait: float) -> None:
    """``annotate --variants-toml``: one line on stdout (stderr with --json)."""
    from vbridge.integrations.variants_toml import write_variants_toml

    typer.echo(write_variants_toml(env, dry_run=dry_run, wait=wait).line(), err=as_json)


def _remove_variants_toml(root: Path, dry_run: bool, as_json: bool, wait: float) -> None:
    """``clean``: remove the variants.toml vbridge wrote (said only if there was one)."""
    from vbridge.integrations.variants_toml import remove_variants_toml

    result = remove_variants_toml(root, dry_run=dry_run, wait=wait)
    if result.action != "unchanged":
        typer.echo(result.line(), err=as_json)


StrictOpt = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="Exit non-zero when the package's metadata could not be handled "
        "(a failing post-link script makes conda roll the transaction back).",
    ),
]
TemplateOpt = Annotated[
    bool, typer.Option("--print-template", help="Print the script template and exit.")
]


def _link_script(kind: str, strict: bool, verbose: bool, print_template: bool) -> None:
    """The shared body of ``conda-post-link`` and ``conda-pre-unlink``.

    The console script runs these two commands without this app when they carry only
    these flags (``vbridge.entry_point``): both call :func:`run_link_script`.
    """
    from vbridge.integrations.conda.link_scripts import run_link_script

    code = run_link_script(kind, strict=strict, verbose=verbose, print_template=print_template)
    raise typer.Exit(code)


@app.command("conda-post-link")
def conda_post_link(
    strict: StrictOpt = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="Also tell the user when it worked.")
    ] = False,
    print_template: TemplateOpt = False,
) -> None:
    """Annotate a conda package's distributions; called from its post-link.sh.

    Reads PREFIX, PKG_NAME, PKG_VERSION and PKG_BUILDNUM as conda, mamba and rattler set
    them. Messages go to $PREFIX/.messages.txt (the installer shows them); the exit code
    is 0 unless --strict.
    """
    _link_script("post-link", strict, verbose, print_template)


@app.command("conda-pre-unlink")
def conda_pre_unlink(
    strict: StrictOpt = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="Also tell the user when it worked.")
    ] = False,
    print_template: TemplateOpt = False,
) -> None:
    """Remove what vbridge wrote into a conda package's distributions; called from its
    pre-unlink.sh, before the package is uninstalled. Exit code 0 unless --strict."""
    _link_script("pre-unlink", strict, verbose, print_template)


# --- vbridge verify: the one command that runs the environment's code ------------------


def _verify_target(
    args: list[str], python: str | None
) -> tuple[str, list[str]]:
    """The interpreter to verify and the distribution names: ``[PREFIX] [NAME]...``.

    The first argument is a prefix when it is a directory with an interpreter, a
    ``conda-meta/`` or a dpkg database; everything else names distributions.
    """
    from vbridge.verify import prefix_interpreter

    if python is not None:
        return python, args
    if args:
        first = Path(args[0])
        if first.is_dir() and (
            prefix_interpreter(first) is not None
            or (first / "conda-meta").is_dir()
            or (first / "var/lib/dpkg/status").is_file()
        ):
            interpreter = prefix_interpreter(first.absolute())
            if interpreter is None:
                raise _fail(
                    f"{first}: no interpreter (bin/python) in this prefix; pass the "
                    "environment's interpreter with --python"
                )
            return interpreter, args[1:]
    return _target_python(None), args


@app.command()
def verify(
    args: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Argument(
            metavar="[PREFIX] [NAME]...",
            help="An environment prefix, then the distributions to verify (default: "
            "every one Python imports that has properties or compiled extensions).",
            show_default=False,
        ),
    ] = None,
    python: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--python", help="Verify the environment of this interpreter."),
    ] = None,
    as_json: JsonOpt = False,
    timeout: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option(
            "--timeout", min=0.1, help="Seconds each distribution's child may take "
            "(default: data/verify.toml, 60).", show_default=False,
        ),
    ] = None,
    db: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--db", help="Store the results with the scan they verified in this SQLite "
            "inventory ('vbridge inventory verified' lists the disagreements).",
            show_default=False,
        ),
    ] = None,
    jobs: Annotated[
        int, typer.Option("--jobs", min=1, help="Children running at once.")
    ] = 2,
) -> None:
    """Import the environment's code and check what loads against what the records say.

    The only vbridge command that runs code of the inspected environment: one child
    process of its interpreter per distribution (python -I, an empty working directory,
    a minimal environment, thread pools pinned to one thread, a timeout) imports the
    distribution's modules and compiled extension modules; the shared libraries it
    mapped (/proc/self/maps; Linux only) are named with their owners and compared with
    the recorded properties: confirmed, differs, not seen. Exit 1 when an import failed,
    crashed or timed out.
    """
    import json
    import time

    from vbridge.decide.assess import assess_environment
    from vbridge.scan import scan_python
    from vbridge.verify import verify_environment

    if not sys.platform.startswith("linux"):
        raise _fail(
            f"verify is not supported on {sys.platform}: it reads /proc/self/maps, which "
            "only Linux has ('vbridge scan' works everywhere)"
        )
    interpreter, names = _verify_target(list(args or []), python)
    started = time.perf_counter()
    # Assessed as `vbridge scan` does: with --db this is the scan that is recorded.
    env = assess_environment(scan_python(interpreter))
    scan_seconds = time.perf_counter() - started
    verification = verify_environment(env, interpreter, names, timeout=timeout, jobs=jobs)
    stored = None
    if db is not None:
        stored = _store_verification(db, env, interpreter, verification, scan_seconds)
    _report_problems([env])
    if as_json:
        typer.echo(json.dumps(verification.to_dict(), indent=2))
    else:
        typer.echo("\n".join(verification.lines()))
    if stored is not None:
        typer.echo(f"vbridge: verification {stored} stored in {db}", err=True)
    raise typer.Exit(verification.exit_code)


def _store_verification(
    db: Path, env: Environment, interpreter: str, verification: Verification, seconds: float
) -> int:
    """Record the scan (or its unchanged state) and the verification of it."""
    from vbridge.inventory.database import Inventory, environment_rows
    from vbridge.inventory.discover import Target

    target = Target(env.path, "argument", python=interpreter)
    inventory = Inventory.open(db)
    try:
        summary = inventory.unchanged(target)
        if summary is None:
            summary = inventory.record(environment_rows(env, target), seconds)
        inventory.commit()
        return inventory.record_verification(summary, verification.to_dict())
    finally:
        inventory.close()


def main() -> None:
    """Console-script entry point."""
    app()

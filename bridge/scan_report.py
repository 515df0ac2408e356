"""``vbridge scan`` of one environment, shown: the part of the command both the typer
app (:func:`vbridge.cli.scan`) and the console script's fast path run.

The console script runs ``vbridge scan [--json] [--strict] PREFIX`` (or ``--root DIR``,
a Debian root, instead of PREFIX) here directly,
without importing typer and click (~40 ms of start-up with typer 0.24, ~120 ms with
typer 0.25+, which validates every parameter through pydantic): a scan in a CI job or
a script is mostly start-up. Any other scan command line (``--python``, ``--db``,
several prefixes, ``--help``, mistakes) goes to the typer app, which calls
:func:`report_environment` for one environment too, so both print the same bytes
(tests/test_scan_report.py runs both).

>>> scan_command(["scan", "--json", "."]) == (".", {"as_json": True, "strict": False})
True
>>> scan_command(["scan", "--python", "/usr/bin/python3"]) is None   # typer parses it
True
>>> scan_command(["scan", "--root", "/nonexistent"]) is None   # typer says what is wrong
True
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:  # annotations only: a kept scan (vbridge.scan_cache) imports neither
    from collections.abc import Sequence
    from pathlib import Path

__all__ = ["SCAN_FLAGS", "report_environment", "scan_command"]

# The flags of `vbridge scan` the fast path takes (tests check typer's scan has them).
SCAN_FLAGS = {"--json": "as_json", "--strict": "strict"}


def scan_command(argv: Sequence[str]) -> tuple[str, dict[str, bool]] | None:
    """The prefix and flags of ``scan [--json] [--strict] PREFIX`` when the fast path can
    run it (one existing directory, only those flags; or ``--root DIR`` instead of
    PREFIX, DIR holding ``var/lib/dpkg/status``, as typer's ``--root`` takes it), else
    None (typer parses it)."""
    if not argv or argv[0] != "scan":
        return None
    flags = {name: False for name in SCAN_FLAGS.values()}
    prefixes = []
    roots = []
    args = iter(argv[1:])
    for arg in args:
        if arg in SCAN_FLAGS:
            flags[SCAN_FLAGS[arg]] = True
        elif arg == "--root":
            roots.append(next(args, "-"))
        elif arg.startswith("--root="):
            roots.append(arg.removeprefix("--root="))
        elif arg.startswith("-"):
            return None
        else:
            prefixes.append(arg)
    if roots:  # `--root DIR` alone, DIR a Debian root (else typer says what is wrong)
        if prefixes or len(roots) != 1 or roots[0].startswith("-"):
            return None
        if not os.path.isfile(os.path.join(roots[0], "var/lib/dpkg/status")):
            return None
        return roots[0], flags
    if len(prefixes) != 1 or not os.path.isdir(prefixes[0]):
        return None
    return prefixes[0], flags


def report_environment(
    prefix: Path | None,
    python: str | None,
    *,
    as_json: bool,
    strict: bool,
    names: Sequence[str] = (),
) -> int:
    """Scan and assess one environment (a prefix, else an interpreter's, else this
    one's), print its problems on stderr and its table or JSON document on stdout;
    return the exit status: 1 for a refusal-level finding, 2 with ``strict`` when a
    record could not be read, else 0. ``names``: show only those distributions and the
    findings that name them. Raises :class:`~vbridge.errors.VbridgeError`."""
    from vbridge.decide.assess import assess_environment
    from vbridge.destinations.report import only_named, render_json, render_table
    from vbridge.scan import scan_environment, scan_python

    if prefix is not None:
        env = assess_environment(scan_environment(prefix.absolute()))
    else:
        env = assess_environment(scan_python(python or sys.executable))
    for problem in env.problems:
        print(f"vbridge: {problem}", file=sys.stderr, flush=True)
    if (env.path / "variants.toml").is_file():  # the module only where there is one
        from vbridge.integrations.variants_toml import shadowing_notes

        for note in shadowing_notes(env.path):
            print(f"vbridge: warning: {note}", file=sys.stderr, flush=True)
    if names:
        env = only_named(env, names)
    sys.stdout.write(render_json([env]) if as_json else render_table([env]))
    sys.stdout.flush()
    code = 1 if any(f.severity == "refuse" for f in env.findings) else 0
    if strict and env.problems:
        code = 2
    return code

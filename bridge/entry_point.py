"""The ``vbridge`` console script: the conda link-script commands without the typer app.

conda, mamba and rattler run a package's ``post-link.sh`` (``vbridge conda-post-link``)
once per package they link, so its start-up is paid per package; importing typer and
click and building the app costs ~40 ms of it. The two link-script commands take only
the flags ``--strict``, ``--verbose`` and ``--print-template``: when the command line is
one of them with nothing but those flags, it is run here directly (the same
:func:`vbridge.integrations.conda.link_scripts.run_link_script` the typer commands call). Any other
command line, ``--help`` and mistakes included, goes to the typer app in
:mod:`vbridge.cli`, which answers as before.

Under conda with the vbridge conda plugin, ``conda-post-link`` leaves the package to
the plugin before anything else is imported
(:mod:`vbridge.integrations.conda.handoff`).

``vbridge scan [--json] [--strict] PREFIX`` (one environment) runs
:func:`vbridge.scan_report.report_environment` directly too, the function typer's
``scan`` calls for one environment: the same output without typer's start-up, and
printed again from :mod:`vbridge.scan_cache` while nothing the scan read changed.
``vbridge --version`` prints the version without importing anything else.

In this process vbridge is the program, so msgspec is imported without
typing_extensions (:func:`import_msgspec_alone`): msgspec uses it, when installed, only
for ``typing_extensions.get_type_hints`` and its ``Required``/``NotRequired``, which
vbridge's Structs do not use; importing it (with ``inspect``, ``ast``, ``tokenize``,
``socket``) is a quarter of msgspec's import, ~37 M instructions of every scan and
link script. Anything imported later gets typing_extensions as usual.

The console script is :func:`console`: :func:`main`, except that a link-script command
or a fast-path scan then leaves the process at once (``os._exit`` once stdout and
stderr are flushed) instead of tearing down every module and object of the
interpreter, which costs milliseconds on every package a transaction links and on
every scan. Everything the command writes is closed by then; no ``atexit`` handler runs.

``vbridge pip ARGS...`` is pip's command line, every argument of it (``--help`` and
``--version`` included), so it never reaches the typer app: :func:`run_pip` hands it to
:func:`vbridge.integrations.pip_gate.run_vbridge_pip`.

>>> link_script_command(["conda-post-link", "--strict", "--verbose"])
('post-link', {'strict': True, 'verbose': True, 'print_template': False})
>>> link_script_command(["conda-post-link", "--help"]) is None   # typer answers
True
"""

from __future__ import annotations

import gc
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms of --version)
if TYPE_CHECKING:  # annotations only
    from collections.abc import Sequence
    from typing import Literal

__all__ = [
    "LINK_SCRIPT_COMMANDS",
    "LINK_SCRIPT_FLAGS",
    "console",
    "import_msgspec_alone",
    "link_script_command",
    "main",
    "print_link_script_template",
    "run_pip",
]

LINK_SCRIPT_COMMANDS: dict[str, Literal["post-link", "pre-unlink"]] = {
    "conda-post-link": "post-link",
    "conda-pre-unlink": "pre-unlink",
}
# The options of both typer commands (tests/test_entry_point.py checks they agree).
LINK_SCRIPT_FLAGS = {
    "--strict": "strict",
    "--verbose": "verbose",
    "--print-template": "print_template",
}


def link_script_command(
    argv: Sequence[str],
) -> tuple[Literal["post-link", "pre-unlink"], dict[str, bool]] | None:
    """The link script and its flags, or None when the typer app must parse ``argv``."""
    if not argv or argv[0] not in LINK_SCRIPT_COMMANDS:
        return None
    if any(arg not in LINK_SCRIPT_FLAGS for arg in argv[1:]):
        return None
    flags = {name: False for name in LINK_SCRIPT_FLAGS.values()}
    flags.update({LINK_SCRIPT_FLAGS[arg]: True for arg in argv[1:]})
    return LINK_SCRIPT_COMMANDS[argv[0]], flags


def print_link_script_template(kind: str) -> int:
    """Print the shipped ``post-link.sh`` or ``pre-unlink.sh`` (``kind`` ``"post-link"``,
    ``"pre-unlink"``), read beside ``vbridge.data``: nothing of the hook is imported."""
    import os

    import vbridge.data

    directory = os.path.dirname(vbridge.data.__file__ or "")
    with open(os.path.join(directory, f"{kind}.sh"), encoding="utf-8") as fh:
        sys.stdout.write(fh.read())
    sys.stdout.flush()
    return 0


def run_pip(args: Sequence[str]) -> int:
    """``vbridge pip ARGS``: pip's exit status, 1 on a refusal, 2 on bad input."""
    from vbridge.errors import VbridgeError
    from vbridge.integrations.pip_gate import run_vbridge_pip

    try:
        return run_vbridge_pip(args)
    except VbridgeError as exc:
        print(f"vbridge: {exc}", file=sys.stderr)
        return exc.exit_code


def import_msgspec_alone() -> None:
    """Import msgspec, in a process that has not imported it nor typing_extensions,
    with typing_extensions hidden for the time of the import (see the module): msgspec
    then takes ``get_type_hints``, ``Required`` and ``NotRequired`` from ``typing``.
    The entry is removed again, so a later ``import typing_extensions`` works."""
    if "msgspec" in sys.modules or "typing_extensions" in sys.modules:
        return
    sys.modules["typing_extensions"] = None  # type: ignore[assignment]  # ImportError
    try:
        import msgspec  # noqa: F401
    finally:
        if sys.modules.get("typing_extensions", False) is None:
            del sys.modules["typing_extensions"]


# Set by console(): a link-script command or a fast-path scan leaves the process at
# once (os._exit).
_LEAVE_AT_ONCE = False


def console() -> None:
    """The ``vbridge`` console script: :func:`main`, a link-script command or a
    fast-path scan leaving the process without the interpreter's teardown."""
    global _LEAVE_AT_ONCE
    _LEAVE_AT_ONCE = True
    main()


def _leave(code: int) -> None:
    """Exit with ``code``: at once when run as the console script (see the module)."""
    if _LEAVE_AT_ONCE:
        import os

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def main() -> None:
    """Console-script entry point: a bug anywhere exits 3 (:mod:`vbridge.crash`)."""
    try:
        _main()
    except (SystemExit, KeyboardInterrupt):
        raise
    except Exception as exc:
        from vbridge.crash import report_bug

        sys.exit(report_bug(exc))


def _main() -> None:
    # A scan allocates hundreds of thousands of objects that live to the end of this
    # short process (decoded records, the model); with the default thresholds the
    # cyclic collector walks them again and again (~45% of a 2,000-install Spack scan's
    # CPU time, bench/README.md). Collections stay on, a hundred times rarer.
    gc.set_threshold(100_000, 50, 100)
    if sys.argv[1:] == ["--version"]:
        # What `vbridge --version` prints through typer, without importing it (~40 ms).
        from vbridge import __version__

        print(f"vbridge {__version__}")
        sys.exit(0)
    if sys.argv[1:2] == ["pip"]:
        sys.exit(run_pip(sys.argv[2:]))
    command = link_script_command(sys.argv[1:])
    if command is not None:
        kind, flags = command
        if flags["print_template"]:
            sys.exit(print_link_script_template(kind))
        if kind == "post-link":
            import os

            from vbridge.integrations.conda.handoff import plugin_annotates_after

            if plugin_annotates_after(os.environ):
                _leave(0)  # the vbridge conda plugin annotates after the transaction
        import_msgspec_alone()
        from vbridge.integrations.conda.link_scripts import run_link_script

        _leave(run_link_script(kind, strict=flags["strict"], verbose=flags["verbose"]))
    from vbridge.scan_report import scan_command

    scan = scan_command(sys.argv[1:])
    if scan is not None:
        from vbridge.scan_cache import run_kept

        prefix, scan_flags = scan

        def run_scan() -> int:
            import_msgspec_alone()  # not when the kept scan answers
            from pathlib import Path

            from vbridge.scan_report import report_environment

            return report_environment(
                Path(prefix), None, as_json=scan_flags["as_json"], strict=scan_flags["strict"]
            )

        try:
            # Printed again from the cache while nothing the scan read has changed.
            code = run_kept(prefix, scan_flags, run_scan)
        except Exception as exc:
            from vbridge.errors import VbridgeError  # not imported by a kept scan

            if not isinstance(exc, VbridgeError):
                raise
            print(f"vbridge: {exc}", file=sys.stderr)
            code = exc.exit_code
        _leave(code)
    import_msgspec_alone()
    from vbridge.cli import main as typer_main

    typer_main()

"""The one place vbridge starts a Python interpreter: isolated, so nothing runs by accident.

An inspected environment's interpreter is asked questions (its ``sys.prefix``, its
site-packages) and, for the pip gate, runs pip. Every such run goes through
:func:`run_python`, which

- passes ``-I`` (isolated mode: no ``PYTHON*`` variables, no user site, the working
  directory and the script's directory are not put on ``sys.path``),
- for questions, also ``-S``: ``site`` is not run, so no ``.pth`` file, ``sitecustomize``
  or ``usercustomize`` of the environment executes; the question imports only the
  standard library,
- starts it in a new empty directory (a ``json.py`` where vbridge was started is never
  imported, whatever the interpreter's version does with ``sys.path[0]``),
- with a minimal environment (``PATH``, ``HOME``, a UTF-8 locale) for questions,
- and a timeout: an interpreter that hangs is one line, not a hung vbridge.

>>> import sys
>>> ask_python(sys.executable, "import json, sys; print(json.dumps(sys.flags.isolated))")
1
>>> python_argv("/env/bin/python", "-m", "pip", "--version")
['/env/bin/python', '-I', '-m', 'pip', '--version']
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from vbridge.errors import NotAnEnvironment

if TYPE_CHECKING:
    import subprocess

__all__ = [
    "QUESTION_TIMEOUT",
    "ask_python",
    "minimal_env",
    "python_argv",
    "run_python",
    "start_python",
]

# Seconds an interpreter gets to answer a question about itself (it starts in ~20 ms).
QUESTION_TIMEOUT = 60.0
# Variables a question keeps: where programs are, whose home (the user site), the locale.
_KEPT = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "SYSTEMROOT", "TMPDIR")


def python_argv(python: str, *args: str, site: bool = True) -> list[str]:
    """The command line that runs ``python`` isolated (``-I``; ``-S`` without ``site``)."""
    return [python, "-I", *([] if site else ["-S"]), *args]


def minimal_env() -> dict[str, str]:
    """The environment a question runs in: only what an interpreter needs to start.

    Under ``-I`` the interpreter ignores ``PYTHON*`` variables anyway; dropping the rest
    keeps e.g. ``VIRTUAL_ENV`` from changing what Debian's ``site`` reports.
    """
    env = {k: v for k, v in os.environ.items() if k in _KEPT}
    env.setdefault("PATH", os.defpath)
    env.setdefault("LC_ALL", "C.UTF-8")
    return env


def run_python(
    python: str,
    args: Sequence[str],
    *,
    site: bool = True,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    timeout: float | None = QUESTION_TIMEOUT,
    capture: bool = True,
    what: str = "run this interpreter",
) -> subprocess.CompletedProcess[str]:
    """Run ``python -I [-S] ARGS`` and return what it did (it may have failed).

    ``env`` defaults to :func:`minimal_env`; ``cwd`` to a new empty directory (pip runs
    that take the user's relative paths pass the user's directory: ``-I`` still keeps it
    off ``sys.path``). Raises :class:`~vbridge.errors.NotAnEnvironment` when the
    interpreter cannot be started or does not finish within ``timeout`` seconds.
    """
    import subprocess

    argv = python_argv(python, *args, site=site)
    scratch = None
    if cwd is None:
        scratch = cwd = tempfile.mkdtemp(prefix="vbridge-run-")
    try:
        return subprocess.run(
            argv,
            capture_output=capture,
            text=True,
            env=dict(env) if env is not None else minimal_env(),
            cwd=cwd,
            timeout=timeout,
            stdin=subprocess.DEVNULL if capture else None,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise NotAnEnvironment(
            f"{python}: did not {what} within {timeout:.0f} s; check the interpreter "
            "(run it by hand), or pass another --python"
        ) from None
    except OSError as exc:
        raise NotAnEnvironment(
            f"{python}: cannot {what} ({exc.strerror or exc}); pass a working --python"
        ) from None
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def ask_python(python: str, code: str, *, timeout: float = QUESTION_TIMEOUT) -> Any:
    """Run ``code`` under ``python -I -S`` (standard library only) and decode the JSON
    it prints. Raises :class:`~vbridge.errors.NotAnEnvironment` if it cannot answer.
    """
    result = run_python(python, ["-c", code], site=False, timeout=timeout, what="answer")
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise NotAnEnvironment(
            f"{python}: cannot answer vbridge's question about its environment ({last}); "
            "pass a working --python"
        )
    try:
        return json.loads(result.stdout)
    except ValueError:
        raise NotAnEnvironment(
            f"{python}: answered vbridge's question with something else than JSON; "
            "pass a working --python"
        ) from None


def start_python(
    python: str, args: Sequence[str], *, env: Mapping[str, str], cwd: str
) -> subprocess.Popen[bytes]:
    """Start ``python -I ARGS`` with pipes on stdin/stdout/stderr, in a session of its
    own (its pid is the process group to end on a timeout, with what it started).

    For ``vbridge verify``, whose children import the environment's code: it reads their
    answer as it comes (a hang still says where it hung), so it cannot use
    :func:`run_python`. Raises :class:`OSError` when the interpreter cannot be started.
    """
    import subprocess

    return subprocess.Popen(
        python_argv(python, *args),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env),
        cwd=cwd,
        start_new_session=True,
    )

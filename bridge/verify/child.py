"""The child process that imports an environment's code: isolated, bounded, one per job.

The target interpreter runs ``vbridge/verify/_probe.py`` with ``-I`` (no user site, no
``PYTHON*`` variables, no script directory on ``sys.path``), in a new empty working
directory, with a minimal environment (``PATH``, ``LANG``, ``HOME`` set to that
directory, the thread counts of ``data/verify.toml`` pinned to 1 and the variables it
passes on), in a session of its own so that a timeout ends it and whatever it started.
The request goes in on stdin; the child answers in JSON lines on its stdout (what the
imported modules print goes to stderr), naming each module before importing it, so a
hang or a crash says where it happened.

>>> outcome = ChildOutcome(status="crashed", signal=11, last_import="bad._ext")
>>> outcome.summary()
'crashed (signal 11, SIGSEGV) while importing bad._ext'
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vbridge.interpreters import start_python
from vbridge.rules import load_data

__all__ = ["ChildOutcome", "ChildRequest", "child_environment", "end_children", "run_child"]

_PROBE = Path(__file__).with_name("_probe.py")
# What is kept of a child's stderr (for the last line of a crash).
_STDERR_TAIL = 4000
# A child answering more than this is not the probe.
_MAX_OUTPUT = 64 * 1024 * 1024


@dataclass
class ChildRequest:
    """What one child imports: top-level modules, then extension modules (paths
    relative to ``layer``), with the ``after_import`` settings of ``data/verify.toml``."""

    modules: list[str]
    extensions: list[str] = field(default_factory=list)
    layer: str | None = None
    threadpoolctl: bool = False

    def to_json(self) -> str:
        settings: dict[str, dict[str, Any]] = {}
        for table in _child_data().get("after_import", []):
            settings[str(table["module"])] = dict(table.get("set", {}))
        return json.dumps(
            {
                "modules": self.modules,
                "extensions": self.extensions,
                "layer": self.layer,
                "after_import": settings,
                "threadpoolctl": self.threadpoolctl,
            }
        )


@dataclass
class ChildOutcome:
    """How a child ended: ``ok`` (with its report), ``timed-out`` or ``crashed``."""

    status: str
    report: dict[str, Any] = field(default_factory=dict)
    last_import: str | None = None
    signal: int | None = None
    returncode: int | None = None
    stderr_tail: str = ""
    seconds: float = 0.0

    def summary(self) -> str:
        """One line for a child that gave no report."""
        where = f" while importing {self.last_import}" if self.last_import else ""
        if self.status == "timed-out":
            return f"timed out after {self.seconds:.0f} s{where}"
        if self.signal is not None:
            try:
                name = signal.Signals(self.signal).name
            except ValueError:
                name = "unknown signal"
            return f"crashed (signal {self.signal}, {name}){where}"
        last = self.stderr_tail.strip().splitlines()[-1:] or [""]
        detail = f": {last[0]}" if last[0] else ""
        return f"exited with status {self.returncode} without a report{where}{detail}"


# Children running now: each is in a session of its own, so a Ctrl-C on vbridge does not
# reach them; end_children() ends them when vbridge stops early.
_RUNNING: set[subprocess.Popen[bytes]] = set()
_RUNNING_LOCK = threading.Lock()


def end_children() -> None:
    """End every child still running (and what it started)."""
    with _RUNNING_LOCK:
        running = list(_RUNNING)
    for child in running:
        _kill_session(child)


def _child_data() -> Mapping[str, Any]:
    child: Mapping[str, Any] = load_data("verify").get("child", {})
    return child


def default_timeout() -> float:
    return float(_child_data().get("timeout", 60))


def child_environment(
    home: str, extra: Mapping[str, str] | None = None, source: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The child's whole environment.

    >>> env = child_environment("/tmp/x", source={"LD_LIBRARY_PATH": "/opt/lib", "SECRET": "1"})
    >>> env["OMP_NUM_THREADS"], env["LD_LIBRARY_PATH"], "SECRET" in env
    ('1', '/opt/lib', False)
    """
    source = os.environ if source is None else source
    data = _child_data()
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": home}
    env.update({str(k): str(v) for k, v in data.get("threads", {}).items()})
    for name in data.get("pass", []):
        if name in source:
            env[name] = source[name]
    env.update(extra or {})
    return env


def run_child(
    python: str,
    request: ChildRequest,
    timeout: float,
    extra_env: Mapping[str, str] | None = None,
) -> ChildOutcome:
    """Run one child to its end (or its timeout) and say how it went."""
    import time

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="vbridge-verify-") as scratch:
        # The program beside the (empty) working directory: `ps` shows its path, and
        # under -I its directory is not on sys.path.
        home = os.path.join(scratch, "home")
        os.mkdir(home)
        program = os.path.join(scratch, "vbridge_verify_probe.py")
        shutil.copyfile(_PROBE, program)
        try:
            child = start_python(
                python, [program], env=child_environment(home, extra_env), cwd=home
            )
        except OSError as exc:
            return ChildOutcome(
                status="crashed", returncode=None, stderr_tail=f"cannot run {python}: {exc}"
            )
        timed_out = False
        with _RUNNING_LOCK:
            _RUNNING.add(child)
        try:
            out, err = child.communicate(request.to_json().encode(), timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_session(child)
            out, err = child.communicate()
        finally:
            if child.poll() is None:
                _kill_session(child)
                child.wait()
            with _RUNNING_LOCK:
                _RUNNING.discard(child)
    seconds = time.monotonic() - started
    report, last_import = _read_answer(out[:_MAX_OUTPUT])
    tail = err[-_STDERR_TAIL:].decode("utf-8", "replace")
    if timed_out:
        return ChildOutcome("timed-out", {}, last_import, None, None, tail, seconds)
    if report is None:
        code = child.returncode
        sig = -code if code is not None and code < 0 else None
        return ChildOutcome("crashed", {}, last_import, sig, code, tail, seconds)
    return ChildOutcome("ok", report, last_import, None, child.returncode, tail, seconds)


def _kill_session(child: subprocess.Popen[bytes]) -> None:
    """End the child and what it started (its own session, its pid as group id)."""
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        child.kill()


def _read_answer(out: bytes) -> tuple[dict[str, Any] | None, str | None]:
    report: dict[str, Any] | None = None
    last_import: str | None = None
    for line in out.decode("utf-8", "replace").splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if not isinstance(message, dict):
            continue
        if "importing" in message:
            last_import = str(message["importing"])
        elif isinstance(message.get("result"), dict):
            report = message["result"]
    return report, last_import

"""Scanning many environments at once: on both cores, with a progress line on a terminal.

Each environment is scanned in a worker process (``concurrent.futures``); what comes
back is plain data (the environment's JSON document or table, or its inventory rows:
an :class:`~vbridge.model.Environment` may hold lazily read facts that do not cross a
process border), so the parent alone writes output and the database.

>>> targets = [Target(Path("/opt/conda/envs/a")), Target(Path("/opt/b"))]  # doctest: +SKIP
>>> [(o.index, o.error) for o in scan_many(targets, workers=2)]            # doctest: +SKIP
[(1, None), (0, None)]
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO, cast

from vbridge.errors import VbridgeError
from vbridge.inventory.discover import Target

if TYPE_CHECKING:
    from vbridge.inventory.database import EnvironmentRows
    from vbridge.model import Environment

__all__ = [
    "DEFAULT_WORKERS",
    "Outcome",
    "ProgressLine",
    "Rendered",
    "render",
    "scan_many",
    "scan_target",
]

DEFAULT_WORKERS = min(2, os.cpu_count() or 1)


@dataclass
class Rendered:
    """One environment as the scan command prints it."""

    document: dict[str, object] | None  # its entry of the JSON document's environments
    table: str | None  # its part of the table
    problems: list[str]
    refused: bool


@dataclass
class Outcome:
    """One target's scan: its output (or inventory rows), or why it failed."""

    index: int
    target: Target
    rendered: Rendered | None = None
    rows: EnvironmentRows | None = None
    error: str | None = None
    exit_code: int = 0
    seconds: float = 0.0


def scan_target(target: Target) -> Environment:
    """Scan one target: an interpreter's layers, or a prefix."""
    from vbridge.decide.assess import assess_environment
    from vbridge.scan import scan_environment, scan_python

    if target.python:
        return assess_environment(scan_python(target.python))
    return assess_environment(scan_environment(target.path))


def render(env: Environment, as_json: bool) -> Rendered:
    """What the scan command prints of one environment."""
    from vbridge.destinations.report import render_table, to_document

    document = table = None
    if as_json:
        (document,) = cast("list[dict[str, object]]", to_document([env])["environments"])
    else:
        table = render_table([env])
    return Rendered(
        document,
        table,
        [str(p) for p in env.problems],
        any(f.severity == "refuse" for f in env.findings),
    )


def _scan_one(index: int, target: Target, mode: str) -> Outcome:
    started = time.perf_counter()
    try:
        env = scan_target(target)
        if mode == "rows":
            from vbridge.inventory.database import environment_rows

            rows = environment_rows(env, target)
            return Outcome(index, target, rows=rows, seconds=time.perf_counter() - started)
        rendered = render(env, as_json=mode == "json")
        return Outcome(index, target, rendered=rendered, seconds=time.perf_counter() - started)
    except VbridgeError as exc:
        return Outcome(index, target, error=str(exc), exit_code=exc.exit_code)


class ProgressLine:
    """``vbridge: scanning 12/200 /opt/conda/envs/sci`` redrawn in place on stderr.

    Draws only when the stream is a terminal; otherwise every call does nothing.
    """

    def __init__(self, total: int, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled and total > 1 and self.stream.isatty()
        self.done = 0

    def advance(self, label: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        width = shutil.get_terminal_size((80, 20)).columns
        text = f"vbridge: scanning {self.done}/{self.total} {label}"
        self.stream.write("\r" + text[: width - 1].ljust(width - 1))
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            width = shutil.get_terminal_size((80, 20)).columns
            self.stream.write("\r" + " " * (width - 1) + "\r")
            self.stream.flush()


def _context() -> multiprocessing.context.BaseContext:
    # fork starts a worker in milliseconds and shares the imported modules; where it is
    # not offered (Windows) or not safe (macOS), the platform default is used.
    return multiprocessing.get_context("fork" if sys.platform.startswith("linux") else None)


def scan_many(
    targets: Sequence[Target],
    workers: int = DEFAULT_WORKERS,
    mode: str = "rows",
    progress: ProgressLine | None = None,
) -> Iterator[Outcome]:
    """Scan every target, ``workers`` at a time; outcomes come as they finish.

    ``mode``: ``rows`` (inventory rows), ``json`` or ``table`` (what ``vbridge scan``
    prints). One target, or ``workers`` of 1, scans in this process.
    """
    indexed = list(enumerate(targets))
    if workers <= 1 or len(indexed) <= 1:
        for index, target in indexed:
            outcome = _scan_one(index, target, mode)
            if progress is not None:
                progress.advance(target.label)
            yield outcome
        return
    with ProcessPoolExecutor(max_workers=min(workers, len(indexed)), mp_context=_context()) as pool:
        futures = [pool.submit(_scan_one, index, target, mode) for index, target in indexed]
        for future in as_completed(futures):
            outcome = future.result()
            if progress is not None:
                progress.advance(outcome.target.label)
            yield outcome

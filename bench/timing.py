"""Timing helpers shared by the benchmarks: wall time of commands and calls, medians.

>>> result = time_command(["true"], repeat=3)          # doctest: +SKIP
>>> result.median < 0.1                                 # doctest: +SKIP
True
"""

from __future__ import annotations

import os
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PYTHON = sys.executable
# The vbridge under test: the one installed beside this interpreter, or another build
# named by $VBRIDGE_BENCH_EXE (an executable called `vbridge`, e.g. a wrapper script).
VBRIDGE = os.environ.get("VBRIDGE_BENCH_EXE") or str(Path(sys.executable).with_name("vbridge"))


@dataclass
class Timing:
    """Wall times of one measured thing, in seconds."""

    label: str
    command: str
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # user+sys of the command and its children

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu) if self.cpu else float("nan")

    @property
    def spread(self) -> str:
        return f"{min(self.times):.3f}-{max(self.times):.3f}"


def time_command(
    argv: Sequence[str],
    repeat: int = 7,
    label: str = "",
    env: Mapping[str, str] | None = None,
    before: Callable[[], None] | None = None,
    check: bool = True,
) -> Timing:
    """Run ``argv`` ``repeat`` times (output discarded), after one warm-up run."""
    full_env = {**os.environ, **(env or {})}
    timing = Timing(label or Path(argv[0]).name, shlex.join(argv))
    for i in range(repeat + 1):
        if before is not None:
            before()
        before_usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        result = subprocess.run(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=full_env, check=False
        )
        elapsed = time.perf_counter() - started
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (usage.ru_utime - before_usage.ru_utime) + (usage.ru_stime - before_usage.ru_stime)
        if check and result.returncode not in (0, 1):
            raise SystemExit(f"{timing.command} failed ({result.returncode}): {result.stderr!r}")
        if i:  # the first run warms the page cache and is not counted
            timing.times.append(elapsed)
            timing.cpu.append(cpu)
    return timing


@dataclass
class Command:
    """One side of a paired measurement: a command line, its environment additions and
    what to do before each run (drop a cache)."""

    argv: Sequence[str]
    label: str
    env: Mapping[str, str] | None = None
    before: Callable[[], None] | None = None


def paired_ratio(measured: Command, baseline: Command, repeat: int = 9) -> tuple[float, float]:
    """The median of ``measured / baseline`` over runs that alternate them (wall, CPU).

    On a machine shared with other work the load changes from second to second; a run
    of each, back to back, sees about the same load, so the ratio of a pair says more
    than the ratio of two medians taken a minute apart (the tables' figures).
    """
    walls: list[float] = []
    cpus: list[float] = []
    for _ in range(repeat):
        pair = [time_command(c.argv, 1, c.label, c.env, c.before) for c in (measured, baseline)]
        walls.append(pair[0].times[0] / pair[1].times[0])
        cpus.append(pair[0].cpu[0] / max(pair[1].cpu[0], 1e-9))
    return statistics.median(walls), statistics.median(cpus)


def paired_target(
    what: str, measured: Command, baseline: Command, limit: float, repeat: int = 9
) -> str:
    """:func:`target` of the :func:`paired_ratio` (wall), with the CPU ratio after it.

    >>> paired_target("scan / dpkg-query", scan, query, 10)     # doctest: +SKIP
    'scan / dpkg-query, paired runs = 9.86x (target <= 10x: met); CPU 10.87x'
    """
    wall, cpu = paired_ratio(measured, baseline, repeat)
    return target(f"{what}, paired runs", wall, limit) + f"; CPU {cpu:.2f}x"


def instructions(command: Command) -> int | None:
    """The user-space instructions ``command`` executes (valgrind's callgrind), or None
    when valgrind is not installed (``apt-get install valgrind``).

    Unlike time, the count does not move with the machine's load: two builds, or a
    command and its baseline, compare exactly. It leaves out the kernel (system calls,
    page faults), so a command that reads much more than it computes looks cheaper than
    its wall time says; the tables' times stay the figures, this is the check.
    """
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    if command.before is not None:
        command.before()
    with tempfile.TemporaryDirectory() as work:
        result = subprocess.run(
            [
                valgrind,
                "--tool=callgrind",
                "--trace-children=yes",  # through a wrapper script's exec, and children
                f"--callgrind-out-file={work}/out.%p",
                *command.argv,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(command.env or {})},
            check=False,
        )
    found = re.findall(r"Collected : (\d+)", result.stderr)
    if not found:
        raise SystemExit(f"callgrind of {shlex.join(command.argv)} said: {result.stderr[-500:]}")
    return sum(map(int, found))


def instruction_target(what: str, measured: Command, baseline: Command, limit: float) -> str:
    """:func:`target` of the ratio of :func:`instructions` (one run each)."""
    ours, theirs = instructions(measured), instructions(baseline)
    if ours is None or theirs is None:
        return f"{what}, instructions: skipped (no valgrind on this machine)"
    label = f"{what}, instructions ({ours / 1e6:.0f}M / {theirs / 1e6:.0f}M)"
    return target(label, ours / theirs, limit)


# The environment of a benchmarked vbridge run that must scan the whole input: no
# record cache, no kept scan (vbridge.scan_cache).
WHOLE_SCAN = {"VBRIDGE_NO_CACHE": "1"}


def time_call(call: Callable[[], object], repeat: int = 7, label: str = "") -> Timing:
    """Call ``call`` ``repeat`` times in this process, after one warm-up call."""
    timing = Timing(label, label)
    for i in range(repeat + 1):
        cpu_started = time.process_time()
        started = time.perf_counter()
        call()
        elapsed = time.perf_counter() - started
        if i:
            timing.times.append(elapsed)
            timing.cpu.append(time.process_time() - cpu_started)
    return timing


def report(title: str, rows: Sequence[Timing], reference: Timing | None = None) -> str:
    """A Markdown table: label, median wall time, spread, ratio to ``reference``, median
    CPU time (user+sys: the work done, whatever else the machine was running), command."""
    lines = [
        f"### {title}",
        "",
        "| what | median s | min-max s | ratio | CPU s | command |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = f"{row.median / reference.median:.2f}x" if reference else ""
        command = row.command.replace("\n", "; ")
        lines.append(
            f"| {row.label} | {row.median:.3f} | {row.spread} | {ratio} "
            f"| {row.cpu_median:.3f} | `{command}` |"
        )
    return "\n".join(lines) + "\n"


def target(what: str, ratio: float, limit: float, unit: str = "x") -> str:
    """One line: a measured ratio against its target, and whether it is met.

    >>> target("first scan / msgspec floor", 1.31, 1.5)
    'first scan / msgspec floor = 1.31x (target <= 1.5x: met)'
    """
    verdict = "met" if ratio <= limit else "MISSED"
    return f"{what} = {ratio:.2f}{unit} (target <= {limit:g}{unit}: {verdict})"


def sibling_tool(name: str) -> str | None:
    """An executable installed beside this interpreter (the bench venv), else on PATH."""
    import shutil

    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else shutil.which(name)


def machine() -> str:
    """One line about where the figures were taken."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"Python {sys.version.split()[0]} ({interpreter_build()}), {os.cpu_count()} cores, "
        f"load average {load:.2f} at start"
    )


def interpreter_build() -> str:
    """The interpreter this runs, and whether it runs on a shared ``libpython``.

    The same code runs slower on a default source build (pyenv's: ``--enable-shared``,
    no PGO or LTO, every call into the interpreter through the PLT) than on a
    distribution's (Debian's ``python3.11``, and conda-forge's ``python`` that conda's
    base runs: a static interpreter built with PGO and LTO): more instructions, and
    more time for each. The figures say which one they were taken on (bench/README.md).
    """
    executable = os.path.realpath(sys.executable)
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            shared = any("libpython" in line for line in maps)
    except OSError:
        return executable
    return f"{executable}, {'shared' if shared else 'static'} libpython"


def work_directory(keep: Path | None) -> Path:
    """``keep`` if given, else a new temporary directory removed when the script exits."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        return keep
    import atexit
    import shutil
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="vbridge-bench-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    return work

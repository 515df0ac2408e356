"""Errors a user can meet. Each carries one line: the file, the problem, what to do.

The CLI prints ``vbridge: <message>`` and exits with :attr:`VbridgeError.exit_code`;
no traceback reaches the user.
"""

from __future__ import annotations

__all__ = [
    "DiskFull",
    "EnvironmentLocked",
    "NotAnEnvironment",
    "ReadOnlyEnvironment",
    "RecordError",
    "RuleError",
    "UnreadableFile",
    "UnsafePath",
    "VbridgeError",
]

from pathlib import Path


class VbridgeError(Exception):
    """Base of every error vbridge reports to a user."""

    exit_code = 2


class RecordError(VbridgeError):
    """An install record could not be read (malformed JSON, unknown format version)."""


class UnreadableFile(RecordError):
    """A file of the environment that vbridge will not or cannot read: a special file
    (FIFO, device, socket), too large, a link out of the environment, malformed JSON,
    or a field of the wrong type. Carries the parts of its one line, so a reader can
    report it as a :class:`~vbridge.model.RecordProblem` and go on.

    >>> str(UnreadableFile("conda-meta/x.json", "not a regular file (a FIFO)", "skipped"))
    'conda-meta/x.json: not a regular file (a FIFO) (skipped)'
    """

    def __init__(self, path: Path | str, problem: str, hint: str = "") -> None:
        self.path = Path(path)
        self.problem = problem
        self.hint = hint
        line = f"{path}: {problem}"
        super().__init__(f"{line} ({hint})" if hint else line)


class RuleError(VbridgeError):
    """A rule or policy file in ``data/`` (or a user override) is invalid."""


class NotAnEnvironment(VbridgeError):
    """The path given is not a Python environment vbridge knows how to read."""


class ReadOnlyEnvironment(VbridgeError):
    """A directory vbridge must write to is not writable."""


class DiskFull(VbridgeError):
    """A write found no space left on its file system."""


class UnsafePath(VbridgeError):
    """A path resolves outside the environment (a symlink leaving the prefix)."""


class EnvironmentLocked(VbridgeError):
    """Another vbridge run holds the environment's lock."""

"""Errors a user can meet. Each carries one line: the file, the problem, what to do.

The CLI prints ``vbridge: <message>`` and exits with :attr:`VbridgeError.exit_code`;
no traceback reaches the user.
"""

from __future__ import annotations

__all__ = [
    "EnvironmentLocked",
    "NotAnEnvironment",
    "ReadOnlyEnvironment",
    "RecordError",
    "RuleError",
    "UnsafePath",
    "VbridgeError",
]


class VbridgeError(Exception):
    """Base of every error vbridge reports to a user."""

    exit_code = 2


class RecordError(VbridgeError):
    """An install record could not be read (malformed JSON, unknown format version)."""


class RuleError(VbridgeError):
    """A rule or policy file in ``data/`` (or a user override) is invalid."""


class NotAnEnvironment(VbridgeError):
    """The path given is not a Python environment vbridge knows how to read."""


class ReadOnlyEnvironment(VbridgeError):
    """A directory vbridge must write to is not writable."""


class UnsafePath(VbridgeError):
    """A path resolves outside the environment (a symlink leaving the prefix)."""


class EnvironmentLocked(VbridgeError):
    """Another vbridge run holds the environment's lock."""

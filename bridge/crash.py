"""What happens when vbridge itself fails: a bug is exit status 3, never 1 or 2.

Exit 1 is a refusal and 2 bad input, so a script that tells them apart must never see
a crash as either. An exception that is not a :class:`~vbridge.errors.VbridgeError` is
a bug: one line on stderr says so, asks for a report, and names a log holding the
traceback (``$XDG_STATE_HOME/vbridge/crash-*.log``, by default under
``~/.local/state``; the temporary directory if that cannot be written). A full disk is
not a bug: it is one line and exit 2 (:func:`disk_full`).

>>> import errno
>>> print(disk_full(OSError(errno.ENOSPC, "No space left on device", "/env/x")))
/env/x: no space left on device; free some space, then run vbridge again (nothing was
left half-written)
>>> disk_full(ValueError("x")) is None
True
"""

from __future__ import annotations

import errno
import os
import sys
import time
import traceback
from pathlib import Path

__all__ = ["BUG_EXIT_CODE", "disk_full", "report_bug"]

BUG_EXIT_CODE = 3
_FULL = (errno.ENOSPC, errno.EDQUOT)


def disk_full(exc: BaseException) -> str | None:
    """The one line for a write that found no space, or None for anything else."""
    if isinstance(exc, OSError) and exc.errno in _FULL:
        where = exc.filename or "a file vbridge writes"
        return (
            f"{where}: no space left on device; free some space, then run vbridge again "
            "(nothing was left half-written)"
        )
    return None


def _log_directory() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return Path(base) / "vbridge"


def _write_log(text: str) -> Path | None:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    import tempfile

    for directory in (_log_directory(), Path(tempfile.gettempdir())):
        try:
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / f"crash-{stamp}-{os.getpid()}.log"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            return path
        except OSError:
            continue
    return None


def report_bug(exc: BaseException) -> int:
    """Say on stderr that vbridge failed (a bug), log the traceback; return 3.

    A full disk is said as such and returns 2.
    """
    line = disk_full(exc)
    if line is not None:
        print(f"vbridge: {line}", file=sys.stderr)
        return 2
    from vbridge import __version__

    text = (
        f"vbridge {__version__} on Python {sys.version.split()[0]}\n"
        f"command: {' '.join(sys.argv)}\n\n"
        + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    )
    log = _write_log(text)
    where = f"the traceback is in {log}" if log else "the traceback could not be saved"
    first = str(exc).splitlines()[0] if str(exc) else ""
    print(
        f"vbridge: internal error ({type(exc).__name__}{': ' + first if first else ''}); "
        f"this is a bug in vbridge, please report it with the log ({where})",
        file=sys.stderr,
    )
    return BUG_EXIT_CODE

"""One exclusive lock per environment, so two vbridge runs never write at once.

The lock is ``fcntl.flock`` on ``<state dir>/lock``. The kernel drops it when the holder
exits, even on SIGKILL, so a crashed run never leaves the environment locked. A run that
finds the lock held waits up to ``wait`` seconds (default: not at all), then stops with
:class:`~vbridge.errors.EnvironmentLocked` naming the lock file.

>>> import tempfile
>>> state = Path(tempfile.mkdtemp())
>>> with EnvironmentLock(state / "lock"):
...     (state / "lock").exists()
True
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from vbridge.errors import EnvironmentLocked

__all__ = ["EnvironmentLock"]


class EnvironmentLock:
    """Hold ``path`` exclusively for the duration of a ``with`` block."""

    def __init__(self, path: Path, wait: float = 0.0) -> None:
        self.path = path
        self.wait = wait
        self._fd: int | None = None

    def __enter__(self) -> EnvironmentLock:
        deadline = time.monotonic() + max(self.wait, 0.0)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        os.close(fd)
                        raise EnvironmentLocked(
                            f"{self.path}: another vbridge run holds this environment's "
                            "lock; wait for it to finish, or pass --wait SECONDS to queue "
                            "behind it"
                        ) from None
                    time.sleep(0.05)
            # The holder before us may have removed the lock file (clean does, when
            # nothing is left): then we hold a lock on a name nobody else can see.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                return self
            os.close(fd)

    def release_and_remove(self) -> None:
        """Remove the lock file while still holding it (nothing is left to protect)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

"""One exclusive lock per environment, so two vbridge runs never write at once.

The lock is ``fcntl.flock`` on the environment directory itself (its root: a conda
prefix, a venv, ``/`` for a Debian system). That directory outlives every run: ``clean``
removes the state directory ``.vbridge/`` when nothing is left, and a run waiting for the
lock still holds a descriptor of a directory that exists, so it queues, then finds a
clean environment. The kernel drops the lock when the holder exits, even on SIGKILL, so a
crashed run never leaves the environment locked. A run that finds the lock held waits up
to ``wait`` seconds (default: not at all), then stops with
:class:`~vbridge.errors.EnvironmentLocked` naming the environment.

>>> import tempfile
>>> env = Path(tempfile.mkdtemp())
>>> with EnvironmentLock(env):
...     sorted(os.listdir(env))   # nothing is created to hold the lock
[]
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from vbridge.errors import EnvironmentLocked, ReadOnlyEnvironment

__all__ = ["EnvironmentLock"]


class EnvironmentLock:
    """Hold the environment directory ``path`` exclusively for a ``with`` block.

    ``path`` may also be a lock file (an older layout): then it is opened without
    following a symlink, and a file removed by the holder before us is opened again.
    """

    def __init__(self, path: Path, wait: float = 0.0) -> None:
        self.path = path
        self.wait = wait
        self._fd: int | None = None

    def _open(self) -> int:
        try:
            if os.path.isdir(self.path):
                # The environment directory, also when its name is a link (a Spack view
                # is one): a flock writes nothing, so following it touches nothing.
                return os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            return os.open(
                self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644
            )
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise EnvironmentLocked(
                    f"{self.path}: a symlink where vbridge's lock belongs; remove it"
                ) from None
            if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise ReadOnlyEnvironment(
                    f"{self.path}: cannot be locked ({exc.strerror}); run vbridge as the "
                    "user that owns the environment"
                ) from None
            raise

    def __enter__(self) -> EnvironmentLock:
        deadline = time.monotonic() + max(self.wait, 0.0)
        while True:
            fd = self._open()
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
            # A lock file the holder before us removed: we hold a lock on a name nobody
            # else can see (a directory is never removed from under us this way).
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                return self
            os.close(fd)

    def release_and_remove(self) -> None:
        """Remove a lock *file* while still holding it (nothing is left to protect)."""
        if not os.path.isdir(self.path):
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

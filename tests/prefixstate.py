"""Checksums of a whole directory tree, to prove a run changed nothing (or exactly X).

>>> state = snapshot(tmp)         # doctest: +SKIP
>>> changed(state, snapshot(tmp))  # doctest: +SKIP
[]
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def snapshot(root: Path) -> dict[str, str]:
    """Every file (sha256), directory and symlink (target) under ``root``, by path."""
    state: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        for name in dirnames:
            path = base / name
            rel = path.relative_to(root).as_posix()
            state[rel + "/"] = "link:" + os.readlink(path) if path.is_symlink() else "dir"
        for name in filenames:
            path = base / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                state[rel] = "link:" + os.readlink(path)
            else:
                state[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Paths added, removed or modified between two snapshots, sorted."""
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))

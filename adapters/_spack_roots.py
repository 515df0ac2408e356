"""Where Spack's records are, found without importing the Spack adapter (a scan asks
every adapter whether each path it looks at is its root: see
:func:`vbridge.adapters.find_roots`)."""

from __future__ import annotations

import os
from pathlib import Path

from vbridge.sitepackages import LAYER_NAMES

__all__ = ["find_root", "is_view", "present", "projection_views"]


def is_view(path: Path) -> bool:
    """A view has ``.spack/<package>/spec.json``; a prefix has ``.spack/spec.json``."""
    meta = path / ".spack"
    if not meta.is_dir() or (meta / "spec.json").exists():
        return False
    try:
        return any(e.is_dir() and (Path(e.path) / "spec.json").is_file() for e in os.scandir(meta))
    except OSError:
        return False


def projection_views(path: Path) -> list[Path]:
    """The sub-views of a view with projections, or [] when ``path`` is not one.

    Spack links each package of such a view under its projection
    (``views/proj/hdf5-1.14.6-adahowy/``), each with its own ``.spack/<package>/``,
    and merges Python extensions into their interpreter's projection
    (``views/proj/python-3.14.5-<hash>/lib/python3.14/site-packages``).
    """
    if (path / ".spack").exists() or (path / "spack.lock").is_file():
        return []
    try:
        entries = sorted(os.scandir(path), key=lambda e: e.name)
    except OSError:
        return []
    # Each projection is a real directory (an environment's `view` is a symlink). The
    # .spack/ every view has is looked for before any Path is made: a site-packages
    # layer, looked at for every scan, holds hundreds of directories and no view.
    return [
        Path(e.path)
        for e in entries
        if e.is_dir(follow_symlinks=False)
        and os.path.isdir(os.path.join(e.path, ".spack"))
        and is_view(Path(e.path))
    ]


def present(path: Path) -> bool:
    """A record file is there (a FIFO or a broken one too: reading it says what is wrong,
    rather than the environment silently not being Spack's)."""
    return os.path.lexists(path) and not os.path.isdir(path)


def find_root(path: Path) -> Path | None:
    """The Spack records that govern ``path``.

    An install tree (``.spack-db/index.json``), an environment (``spack.lock``), a
    view (``.spack/<package>/spec.json``) or one installed prefix (``.spack/spec.json``),
    found at ``path`` or a few levels above (``<prefix>/lib/python3.11/site-packages``).
    """
    path = Path(path)
    if present(path / ".spack-db" / "index.json"):
        return path
    if present(path / "spack.lock"):
        return path
    for candidate in (path, *list(path.parents)[:4]):
        if present(candidate / ".spack" / "spec.json"):
            return candidate
        if is_view(candidate):
            return candidate
    # A site-packages layer (looked at by every scan) is no view's root: its
    # hundreds of directories are not looked through for a `.spack/`.
    if path.name not in LAYER_NAMES and projection_views(path):
        return path
    return None

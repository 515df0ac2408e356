"""Where a conda prefix is, found without importing the conda adapter (see
:func:`vbridge.adapters.find_roots`)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["find_root"]


def find_root(path: Path) -> Path | None:
    """The conda prefix that holds ``path`` (a prefix or one of its site-packages)."""
    for candidate in (path, *list(path.parents)[:4]):
        if (candidate / "conda-meta").is_dir():
            return candidate
    return None

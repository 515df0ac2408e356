"""Where a Debian root is, found without importing the apt adapter (a scan asks every
adapter whether each path it looks at is its root: see :func:`vbridge.adapters.find_roots`)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["STATUS", "find_root"]

STATUS = Path("var/lib/dpkg/status")


def find_root(path: Path) -> Path | None:
    """The Debian root governing ``path``: a root itself or its Python dist-packages.

    ``/usr/lib/python3/dist-packages`` -> ``/`` when ``/var/lib/dpkg/status`` exists.
    """
    if (path / STATUS).is_file():
        return path
    if path.parts[-4:] == ("usr", "lib", "python3", "dist-packages"):
        root = path.parents[3]
        if (root / STATUS).is_file():
            return root
    return None

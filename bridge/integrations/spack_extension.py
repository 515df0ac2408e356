"""The Spack extension vbridge ships: ``spack vbridge scan|annotate|clean``.

The extension is the directory ``spack-vbridge/`` inside this package (Spack requires
the ``spack-<name>`` basename and finds the command in ``<name>/cmd/<command>.py``).
Spack finds it either way it supports:

- ``config:extensions`` lists it: ``spack config add "config:extensions:[$(vbridge
  spack-extension path)]"``;
- the ``spack.extensions`` entry point group names :func:`get_spack_extension_paths`,
  which Spack calls when vbridge is installed in the Python that runs Spack.

>>> extension_path().name
'spack-vbridge'
>>> (extension_path() / "vbridge" / "cmd" / "vbridge.py").is_file()
True
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["extension_path", "get_spack_extension_paths"]


def extension_path() -> Path:
    """The ``spack-vbridge`` directory, for Spack's ``config:extensions``."""
    return Path(__file__).resolve().parent / "spack-vbridge"


def get_spack_extension_paths() -> list[str]:
    """The ``spack.extensions`` entry-point hook: the extension directories to load."""
    return [str(extension_path())]

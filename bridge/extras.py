"""Optional parts of vbridge and the extra that installs each.

The core job (read records, translate, show, annotate, gate pip) needs only the
dependencies every install has. What only one command needs is an extra, so vbridge
fits beside conda in its base environment and in the Python that runs Spack; a command
that needs a missing one says so in one line, naming the extra:

>>> import_extra("json", "inventory", "the SQLite inventory (--db)").__name__
'json'
>>> try:
...     import_extra("no_such_module", "inventory", "--db")
... except MissingExtra as exc:
...     print(exc)
--db needs no_such_module, which is not installed: pip install 'vbridge[inventory]'
"""

from __future__ import annotations

import importlib
from types import ModuleType

from vbridge.errors import VbridgeError

__all__ = ["EXTRAS", "MissingExtra", "import_extra"]

# extra -> the distributions it adds (pyproject.toml [project.optional-dependencies]).
EXTRAS = {"inventory": ("sqlite-utils",)}


class MissingExtra(VbridgeError):
    """A command needs a part of vbridge that was installed without its extra."""


def import_extra(module: str, extra: str, needed_for: str) -> ModuleType:
    """``import module``, or :class:`MissingExtra` naming ``vbridge[extra]``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra(
            f"{needed_for} needs {module}, which is not installed: pip install 'vbridge[{extra}]'"
        ) from None

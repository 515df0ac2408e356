"""Where vbridge keeps the state of one environment: the ledger and its backups.

``<prefix>/.vbridge/``; for the Debian system root ``/var/lib/vbridge/`` (and
``/var/lib/vbridge/usr`` for ``/usr``). A module of its own, apart from
:mod:`vbridge.destinations.ledger`, so that a scan asking whether an environment was
annotated (:mod:`vbridge.decide.assess`) does not import the ledger's code.

>>> ledger_path(Path("/opt/conda/envs/sci"))
PosixPath('/opt/conda/envs/sci/.vbridge/ledger.json')
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["LEDGER_NAME", "ledger_path", "state_dir"]

LEDGER_NAME = "ledger.json"

# Roots whose state belongs in the system's state directory, not inside the tree; each
# root its own (its ledger's paths are relative to it).
_SYSTEM_STATE = Path("/var/lib/vbridge")
_SYSTEM_ROOTS = {Path("/"): _SYSTEM_STATE, Path("/usr"): _SYSTEM_STATE / "usr"}


def state_dir(root: Path) -> Path:
    """Where the ledger and backups of the environment ``root`` live.

    >>> state_dir(Path("/opt/conda/envs/sci"))
    PosixPath('/opt/conda/envs/sci/.vbridge')
    >>> state_dir(Path("/"))
    PosixPath('/var/lib/vbridge')
    >>> state_dir(Path("/usr"))
    PosixPath('/var/lib/vbridge/usr')
    """
    return _SYSTEM_ROOTS.get(Path(os.path.abspath(root)), root / ".vbridge")


def ledger_path(root: Path) -> Path:
    """The ledger file of the environment ``root`` (it may not exist)."""
    return state_dir(root) / LEDGER_NAME

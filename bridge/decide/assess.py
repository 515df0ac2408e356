"""What vbridge decides about a scanned environment: :func:`assess_environment`.

:func:`vbridge.scan.scan_environment` reads the environment into the model;
``assess_environment`` adds the decisions: whether the metadata ``vbridge annotate``
wrote is still what it would write (``facts["vbridge_metadata"]``) and the findings
(conflicting builds, who caused them). Every command that reports on an environment
composes the two::

    >>> from vbridge.scan import scan_environment
    >>> env = assess_environment(scan_environment(prefix))      # doctest: +SKIP
    >>> [f.code for f in env.findings]                          # doctest: +SKIP
    ['mixed-blas_lapack']
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

from vbridge.model import Environment

__all__ = ["assess_environment"]


def assess_environment(
    env: Environment, *, only: Collection[Path] | None = None, findings: bool = True
) -> Environment:
    """Add the metadata status and the findings to a scanned ``env``; return it.

    ``only`` (dist-info paths, as given to the scan) limits the metadata status to
    these distributions. ``findings=False`` adds none, for a caller that reports none
    (the post-link script), without loading the coupling policy.
    """
    if _has_ledger(env.path):  # what `vbridge annotate` wrote (its module is heavy)
        from vbridge.destinations.annotate import mark_metadata_status

        mark_metadata_status(env, only=set(only) if only is not None else None)
    if findings:
        from vbridge.decide.findings import environment_findings

        env.findings.extend(environment_findings(env))
    return env


def _has_ledger(path: Path) -> bool:
    """False only when the environment surely has no annotate ledger."""
    from vbridge.destinations.state import ledger_path

    try:
        os.stat(ledger_path(path))
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError:
        return True  # unreadable: let the ledger code report it
    return True

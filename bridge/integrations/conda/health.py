"""The health of an environment as vbridge sees it: conflicts and stale metadata.

What ``conda doctor`` shows through the vbridge plugin, and what its fixer repairs:

- findings of the scan: several BLAS/MPI/OpenMP builds mixed, a distribution pip
  installed over (or beside) one another package manager owns;
- stale metadata: a distribution another package manager owns whose ``variant.json``
  is missing or no longer says what its records say (the records changed after the
  last annotate, e.g. outside conda or with the plugin disabled).

>>> mkl = ("blas_lapack :: provider :: mkl",)
>>> Staleness(Path("numpy-1.26.4.dist-info"), "numpy", None, mkl).reason
'no variant metadata; the records say blas_lapack :: provider :: mkl'
"""

from __future__ import annotations

from pathlib import Path

import msgspec
from vbridge.errors import RecordError
from vbridge.model import Distribution, Environment, Finding
from vbridge.safefs import read_regular

__all__ = ["HealthReport", "Staleness", "environment_health", "written_properties"]


class Staleness(msgspec.Struct, frozen=True):
    """One distribution whose written metadata disagrees with its records."""

    dist_info: Path
    name: str
    written: tuple[str, ...] | None  # None: no variant.json at all
    expected: tuple[str, ...]

    @property
    def reason(self) -> str:
        expected = ", ".join(self.expected) or "no properties"
        if not self.written:
            return f"no variant metadata; the records say {expected}"
        return f"variant metadata says {', '.join(self.written)}; the records say {expected}"


class HealthReport(msgspec.Struct):
    """Findings and stale metadata of one environment."""

    env: Environment
    findings: list[Finding] = msgspec.field(default_factory=list)
    stale: list[Staleness] = msgspec.field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.findings and not self.stale


def written_properties(dist_info: Path) -> tuple[str, ...] | None:
    """The properties a distribution's ``variant.json`` declares; None if it has none.

    An unreadable file counts as none.
    """
    from vbridge.destinations.variant_json import VARIANT_JSON, read_variant_json

    try:
        desc = read_variant_json(read_regular(dist_info / VARIANT_JSON))
    except (OSError, ValueError, RecordError):
        return None
    return tuple(sorted(p.to_str() for p in desc.properties))


def _expected(dist: Distribution) -> tuple[str, ...]:
    return tuple(sorted(p.to_str() for p in dist.properties))


def _writable_owner(dist: Distribution) -> bool:
    """Whether ``vbridge annotate`` writes into distributions of this owner."""
    from vbridge.rules import load_data

    if dist.owner is None:
        return False  # pip's own: a variant wheel's variant.json is the wheel's business
    owners: dict[str, str] = load_data("annotate").get("owners", {})
    return owners.get(dist.owner.ecosystem, owners.get("default", "skip")) != "skip"


def environment_health(env: Environment) -> HealthReport:
    """Check a scanned environment: its findings, and each owned distribution's metadata.

    Stale: vbridge wrote metadata that is no longer what it would write now (the
    annotate ledger says so), or a distribution another package manager owns has
    properties but no metadata yet.
    """
    from vbridge.destinations.annotate import mark_metadata_status

    report = HealthReport(env, findings=list(env.findings))
    mark_metadata_status(env)
    for dist in env.distributions:
        status = dist.facts.get("vbridge_metadata")
        expected = _expected(dist)
        if status == "stale" or (status is None and expected and _writable_owner(dist)):
            written = written_properties(dist.dist_info)
            report.stale.append(Staleness(dist.dist_info, dist.name, written, expected))
    return report

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

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from vbridge.model import Distribution, Environment, Finding

__all__ = ["HealthReport", "Staleness", "environment_health", "written_properties"]

VARIANT_JSON = "variant.json"


@dataclass(frozen=True)
class Staleness:
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


@dataclass
class HealthReport:
    """Findings and stale metadata of one environment."""

    env: Environment
    findings: list[Finding] = field(default_factory=list)
    stale: list[Staleness] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.findings and not self.stale


def written_properties(dist_info: Path) -> tuple[str, ...] | None:
    """The properties a distribution's ``variant.json`` declares; None if it has none.

    Read with variantlib's own model of the file; an unreadable file counts as none.
    """
    from variantlib.variant_dist_info import VariantDistInfo

    try:
        text = (dist_info / VARIANT_JSON).read_text(encoding="utf-8")
    except OSError:
        return None
    with contextlib.suppress(Exception):  # variantlib raises several types on bad input
        desc = VariantDistInfo(text).variant_desc
        return tuple(sorted(p.to_str() for p in desc.properties))
    return None


def _expected(dist: Distribution) -> tuple[str, ...]:
    return tuple(sorted(p.to_str() for p in dist.properties))


def environment_health(env: Environment) -> HealthReport:
    """Check a scanned environment: its findings, and each owned distribution's metadata."""
    report = HealthReport(env, findings=list(env.findings))
    for dist in env.distributions:
        if dist.owner is None:
            continue  # pip's own: its variant.json came from the wheel
        expected = _expected(dist)
        written = written_properties(dist.dist_info)
        if (written or ()) != expected:
            report.stale.append(Staleness(dist.dist_info, dist.name, written, expected))
    return report

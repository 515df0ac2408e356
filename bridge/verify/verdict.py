"""What a verification found: per distribution and feature, records against what loaded.

Per feature (``blas_lapack :: provider``...) of one distribution:

- ``confirmed``: the values the records give are the values of what loaded;
- ``differs``: something else loaded (both sides named: record, library, owner);
- ``not-seen``: the records give a value, but importing the distribution loaded
  nothing of that feature;
- ``unrecorded``: something of the feature loaded that no record states.

>>> compare_values({"mkl"}, {"openblas"}), compare_values({"mkl"}, set())
('differs', 'not-seen')
>>> compare_values({"openblas", "netlib"}, {"netlib", "openblas"})
'confirmed'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vbridge.model import Finding, Severity
from vbridge.rules import load_data
from vbridge.verify.libraries import LoadedLibrary
from vbridge.verify.owners import LibraryOwner

__all__ = [
    "DistributionVerification",
    "FeatureVerdict",
    "LoadedValue",
    "ProcessFacts",
    "RecordedValue",
    "Verification",
    "compare_values",
    "severity_of",
]


def compare_values(recorded: set[str], loaded: set[str]) -> str:
    if not loaded:
        return "not-seen"
    if not recorded:
        return "unrecorded"
    return "confirmed" if recorded == loaded else "differs"


def severity_of(status: str) -> Severity:
    """How much an outcome weighs (``[severity]`` of ``data/verify.toml``)."""
    value = str(load_data("verify").get("severity", {}).get(status, "info"))
    return "refuse" if value == "refuse" else "warn" if value == "warn" else "info"


@dataclass(frozen=True)
class RecordedValue:
    """A value the records give, and which record said so."""

    value: str
    record: str
    rule: str

    def describe(self) -> str:
        return f"{self.value} ({self.record})"

    def to_dict(self) -> dict[str, str]:
        return {"value": self.value, "record": self.record, "rule": self.rule}


@dataclass(frozen=True)
class LoadedValue:
    """A value a loaded library implements, with the library and who installed it."""

    value: str
    library: LoadedLibrary
    owner: LibraryOwner | None
    rule: str

    def describe(self) -> str:
        owner = self.owner.describe() if self.owner else "no package manager lists it"
        return f"{self.value}: {self.library.real_path} ({owner})"

    def to_dict(self) -> dict[str, object]:
        return {
            "value": self.value,
            "path": self.library.real_path,
            "owner": self.owner.to_dict() if self.owner else None,
            "rule": self.rule,
        }


def describe_loaded(values: list[LoadedValue]) -> str:
    """Loaded values grouped by value and owner: ``openblas: /a.so, /b.so (apt pkg 1.0)``."""
    groups: dict[tuple[str, str], list[str]] = {}
    for v in values:
        owner = v.owner.describe() if v.owner else "no package manager lists it"
        groups.setdefault((v.value, owner), []).append(v.library.real_path)
    return "; ".join(
        f"{value}: {', '.join(sorted(paths))} ({owner})" for (value, owner), paths in groups.items()
    )


@dataclass
class FeatureVerdict:
    feature: str
    status: str
    recorded: list[RecordedValue] = field(default_factory=list)
    loaded: list[LoadedValue] = field(default_factory=list)

    def line(self) -> str:
        records = ", ".join(r.describe() for r in self.recorded)
        loaded = describe_loaded(self.loaded)
        if self.status == "confirmed":
            return f"{self.feature}: confirmed, {loaded}"
        if self.status == "not-seen":
            return f"{self.feature}: not seen (records: {records}; importing it loaded none)"
        if self.status == "unrecorded":
            return f"{self.feature}: loaded, no record states it: {loaded}"
        return f"{self.feature}: differs: records say {records}; loaded {loaded}"

    def to_dict(self) -> dict[str, object]:
        return {
            "feature": self.feature,
            "status": self.status,
            "message": self.line(),
            "recorded": [r.to_dict() for r in self.recorded],
            "loaded": [v.to_dict() for v in self.loaded],
        }


@dataclass
class DistributionVerification:
    """The outcome for one distribution's child."""

    name: str
    version: str
    layer: str
    dist_info: str
    owner: str  # 'apt python3-numpy 1:1.24.2-1' or 'pip'
    # ok | import-failed | crashed | timed-out | shadowed | nothing-to-import
    status: str
    modules: list[str] = field(default_factory=list)
    extensions: int = 0
    imported: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    features: list[FeatureVerdict] = field(default_factory=list)
    note: str = ""
    seconds: float = 0.0

    @property
    def title(self) -> str:
        return f"{self.name} {self.version} ({self.owner}, {self.layer})"

    def failure_line(self) -> str:
        if not self.failures:
            return ""
        first = self.failures[0]
        more = len(self.failures) - 1
        also = f" (and {more} more module{'s' if more != 1 else ''})" if more else ""
        return f"import failed: {first['module']}: {first['error']}{also}"

    def findings(self) -> list[Finding]:
        out: list[Finding] = []
        if self.status in ("import-failed", "crashed", "timed-out"):
            text = self.failure_line() if self.status == "import-failed" else self.note
            out.append(
                Finding(severity_of(self.status), f"verify-{self.status}",
                        f"{self.name} {self.version}: {text}", (self.name,))
            )
        for verdict in self.features:
            severity = severity_of(verdict.status)
            if verdict.status == "differs":
                out.append(
                    Finding(severity, "verify-differs", f"{self.name} {self.version}: "
                            f"{verdict.line()}", (self.name,))
                )
        return out

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "version": self.version,
            "layer": self.layer,
            "dist_info": self.dist_info,
            "owner": self.owner,
            "status": self.status,
            "modules": self.modules,
            "extension_modules": self.extensions,
            "imported": self.imported,
            "failures": self.failures,
            "features": [f.to_dict() for f in self.features],
            "note": self.note,
            "seconds": round(self.seconds, 3),
        }


_LABELS = {
    "blas_lapack :: provider": "BLAS/LAPACK",
    "openmp :: provider": "OpenMP",
    "mpi :: implementation": "MPI",
    "hdf5 :: parallel": "HDF5",
}


@dataclass
class ProcessFacts:
    """One child importing the whole selected set: which runtimes share that process."""

    distributions: list[str] = field(default_factory=list)
    status: str = "ok"
    note: str = ""
    runtimes: dict[str, list[LoadedValue]] = field(default_factory=dict)
    threadpoolctl: list[dict[str, Any]] | None = None
    threadpoolctl_note: str = ""
    unseen_by_threadpoolctl: list[LoadedValue] = field(default_factory=list)

    def lines(self) -> list[str]:
        if not self.distributions:
            return []
        head = f"one process importing {len(self.distributions)} distribution(s)"
        if self.status != "ok":
            return [f"{head}: {self.note}"]
        out = [f"{head}:"]
        for feature, found in self.runtimes.items():
            label = _LABELS.get(feature, feature)
            noun = "runtime" if len(found) == 1 else "runtimes"
            out.append(f"  {len(found)} {label} {noun}" + (":" if found else ""))
            out.extend(f"    {v.describe()}" for v in found)
        if self.threadpoolctl is not None:
            seen = [f"{i.get('internal_api')} {i.get('filepath')}" for i in self.threadpoolctl]
            out.append("  threadpoolctl sees: " + ("; ".join(seen) or "nothing"))
            out.extend(
                f"  threadpoolctl does not see: {v.describe()}"
                for v in self.unseen_by_threadpoolctl
            )
        elif self.threadpoolctl_note:
            out.append(f"  threadpoolctl: {self.threadpoolctl_note}")
        return out

    def to_dict(self) -> dict[str, object]:
        return {
            "distributions": self.distributions,
            "status": self.status,
            "note": self.note,
            "runtimes": {k: [v.to_dict() for v in vs] for k, vs in self.runtimes.items()},
            "threadpoolctl": self.threadpoolctl,
            "unseen_by_threadpoolctl": [v.to_dict() for v in self.unseen_by_threadpoolctl],
        }


@dataclass
class Verification:
    """A whole verification of one environment."""

    environment: str
    python: str
    distributions: list[DistributionVerification] = field(default_factory=list)
    process: ProcessFacts = field(default_factory=ProcessFacts)
    seconds: float = 0.0

    @property
    def findings(self) -> list[Finding]:
        return [f for d in self.distributions for f in d.findings()]

    @property
    def exit_code(self) -> int:
        return 1 if any(f.severity == "refuse" for f in self.findings) else 0

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for dist in self.distributions:
            for verdict in dist.features:
                out[verdict.status] = out.get(verdict.status, 0) + 1
            if dist.status != "ok":
                out[dist.status] = out.get(dist.status, 0) + 1
        return out

    def lines(self) -> list[str]:
        out = [
            f"vbridge verify: {self.python} ({self.environment}): "
            f"{len(self.distributions)} distribution(s), one child each, {self.seconds:.1f} s"
        ]
        for dist in self.distributions:
            out.append(dist.title)
            if dist.status in ("crashed", "timed-out", "shadowed", "nothing-to-import"):
                out.append(f"  {dist.status}: {dist.note}")
                continue
            if dist.failures:
                out.append(f"  {dist.failure_line()}")
            if dist.note:
                out.append(f"  {dist.note}")
            out.extend(f"  {v.line()}" for v in dist.features)
            if not dist.features and not dist.failures:
                out.append(f"  imported {dist.imported} module(s); nothing of "
                           "BLAS/OpenMP/MPI/HDF5 loaded or recorded")
        out.extend(self.process.lines())
        counts = self.counts()
        if counts:
            out.append("summary: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
        return out

    def to_dict(self) -> dict[str, object]:
        from vbridge import __version__

        return {
            "schema_version": 1,
            "vbridge_version": __version__,
            "environment": self.environment,
            "python": self.python,
            "seconds": round(self.seconds, 3),
            "distributions": [d.to_dict() for d in self.distributions],
            "process": self.process.to_dict(),
            "findings": [f.to_dict() for f in self.findings],
            "summary": self.counts(),
        }

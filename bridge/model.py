"""The small model every adapter produces and every destination consumes.

An adapter reads one ecosystem's install records and yields :class:`InstallRecord`
objects; the rules engine turns them into :class:`Property` values with
:class:`Evidence`; the scan ties records to the Python :class:`Distribution` objects
found in an environment's site-packages.

>>> p = Property.from_str("blas_lapack :: provider :: mkl")
>>> p.to_str()
'blas_lapack :: provider :: mkl'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import cached_property
from pathlib import Path
from typing import Literal

import msgspec

__all__ = [
    "Distribution",
    "Environment",
    "Evidence",
    "Finding",
    "InstallRecord",
    "Owner",
    "Property",
    "RecordIndex",
    "RecordProblem",
    "Requirement",
    "Severity",
]

Severity = Literal["info", "warn", "refuse"]

# PEP 825's grammar of a property, as variantlib (the reference implementation) checks
# it: ``namespace :: feature :: value``, spaces around ``::`` optional.
_NAME = re.compile(r"[a-z0-9_]+")
_VALUE = re.compile(r"[a-z0-9_.]+")
_PROPERTY = re.compile(r"([a-z0-9_]+)\s*::\s*([a-z0-9_]+)\s*::\s*([a-z0-9_.]+)")


class Property(msgspec.Struct, frozen=True, order=True):
    """One wheel-variant property (PEP 825): ``namespace :: feature :: value``.

    The same triple, ordering, text form and validation as variantlib's
    ``VariantProperty``, without importing variantlib: a scan builds properties, only
    a destination that writes ``variant.json`` needs variantlib's models
    (:func:`vbridge.destinations.variant_json.variant_description` converts).
    ``ValueError`` for a part outside PEP 825's characters.

    >>> Property("x86_64", "level", "v3") < Property.from_str("x86_64::level::v4")
    True
    >>> Property.from_str("blas_lapack :: provider :: MKL")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: invalid variant property 'blas_lapack :: provider :: MKL': expected ...
    """

    namespace: str
    feature: str
    value: str

    def __post_init__(self) -> None:
        if not (
            isinstance(self.namespace, str)
            and isinstance(self.feature, str)
            and isinstance(self.value, str)
            and _NAME.fullmatch(self.namespace)
            and _NAME.fullmatch(self.feature)
            and _VALUE.fullmatch(self.value)
        ):
            raise ValueError(_invalid(f"{self.namespace} :: {self.feature} :: {self.value}"))

    @classmethod
    def from_str(cls, text: str) -> Property:
        """Parse ``namespace :: feature :: value`` (surrounding spaces ignored)."""
        match = _PROPERTY.fullmatch(text.strip())
        if match is None:
            raise ValueError(_invalid(text))
        return cls(*match.groups())

    def to_str(self) -> str:
        return f"{self.namespace} :: {self.feature} :: {self.value}"


def _invalid(text: str) -> str:
    return (
        f"invalid variant property {text!r}: expected 'namespace :: feature :: value' "
        "of [a-z0-9_] (the value also '.')"
    )


class InstallRecord(msgspec.Struct, frozen=True, dict=True):
    """One package as a package manager recorded it.

    ``python_dists`` are the absolute paths of the ``.dist-info``/``.egg-info``
    directories this package owns; ``depends`` are the raw dependency specs in the
    ecosystem's own syntax (``libblas >=3.9.0,<4.0a0``); ``source`` is the file the
    record was read from (a conda-meta JSON, the dpkg status, a spec.json), as text: a
    scan has one for each of hundreds of records, and shows it, never opens it again.
    """

    ecosystem: str
    name: str
    version: str
    build: str = ""
    channel: str | None = None
    subdir: str | None = None
    source: str | None = None
    depends: tuple[str, ...] = ()
    python_dists: tuple[Path, ...] = ()
    flags: tuple[str, ...] = ()
    track_features: tuple[str, ...] = ()
    # Ecosystem-specific facts a rule may look at (Spack variants, dpkg Provides...).
    extra: Mapping[str, object] = msgspec.field(default_factory=dict)
    # False for records that describe a distribution pip itself installed (a wheel's
    # bundled libraries): they give properties but are not a foreign owner.
    foreign: bool = True
    # Keys (``InstallRecord.key``) of the exact records this one links or runs with, for
    # ecosystems whose records name their dependencies exactly (Spack's DAG hashes, where
    # two builds of one name can coexist). None: resolve ``depends`` by name.
    requires: tuple[str, ...] | None = None

    @cached_property  # a frozen record's key never changes; a scan asks ~10,000 times
    def key(self) -> str:
        """A stable identifier: ``conda:libblas-3.9.0-20_linux64_mkl``."""
        ident = f"{self.name}-{self.version}"
        if self.build:
            ident += f"-{self.build}"
        return f"{self.ecosystem}:{ident}"


class Owner(msgspec.Struct, frozen=True):
    """Who installed a distribution, as shown to users and written to the SBOM."""

    ecosystem: str
    name: str
    version: str
    build: str = ""
    channel: str | None = None
    subdir: str | None = None

    @classmethod
    def of(cls, record: InstallRecord) -> Owner:
        return cls(
            record.ecosystem,
            record.name,
            record.version,
            record.build,
            record.channel,
            record.subdir,
        )

    def to_dict(self) -> dict[str, str | None]:
        return {
            "ecosystem": self.ecosystem,
            "name": self.name,
            "version": self.version,
            "build": self.build,
            "channel": self.channel,
        }


class Evidence(msgspec.Struct, frozen=True):
    """Why a property holds: which record and which field said so.

    ``via`` is the chain of package names from the distribution's owner to the record
    that carries the fact (``("numpy", "libblas")``); it is empty for the owner's own
    record.
    """

    record: str
    field: str
    value: str
    rule: str
    via: tuple[str, ...] = ()
    source: str | None = None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "record": self.record,
            "field": self.field,
            "value": self.value,
            "rule": self.rule,
        }
        if self.via:
            out["via"] = list(self.via)
        if self.source:
            out["source"] = self.source
        return out


class Distribution(msgspec.Struct):
    """A Python distribution found on disk, with what vbridge learned about it."""

    name: str  # PEP 503 normalised
    version: str
    dist_info: Path
    installer: str | None = None
    owner: Owner | None = None
    owner_record: InstallRecord | None = None
    properties: dict[Property, list[Evidence]] = msgspec.field(default_factory=dict)
    layer: str = ""  # the site-packages directory it was found in
    facts: dict[str, object] = msgspec.field(default_factory=dict)
    # The top-level names it provides (vbridge.imports), and the copy in an earlier
    # sys.path layer that Python imports instead of this one (None: this copy is active).
    import_names: tuple[str, ...] = ()
    shadowed_by: Distribution | None = None

    @property
    def active(self) -> bool:
        """True when Python imports this copy (no earlier layer wins its names)."""
        return self.shadowed_by is None

    def add(self, prop: Property, evidence: Evidence) -> None:
        known = self.properties.setdefault(prop, [])
        if evidence not in known:
            known.append(evidence)


class Finding(msgspec.Struct, frozen=True):
    """Something the user should know about an environment."""

    severity: Severity
    code: str
    message: str
    distributions: tuple[str, ...] = ()
    evidence: tuple[Evidence, ...] = ()

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "distributions": list(self.distributions),
        }
        if self.evidence:
            out["evidence"] = [e.to_dict() for e in self.evidence]
        return out


class RecordProblem(msgspec.Struct, frozen=True):
    """A record that could not be read: reported with its path, then skipped."""

    path: Path
    problem: str
    hint: str = ""

    def __str__(self) -> str:
        line = f"{self.path}: {self.problem}"
        return f"{line} ({self.hint})" if self.hint else line


class Environment(msgspec.Struct):
    """One Python environment: its layers, the records found and the distributions."""

    path: Path
    ecosystems: list[str] = msgspec.field(default_factory=list)
    site_packages: list[Path] = msgspec.field(default_factory=list)
    records: list[InstallRecord] = msgspec.field(default_factory=list)
    distributions: list[Distribution] = msgspec.field(default_factory=list)
    findings: list[Finding] = msgspec.field(default_factory=list)
    problems: list[RecordProblem] = msgspec.field(default_factory=list)
    # True when the path holds many environments (a Spack install tree): its
    # distributions never load into one process, so mixing findings do not apply.
    collection: bool = False


class Requirement(msgspec.Struct, frozen=True):
    """One recorded requirement on a Python distribution, in the words of its record.

    ``kind`` says how to evaluate ``spec``: ``pin`` (a conda MatchSpec), ``abi`` (a
    Debian ABI virtual package; any of ``abi`` satisfies it), ``version`` (a Debian
    version relation), ``link`` (a Spack edge to one exact build), ``requires-dist``
    (PEP 508, markers already evaluated). ``dependent`` is the key of the record that
    says so (``conda:scipy-1.11.4-py311h64a7726_0``), or the dist-info path for
    ``Requires-Dist``; ``provider`` the key of the record that owns the required
    distribution. ``specifier`` is the PEP 440 form of the bound when there is one
    (``>=1.23.5,<2.0a0``), for constraints files. ``binary``: the record pins what its
    package was built against (an ABI), not only what it runs with.

    >>> Requirement("numpy", "numpy >=1.23.5,<2.0a0", "pin", "conda",
    ...     "conda:scipy-1.11.4-py311h64a7726_0", specifier=">=1.23.5,<2.0a0").target
    'numpy'
    """

    target: str
    spec: str
    kind: str
    ecosystem: str
    dependent: str
    source: str = ""
    provider: str | None = None
    specifier: str | None = None
    abi: tuple[str, ...] = ()
    binary: bool = False

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "target": self.target,
            "spec": self.spec,
            "kind": self.kind,
            "ecosystem": self.ecosystem,
            "dependent": self.dependent,
            "source": self.source,
            "provider": self.provider,
            "specifier": self.specifier,
            "binary": self.binary,
        }
        if self.abi:
            out["abi"] = list(self.abi)
        return out


class RecordIndex:
    """One ecosystem's records by key, by name and by what they provide, for adapters
    that resolve their records' dependencies (Debian's virtual packages included).

    >>> r = InstallRecord("apt", "python3-numpy", "1:1.24.2-1",
    ...     extra={"provides": ["python3-numpy-abi9"]})
    >>> [p.name for p in RecordIndex([r]).providing("python3-numpy-abi9")]
    ['python3-numpy']
    """

    def __init__(self, records: Iterable[InstallRecord]) -> None:
        self.records = list(records)
        self.by_key: dict[str, InstallRecord] = {}
        self._named: dict[str, list[InstallRecord]] = {}
        self._provided: dict[str, list[InstallRecord]] = {}
        for record in self.records:
            self.by_key.setdefault(record.key, record)
            self._named.setdefault(record.name.lower(), []).append(record)
            provides = record.extra.get("provides")
            if isinstance(provides, (list, tuple)):
                for name in provides:
                    self._provided.setdefault(str(name).lower(), []).append(record)

    def named(self, name: str) -> list[InstallRecord]:
        """Records of this exact package name."""
        return self._named.get(name.lower(), [])

    def providing(self, name: str) -> list[InstallRecord]:
        """Records named ``name`` or providing it (a virtual package)."""
        return [*self.named(name), *self._provided.get(name.lower(), [])]

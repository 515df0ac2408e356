"""The coupling policy: which features must agree in one process, and how to say so.

The policy is data (``data/policy.toml``), merged with a per-environment override:
``$VBRIDGE_POLICY`` if set, else ``<prefix>/.vbridge/policy.toml`` if it exists. The
override is merged table by table, key by key, so a file holding only::

    [ownership]
    shadow = "warn"

turns the gate's refusal to shadow a foreign distribution into a warning, and nothing
else.

>>> policy = CouplingPolicy.from_data(load_data("policy"))
>>> policy.canonical_feature(Property.from_str("blas_lapack :: library :: mkl"))
'blas_lapack :: provider'
>>> policy.features["mpi :: implementation"].mixed
'refuse'
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import msgspec
from vbridge.errors import RuleError, UnreadableFile
from vbridge.model import Distribution, Evidence, Finding, InstallRecord, Property, Severity
from vbridge.rules import load_data
from vbridge.safefs import read_regular

if TYPE_CHECKING:
    from packaging.specifiers import SpecifierSet

__all__ = [
    "POLICY_ENV_VAR",
    "AbiVirtual",
    "Carrier",
    "CouplingPolicy",
    "FeatureRule",
    "loaded_distributions",
    "policy_files",
]

POLICY_ENV_VAR = "VBRIDGE_POLICY"
_SEVERITIES = ("refuse", "warn", "info", "ignore")


def _override_path(prefix: Path | None) -> Path | None:
    """The user's policy file for an environment, if there is one."""
    env_file = os.environ.get(POLICY_ENV_VAR)
    if env_file:
        return Path(env_file)
    if prefix is not None:
        candidate = Path(prefix) / ".vbridge" / "policy.toml"
        if os.path.lexists(candidate):  # a FIFO or a link out is said, not passed over
            return candidate
    return None


def policy_files(prefix: Path) -> list[Path]:
    """Every user file the policy of the environment at ``prefix`` may be read from,
    whether it exists or not (what the inventory watches).

    >>> policy_files(Path("/srv/env"))[0].as_posix()
    '/srv/env/.vbridge/policy.toml'
    """
    found = [Path(prefix) / ".vbridge" / "policy.toml"]
    if os.environ.get(POLICY_ENV_VAR):
        found.append(Path(os.environ[POLICY_ENV_VAR]))
    return found


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _severity(value: object, where: str) -> Severity | None:
    """A severity from the policy; ``ignore`` and absent mean: no finding."""
    if value is None or value == "ignore":
        return None
    if value not in _SEVERITIES:
        raise RuleError(
            f"{where}: severity {value!r} is not one of {', '.join(_SEVERITIES)}; fix the file"
        )
    return cast(Severity, value)


class FeatureRule(msgspec.Struct, frozen=True):
    """What the policy says about one feature (``ns :: feature``)."""

    feature: str
    label: str
    aliases: tuple[str, ...] = ()
    names: Mapping[str, str] = msgspec.field(default_factory=dict)
    mixed: Severity | None = None
    mixed_install: Severity | None = None
    couple: str = "all"
    duplicate: Severity | None = None
    several: Severity | None = None
    host: Severity | None = None
    # Values that pair with another without a runtime of their own (reference LAPACK
    # on BLIS's BLAS), and the severity of such a pair; copies of one value that
    # wheels each bundle privately, and theirs.
    companions: frozenset[str] = frozenset()
    several_companion: Severity | None = None
    duplicate_bundled: Severity | None = None

    def name(self, value: str) -> str:
        """``mkl`` -> ``MKL``: how messages spell a value."""
        return self.names.get(value, value)


class AbiVirtual(msgspec.Struct, frozen=True, dict=True):
    """A virtual package a distribution's C ABI provides, for some of its versions
    (``versions_text``: a PEP 440 specifier set).

    The specifier set is built when first asked for: only a Debian root's requirements
    name ABI packages, and ``packaging.specifiers`` is ~5 ms of every other start. The
    shipped policy's sets are checked by its tests, an override's when it is loaded.
    """

    distribution: str
    provides: str
    versions_text: str

    @cached_property
    def versions(self) -> SpecifierSet:
        from packaging.specifiers import SpecifierSet

        return SpecifierSet(self.versions_text)

    def provided_by(self, version: str) -> bool:
        return self.versions.contains(version, prereleases=True)


class Carrier(msgspec.Struct, frozen=True):
    """One distribution's values for one feature and how it holds them."""

    dist: Distribution
    values: frozenset[str]
    private: bool
    evidence: tuple[Evidence, ...]


class CouplingPolicy(msgspec.Struct, frozen=True):
    """The merged policy of one environment."""

    features: Mapping[str, FeatureRule]
    private_fields: frozenset[str]
    alternative_fields: frozenset[str]
    words: Mapping[str, str]
    ownership: Mapping[str, Severity | None]
    dependents_broken: Severity | None
    version_constraints: frozenset[str]
    abi: tuple[AbiVirtual, ...]
    sources: tuple[str, ...] = ("data/policy.toml",)
    # A Requires-Dist (or a Debian version relation) the imported copy does not
    # satisfy, and a Requires-Dist on a distribution not installed at all.
    dependents_requires_dist: Severity | None = "warn"
    dependents_missing: Severity | None = "warn"
    # What venv installs into every environment it makes (its own pip): such a copy
    # shadowing the system's is expected.
    venv_seeds: frozenset[str] = frozenset()
    # Severities of ownership.replace/shadow and dependents.broken that become lines of
    # the constraints file plain pip reads (vbridge/destinations/pip_constraints.py).
    pin_severities: frozenset[str] = frozenset({"refuse"})

    @classmethod
    def load(cls, prefix: Path | None = None) -> CouplingPolicy:
        """``data/policy.toml`` merged with the environment's override file."""
        data = load_data("policy")
        sources = ["data/policy.toml"]
        path = _override_path(prefix)
        if path is not None:
            from vbridge.parsed_toml import toml_module

            tomllib = toml_module()  # imported where there is an override file to parse
            inside = None if os.environ.get(POLICY_ENV_VAR) else prefix
            try:
                text = read_regular(path, root=inside, limit=1 << 20).decode("utf-8")
                over = tomllib.loads(text)
            except UnreadableFile as exc:
                raise RuleError(f"{exc}; fix or unset {POLICY_ENV_VAR}") from None
            except UnicodeDecodeError as exc:
                raise RuleError(f"{path}: not UTF-8 text ({exc.reason}); fix the file") from None
            except OSError as exc:
                raise RuleError(
                    f"{path}: cannot read the policy override ({exc.strerror}); "
                    f"fix or unset {POLICY_ENV_VAR}"
                ) from exc
            except tomllib.TOMLDecodeError as exc:
                raise RuleError(f"{path}: not valid TOML ({exc}); fix the file") from exc
            data = _merge(data, over)
            sources.append(str(path))
        return cls.from_data(data, tuple(sources))

    @classmethod
    def shipped(cls) -> CouplingPolicy:
        """``data/policy.toml`` alone, without any override."""
        return cls.from_data(load_data("policy"))

    @classmethod
    def from_data(
        cls, data: Mapping[str, Any], sources: tuple[str, ...] = ("data/policy.toml",)
    ) -> CouplingPolicy:
        where = " + ".join(sources)
        features: dict[str, FeatureRule] = {}
        for name, table in data.get("features", {}).items():
            if not isinstance(table, Mapping):
                raise RuleError(f"{where}: [features.{name!r}] is not a table; fix the file")
            couple = str(table.get("couple", "all"))
            if couple not in ("all", "shared"):
                raise RuleError(f"{where}: {name}: couple must be 'all' or 'shared'")
            features[name] = FeatureRule(
                feature=name,
                label=str(table.get("label", name)),
                aliases=tuple(table.get("aliases", ())),
                names=dict(table.get("names", {})),
                mixed=_severity(table.get("mixed"), f"{where}: {name}.mixed"),
                mixed_install=_severity(
                    table.get("mixed_install", table.get("mixed")),
                    f"{where}: {name}.mixed_install",
                ),
                couple=couple,
                duplicate=_severity(table.get("duplicate"), f"{where}: {name}.duplicate"),
                several=_severity(table.get("several"), f"{where}: {name}.several"),
                host=_severity(table.get("host"), f"{where}: {name}.host"),
                companions=frozenset(map(str, table.get("companions", ()))),
                several_companion=_severity(
                    table.get("several_companion", table.get("several")),
                    f"{where}: {name}.several_companion",
                ),
                duplicate_bundled=_severity(
                    table.get("duplicate_bundled", table.get("duplicate")),
                    f"{where}: {name}.duplicate_bundled",
                ),
            )
        linkage = data.get("linkage", {})
        ownership = {
            key: _severity(value, f"{where}: ownership.{key}")
            for key, value in data.get("ownership", {}).items()
        }
        dependents = data.get("dependents", {})
        abi: list[AbiVirtual] = []
        for table in data.get("abi", []):
            try:
                virtual = AbiVirtual(
                    str(table["distribution"]),
                    str(table["provides"]),
                    str(table.get("versions", "")),
                )
                if len(sources) > 1:  # an override: its mistakes are said when it is read
                    virtual.versions  # noqa: B018  (InvalidSpecifier is a ValueError)
                abi.append(virtual)
            except (KeyError, ValueError) as exc:
                raise RuleError(f"{where}: bad [[abi]] entry {table!r}: {exc}") from exc
        return cls(
            features=features,
            private_fields=frozenset(linkage.get("private", ())),
            alternative_fields=frozenset(linkage.get("alternatives", ())),
            words=dict(linkage.get("words", {})),
            ownership=ownership,
            dependents_broken=_severity(dependents.get("broken"), f"{where}: dependents.broken"),
            version_constraints=frozenset(dependents.get("version_constraints", ())),
            abi=tuple(abi),
            sources=sources,
            dependents_requires_dist=_severity(
                dependents.get("requires_dist"), f"{where}: dependents.requires_dist"
            ),
            dependents_missing=_severity(dependents.get("missing"), f"{where}: dependents.missing"),
            venv_seeds=frozenset(map(str, data.get("venv", {}).get("seeds", ()))),
            pin_severities=frozenset(
                s
                for s in (
                    _severity(v, f"{where}: constraints.pin")
                    for v in data.get("constraints", {}).get("pin", ["refuse"])
                )
                if s is not None
            ),
        )

    # --- reading distributions ----------------------------------------------------------

    def canonical_feature(self, prop: Property) -> str:
        """``ns :: feature`` with aliases folded (``blas_lapack :: library`` -> provider)."""
        key = f"{prop.namespace} :: {prop.feature}"
        for name, rule in self.features.items():
            if key == name or key in rule.aliases:
                return name
        return key

    def carriers(self, dists: Iterable[Distribution], feature: str) -> list[Carrier]:
        """The distributions that carry ``feature``, with values and linkage."""
        return self.carriers_of(dists, (feature,))[feature]

    def carriers_of(
        self, dists: Iterable[Distribution], features: Iterable[str] | None = None
    ) -> dict[str, list[Carrier]]:
        """:meth:`carriers` of each of ``features`` (by default every feature of the
        policy), in one pass over the distributions' properties: each property's
        feature is folded once, not once per feature asked about (a Spack tree's
        hundreds of distributions are asked about every coupled feature).

        >>> policy = CouplingPolicy.from_data(load_data("policy"))
        >>> numpy = Distribution("numpy", "2.1.3", Path("numpy-2.1.3.dist-info"))
        >>> numpy.add(Property("blas_lapack", "library", "openblas"),
        ...     Evidence("conda:libblas-3.9.0", "build", "openblas", "rule"))
        >>> found = policy.carriers_of([numpy])
        >>> [(c.dist.name, sorted(c.values)) for c in found["blas_lapack :: provider"]]
        [('numpy', ['openblas'])]
        """
        out: dict[str, list[Carrier]] = {
            f: [] for f in (self.features if features is None else features)
        }
        folded: dict[tuple[str, str], str] = {}
        for dist in dists:
            held: dict[str, tuple[set[str], list[Evidence]]] = {}
            for prop, ev in dist.properties.items():
                where = (prop.namespace, prop.feature)
                feature = folded.get(where)
                if feature is None:
                    feature = folded[where] = self.canonical_feature(prop)
                if feature not in out:
                    continue
                found = held.get(feature)
                if found is None:
                    found = held[feature] = (set(), [])
                found[0].add(prop.value)
                found[1].extend(ev)
            for feature, (values, evidence) in held.items():
                private = bool(evidence) and {e.field for e in evidence} <= self.private_fields
                out[feature].append(Carrier(dist, frozenset(values), private, tuple(evidence)))
        return out

    def evidence_text(
        self, evidence: Evidence, records: Mapping[str, InstallRecord] | None = None
    ) -> str:
        """Where a fact comes from, for a message.

        >>> policy = CouplingPolicy.from_data(load_data("policy"))
        >>> policy.evidence_text(Evidence("wheel:scipy-1.17.1", "extra.bundled",
        ...     "scipy.libs/libscipy_openblas-6cdc3b4a.so", "wheel-bundled-blas"))
        'bundled scipy.libs/libscipy_openblas-6cdc3b4a.so'
        >>> policy.evidence_text(Evidence("conda:libblas-3.9.0-20_linux64_mkl", "build",
        ...     "20_linux64_mkl", "conda-forge-libblas-build", via=("numpy", "libblas")))
        'via libblas-3.9.0-20_linux64_mkl'
        """
        word = self.words.get(evidence.field)
        if word:
            return f"{word} {evidence.value}"
        record = (records or {}).get(evidence.record)
        if record is not None:
            text = " ".join(p for p in (record.name, record.version, record.build) if p)
        else:
            text = evidence.record.split(":", 1)[-1]
        if evidence.via:
            return f"via {text}"
        return f"{evidence.field} {evidence.value}" if evidence.field != "name" else text

    def carrier_text(
        self, carrier: Carrier, rule: FeatureRule, records: Mapping[str, InstallRecord] | None
    ) -> str:
        """``numpy 1.26.4 (MKL, conda, via libblas 3.9.0 20_linux64_mkl)``."""
        dist = carrier.dist
        values = "/".join(rule.name(v) for v in sorted(carrier.values))
        who = dist.owner.ecosystem if dist.owner else (dist.installer or "pip")
        how = self.evidence_text(carrier.evidence[0], records) if carrier.evidence else ""
        details = ", ".join(p for p in (values, who, how) if p)
        return f"{dist.name} {dist.version} ({details})"

    # --- deciding -----------------------------------------------------------------------

    def coupling_findings(
        self,
        dists: Sequence[Distribution],
        focus: Iterable[Distribution] = (),
        records: Mapping[str, InstallRecord] | None = None,
        one_process: bool = True,
    ) -> list[Finding]:
        """Features that disagree among ``dists`` (the distributions one process loads).

        With ``focus`` (the candidates pip would install), only the conflicts those
        distributions bring in are reported, not the ones already there. With
        ``one_process`` false (a Spack install tree) only what one distribution loads
        by itself is reported.
        """
        focus_ids = {id(d) for d in focus}
        findings: list[Finding] = []
        carried = self.carriers_of(dists)
        for feature, rule in self.features.items():
            carriers = carried[feature]
            if not carriers:
                continue
            if rule.several is not None:
                findings.extend(self._several(rule, carriers, focus_ids))
            if not one_process:
                continue
            mixed = None
            if rule.mixed is not None or rule.mixed_install is not None:
                mixed = self._mixed(rule, carriers, focus_ids, records)
                if mixed is not None:
                    findings.append(mixed)
            # Two shared libraries that disagree already say two runtimes load.
            if mixed is None and rule.duplicate is not None and rule.couple == "shared":
                finding = self._duplicates(rule, carriers, focus_ids, records)
                if finding is not None:
                    findings.append(finding)
        return findings

    def _mixed(
        self,
        rule: FeatureRule,
        carriers: list[Carrier],
        focus_ids: set[int],
        records: Mapping[str, InstallRecord] | None,
    ) -> Finding | None:
        coupled = [c for c in carriers if rule.couple == "all" or not c.private]
        if len(coupled) < 2 or _common(coupled):
            return None
        code = "mixed-" + rule.feature.split(" :: ")[0].replace("_", "-")
        names = tuple(sorted({c.dist.name for c in coupled}))
        evidence = tuple(c.evidence[0] for c in coupled if c.evidence)
        if not focus_ids:
            if rule.mixed is None:
                return None
            by_value: dict[str, list[str]] = {}
            for c in coupled:
                by_value.setdefault("|".join(sorted(c.values)), []).append(c.dist.name)
            parts = [f"{v} ({', '.join(sorted(set(n)))})" for v, n in sorted(by_value.items())]
            message = f"several {rule.label}s in one environment: {'; '.join(parts)}"
            return Finding(rule.mixed, code, message, names, evidence)
        if rule.mixed_install is None:
            return None
        new = [c for c in coupled if id(c.dist) in focus_ids]
        old = [c for c in coupled if id(c.dist) not in focus_ids]
        if not new or (old and not _common(old)):
            return None  # nothing new, or a conflict that was there before
        culprits = [c for c in new if not old or not (c.values & _common(old))] or new
        listing = "; ".join(self.carrier_text(c, rule, records) for c in culprits)
        where = (
            "beside " + "; ".join(self.carrier_text(c, rule, records) for c in old)
            if old
            else "together"
        )
        message = f"{listing} would load {where}: two {rule.label}s cannot share one process"
        return Finding(rule.mixed_install, code, message, names, evidence)

    def _several(
        self, rule: FeatureRule, carriers: list[Carrier], focus_ids: set[int]
    ) -> Iterator[Finding]:
        """Distributions that themselves load several values into one process.

        Debian picks BLAS and LAPACK with two alternatives: when they name different
        providers, numpy loads both. Values a distribution only chooses between (its
        evidence all from ``linkage.alternatives``) are not counted. Distributions with
        the same values share one finding.
        """
        groups: dict[frozenset[str], list[Carrier]] = {}
        for c in carriers:
            if len(c.values) < 2 or (focus_ids and id(c.dist) not in focus_ids):
                continue
            if all(e.field in self.alternative_fields for e in c.evidence):
                continue
            groups.setdefault(c.values, []).append(c)
        assert rule.several is not None
        for values, group in groups.items():
            first = group[0]
            parts: list[str] = []
            evidence: list[Evidence] = []
            for value in sorted(values):
                found = [
                    evs[0]
                    for prop, evs in first.dist.properties.items()
                    if self.canonical_feature(prop) == rule.feature and prop.value == value and evs
                ]
                evidence.extend(found[:1])
                if found:
                    near = found[0].via[-1] if found[0].via else found[0].record.split(":", 1)[-1]
                    parts.append(f"{value} ({near} -> {found[0].value})")
                else:
                    parts.append(value)
            names = ", ".join(f"{c.dist.name} {c.dist.version}" for c in group)
            verb = "loads" if len(group) == 1 else "each load"
            message = (
                f"{names} {verb} several {rule.label}s into one process: {' and '.join(parts)}"
            )
            severity: Severity | None = rule.several
            if len(values - rule.companions) <= 1:
                severity = rule.several_companion
                companions = ", ".join(rule.name(v) for v in sorted(values & rule.companions))
                message += (
                    f"; {companions} has no runtime of its own and runs on the other's "
                    "(the usual pairing: nothing to do)"
                )
            else:
                message += "; set both alternatives to one provider (update-alternatives)"
            if severity is None:
                continue
            yield Finding(
                severity,
                "several-" + rule.feature.split(" :: ")[0].replace("_", "-"),
                message,
                tuple(sorted({c.dist.name for c in group})),
                tuple(evidence),
            )

    def _duplicates(
        self,
        rule: FeatureRule,
        carriers: list[Carrier],
        focus_ids: set[int],
        records: Mapping[str, InstallRecord] | None,
    ) -> Finding | None:
        def runtimes(cs: list[Carrier]) -> int:
            shared = [c for c in cs if not c.private]
            private = [c for c in cs if c.private]
            common = _common(shared)
            return (1 if common else len({v for c in shared for v in c.values})) + len(private)

        total = runtimes(carriers)
        if total < 2:
            return None
        if focus_ids:
            before = runtimes([c for c in carriers if id(c.dist) not in focus_ids])
            if total <= before:
                return None
        implementations = {v for c in carriers for v in c.values}
        assert rule.duplicate is not None
        severity: Severity | None = rule.duplicate
        bundled = len(implementations) == 1 and all(c.private for c in carriers)
        if bundled:
            severity = rule.duplicate_bundled
            if severity is None:
                return None
        what = (
            f"{len(implementations)} different {rule.label}s"
            if len(implementations) > 1
            else f"{total} copies of {rule.name(next(iter(implementations)))}"
        )
        verb = "would load" if focus_ids else "load"
        listing = "; ".join(self.carrier_text(c, rule, records) for c in carriers)
        if bundled:
            message = (
                f"{what} {verb} in one process: {listing}. Each wheel bundles its own "
                f"copy, as PyPI's wheels do; nothing to do (to limit threads, set "
                f"OMP_NUM_THREADS)"
            )
        else:
            message = (
                f"{what} {verb} in one process: {listing}. Each runtime starts its own "
                f"threads (oversubscription); limit them (OMP_NUM_THREADS) or use one build"
            )
        code = "duplicate-" + rule.feature.split(" :: ")[0].replace("_", "-")
        names = tuple(sorted({c.dist.name for c in carriers}))
        evidence = tuple(c.evidence[0] for c in carriers if c.evidence)
        assert severity is not None
        return Finding(severity, code, message, names, evidence)


def _common(carriers: Sequence[Carrier]) -> frozenset[str]:
    """Values every carrier accepts (a multi-valued carrier accepts each of its values)."""
    if not carriers:
        return frozenset()
    common = set(carriers[0].values)
    for c in carriers[1:]:
        common &= c.values
    return frozenset(common)


def loaded_distributions(
    dists: Iterable[Distribution], layers: Sequence[Path]
) -> list[Distribution]:
    """The distribution Python imports for each name: the first on ``sys.path`` order."""
    order = {str(layer): i for i, layer in enumerate(layers)}
    ranked = sorted(dists, key=lambda d: order.get(d.layer, len(order)))
    chosen: dict[str, Distribution] = {}
    for dist in ranked:
        chosen.setdefault(dist.name, dist)
    return list(chosen.values())

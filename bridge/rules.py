"""Translation rules: install-record facts -> variant properties, kept in ``data/``.

Each ecosystem has a ``data/<ecosystem>.toml`` with ``[[rules]]`` tables::

    [[rules]]
    id = "conda-forge-libblas-build"
    match = "libblas"                    # which records (conda: a MatchSpec)
    field = "build"                      # build|version|name|depends|flags|track_features|extra.KEY
    pattern = '_(?P<value>mkl|openblas)$' # optional regex on that field
    property = "blas_lapack :: provider :: {value}"
    values = { newaccelerate = "accelerate" }  # optional renames of captured values

and a ``[propagation]`` table: ``stop_at``, the packages properties do not travel
through, and ``metapackages_pin``, whether a record that owns no distribution but
depends on one chose its build (conda's metapackages). A record yields, per feature,
only the properties of its strongest field (CEP 45 ``flags`` first, then build
strings, versions, dependencies, names).

>>> rules = RuleSet.load("conda")
>>> record = InstallRecord("conda", "libblas", "3.9.0", "20_linux64_mkl")
>>> [(p.to_str(), e.rule) for p, e in rules.record_properties(record)]
[('blas_lapack :: provider :: mkl', 'conda-forge-libblas-build')]
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import msgspec
from vbridge import data as _data_package
from vbridge.errors import RuleError
from vbridge.model import Evidence, InstallRecord, Property

__all__ = [
    "Rule",
    "RuleSet",
    "SpecSyntax",
    "data_path",
    "dependency_names",
    "load_data",
    "spec_package_name",
]

# Stronger evidence first: a CEP 45 flag beats a build string beats a dependency.
_FIELD_STRENGTH: tuple[str, ...] = (
    "flags",
    "build",
    "track_features",
    "version",
    "extra",
    "depends",
    "name",
)

_DEP_NAME = re.compile(r"^\s*([^\s<>=!~\[(,;:]+)")


def dependency_names(spec: str) -> list[str]:
    """Package names a raw dependency spec mentions, alternatives included.

    >>> dependency_names("libblas >=3.9.0,<4.0a0")
    ['libblas']
    >>> dependency_names("libblas3 | libblas.so.3")
    ['libblas3', 'libblas.so.3']
    >>> dependency_names("python3.11:any")
    ['python3.11']
    """
    names = []
    for alternative in spec.split("|"):
        m = _DEP_NAME.match(alternative)
        if m:
            names.append(m.group(1))
    return names


_DATA_DIR = Path(_data_package.__file__ or ".").parent


@cache
def data_path(filename: str) -> Path:
    """A file shipped in ``vbridge.data`` (``environment.schema.json``...)."""
    return _DATA_DIR / filename


def load_data(name: str) -> dict[str, Any]:
    """Parse ``data/<name>.toml`` shipped with vbridge.

    The files sit beside the ``vbridge.data`` package's ``__init__.py`` (vbridge is
    installed unzipped); read from there rather than through importlib.resources, whose
    import costs ~7 ms of every post-link script.
    """
    return _load_toml(_DATA_DIR / f"{name}.toml", f"data/{name}.toml")


@cache
def _load_toml(path: Path, label: str) -> dict[str, Any]:
    # Parsed once per change of the file (vbridge.parsed_toml): tomllib is imported
    # only when a file is parsed.
    from vbridge.parsed_toml import load_toml

    try:
        return load_toml(path)
    except FileNotFoundError:
        return {}
    except ValueError as exc:  # tomllib.TOMLDecodeError (UnicodeDecodeError as before)
        from vbridge.parsed_toml import toml_decode_error

        if isinstance(exc, toml_decode_error()):
            raise RuleError(f"{label}: {exc}") from exc
        raise


def spec_package_name(spec: str) -> str:
    """The package name (or glob) a plain dependency spec starts with, lower-cased.

    >>> spec_package_name("libopenmpi3 (>= 4.1.4)"), spec_package_name("libmpich-*")
    ('libopenmpi3', 'libmpich-*')
    """
    m = _DEP_NAME.match(spec)
    return m.group(1).lower() if m else spec


class SpecSyntax(Protocol):
    """An ecosystem's dependency-spec syntax, as the rules engine uses it (every
    :class:`vbridge.adapters.Adapter` is one; conda's is MatchSpec)."""

    def spec_name(self, spec: str) -> str: ...

    def spec_is_exact(self, spec: str) -> bool: ...

    def spec_matches(self, spec: str, record: InstallRecord) -> bool: ...


class _NameOnly:
    """The syntax of specs that name a package (or a glob) and nothing more."""

    def spec_name(self, spec: str) -> str:
        return spec_package_name(spec)

    def spec_is_exact(self, spec: str) -> bool:
        return False

    def spec_matches(self, spec: str, record: InstallRecord) -> bool:
        return fnmatch.fnmatchcase(record.name.lower(), spec_package_name(spec))


@cache
def _field_strength(field: str) -> int:
    """Where a rule's field ranks in :data:`_FIELD_STRENGTH` (lower is stronger)."""
    base = field.split(".", 1)[0]
    return _FIELD_STRENGTH.index(base) if base in _FIELD_STRENGTH else len(_FIELD_STRENGTH)


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    """A rule's pattern, compiled once per process."""
    return re.compile(pattern)


@cache
def _property(text: str) -> Property:
    """``Property.from_str``, validated once per distinct text (properties are frozen)."""
    return Property.from_str(text)


class Rule(msgspec.Struct, frozen=True):
    """One translation rule, as read from ``data/``."""

    id: str
    match: tuple[str, ...]
    field: str
    template: str  # the `property` key: 'ns :: feature :: {value}'
    pattern_text: str | None = None  # the `pattern` key, compiled when first searched
    values: Mapping[str, str] = msgspec.field(default_factory=dict)

    @classmethod
    def from_table(cls, table: Mapping[str, Any], source: str, *, checked: bool = True) -> Rule:
        """The rule of one ``[[rules]]`` table. ``checked``: its pattern compiled now,
        so that a bad one is a :class:`RuleError` naming ``source``; vbridge's own
        ``data/`` files (whose patterns a test compiles) leave it to the first search:
        a scan uses a few of their rules."""
        try:
            match = table["match"]
            matches = (match,) if isinstance(match, str) else tuple(match)
            pattern = table.get("pattern")
            if pattern is not None and not isinstance(pattern, str):
                raise TypeError(f"pattern should be a string, found {type(pattern).__name__}")
            if pattern and checked:
                _compiled(pattern)
            return cls(
                id=str(table["id"]),
                match=matches,
                field=str(table.get("field", "name")),
                template=str(table["property"]),
                pattern_text=pattern or None,
                values=dict(table.get("values", {})),
            )
        except (KeyError, re.error, TypeError) as exc:
            raise RuleError(f"{source}: bad rule {table.get('id', '?')!r}: {exc}") from exc

    @property
    def strength(self) -> int:
        return _field_strength(self.field)

    def field_values(self, record: InstallRecord) -> list[str]:
        if self.field == "name":
            return [record.name]
        if self.field == "build":
            return [record.build]
        if self.field == "version":
            return [record.version]
        if self.field == "depends":
            return list(record.depends)
        if self.field == "flags":
            return list(record.flags)
        if self.field == "track_features":
            return list(record.track_features)
        if self.field.startswith("extra."):
            value = record.extra.get(self.field[6:])
            if value is None:
                return []
            if isinstance(value, (list, tuple, set, frozenset)):
                return [str(v) for v in value]
            return [str(value)]
        raise RuleError(f"rule {self.id}: unknown field {self.field!r}")

    def apply(self, record: InstallRecord) -> Iterator[tuple[Property, Evidence]]:
        """Properties this rule gives a record whose name it already matched."""
        return self.apply_to(record, self.field_values(record))

    def apply_to(
        self, record: InstallRecord, values: list[str]
    ) -> Iterator[tuple[Property, Evidence]]:
        """:meth:`apply`, given the record's :meth:`field_values`."""
        for value in values:
            groups: dict[str, str] = {}
            if self.pattern_text is not None:
                m = _compiled(self.pattern_text).search(value)
                if m is None:
                    continue
                groups = {k: v for k, v in m.groupdict().items() if v is not None}
            groups = {k: self.values.get(v, v) for k, v in groups.items()}
            try:
                text = self.template.format(**groups)
            except (KeyError, IndexError) as exc:
                raise RuleError(f"rule {self.id}: property needs {exc}") from exc
            if not text:
                continue  # a rename to "" means: this value says nothing
            prop = _property(text)
            yield (
                prop,
                Evidence(
                    record=record.key,
                    field=self.field,
                    value=value,
                    rule=self.id,
                    source=str(record.source) if record.source else None,
                ),
            )


class RuleSet:
    """The rules of one ecosystem, indexed by the package names they match.

    ``syntax`` reads the rules' ``match`` specs (the ecosystem's adapter; by default
    a spec is a package name or a glob).
    """

    def __init__(
        self,
        ecosystem: str,
        rules: Iterable[Rule],
        stop_at: Iterable[str] = (),
        syntax: SpecSyntax | None = None,
        *,
        metapackages_pin: bool = False,
    ) -> None:
        self.ecosystem = ecosystem
        self.rules = list(rules)
        self.stop_at = frozenset(stop_at)
        # Whether a record that owns no distribution and depends on one chose its build
        # (conda metapackages: Anaconda's numpy -> numpy-base); [propagation] in data/.
        self.metapackages_pin = metapackages_pin
        self._syntax: SpecSyntax = syntax if syntax is not None else _NameOnly()
        # (match, rule, whether the match needs the full spec check), by package name.
        self._by_name: dict[str, list[tuple[str, Rule, bool]]] = {}
        self._globs: list[tuple[str, str, Rule, bool]] = []
        self._candidates_by_name: dict[str, list[tuple[str, Rule, bool]]] = {}
        for rule in self.rules:
            for match in rule.match:
                name = self._syntax.spec_name(match)
                exact = self._syntax.spec_is_exact(match)
                if any(c in name for c in "*?["):
                    self._globs.append((name, match, rule, exact))
                else:
                    self._by_name.setdefault(name, []).append((match, rule, exact))

    @classmethod
    def load(
        cls, ecosystem: str, syntax: SpecSyntax | None = None, path: Path | None = None
    ) -> RuleSet:
        """The rules in ``data/<ecosystem>.toml`` (or the TOML file at ``path``)."""
        if path is None:
            data, source = load_data(ecosystem), f"data/{ecosystem}.toml"
        else:
            data, source = _load_toml(Path(path), str(path)), str(path)
        checked = path is not None  # data/'s own patterns: compiled by a test
        rules = [Rule.from_table(t, source, checked=checked) for t in data.get("rules", [])]
        propagation = data.get("propagation", {})
        return cls(
            ecosystem,
            rules,
            propagation.get("stop_at", []),
            syntax,
            metapackages_pin=bool(propagation.get("metapackages_pin", False)),
        )

    def _candidates(self, record: InstallRecord) -> list[tuple[str, Rule, bool]]:
        """Rules whose match names this record's package, worked out once per name."""
        name = record.name.lower()
        found = self._candidates_by_name.get(name)
        if found is None:
            found = list(self._by_name.get(name, ()))
            found += [
                (match, rule, exact)
                for glob, match, rule, exact in self._globs
                if glob == "*" or fnmatch.fnmatchcase(name, glob)  # "*": every package
            ]
            self._candidates_by_name[name] = found
        return found

    def record_properties(self, record: InstallRecord) -> list[tuple[Property, Evidence]]:
        """Properties of one record, strongest field per feature.

        Cached on the record identity: a prefix's records are translated once, however
        many distributions reach them.
        """
        found: dict[tuple[str, str], tuple[int, list[tuple[Property, Evidence]]]] = {}
        for match, rule, exact in self._candidates(record):
            if exact and not self._syntax.spec_matches(match, record):
                continue
            values = rule.field_values(record)
            if not values:  # most records have no flags nor track_features
                continue
            strength = rule.strength
            for prop, evidence in rule.apply_to(record, values):
                feature = (prop.namespace, prop.feature)
                current = found.get(feature)
                if current is None or strength < current[0]:
                    found[feature] = (strength, [(prop, evidence)])
                elif strength == current[0] and all(p != prop for p, _ in current[1]):
                    current[1].append((prop, evidence))
        out: list[tuple[Property, Evidence]] = []
        for _, pairs in found.values():
            out.extend(pairs)
        return out

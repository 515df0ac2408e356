"""Adapters: one module per ecosystem, each turning that ecosystem's install records
into :class:`vbridge.model.InstallRecord` objects. No adapter knows about another.

An adapter is a subclass of :class:`Adapter`: it names its ``ECOSYSTEM`` and defines
:meth:`~Adapter.find_root` and :meth:`~Adapter.read_records`; every other hook has a
working default, overridden where the ecosystem says more (its site-packages layers,
the environments a machine has, its dependency-spec syntax, the file its package
manager lists a package's files in: :meth:`~Adapter.registrar`). An adapter module
exposes its instance as ``ADAPTER``; :func:`all_adapters` finds them. Adding an
ecosystem is adding a module here and its rules in ``data/<ecosystem>.toml``; nothing
else changes (an adapter whose import is heavy may keep its ``find_root`` in a
companion module ``_<name>_roots``, so that a scan of another ecosystem's environment
does not import it: :func:`find_roots`)::

    class PixiLock(Adapter):
        ECOSYSTEM = "pixi"

        def find_root(self, path):
            return path if (path / "pixi.lock").is_file() else None

        def read_records(self, root, problems):
            yield from ...  # InstallRecord(ECOSYSTEM, name, version, ...)

    ADAPTER = PixiLock()

A record may carry ``extra["dist_facts"]`` (a mapping): facts about the Python
distributions it owns that are not variant properties (a C ABI it provides, how an
import picks between builds); the scan copies them into ``Distribution.facts``.

>>> [a.ECOSYSTEM for a in all_adapters()]
['apt', 'conda', 'spack', 'wheel']
>>> adapter_for("conda").spec_name("conda-forge::libblas >=3.9")
'libblas'
"""

from __future__ import annotations

import abc
import fnmatch
import importlib
import importlib.machinery
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from vbridge.model import InstallRecord, RecordIndex, RecordProblem, Requirement
from vbridge.rules import RuleSet, dependency_names, spec_package_name

if TYPE_CHECKING:
    from vbridge.destinations.registrar import Registrar
    from vbridge.inventory.discover import DiscoveryConfig, Target

__all__ = ["Adapter", "adapter_for", "all_adapters", "find_roots"]

# Rule sets by adapter class (its spec syntax), ecosystem and rules file.
_RULESETS: dict[tuple[type, str, Path | None], RuleSet] = {}


class Adapter(abc.ABC):
    """One ecosystem's install records, read into the model.

    Subclasses set :attr:`ECOSYSTEM` and define :meth:`find_root` and
    :meth:`read_records`; the other hooks have defaults that fit an ecosystem which
    says no more than its records.
    """

    ECOSYSTEM: ClassVar[str]
    #: False for an adapter whose records describe distributions (``foreign=False``)
    #: and own none (the wheel adapter): it names no ecosystem of the environment.
    FOREIGN: ClassVar[bool] = True
    #: The rules file; None means ``data/<ECOSYSTEM>.toml`` (shipped with vbridge).
    RULES: ClassVar[Path | None] = None
    #: ``[discover]`` keys of the user's configuration this adapter reads, with their
    #: type (``bool`` or ``list`` of paths); ``vbridge scan --all`` validates them.
    DISCOVER_SETTINGS: ClassVar[Mapping[str, type]] = {}
    #: Where this adapter's environments come in ``vbridge scan --all`` (lower first).
    DISCOVER_RANK: ClassVar[int] = 50
    #: What the package manager writes into the ``INSTALLER`` of a dist-info it owns
    #: (conda: ``conda``); another value there means another tool rewrote it since.
    #: Empty: the ecosystem cannot tell (Spack installs with pip).
    INSTALLERS: ClassVar[tuple[str, ...]] = ()
    #: True when the records name every package's dependencies: the owner's record is
    #: then the authority, and its distributions' ``Requires-Dist`` is not checked.
    RECORDS_DEPENDENCIES: ClassVar[bool] = False

    @abc.abstractmethod
    def find_root(self, path: Path) -> Path | None:
        """The root of this ecosystem's records that governs ``path`` (a prefix or a
        site-packages directory), or None."""

    @abc.abstractmethod
    def read_records(self, root: Path, problems: list[RecordProblem]) -> Iterator[InstallRecord]:
        """Every record under ``root``; unreadable ones are appended to ``problems``."""

    def site_packages(self, root: Path) -> list[Path]:
        """The site-packages layers the records under ``root`` know of (default: none
        beyond those found under the environment's prefix)."""
        return []

    def read_records_and_layers(
        self, root: Path, problems: list[RecordProblem]
    ) -> tuple[list[InstallRecord], list[Path]]:
        """:meth:`read_records` and :meth:`site_packages` of ``root`` in one call (the
        scan's, when it looks for layers): an adapter whose read finds the layers on
        the way (a Spack tree looks into every prefix) hands them over instead of
        looking again."""
        return list(self.read_records(root, problems)), self.site_packages(root)

    def is_collection(self, root: Path) -> bool:
        """Whether ``root`` holds many environments (a Spack install tree), so "mixed
        within one process" findings do not apply."""
        return False

    def fingerprint_paths(self, root: Path) -> list[Path]:
        """Files and directories whose size/mtime change when the records change,
        beyond the records' own sources (the inventory rescans only when one moved)."""
        return []

    def discover(self, config: DiscoveryConfig) -> list[Target]:
        """The environments of this ecosystem a machine has (``vbridge scan --all``)."""
        return []

    # --- dependency specs -----------------------------------------------------------

    def dependency_names(self, spec: str) -> list[str]:
        """Package names a raw dependency spec mentions, alternatives included."""
        return dependency_names(spec)

    def spec_name(self, spec: str) -> str:
        """The package name (or glob) a rule's ``match`` or a dependency spec names."""
        return spec_package_name(spec)

    def spec_is_exact(self, spec: str) -> bool:
        """Whether ``spec`` constrains more than the name, so that only
        :meth:`spec_matches` can tell whether a record satisfies it."""
        return False

    def spec_matches(self, spec: str, record: InstallRecord) -> bool:
        """Whether ``record`` satisfies ``spec`` (default: its name matches)."""
        return fnmatch.fnmatchcase(record.name.lower(), self.spec_name(spec))

    def requirements(self, record: InstallRecord, index: RecordIndex) -> Iterator[Requirement]:
        """What ``record`` requires of the Python distributions other records of this
        ecosystem own (``index``: those records by name, key and what they provide),
        in the record's own words (default: nothing)."""
        return iter(())

    def ruleset(self) -> RuleSet:
        """This ecosystem's translation rules, read once per adapter class."""
        key = (type(self), self.ECOSYSTEM, self.RULES)
        rules = _RULESETS.get(key)
        if rules is None:
            rules = _RULESETS[key] = RuleSet.load(self.ECOSYSTEM, syntax=self, path=self.RULES)
        return rules

    # --- destinations ---------------------------------------------------------------

    def registrar(self) -> Registrar | None:
        """What lists the files vbridge adds to a distribution this ecosystem owns in
        its package manager's own record of the package, so that its uninstall removes
        them (conda: the ``conda-meta`` record), used where ``data/annotate.toml`` says
        ``owner``; None: the dist-info's ``RECORD`` is all there is."""
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.ECOSYSTEM}>"


def _module_stems() -> set[str]:
    """The modules of this package (files with a module suffix in its directories),
    private ones included, listed without :mod:`pkgutil`: its ``iter_modules`` imports
    :mod:`inspect` (with ``ast``, ``dis``, ``tokenize``: ~10 M instructions a scan)."""
    suffixes = tuple(importlib.machinery.all_suffixes())
    names: set[str] = set()
    for directory in __path__:
        try:
            entries = os.listdir(directory)
        except OSError:
            continue
        for entry in entries:
            for suffix in suffixes:
                if entry.endswith(suffix):
                    stem = entry[: -len(suffix)]
                    if stem.isidentifier():
                        names.add(stem)
                    break
    return names


def _module_names() -> list[str]:
    """The public modules of this package, by name."""
    return sorted(name for name in _module_stems() if not name.startswith("_"))


def _module_adapter(name: str) -> Adapter | None:
    adapter = getattr(importlib.import_module(f"{__name__}.{name}"), "ADAPTER", None)
    return adapter if isinstance(adapter, Adapter) else None


def all_adapters() -> list[Adapter]:
    """The adapter of every module shipped in this package, imported on first use."""
    return [a for a in map(_module_adapter, _module_names()) if a is not None]


def find_roots(candidates: Iterable[Path]) -> dict[tuple[str, Path], Adapter]:
    """The roots the shipped adapters find among ``candidates``, each with its adapter,
    by ``(ecosystem, root)``, in the order a scan asks (each candidate, then every
    adapter by module name): what ``adapter.find_root(candidate)`` gives for each of
    :func:`all_adapters`.

    An adapter module whose roots are found by a companion module ``_<name>_roots``
    (its ``find_root``, which the adapter's is) is imported only once that finds a
    root: a conda prefix's scan imports neither the apt nor the Spack adapter (~6 M
    instructions), a Spack tree's not the conda one.
    """
    stems = _module_stems()
    finders: list[tuple[str, Callable[[Path], Path | None]]] = []
    adapters: dict[str, Adapter | None] = {}
    for name in _module_names():
        if f"_{name}_roots" in stems:
            roots_module = importlib.import_module(f"{__name__}._{name}_roots")
            finders.append((name, roots_module.find_root))
        else:
            adapter = adapters[name] = _module_adapter(name)
            if adapter is not None:
                finders.append((name, adapter.find_root))
    found: dict[tuple[str, Path], Adapter] = {}
    for candidate in candidates:
        for name, find_root in finders:
            root = find_root(candidate)
            if root is None:
                continue
            if name not in adapters:
                adapters[name] = _module_adapter(name)
            adapter = adapters[name]
            if adapter is not None:
                found.setdefault((adapter.ECOSYSTEM, root), adapter)
    return found


def adapter_for(ecosystem: str) -> Adapter | None:
    """The shipped adapter of ``ecosystem``, or None.

    The module is named after its ecosystem: importing it alone spares a one-ecosystem
    run (the post-link script) the other adapters' imports.
    """
    try:
        module = importlib.import_module(f"{__name__}.{ecosystem}")
    except ImportError:
        module = None
    adapter = getattr(module, "ADAPTER", None)
    if isinstance(adapter, Adapter) and ecosystem == adapter.ECOSYSTEM:
        return adapter
    return next((a for a in all_adapters() if ecosystem == a.ECOSYSTEM), None)

"""What a loaded shared library is: its ELF links and the property value it implements.

A child process reports the files ``/proc/self/maps`` names; :class:`LoadedLibrary`
reads each one's ``DT_SONAME`` and ``DT_NEEDED`` (pyelftools), and the rules of
``data/verify.toml`` (:class:`LibraryRules`) say which feature value it implements:

>>> rules = LibraryRules.load()
>>> [(m.feature, m.value, m.rule) for m in rules.classify(
...     "/usr/lib/x86_64-linux-gnu/blis-openmp/libblas.so.3", ())]
[('blas_lapack :: provider', 'blis', 'debian-implementation-directory')]
>>> [m.value for m in rules.classify("/env/numpy.libs/libscipy_openblas64_-6bb31eeb.so", ())]
['openblas']
>>> [m.value for m in rules.classify("/usr/lib/libhdf5_serial.so.103", ("libmpi.so.40",))]
['on']

Which loaded libraries belong to a distribution is worked out from the links among the
loaded files themselves (:func:`closure`): the loader resolved each ``DT_NEEDED`` name to
the one loaded file with that soname, so following the names from a distribution's own
extension modules reaches what they made the process load, without re-implementing the
loader's search path.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vbridge.errors import RuleError
from vbridge.rules import load_data

__all__ = [
    "FeatureMatch",
    "LibraryRule",
    "LibraryRules",
    "LoadedLibrary",
    "closure",
    "read_links",
    "runtimes",
]

# An ELF file larger than this is still read (only its dynamic section is parsed), but a
# file that is not a regular file never is.
_ELF_MAGIC = b"\x7fELF"


def read_links(path: str) -> tuple[str | None, tuple[str, ...]]:
    """``(DT_SONAME, DT_NEEDED...)`` of an ELF shared object; ``(None, ())`` otherwise.

    >>> read_links("/nonexistent.so")
    (None, ())
    """
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    from vbridge.errors import RecordError
    from vbridge.safefs import open_regular

    try:
        with open_regular(path) as stream:
            if stream.read(4) != _ELF_MAGIC:
                return None, ()
            stream.seek(0)
            elf = ELFFile(stream)
            dynamic = elf.get_section_by_name(".dynamic")
            sources = [dynamic] if dynamic is not None else list(elf.iter_segments("PT_DYNAMIC"))
            soname: str | None = None
            needed: list[str] = []
            for source in sources:
                for tag in source.iter_tags():  # type: ignore[union-attr]
                    if tag.entry.d_tag == "DT_NEEDED":
                        needed.append(str(tag.needed))
                    elif tag.entry.d_tag == "DT_SONAME":
                        soname = str(tag.soname)
            return soname, tuple(needed)
    except (OSError, RecordError, ELFError, ValueError, KeyError, AttributeError):
        return None, ()


@dataclass(frozen=True)
class FeatureMatch:
    """A library implements ``feature`` with ``value`` (rule ``rule``)."""

    feature: str  # 'blas_lapack :: provider'
    value: str
    rule: str
    part: bool = False


@dataclass(frozen=True)
class LoadedLibrary:
    """One file mapped into the child process, with what vbridge read of it."""

    path: str  # as /proc/self/maps names it
    real_path: str  # symlinks resolved
    soname: str | None = None
    needed: tuple[str, ...] = ()
    matches: tuple[FeatureMatch, ...] = ()
    # File names the dynamic loader opened it by (a symlink's name: conda-forge's
    # libcblas.so.3 -> libmkl_rt.so.2), from the child's dl_iterate_phdr.
    aliases: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return os.path.basename(self.real_path)

    @property
    def names(self) -> tuple[str, ...]:
        """Every name a DT_NEEDED entry may use for this file."""
        found = (self.soname, os.path.basename(self.path), self.name, *self.aliases)
        return tuple(dict.fromkeys(n for n in found if n))

    def with_aliases(self, aliases: Iterable[str]) -> LoadedLibrary:
        return dataclasses.replace(self, aliases=tuple(dict.fromkeys((*self.aliases, *aliases))))

    @classmethod
    def read(cls, path: str, rules: LibraryRules) -> LoadedLibrary:
        real = os.path.realpath(path)
        soname, needed = read_links(real)
        return cls(path, real, soname, needed, tuple(rules.classify(real, needed)))

    def value_of(self, feature: str) -> FeatureMatch | None:
        return next((m for m in self.matches if m.feature == feature), None)

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.real_path,
            "soname": self.soname,
            "features": {m.feature: m.value for m in self.matches},
        }


@dataclass(frozen=True)
class LibraryRule:
    """One ``[[libraries]]`` table of ``data/verify.toml``."""

    id: str
    feature: str
    value: str
    file: re.Pattern[str] | None = None
    path: re.Pattern[str] | None = None
    needs: re.Pattern[str] | None = None
    not_needs: re.Pattern[str] | None = None
    values: Mapping[str, str] = field(default_factory=dict)
    part: bool = False

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> LibraryRule:
        def regex(key: str) -> re.Pattern[str] | None:
            text = table.get(key)
            return re.compile(str(text)) if text else None

        try:
            rule = cls(
                id=str(table["id"]),
                feature=str(table["feature"]),
                value=str(table.get("value", "{value}")),
                file=regex("file"),
                path=regex("path"),
                needs=regex("needs"),
                not_needs=regex("not_needs"),
                values=dict(table.get("values", {})),
                part=bool(table.get("part", False)),
            )
        except (KeyError, re.error, TypeError, ValueError) as exc:
            raise RuleError(f"data/verify.toml: bad rule {table.get('id', '?')!r}: {exc}") from exc
        if rule.file is None and rule.path is None:
            raise RuleError(f"data/verify.toml: rule {rule.id!r} needs 'file' or 'path'")
        return rule

    def match(self, real_path: str, needed: Sequence[str]) -> FeatureMatch | None:
        groups: dict[str, str] = {}
        for pattern, text in ((self.file, os.path.basename(real_path)), (self.path, real_path)):
            if pattern is None:
                continue
            m = pattern.search(text)
            if m is None:
                return None
            groups.update({k: v for k, v in m.groupdict().items() if v is not None})
        if self.needs is not None:
            hit = next((m for m in map(self.needs.search, needed) if m is not None), None)
            if hit is None:
                return None
            groups.update({k: v for k, v in hit.groupdict().items() if v is not None})
        if self.not_needs is not None and any(self.not_needs.search(n) for n in needed):
            return None
        groups = {k: self.values.get(v, v) for k, v in groups.items()}
        try:
            value = self.value.format(**groups)
        except (KeyError, IndexError) as exc:
            raise RuleError(f"data/verify.toml: rule {self.id!r} needs {exc}") from exc
        return FeatureMatch(self.feature, value, self.id, self.part)


class LibraryRules:
    """The library rules, first match per feature wins."""

    def __init__(self, rules: Iterable[LibraryRule]) -> None:
        self.rules = list(rules)
        self.features = tuple(dict.fromkeys(r.feature for r in self.rules))

    @classmethod
    def load(cls) -> LibraryRules:
        return cls(LibraryRule.from_table(t) for t in load_data("verify").get("libraries", []))

    def classify(self, real_path: str, needed: Sequence[str]) -> list[FeatureMatch]:
        """Every feature the file implements, one value each."""
        found: dict[str, FeatureMatch] = {}
        for rule in self.rules:
            if rule.feature in found:
                continue
            hit = rule.match(real_path, needed)
            if hit is not None:
                found[rule.feature] = hit
        return list(found.values())


def closure(roots: Iterable[str], libraries: Mapping[str, LoadedLibrary]) -> list[LoadedLibrary]:
    """Loaded libraries reachable through ``DT_NEEDED`` from the files ``roots``.

    ``libraries`` maps each loaded file's real path to what was read of it. A needed
    name is resolved to the loaded file whose soname (or file name) it is.

    >>> a = LoadedLibrary("/e/_ext.so", "/e/_ext.so", None, ("libblas.so.3",))
    >>> b = LoadedLibrary("/l/libblas.so.3", "/l/libblas.so.3", "libblas.so.3")
    >>> [lib.name for lib in closure(["/e/_ext.so"], {a.real_path: a, b.real_path: b})]
    ['libblas.so.3']
    """
    by_soname: dict[str, LoadedLibrary] = {}
    for library in libraries.values():
        for name in library.names:
            by_soname.setdefault(name, library)
    seen: set[str] = set()
    queue = [libraries[r] for r in roots if r in libraries]
    reached: list[LoadedLibrary] = []
    for root in queue:
        seen.add(root.real_path)
    while queue:
        library = queue.pop(0)
        for name in library.needed:
            target = by_soname.get(name)
            if target is None or target.real_path in seen:
                continue
            seen.add(target.real_path)
            reached.append(target)
            queue.append(target)
    return reached


def runtimes(
    libraries: Iterable[LoadedLibrary], feature: str
) -> list[tuple[LoadedLibrary, FeatureMatch]]:
    """The libraries that are a runtime of ``feature`` of their own.

    Not a runtime: a ``part`` of one (MKL's layers) and a forwarder, whose
    ``DT_NEEDED`` names a loaded library of the same feature and value (Debian's
    OpenBLAS ``libblas.so.3``, which links ``libopenblas.so.0``).
    """
    matched = [(lib, lib.value_of(feature)) for lib in libraries]
    found = [(lib, m) for lib, m in matched if m is not None]
    by_name: dict[str, tuple[LoadedLibrary, FeatureMatch]] = {}
    for lib, m in found:
        for name in lib.names:
            by_name.setdefault(name, (lib, m))
    out: list[tuple[LoadedLibrary, FeatureMatch]] = []
    for lib, m in found:
        if m.part:
            continue
        forwards = any(
            (target := by_name.get(n)) is not None
            and target[0].real_path != lib.real_path
            and target[1].value == m.value
            for n in lib.needed
        )
        if not forwards:
            out.append((lib, m))
    return out

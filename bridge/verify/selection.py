"""What a child imports for one distribution: its top-level modules and extension modules.

A distribution's files come from its ``RECORD`` (or ``installed-files.txt``); Debian's
egg-info directories list none, so there the packages named by ``top_level.txt`` are
walked for extension modules (bounded). The copy verified is the one Python imports:
a distribution whose top-level module an earlier layer also provides (a pip numpy in a
venv over Debian's) is *shadowed*, and its own files would never load.

>>> top_level_names(["numpy/__init__.py", "numpy/core/_multiarray_umath.so",
...                  "numpy.libs/libopenblas.so", "numpy-1.26.4.dist-info/RECORD",
...                  "../../../bin/f2py"])
['numpy']
>>> extension_candidates(["numpy/core/_m.cpython-311-x86_64-linux-gnu.so",
...                       "numpy.libs/libscipy_openblas.so", "numpy/__init__.py"], ["numpy"])
['numpy/core/_m.cpython-311-x86_64-linux-gnu.so']
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vbridge.model import Distribution, Environment
from vbridge.verify.owners import distribution_files

__all__ = [
    "ImportPlan",
    "extension_candidates",
    "plan_imports",
    "top_level_names",
]

_WALK_FILES = 50_000
_WALK_DEPTH = 12
_NOT_MODULES = (".dist-info", ".egg-info", ".data", ".libs", ".dylibs")
_EXTENSION_ENDS = (".so", ".pyd")


@dataclass
class ImportPlan:
    """What importing one distribution means."""

    dist: Distribution
    modules: list[str]
    extensions: list[str] = field(default_factory=list)  # relative to the dist's layer
    # The name Python imports when the build is chosen at import time (Debian's h5py):
    # then only that name is imported, so the choice is what it is for a user.
    selected_by: str | None = None
    shadowed_by: str | None = None  # the layer an earlier copy of a module is in

    @property
    def layer(self) -> Path:
        return Path(self.dist.layer)

    def roots(self, mapped: Iterable[str]) -> list[str]:
        """The mapped files that are this distribution's own code: its extension
        modules, or for an import-selected build every extension under the import name."""
        mapped = list(mapped)
        layer = os.path.realpath(self.layer)
        # Extension modules under the distribution's packages count even when its file
        # list does not name them (pip's files over conda's: conda's RECORD lists conda's).
        bases = tuple(
            os.path.join(layer, *name.split(".")) + os.sep
            for name in ([self.selected_by] if self.selected_by else self.modules)
        )
        if self.selected_by is not None:
            return [m for m in mapped if m.startswith(bases) and _is_extension(m)]
        own = {os.path.realpath(os.path.join(layer, rel)) for rel in self.extensions}
        return [m for m in mapped if m in own or (m.startswith(bases) and _is_extension(m))]


def _is_extension(path: str) -> bool:
    name = os.path.basename(path)
    return name.endswith(_EXTENSION_ENDS) and not name.startswith("lib")


def top_level_names(files: Sequence[str]) -> list[str]:
    """Importable top-level names among a distribution's files (namespace packages as
    ``ns.sub``)."""
    packages: dict[str, set[str]] = {}
    modules: list[str] = []
    has_init: set[str] = set()
    for rel in files:
        parts = rel.split("/")
        top = parts[0]
        if top in ("..", ".", "__pycache__") or top.endswith(_NOT_MODULES):
            continue
        if len(parts) == 1:
            stem = top.split(".", 1)[0]
            if top.endswith((".py", *_EXTENSION_ENDS)) and stem.isidentifier():
                modules.append(stem)
            continue
        if not top.isidentifier():
            continue
        packages.setdefault(top, set())
        if parts[1] == "__init__.py" or (parts[1].startswith("__init__.") and len(parts) == 2):
            has_init.add(top)
        elif len(parts) > 2 and parts[1].isidentifier():
            packages[top].add(parts[1])
        elif len(parts) == 2 and parts[1].endswith(".py") and parts[1][:-3].isidentifier():
            packages[top].add(parts[1][:-3])
    names: list[str] = []
    for top, subs in packages.items():
        if top in has_init:
            names.append(top)
        else:  # a namespace package: its portions this distribution ships
            names.extend(f"{top}.{sub}" for sub in sorted(subs) if sub != "__pycache__")
    names.extend(m for m in modules if m not in names)
    return sorted(dict.fromkeys(names))


def extension_candidates(files: Sequence[str], tops: Sequence[str]) -> list[str]:
    """Files that may be extension modules of the top-level names (the child keeps
    those ending in one of its interpreter's extension suffixes)."""
    heads = {t.split(".")[0] for t in tops}
    out = []
    for rel in files:
        name = rel.rsplit("/", 1)[-1]
        if not name.endswith(_EXTENSION_ENDS):
            continue
        first = rel.split("/", 1)[0]
        package = "/" in rel and first in heads  # numpy/core/_x.so, not numpy.libs/...
        module = "/" not in rel and first.split(".", 1)[0] in heads  # apt_pkg.cpython-*.so
        if package or module:
            out.append(rel)
    return sorted(out)


def _walk(layer: Path, tops: Sequence[str]) -> list[str]:
    """Extension files under the top-level packages (for a dist without a file list)."""
    found: list[str] = []
    budget = _WALK_FILES
    for top in tops:
        head = top.split(".")[0]
        try:
            entries = list(os.scandir(layer))
        except OSError:
            return found
        for entry in entries:
            if entry.name.startswith(head + ".") and entry.name.endswith(_EXTENSION_ENDS):
                found.append(entry.name)
        start = layer / Path(*top.split("."))
        if not start.is_dir() or start.is_symlink():
            continue
        for directory, subdirs, names in os.walk(start):
            depth = len(Path(directory).relative_to(layer).parts)
            if depth >= _WALK_DEPTH:
                subdirs[:] = []
            subdirs[:] = [d for d in subdirs if d != "__pycache__"]
            for name in names:
                budget -= 1
                if budget <= 0:
                    return sorted(found)
                if name.endswith(_EXTENSION_ENDS):
                    found.append(os.path.relpath(os.path.join(directory, name), layer))
    return sorted(dict.fromkeys(found))


def _declared_tops(dist: Distribution) -> list[str]:
    from vbridge.errors import RecordError
    from vbridge.safefs import read_regular

    try:
        text = read_regular(dist.dist_info / "top_level.txt").decode("utf-8", "replace")
    except (OSError, RecordError):
        return []
    return [line.strip() for line in text.splitlines() if line.strip().isidentifier()]


def _provides(layer: Path, top: str) -> bool:
    head = top.split(".")[0]
    if (layer / head).is_dir() or (layer / f"{head}.py").is_file():
        return True
    try:
        return any(
            e.name.startswith(head + ".") and e.name.endswith(_EXTENSION_ENDS)
            for e in os.scandir(layer)
        )
    except OSError:
        return False


def plan_imports(env: Environment, dist: Distribution, max_extensions: int) -> ImportPlan:
    """The imports that exercise ``dist``'s copy in ``env``."""
    layer = Path(dist.layer)
    files = distribution_files(dist.dist_info)
    tops = top_level_names(files) if files else []
    if not tops:
        # top_level.txt, else the distribution's own name (a one-file egg-info such as
        # Debian's mpi4py-3.1.4.egg-info names nothing else).
        declared = _declared_tops(dist) or [dist.name.replace("-", "_")]
        tops = [t for t in declared if _provides(layer, t)]
    extensions = extension_candidates(files, tops) if files else _walk(layer, tops)
    plan = ImportPlan(dist, tops, extensions[:max_extensions])
    selected = dist.facts.get("import_name")
    if isinstance(selected, str) and selected:
        plan.modules = [selected]
        plan.extensions = []
        plan.selected_by = selected
    for top in plan.modules:
        for other in env.site_packages:
            if other == layer or os.path.realpath(other) == os.path.realpath(layer):
                break
            if _provides(other, top):
                plan.shadowed_by = str(other)
                break
        if plan.shadowed_by:
            break
    return plan


def has_extensions(plan: ImportPlan) -> bool:
    return bool(plan.extensions) or plan.selected_by is not None

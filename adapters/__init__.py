"""Adapters: one module per ecosystem, each turning that ecosystem's install records
into :class:`vbridge.model.InstallRecord` objects. No adapter knows about another.

An adapter module defines::

    ECOSYSTEM: str
    def find_root(path: Path) -> Path | None
        # the root of this ecosystem's records that governs ``path`` (a prefix or a
        # site-packages directory), or None
    def read_records(root: Path, problems: list[RecordProblem]) -> Iterator[InstallRecord]
        # every record under ``root``; unreadable ones are appended to ``problems``
    def site_packages(root: Path) -> list[Path]   # optional: layers the records know of
    FOREIGN: bool = True  # optional; False for an adapter whose records describe
                          # distributions (foreign=False) and own none (the wheel adapter)
    def is_collection(root: Path) -> bool         # optional: root holds many environments
        # (a Spack install tree), so "mixed within one process" findings do not apply
    def fingerprint_paths(root: Path) -> list[Path]  # optional: files and directories
        # whose size/mtime change when the records change, beyond the records' own
        # sources (the inventory re-scans an environment only when one of them moved)

A record may carry ``extra["dist_facts"]`` (a mapping): facts about the Python
distributions it owns that are not variant properties (a C ABI it provides, how an
import picks between builds); the scan copies them into ``Distribution.facts``.

Adding an ecosystem is adding a module here (and its rules in ``data/``).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Protocol, cast

from vbridge.model import InstallRecord, RecordProblem

__all__ = ["Adapter", "all_adapters"]


class Adapter(Protocol):
    ECOSYSTEM: str

    def find_root(self, path: Path) -> Path | None: ...

    def read_records(
        self, root: Path, problems: list[RecordProblem]
    ) -> Iterator[InstallRecord]: ...


def all_adapters() -> list[Adapter]:
    """Every adapter module shipped in this package, imported on first use."""
    modules: list[ModuleType] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "ECOSYSTEM") and hasattr(module, "read_records"):
            modules.append(module)
    return [cast(Adapter, m) for m in modules]

"""The records a post-link hook reads: one package's, and those its properties can come from.

A scan for one package's distributions (``scan_environment(..., only=...)``) reads every
record of the prefix but uses few of them: the records owning the distributions, the
metapackages that pin them (Anaconda's ``numpy`` over ``numpy-base``), and the records
their dependencies reach by name (``numpy -> libblas -> mkl``, ``mpi4py -> openmpi``),
with every record of each name a dependency looks up (the first of a name is the one a
walk follows; the SBOM names the last). :func:`package_records` picks exactly those from
the fields of every record (:func:`vbridge.adapters.conda.read_prefix_fields`: a ``stat``
and a record-cache lookup each for unchanged records) and parses only them, so the scan
translates the package as a scan of the whole prefix does, in time that follows the
package and not the prefix.

The subset is a superset of what the scan's walk and the SBOM look up: extra records
change nothing (every record a lookup could return is in it, in file-name order).
tests/test_conda_post_link_records.py checks the files written against a scan of the
whole prefix, for every Python package of a generated prefix and of real rattler ones.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path

from vbridge.adapters import conda
from vbridge.adapters.conda import CondaPrefix, PrefixRecordFields
from vbridge.model import InstallRecord, RecordProblem
from vbridge.names import canonical_name
from vbridge.rules import RuleSet

__all__ = ["ListedRecords", "package_records"]


def package_records(
    prefix: Path,
    own_paths: Sequence[Path],
    problems: list[RecordProblem],
    pending: Sequence[InstallRecord] = (),
) -> list[InstallRecord]:
    """The records a scan of the package's distributions uses, in the order a scan of
    the whole prefix reads them: of ``prefix``'s records (file-name order), then of
    ``pending``, the records the installer has not written yet (conda's order: the
    package itself first, then its dependencies linked with it).

    The package is the records at ``own_paths``, or ``pending[0]``.
    """
    adapter = conda.ADAPTER
    rules = adapter.ruleset()
    entries: list[tuple[str, PrefixRecordFields]] = list(conda.read_prefix_fields(prefix, problems))
    written = len(entries)
    names = [fields.name.lower() for _, fields in entries]
    names += [record.name.lower() for record in pending]
    depends: list[Sequence[str]] = [fields.depends or () for _, fields in entries]
    depends += [record.depends for record in pending]
    # name -> the records a dependency on it can resolve to (scan._Links.by_name keys
    # each record by its lower-case and its PEP 503 name), in reading order
    by_name: dict[str, list[int]] = {}
    # The records that own a metadata directory (a record's fields keep of its files
    # one per metadata directory: those with files).
    owning = {i for i, (_, fields) in enumerate(entries) if fields.files}
    owning.update(written + i for i, record in enumerate(pending) if record.python_dists)
    for i, name in enumerate(names):
        by_name.setdefault(name, []).append(i)
        if "_" in name or "." in name or "--" in name:  # else it is its PEP 503 name
            canonical = canonical_name(name)
            if canonical != name:
                by_name.setdefault(canonical, []).append(i)

    meta = prefix / "conda-meta"
    own = {p.name for p in own_paths if str(p.parent) == str(meta)}
    starts = {i for i, (name, _) in enumerate(entries) if name in own}
    if pending:
        starts.add(written)
    # Every record claiming one of the package's distributions (the first is its owner):
    # those whose files name one (by its directory's name; then exactly).
    targets = {d for i in starts for d in _owned(prefix, entries, pending, i)}
    basenames = {d.rsplit("/", 1)[-1] for d in targets}
    for i in owning - starts:
        files = "\0".join(entries[i][1].files or ()) if i < written else ""
        named = i >= written or any(b in files for b in basenames)
        if named and targets.intersection(_owned(prefix, entries, pending, i)):
            starts.add(i)
    if rules.metapackages_pin:
        owners = {names[i] for i in starts}
        for i, specs in enumerate(depends):
            if i in owning or not specs:
                continue
            text = "\0".join(specs).lower()
            if not any(name in text for name in owners):
                continue  # a name a spec mentions is part of its text
            if any(
                name.lower() in owners for dep in specs for name in adapter.dependency_names(dep)
            ):
                starts.add(i)

    # The walk of scan._closure follows a dependency to the first record of its name,
    # except into stop_at packages and other Python distributions: every record of
    # each name looked up is kept, and walked on under the same conditions.
    kept = set(starts)
    walked = set(starts)
    queue = deque(sorted(starts))
    while queue:
        for dep in depends[queue.popleft()]:
            for name in adapter.dependency_names(dep):
                for j in by_name.get(name.lower(), ()):
                    kept.add(j)
                    if j in walked or names[j] in rules.stop_at or j in owning:
                        continue
                    walked.add(j)
                    queue.append(j)
    meta_text = str(meta) + os.sep  # each record's source, joined as text
    return [
        conda.parse_record(prefix, meta_text + entries[i][0], entries[i][1])
        if i < written
        else pending[i - written]
        for i in sorted(kept)
    ]


def _owned(
    prefix: Path,
    entries: Sequence[tuple[str, PrefixRecordFields]],
    pending: Sequence[InstallRecord],
    i: int,
) -> list[str]:
    """The metadata directories record ``i`` owns, from the prefix, ``/``-separated."""
    if i < len(entries):
        return conda.metadata_dir_names(entries[i][1].files or [])
    return [d.relative_to(prefix).as_posix() for d in pending[i - len(entries)].python_dists]


class ListedRecords(CondaPrefix):
    """The conda adapter, giving for ``prefix`` the records it is handed (in that
    order) instead of reading them."""

    def __init__(self, prefix: Path, records: Sequence[InstallRecord]) -> None:
        self._prefix = prefix
        self._records = list(records)

    def ruleset(self) -> RuleSet:
        return conda.ADAPTER.ruleset()  # the same rules, read once (not per adapter class)

    def read_records(self, root: Path, problems: list[RecordProblem]) -> Iterator[InstallRecord]:
        if root == self._prefix:
            yield from self._records
        else:
            yield from super().read_records(root, problems)

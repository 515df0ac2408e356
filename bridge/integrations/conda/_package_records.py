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
    prefix: Path, own_paths: Sequence[Path], problems: list[RecordProblem]
) -> list[InstallRecord]:
    """The records of ``prefix`` a scan of the distributions of the records at
    ``own_paths`` uses, in file-name order (as :func:`conda.read_records` gives them)."""
    adapter = conda.ADAPTER
    rules = adapter.ruleset()
    entries: list[tuple[Path, PrefixRecordFields]] = list(
        conda.read_prefix_fields(prefix, problems)
    )
    names = [fields.name.lower() for _, fields in entries]
    # name -> the records a dependency on it can resolve to (scan._Links.by_name keys
    # each record by its lower-case and its PEP 503 name), in file-name order
    by_name: dict[str, list[int]] = {}
    dirs: dict[int, list[str]] = {}  # the metadata directories each record owns
    for i, (_, fields) in enumerate(entries):
        by_name.setdefault(names[i], []).append(i)
        if "_" in names[i] or "." in names[i] or "--" in names[i]:  # else its PEP 503 name
            canonical = canonical_name(fields.name)
            if canonical != names[i]:
                by_name.setdefault(canonical, []).append(i)
        if fields.files:
            owned = conda.metadata_dir_names(fields.files)
            if owned:
                dirs[i] = owned

    own = {str(p) for p in own_paths}
    starts = {i for i, (path, _) in enumerate(entries) if str(path) in own}
    # Every record claiming one of the package's distributions (the first is its owner).
    targets = {d for i in starts for d in dirs.get(i, ())}
    starts |= {i for i, owned in dirs.items() if targets.intersection(owned)}
    if rules.metapackages_pin:
        owners = {names[i] for i in starts}
        for i, (_, fields) in enumerate(entries):
            if i in dirs or not fields.depends:
                continue
            text = "\0".join(fields.depends).lower()
            if not any(name in text for name in owners):
                continue  # a name a spec mentions is part of its text
            if any(
                name.lower() in owners
                for dep in fields.depends
                for name in adapter.dependency_names(dep)
            ):
                starts.add(i)

    # The walk of scan._closure follows a dependency to the first record of its name,
    # except into stop_at packages and other Python distributions: every record of
    # each name looked up is kept, and walked on under the same conditions.
    kept = set(starts)
    walked = set(starts)
    queue = deque(sorted(starts))
    while queue:
        fields = entries[queue.popleft()][1]
        for dep in fields.depends or ():
            for name in adapter.dependency_names(dep):
                for j in by_name.get(name.lower(), ()):
                    kept.add(j)
                    if j in walked or names[j] in rules.stop_at or j in dirs:
                        continue
                    walked.add(j)
                    queue.append(j)
    return [conda.parse_record(prefix, entries[i][0], entries[i][1]) for i in sorted(kept)]


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

"""``vbridge verify``: what really loads, checked against what the records say.

The one part of vbridge that runs the inspected environment's code, and only when asked
(never from scan, annotate, check or a hook). For each selected distribution a child
process of the target interpreter (:mod:`vbridge.verify.child`: ``-I``, an empty working
directory, a minimal environment, thread pools pinned to one thread, a timeout) imports
its top-level modules and its compiled extension modules (:mod:`.selection`), then
reports the files ``/proc/self/maps`` names. The libraries its own extension modules
made the process load (:func:`.libraries.closure`) are classified by the rules of
``data/verify.toml`` and given their owners (:mod:`.owners`), then compared with the
scan's properties (:mod:`.verdict`). A last child imports the whole selection at once:
how many BLAS/OpenMP runtimes share one process, and what threadpoolctl (when the
target has it) sees of them.

>>> verification = verify_environment(env, python="/usr/bin/python3")   # doctest: +SKIP
>>> [v.status for d in verification.distributions for v in d.features]  # doctest: +SKIP
['confirmed', 'confirmed']
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from vbridge.errors import VbridgeError
from vbridge.model import Distribution, Environment
from vbridge.names import canonical_name
from vbridge.rules import load_data
from vbridge.verify.child import (
    ChildOutcome,
    ChildRequest,
    default_timeout,
    end_children,
    run_child,
)
from vbridge.verify.libraries import LibraryRules, LoadedLibrary, closure, runtimes
from vbridge.verify.owners import OwnerIndex
from vbridge.verify.selection import ImportPlan, has_extensions, plan_imports
from vbridge.verify.verdict import (
    DistributionVerification,
    FeatureVerdict,
    LoadedValue,
    ProcessFacts,
    RecordedValue,
    Verification,
    compare_values,
)

__all__ = ["NotSupported", "Verification", "select", "verify_environment"]


class NotSupported(VbridgeError):
    """verify reads /proc/self/maps: Linux only."""


def _max_extensions() -> int:
    return int(load_data("verify").get("child", {}).get("max_extensions", 2000))


def select(env: Environment, names: Sequence[str] = ()) -> list[ImportPlan]:
    """The distributions to verify: those named (every copy), else every distribution
    Python imports (not shadowed) that has properties or compiled extensions."""
    limit = _max_extensions()
    if names:
        wanted = {canonical_name(n) for n in names}
        known = {d.name for d in env.distributions}
        missing = sorted(n for n in wanted if n not in known)
        if missing:
            raise VbridgeError(
                f"{env.path}: no distribution named {', '.join(missing)} here; "
                "'vbridge scan' lists them"
            )
        return [plan_imports(env, d, limit) for d in env.distributions if d.name in wanted]
    plans = []
    for dist in env.distributions:
        plan = plan_imports(env, dist, limit)
        if plan.shadowed_by is None and plan.modules and (dist.properties or has_extensions(plan)):
            plans.append(plan)
    return plans


def _owner_text(dist: Distribution) -> str:
    if dist.owner is not None:
        o = dist.owner
        return " ".join(x for x in (o.ecosystem, o.name, o.version) if x)
    return dist.installer or "unknown installer"


class _Libraries:
    """What was read of every loaded file, shared by all children of one run."""

    def __init__(self, env: Environment) -> None:
        self.rules = LibraryRules.load()
        self.owners = OwnerIndex(env)
        self._read: dict[str, LoadedLibrary] = {}

    def of(self, report: Mapping[str, object]) -> dict[str, LoadedLibrary]:
        maps = report.get("maps")
        aliases: dict[str, list[str]] = {}
        for name in report.get("loader_names") or []:  # type: ignore[attr-defined]
            aliases.setdefault(os.path.realpath(str(name)), []).append(os.path.basename(name))
        out: dict[str, LoadedLibrary] = {}
        for path in maps if isinstance(maps, list) else []:
            path = str(path)
            if ".so" not in os.path.basename(path):
                continue
            real = os.path.realpath(path)
            library = self._read.get(real)
            if library is None:
                library = self._read[real] = LoadedLibrary.read(path, self.rules)
            extra = tuple(a for a in aliases.get(real, []) if a not in library.aliases)
            if extra:
                library = library.with_aliases(extra)
                self._read[real] = library
            out[real] = library
        return out

    def values(self, libraries: Sequence[LoadedLibrary], feature: str) -> list[LoadedValue]:
        found = [(lib, lib.value_of(feature)) for lib in libraries]
        matched = [(lib, m) for lib, m in found if m is not None]
        owners = self.owners.owners(lib.real_path for lib, _ in matched)
        return [LoadedValue(m.value, lib, owners.get(lib.real_path), m.rule) for lib, m in matched]


def _recorded(dist: Distribution, features: Sequence[str]) -> dict[str, list[RecordedValue]]:
    out: dict[str, list[RecordedValue]] = {}
    for prop, evidence in sorted(dist.properties.items(), key=lambda kv: kv[0].to_str()):
        feature = f"{prop.namespace} :: {prop.feature}"
        if feature not in features:
            continue
        first = evidence[0] if evidence else None
        out.setdefault(feature, []).append(
            RecordedValue(prop.value, first.record if first else "", first.rule if first else "")
        )
    return out


def _judge(
    plan: ImportPlan, outcome: ChildOutcome, libraries: _Libraries, env: Environment
) -> DistributionVerification:
    dist = plan.dist
    result = DistributionVerification(
        dist.name, dist.version, dist.layer, str(dist.dist_info), _owner_text(dist), "ok",
        modules=plan.modules, extensions=len(plan.extensions), seconds=outcome.seconds,
    )
    if outcome.status != "ok":
        result.status = outcome.status
        result.note = outcome.summary()
        return result
    report = outcome.report
    result.imported = len(report.get("imported", []))
    result.failures = [
        {"module": str(f.get("module")), "error": str(f.get("error"))}
        for f in report.get("failures", [])
    ]
    if result.failures:
        result.status = "import-failed"
    elsewhere = report.get("elsewhere") or []
    if elsewhere:
        origins = report.get("origins", {})
        result.status = "shadowed"
        result.note = (
            f"import {elsewhere[0]} loads {origins.get(elsewhere[0])}, not this copy; "
            "verify the copy Python imports"
        )
        return result
    loaded = libraries.of(report)
    roots = plan.roots(loaded)
    own = [loaded[r] for r in roots] + closure(roots, loaded)
    if plan.selected_by is not None:
        result.note = _selection_note(plan, roots, env)
    recorded = _recorded(dist, libraries.rules.features)
    for feature in libraries.rules.features:
        values = libraries.values(own, feature)
        records = recorded.get(feature, [])
        if not records and not values:
            continue
        status = compare_values({r.value for r in records}, {v.value for v in values})
        result.features.append(FeatureVerdict(feature, status, records, values))
    return result


def _selection_note(plan: ImportPlan, roots: Sequence[str], env: Environment) -> str:
    """Which build ``import NAME`` chose, for a distribution whose build is chosen then."""
    chosen = []
    for other in env.distributions:
        if other.layer != plan.dist.layer:
            continue
        files = {
            os.path.realpath(os.path.join(other.layer, rel))
            for rel in _files_of(other)
        }
        if any(r in files for r in roots):
            chosen.append(other.name)
    which = ", ".join(chosen) or "no build with extension modules"
    how = plan.dist.facts.get("selected_at_import", "")
    mine = plan.dist.name in chosen
    verdict = "this build" if mine else f"not this build but {which}"
    return f"import {plan.selected_by} loaded {verdict}" + (f" ({how})" if how else "")


def _files_of(dist: Distribution) -> list[str]:
    from vbridge.verify.owners import distribution_files

    return distribution_files(dist.dist_info)


def _process_facts(
    python: str,
    plans: Sequence[ImportPlan],
    results: Sequence[DistributionVerification],
    libraries: _Libraries,
    timeout: float,
    extra_env: Mapping[str, str] | None,
) -> ProcessFacts:
    usable = [
        p for p, r in zip(plans, results, strict=True) if r.status in ("ok", "import-failed")
    ]
    facts = ProcessFacts(distributions=[p.dist.name for p in usable])
    if not usable:
        return facts
    modules: list[str] = []
    extensions: list[str] = []
    for plan in usable:
        modules.extend(m for m in plan.modules if m not in modules)
        extensions.extend(e for e in plan.extensions if e not in extensions)
    request = ChildRequest(modules, extensions, None, threadpoolctl=True)
    outcome = run_child(python, request, timeout * max(1, len(usable)), extra_env)
    if outcome.status != "ok":
        facts.status = outcome.status
        facts.note = outcome.summary()
        return facts
    loaded = list(libraries.of(outcome.report).values())
    for feature in ("blas_lapack :: provider", "openmp :: provider"):
        found = runtimes(loaded, feature)
        owners = libraries.owners.owners(lib.real_path for lib, _ in found)
        facts.runtimes[feature] = [
            LoadedValue(m.value, lib, owners.get(lib.real_path), m.rule) for lib, m in found
        ]
    info = outcome.report.get("threadpoolctl")
    if isinstance(info, list):
        facts.threadpoolctl = info
        seen = {os.path.realpath(str(i.get("filepath", ""))) for i in info}
        facts.unseen_by_threadpoolctl = [
            v for vs in facts.runtimes.values() for v in vs if v.library.real_path not in seen
        ]
    else:
        error = str(outcome.report.get("threadpoolctl_error", ""))
        missing = error.startswith("ModuleNotFoundError")
        facts.threadpoolctl_note = "not installed in this environment" if missing else error
    return facts


def verify_environment(
    env: Environment,
    python: str,
    names: Sequence[str] = (),
    *,
    timeout: float | None = None,
    jobs: int = 2,
    extra_env: Mapping[str, str] | None = None,
    platform: str = sys.platform,
) -> Verification:
    """Verify ``env`` (a scan of ``python``'s environment) by importing its code in
    children of ``python``."""
    if not platform.startswith("linux"):
        raise NotSupported(
            f"vbridge verify is not supported on {platform}: it reads /proc/self/maps, "
            "which only Linux has; 'vbridge scan' works everywhere"
        )
    started = time.monotonic()
    timeout = default_timeout() if timeout is None else timeout
    plans = select(env, names)
    libraries = _Libraries(env)
    verification = Verification(str(env.path), python)

    def run(plan: ImportPlan) -> DistributionVerification:
        if plan.shadowed_by is not None:
            return DistributionVerification(
                plan.dist.name, plan.dist.version, plan.dist.layer, str(plan.dist.dist_info),
                _owner_text(plan.dist), "shadowed",
                note=f"not the copy Python imports: {plan.shadowed_by} comes first on sys.path",
            )
        if not plan.modules:
            return DistributionVerification(
                plan.dist.name, plan.dist.version, plan.dist.layer, str(plan.dist.dist_info),
                _owner_text(plan.dist), "nothing-to-import",
                note="its files name no importable module",
            )
        request = ChildRequest(plan.modules, plan.extensions, plan.dist.layer)
        outcome = run_child(python, request, timeout, extra_env)
        return _judge(plan, outcome, libraries, env)

    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        verification.distributions = list(pool.map(run, plans))
        verification.process = _process_facts(
            python, plans, verification.distributions, libraries, timeout, extra_env
        )
    except BaseException:  # Ctrl-C, a bug: no child outlives vbridge, none starts
        pool.shutdown(wait=False, cancel_futures=True)
        end_children()
        raise
    finally:
        pool.shutdown(wait=True)
    verification.seconds = time.monotonic() - started
    return verification


def prefix_interpreter(prefix: Path) -> str | None:
    """The interpreter of an environment prefix (a Debian root: its /usr/bin/python3)."""
    for rel in ("bin/python", "bin/python3", "usr/bin/python3"):
        candidate = prefix / rel
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None

"""STAND-IN for conda's plugin interface: conda itself cannot be installed here.

It mirrors, name for name and signature for signature, the parts of conda that a
plugin meets (conda/conda @ 0f64223f, Aug 2026):

- ``conda.plugins.hookimpl``: pluggy's ``HookimplMarker("conda")`` (what conda's is);
- ``conda.plugins.hookspec.CondaSpecs``: the three hook specifications vbridge uses;
- ``conda.plugins.types``: ``CondaPlugin`` (name lower-cased and stripped),
  ``CondaPostTransactionAction(name, action: type[Action])`` (25.5+),
  ``CondaPostCommand(name, action: Callable[[str], None], run_for: set[str])``,
  ``CondaHealthCheck(name, action(prefix, verbose), fixer=None, summary=None, fix=None)``;
- ``conda.core.path_actions.Action``: constructor ``(transaction_context, target_prefix,
  unlink_precs, link_precs, remove_specs, update_specs, neutered_specs)``, abstract
  ``verify/execute/reverse/cleanup``, ``verified``;
- ``conda.models.records.PackageRecord``/``PrefixRecord`` (the attributes plugins read);
- ``conda.base.context.context.target_prefix``; ``conda.base.constants.OK_MARK/X_MARK``;
- the plugin manager (``load_entrypoints("conda")`` through pluggy's real entry-point
  loader, ``get_hook_results``, ``get_post_transaction_actions``,
  ``invoke_post_commands``) and how ``UnlinkLinkTransaction`` runs the ``final`` action
  group (verify unverified actions, execute, reverse on error then re-raise, cleanup).

Per conda version (``install(version=...)``, real differences found running conda
25.3.1 and 26.7.2.dev from source):

- before 25.5 (``legacy=True`` is 25.3): no post-transaction hook or type;
- 25.5: ``CondaPostTransactionAction`` exists and is not a ``CondaPlugin`` subclass
  (its name is not normalised);
- ``CondaHealthCheck`` is a ``NamedTuple(name, action)`` before 25.7, a dataclass without
  ``fixer``/``summary``/``fix`` in 25.7-25.11, with them from 26.1.

As conda does, and the tests rely on it:

- records: ``link_precs`` are ``PackageRecord`` objects without ``files`` or
  ``extracted_package_dir``, their ``channel`` a :class:`Channel`; ``unlink_precs``
  are the prefix's ``PrefixRecord`` objects;
- ``get_hook_results`` rejects names that are not lower-case and stripped, raises
  ``PluginError`` on two plugins of one name and returns them sorted by name;
- ``load_entrypoints``: a plugin that fails to import is logged and skipped;
  ``CONDA_NO_PLUGINS`` (true) loads none;
- :class:`UnlinkLinkTransaction`: the post-transaction action is built in ``_prepare``,
  before anything is linked, and verified with the other actions (not when
  ``safety_checks`` is ``disabled``); the ``final`` group runs after the records are
  written, on a thread pool when ``execute_threads`` > 1; on a failure conda reverses
  the group, rolls the transaction back and raises ``CondaMultiError``; ``cleanup()``
  runs only on success;
- :func:`run_script`: post-link scripts run as ``conda shell.posix hook`` +
  ``conda activate PREFIX`` then the script (records of packages already in the
  environment stay, those of the transaction are not written yet); pre-unlink scripts
  run with ``bash -x``, no activation;
- :func:`doctor_fix`: plain ``conda doctor --fix`` runs every fixer; ``confirm`` raises
  ``DryRunExit`` under ``--dry-run`` and ``CondaSystemExit`` when the answer is no.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import os
import subprocess
import sys
import types
from abc import ABC, abstractmethod
from argparse import Namespace
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pluggy
import pytest

hookimpl = pluggy.HookimplMarker("conda")
_hookspec = pluggy.HookspecMarker("conda")
OK_MARK = "✅"
X_MARK = "❌"
CONDA_VERSIONS = ("25.3", "25.5", "25.7", "26.1", "26.7")
log = logging.getLogger("conda.plugins.manager")


def _version(text: str) -> tuple[int, int]:
    major, minor = text.split(".")[:2]
    return int(major), int(minor)


# --- conda.exceptions -------------------------------------------------------------------
class CondaError(Exception):
    pass


class PluginError(CondaError):
    pass


class CondaMultiError(CondaError):
    def __init__(self, errors: Iterable[BaseException]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(map(str, self.errors)))


class CondaSystemExit(CondaError, SystemExit):
    pass


class DryRunExit(CondaError):
    pass


# --- conda.plugins.types ---------------------------------------------------------------
@dataclass
class CondaPlugin:
    name: str

    def __post_init__(self) -> None:
        self.name = self.name.lower().strip()


@dataclass
class CondaPostCommand(CondaPlugin):
    name: str
    action: Callable[[str], None]
    run_for: set[str]


@dataclass
class CondaPreCommand(CondaPlugin):
    name: str
    action: Callable[[str], None]
    run_for: set[str]


@dataclass
class CondaHealthCheck(CondaPlugin):
    name: str
    action: Callable[[str, bool], None]
    fixer: Callable[[str, Namespace, Callable[[str], None]], int] | None = None
    summary: str | None = None
    fix: str | None = None


@dataclass
class LegacyCondaHealthCheck(CondaPlugin):
    """``CondaHealthCheck`` in conda 25.7 to 25.11 (a dataclass, no fixer)."""

    name: str
    action: Callable[[str, bool], None]


class TupleCondaHealthCheck(NamedTuple):
    """``CondaHealthCheck`` before conda 25.7 (a NamedTuple)."""

    name: str
    action: Callable[[str, bool], None]


# --- conda.core.path_actions ------------------------------------------------------------
class Action(ABC):
    _verified = False

    def __init__(
        self,
        transaction_context: dict[str, str] | None = None,
        target_prefix: str | None = None,
        unlink_precs: Iterable[Any] | None = None,
        link_precs: Iterable[Any] | None = None,
        remove_specs: Iterable[Any] | None = None,
        update_specs: Iterable[Any] | None = None,
        neutered_specs: Iterable[Any] | None = None,
    ) -> None:
        self.transaction_context = transaction_context
        self.target_prefix = target_prefix
        self.unlink_precs = unlink_precs
        self.link_precs = link_precs
        self.remove_specs = remove_specs
        self.update_specs = update_specs
        self.neutered_specs = neutered_specs

    @abstractmethod
    def verify(self) -> Exception | None: ...

    @abstractmethod
    def execute(self) -> None: ...

    @abstractmethod
    def reverse(self) -> None: ...

    @abstractmethod
    def cleanup(self) -> None: ...

    @property
    def verified(self) -> bool:
        return self._verified


@dataclass
class CondaPostTransactionAction(CondaPlugin):
    name: str
    action: type[Action]


@dataclass
class CondaPostTransactionAction255:
    """conda 25.5: not a ``CondaPlugin`` subclass (the name is taken as given)."""

    name: str
    action: type[Action]


# --- conda.models.channel / records -----------------------------------------------------
class Channel:
    """``conda.models.channel.Channel``: what a record's ``channel`` is."""

    def __init__(self, value: str) -> None:
        self.base_url = value.rstrip("/")
        tail = self.base_url.rsplit("/", 1)[-1]
        self.name = tail if "://" in value else value
        self.canonical_name = self.base_url if value.startswith("file:") else self.name

    def __str__(self) -> str:
        return self.canonical_name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Channel) and other.base_url == self.base_url

    def __hash__(self) -> int:
        return hash(self.base_url)


@dataclass
class PackageRecord:
    name: str
    version: str
    build: str
    build_number: int = 0
    channel: Channel = field(default_factory=lambda: Channel("conda-forge"))
    subdir: str = "linux-64"
    depends: tuple[str, ...] = ()
    constrains: tuple[str, ...] = ()
    url: str = ""
    md5: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.channel, str):
            self.channel = Channel(self.channel)

    @property
    def build_string(self) -> str:
        return self.build

    @property
    def fn(self) -> str:
        return f"{self.name}-{self.version}-{self.build}.conda"

    def dist_str(self) -> str:
        return f"{self.channel}/{self.subdir}::{self.name}-{self.version}-{self.build}"

    def __hash__(self) -> int:
        return hash((self.name, self.version, self.build, self.subdir))


@dataclass(eq=False)
class PrefixRecord(PackageRecord):
    files: tuple[str, ...] = ()
    extracted_package_dir: str = ""

    def __hash__(self) -> int:
        return hash((self.name, self.version, self.build, self.subdir))


# --- conda.plugins.hookspec -------------------------------------------------------------
class CondaSpecs:
    @_hookspec
    def conda_pre_commands(self) -> Iterable[CondaPreCommand]:  # type: ignore[empty-body]
        ...

    @_hookspec
    def conda_post_commands(self) -> Iterable[CondaPostCommand]:  # type: ignore[empty-body]
        ...

    @_hookspec
    def conda_health_checks(self) -> Iterable[CondaHealthCheck]:  # type: ignore[empty-body]
        ...


class CondaSpecsWithTransactions(CondaSpecs):
    @_hookspec
    def conda_post_transaction_actions(  # type: ignore[empty-body]
        self,
    ) -> Iterable[CondaPostTransactionAction]: ...


# --- conda.plugins.manager --------------------------------------------------------------
class CondaPluginManager(pluggy.PluginManager):
    def __init__(self, legacy: bool) -> None:
        super().__init__("conda")
        self.add_hookspecs(CondaSpecs if legacy else CondaSpecsWithTransactions)

    def load_entrypoints(self, group: str) -> int:
        """Each entry point of ``group``: one that fails to import is logged, skipped."""
        import importlib.metadata

        if os.environ.get("CONDA_NO_PLUGINS", "").lower() in {"1", "true", "yes"}:
            return 0
        count = 0
        for entry_point in importlib.metadata.entry_points(group=group):
            try:
                plugin = entry_point.load()
            except Exception as err:
                log.warning("Error while loading conda entry point: %s (%s)", entry_point.name, err)
                continue
            if self.register(plugin, name=entry_point.name):
                count += 1
        return count

    def get_hook_results(self, name: str) -> list[Any]:
        hook = getattr(self.hook, f"conda_{name}", None)
        if hook is None:
            raise PluginError(f"Could not find requested `{name}` plugins")
        plugins = [plugin for plugins in hook() for plugin in plugins]
        invalid = [
            p for p in plugins
            if not isinstance(getattr(p, "name", None), str) or p.name != p.name.lower().strip()
        ]  # fmt: skip
        if invalid:
            raise PluginError(f"Invalid plugin names found for `{name}`: {invalid!r}")
        names = [p.name for p in plugins]
        conflicts = sorted({n for n in names if names.count(n) > 1})
        if conflicts:
            raise PluginError(f"Conflicting plugins found for `{name}`: {conflicts}")
        return sorted(plugins, key=lambda plugin: plugin.name)

    def get_post_transaction_actions(
        self,
        transaction_context: dict[str, str] | None = None,
        target_prefix: str | None = None,
        unlink_precs: Iterable[Any] | None = None,
        link_precs: Iterable[Any] | None = None,
        remove_specs: Iterable[Any] | None = None,
        update_specs: Iterable[Any] | None = None,
        neutered_specs: Iterable[Any] | None = None,
    ) -> list[Action]:
        return [
            hook.action(
                transaction_context,
                target_prefix,
                unlink_precs,
                link_precs,
                remove_specs,
                update_specs,
                neutered_specs,
            )
            for hook in self.get_hook_results("post_transaction_actions")
        ]

    def invoke_pre_commands(self, command: str) -> None:
        for hook in self.get_hook_results("pre_commands"):
            if command in hook.run_for:
                hook.action(command)

    def invoke_post_commands(self, command: str) -> None:
        for hook in self.get_hook_results("post_commands"):
            if command in hook.run_for:
                hook.action(command)


def run_final_action_group(actions: list[Action], *, execute_threads: int = 1) -> None:
    """How ``UnlinkLinkTransaction`` runs the ``final`` group after the records exist:
    verify what is not verified, execute (on a thread pool when ``execute_threads`` >
    1), reverse the group and raise ``CondaMultiError`` on a failure, ``cleanup()`` on
    success only."""
    errors = [e for a in actions if not a.verified for e in [a.verify()] if e]
    if errors:
        raise CondaMultiError(errors)
    error = _execute_group(actions, execute_threads)
    if error is not None:
        raise error
    for action in actions:
        action.cleanup()


def _execute_group(actions: list[Action], execute_threads: int) -> CondaMultiError | None:
    def run(group: list[Action]) -> CondaMultiError | None:
        try:
            for action in group:
                action.execute()
        except Exception as exc:
            for action in reversed(group):
                action.reverse()
            return CondaMultiError([exc])
        return None

    if execute_threads > 1:
        with concurrent.futures.ThreadPoolExecutor(execute_threads) as pool:
            results = list(pool.map(run, [actions]))
    else:
        results = [run(actions)]
    return next((r for r in results if r is not None), None)


@dataclass
class UnlinkLinkTransaction:
    """conda's transaction around one prefix: ``prepare`` (the plugin actions are built
    here, before anything is linked), ``verify``, ``execute`` (``link`` does the linking
    and writes the records, then the ``final`` group runs; ``rollback`` is called when
    the group fails)."""

    manager: CondaPluginManager
    target_prefix: str
    unlink_precs: list[Any]
    link_precs: list[Any]
    safety_checks: str = "warn"
    execute_threads: int = 1
    rollback_enabled: bool = True
    actions: list[Action] = field(default_factory=list)

    def prepare(self) -> None:
        if hasattr(self.manager.hook, "conda_post_transaction_actions"):
            self.actions = self.manager.get_post_transaction_actions(
                {}, self.target_prefix, self.unlink_precs, self.link_precs, [], [], []
            )

    def verify(self) -> None:
        if self.safety_checks == "disabled":
            return
        errors = [e for a in self.actions for e in [a.verify()] if e]
        if errors:
            raise CondaMultiError(errors)

    def execute(self, link: Callable[[], None], rollback: Callable[[], None]) -> None:
        link()
        error = _execute_group(self.actions, self.execute_threads)
        if error is not None:
            if self.rollback_enabled:
                rollback()
            raise error
        for action in self.actions:
            action.cleanup()


def run_script(
    prefix: Path, prec: Any, action: str, *, root_prefix: Path | None = None,
    environ: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str] | None:
    """``conda.core.link.run_script``: ``bin/.<name>-<action>.sh`` if the package has
    one. post-link: activated (``conda shell.posix hook``, ``conda activate PREFIX``:
    the prefix's ``bin`` first on PATH, ``CONDA_PREFIX``); pre-unlink: ``bash -x``,
    not activated. conda's variables: ``ROOT_PREFIX``, ``PREFIX``, ``PKG_NAME``,
    ``PKG_VERSION``, ``PKG_BUILDNUM``; a failing script raises."""
    script = prefix / "bin" / f".{prec.name}-{action}.sh"
    if not script.is_file():
        return None
    env = dict(os.environ if environ is None else environ)
    env.update(
        ROOT_PREFIX=str(root_prefix or prefix.parent),
        PREFIX=str(prefix),
        PKG_NAME=prec.name,
        PKG_VERSION=prec.version,
        PKG_BUILDNUM=str(prec.build_number),
    )
    if action == "post-link":
        env["CONDA_PREFIX"] = str(prefix)
        env["CONDA_SHLVL"] = "1"
        env["PATH"] = os.pathsep.join([str(prefix / "bin"), env.get("PATH", "")])
        argv = ["bash", str(script)]
    else:
        argv = ["bash", "-x", str(script)]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise CondaError(f"{action} script failed for {prec.dist_str()}: {result.stderr}")
    return result


def doctor_fix(
    manager: CondaPluginManager, prefix: str, *, dry_run: bool = False, answer: bool = True
) -> dict[str, int]:
    """Plain ``conda doctor --fix``: every check's fixer, each asking ``confirm``."""

    def confirm(question: str) -> None:
        if dry_run:
            raise DryRunExit()
        if not answer:
            raise CondaSystemExit("Exiting.")

    results: dict[str, int] = {}
    for check in manager.get_hook_results("health_checks"):
        fixer = getattr(check, "fixer", None)
        if fixer is None:
            continue
        try:
            results[check.name] = fixer(prefix, Namespace(dry_run=dry_run), confirm)
        except (DryRunExit, CondaSystemExit):
            results[check.name] = -1
    return results


# --- installing the stand-in under conda's module names ---------------------------------
@dataclass
class StandinConda:
    """The stand-in, installed as ``conda`` in ``sys.modules`` for one test."""

    manager: CondaPluginManager
    context: types.SimpleNamespace
    legacy: bool
    modules: dict[str, types.ModuleType] = field(default_factory=dict)


def _module(name: str, **attrs: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    return module


def install(
    monkeypatch: pytest.MonkeyPatch, *, legacy: bool = False, version: str | None = None
) -> StandinConda:
    """Put the stand-in of conda ``version`` (default 26.7; ``legacy``: 25.3) in place of
    conda and load the ``conda`` entry points with it."""
    version = version or ("25.3" if legacy else "26.7")
    at = _version(version)
    legacy = at < (25, 5)
    if at < (25, 7):
        health: type[Any] = TupleCondaHealthCheck
    elif at < (26, 1):
        health = LegacyCondaHealthCheck
    else:
        health = CondaHealthCheck
    type_attrs: dict[str, Any] = {
        "CondaPlugin": CondaPlugin,
        "CondaPreCommand": CondaPreCommand,
        "CondaPostCommand": CondaPostCommand,
        "CondaHealthCheck": health,
    }
    if not legacy:
        type_attrs["CondaPostTransactionAction"] = (
            CondaPostTransactionAction255 if at < (25, 6) else CondaPostTransactionAction
        )
    plugin_types = _module("conda.plugins.types", **type_attrs)
    context = types.SimpleNamespace(target_prefix=None)
    modules = {
        "conda": _module("conda", __version__=f"{version}.0"),
        "conda.plugins": _module("conda.plugins", hookimpl=hookimpl, types=plugin_types),
        "conda.plugins.types": plugin_types,
        "conda.plugins.hookspec": _module("conda.plugins.hookspec", CondaSpecs=CondaSpecs),
        "conda.core": _module("conda.core"),
        "conda.core.path_actions": _module("conda.core.path_actions", Action=Action),
        "conda.base": _module("conda.base"),
        "conda.base.context": _module("conda.base.context", context=context),
        "conda.base.constants": _module("conda.base.constants", OK_MARK=OK_MARK, X_MARK=X_MARK),
        "conda.models": _module("conda.models"),
        "conda.models.records": _module(
            "conda.models.records", PackageRecord=PackageRecord, PrefixRecord=PrefixRecord
        ),
        "conda.models.channel": _module("conda.models.channel", Channel=Channel),
        "conda.exceptions": _module(
            "conda.exceptions", CondaError=CondaError, PluginError=PluginError,
            CondaMultiError=CondaMultiError, CondaSystemExit=CondaSystemExit,
            DryRunExit=DryRunExit,
        ),
    }
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    # What the plugin tells link scripts in conda's environment goes with the test.
    monkeypatch.setenv("VBRIDGE_CONDA_PLUGIN_SYNCS", "")
    # The plugin module is (re)imported by the plugin manager, against this stand-in.
    monkeypatch.delitem(sys.modules, "vbridge.integrations.conda.plugin", raising=False)
    manager = CondaPluginManager(legacy)
    manager.load_entrypoints("conda")
    return StandinConda(manager, context, legacy, modules)


def prefix_records(prefix: Any, names: Iterable[str] | None = None) -> Iterator[PrefixRecord]:
    """``PrefixRecord`` objects for the records in a prefix, as conda's PrefixData
    would hand them to a transaction (unlinked packages are PrefixRecords)."""
    import json
    from pathlib import Path

    wanted = set(names) if names is not None else None
    for path in sorted(Path(prefix, "conda-meta").glob("*.json")):
        data = json.loads(path.read_text())
        if wanted is not None and data["name"] not in wanted:
            continue
        known = {f.name for f in dataclasses.fields(PrefixRecord)}
        fields: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v
            for k, v in data.items()
            if k in known and k not in {"channel", "subdir"}
        }
        yield PrefixRecord(**fields, channel=Channel(str(data.get("channel") or "conda-forge")))


def package_record(record: PrefixRecord) -> PackageRecord:
    """What conda hands a post-transaction action as a linked package: the
    ``PackageRecord`` it solved for (no ``files``, no ``extracted_package_dir``)."""
    return PackageRecord(
        name=record.name, version=record.version, build=record.build,
        build_number=record.build_number, channel=record.channel, subdir=record.subdir,
        depends=record.depends, constrains=record.constrains, url=record.url, md5=record.md5,
    )

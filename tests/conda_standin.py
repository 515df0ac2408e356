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

``legacy=True`` gives conda before 25.5: no post-transaction hook or type.
"""

from __future__ import annotations

import dataclasses
import sys
import types
from abc import ABC, abstractmethod
from argparse import Namespace
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pluggy
import pytest

hookimpl = pluggy.HookimplMarker("conda")
_hookspec = pluggy.HookspecMarker("conda")
OK_MARK = "✅"
X_MARK = "❌"


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
class CondaHealthCheck(CondaPlugin):
    name: str
    action: Callable[[str, bool], None]
    fixer: Callable[[str, Namespace, Callable[[str], None]], int] | None = None
    summary: str | None = None
    fix: str | None = None


@dataclass
class LegacyCondaHealthCheck(CondaPlugin):
    """``CondaHealthCheck`` before conda 26.1 (no fixer)."""

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


# --- conda.models.records ---------------------------------------------------------------
@dataclass
class PackageRecord:
    name: str
    version: str
    build: str
    build_number: int = 0
    channel: str = "conda-forge"
    subdir: str = "linux-64"
    depends: tuple[str, ...] = ()
    constrains: tuple[str, ...] = ()

    @property
    def build_string(self) -> str:
        return self.build

    @property
    def fn(self) -> str:
        return f"{self.name}-{self.version}-{self.build}.conda"

    def dist_str(self) -> str:
        return f"{self.channel}/{self.subdir}::{self.name}-{self.version}-{self.build}"


@dataclass
class PrefixRecord(PackageRecord):
    files: tuple[str, ...] = ()
    extracted_package_dir: str = ""


# --- conda.plugins.hookspec -------------------------------------------------------------
class CondaSpecs:
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
        return self.load_setuptools_entrypoints(group)

    def get_hook_results(self, name: str) -> list[Any]:
        hook = getattr(self.hook, f"conda_{name}")
        return [plugin for plugins in hook() for plugin in plugins]

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

    def invoke_post_commands(self, command: str) -> None:
        for hook in self.get_hook_results("post_commands"):
            if command in hook.run_for:
                hook.action(command)


def run_final_action_group(actions: list[Action]) -> None:
    """How ``UnlinkLinkTransaction`` runs the ``final`` group after the records exist."""
    errors = [e for a in actions if not a.verified for e in [a.verify()] if e]
    if errors:
        raise errors[0]
    try:
        for action in actions:
            action.execute()
    except Exception:
        for action in actions:
            action.reverse()
        raise  # conda rolls the whole transaction back
    finally:
        for action in actions:
            action.cleanup()


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


def install(monkeypatch: pytest.MonkeyPatch, *, legacy: bool = False) -> StandinConda:
    """Put the stand-in in place of conda and load the ``conda`` entry points with it."""
    type_attrs: dict[str, Any] = {
        "CondaPlugin": CondaPlugin,
        "CondaPostCommand": CondaPostCommand,
        "CondaHealthCheck": LegacyCondaHealthCheck if legacy else CondaHealthCheck,
    }
    if not legacy:
        type_attrs["CondaPostTransactionAction"] = CondaPostTransactionAction
    plugin_types = _module("conda.plugins.types", **type_attrs)
    context = types.SimpleNamespace(target_prefix=None)
    modules = {
        "conda": _module("conda", __version__="25.3.0" if legacy else "26.5.0"),
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
    }
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
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
        yield PrefixRecord(
            **{
                k: tuple(v) if isinstance(v, list) else v
                for k, v in data.items()
                if k in known and k not in {"channel", "subdir"}
            }
        )

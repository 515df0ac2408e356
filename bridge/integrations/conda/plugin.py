"""conda plugin: every conda transaction keeps vbridge's metadata current.

Registered under the entry point group ``conda``
(``vbridge = "vbridge.integrations.conda.plugin"``);
conda's plugin manager loads this module and calls its hooks:

- ``conda_post_transaction_actions`` (conda 25.5+): an action in the transaction's
  ``final`` group, after every record is written, with conda's ``link_precs`` and
  ``unlink_precs``: the linked distributions are annotated and vbridge's files are
  removed from the unlinked ones, in that prefix only
  (:func:`vbridge.integrations.conda.transaction.sync_transaction`);
- ``conda_post_commands`` (older conda only): after ``install``, ``create``,
  ``update``, ``remove``, ``env_create``, ``env_update``, the change is read back from
  the last block of ``conda-meta/history``;
- ``conda_health_checks``: ``conda doctor`` shows mixed builds, pip shadowing conda and
  stale metadata; ``conda doctor --fix vbridge`` rewrites the stale metadata.

Nothing here can fail a transaction: an error becomes one line on stderr and an entry
in the log (``.vbridge/conda-plugin.log`` in the prefix, beside vbridge's ledger, or
the user's ``$XDG_STATE_HOME/vbridge/`` while vbridge has written nothing in the prefix
or cannot write there; it goes with ``.vbridge/``). ``VBRIDGE_CONDA_PLUGIN=0`` turns the
sync off.

The module imports without conda (conda is imported only inside the hooks, which
conda alone calls); ``hookimpl`` is conda's marker when conda is installed, pluggy's
``HookimplMarker("conda")`` (what conda's marker is) when only pluggy is, else a no-op.
"""

from __future__ import annotations

import contextlib
import functools
import os
import stat
import sys
import time
import traceback
from argparse import Namespace
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from vbridge.integrations.conda.transaction import TransactionChange

__all__ = [
    "HEALTH_CHECK_NAME",
    "PLUGIN_NAME",
    "RUN_FOR",
    "conda_health_checks",
    "conda_post_commands",
    "conda_post_transaction_actions",
    "conda_pre_commands",
    "health_check",
    "health_fix",
    "post_transaction_action_class",
    "sync_after_command",
]

PLUGIN_NAME = "vbridge-sync"
HEALTH_CHECK_NAME = "vbridge"
# conda_argparse.do_call names commands after their module, without ``main_``.
RUN_FOR = frozenset({"install", "create", "update", "remove", "env_create", "env_update"})
LOG_NAME = "conda-plugin.log"
_LOG_LIMIT = 1 << 20  # start the log over past 1 MiB

F = TypeVar("F", bound=Callable[..., Any])


def _hookimpl_marker() -> Callable[[F], F]:
    try:
        from conda.plugins import hookimpl

        return hookimpl  # type: ignore[no-any-return]
    except ImportError:
        pass
    try:
        import pluggy

        return pluggy.HookimplMarker("conda")
    except ImportError:
        return lambda func: func


hookimpl = _hookimpl_marker()


def _enabled() -> bool:
    return os.environ.get("VBRIDGE_CONDA_PLUGIN", "1").lower() not in {"0", "false", "no", "off"}


def _user_log_dir() -> Path:
    """The user's state directory for vbridge (XDG_STATE_HOME, else ~/.local/state)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return Path(base) / "vbridge"


def _log_path(prefix: Path) -> Path:
    """The prefix's state directory while vbridge has written something there (the
    log goes with it), else the user's (a log must not keep ``.vbridge/`` alive)."""
    from vbridge.destinations.ledger import LedgerStore
    from vbridge.errors import VbridgeError

    store = LedgerStore.of(prefix)
    with contextlib.suppress(VbridgeError):
        store.check()  # a state directory that is a link out of the prefix is not used
        if store.path.is_file() and os.access(store.directory, os.W_OK):
            return store.directory / LOG_NAME
    directory = _user_log_dir()
    directory.mkdir(parents=True, exist_ok=True)
    return directory / LOG_NAME


def forget_log(prefix: Path) -> None:
    """Once nothing of vbridge's is left in the prefix, its log and directory go too."""
    from vbridge.destinations.ledger import LedgerStore

    store = LedgerStore.of(prefix)
    if store.path.exists():
        return
    with contextlib.suppress(OSError):
        (store.directory / LOG_NAME).unlink()
        store.directory.rmdir()


def drop_copied_state(prefix: Path) -> bool:
    """``conda create --clone`` and ``conda rename`` copy every file no package owns,
    ``.vbridge/`` too (ledger, backups, lock, log), before the new prefix has a single
    record: such a state directory describes another prefix. Removed (the transaction's
    sync annotates the clone afresh, adopting the files vbridge's SBOM marks), and the
    copied ``pip.conf`` given back its own ``[install] constraint``; True if it was
    there."""
    import shutil

    from vbridge.destinations.ledger import state_dir

    state = state_dir(prefix)
    meta = prefix / "conda-meta"
    has_records = meta.is_dir() and any(meta.glob("*.json"))
    if has_records or not state.is_dir() or state.is_symlink():
        return False
    from vbridge.destinations.pip_constraints import forget_copied_pip_conf

    forget_copied_pip_conf(prefix)  # it names a constraints file in the copied state
    shutil.rmtree(state, ignore_errors=True)
    return True


def _log(prefix: Path, text: str) -> Path | None:
    """Append a timestamped entry; the log itself must never raise."""
    try:
        path = _log_path(prefix)
        # Never through a link (a log that points elsewhere is not truncated there), and
        # only a regular file: O_NOFOLLOW, O_NONBLOCK, then fstat.
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK
        fd = os.open(path, flags | os.O_CLOEXEC, 0o644)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return None
            if st.st_size > _LOG_LIMIT:
                os.ftruncate(fd, 0)
            fh.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text.rstrip()}\n")
        return path
    except Exception:
        return None


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_guarded(prefix: Path, what: str, work: Callable[[], str | None]) -> bool:
    """Run ``work``; never raise. Its summary (if any) and any error go to the log;
    an error is also one line on stderr. Returns whether it succeeded.

    Empty summaries (nothing changed) are not logged.
    """
    try:
        summary = work()
    except Exception as exc:
        from vbridge.errors import VbridgeError

        detail = str(exc) if isinstance(exc, VbridgeError) else f"{type(exc).__name__}: {exc}"
        detail = " ".join(detail.split())  # one line in conda's output, whatever exc says
        log = _log(prefix, f"{what} failed: {detail}\n{traceback.format_exc()}")
        where = f" (details in {log})" if log else ""
        _say(f"vbridge: could not {what} in {prefix}: {detail}{where}")
        return False
    if summary:
        _log(prefix, summary)
    return True


def _sync(
    prefix: Path, link_precs: Iterable[object] | None, unlink_precs: Iterable[object] | None
) -> str:
    from vbridge.integrations.conda.transaction import TransactionChange

    return _sync_change(prefix, TransactionChange.of(link_precs, unlink_precs))


def _sync_change(prefix: Path, change: TransactionChange) -> str:
    from vbridge.integrations.conda.transaction import sync_transaction

    outcome = sync_transaction(prefix, change)
    for problem in outcome.problems:
        _log(prefix, f"problem: {problem}")
    if not (outcome.annotated or outcome.cleaned or outcome.variants_toml):
        return ""
    return "\n".join(filter(None, [outcome.summary(), outcome.variants_toml]))


@functools.cache
def post_transaction_action_class() -> type[Any]:
    """The ``Action`` subclass conda instantiates for each transaction.

    Built on first use from ``conda.core.path_actions.Action`` (conda is only
    importable when conda itself calls the hooks).
    """
    from conda.core.path_actions import Action

    class VbridgeSyncAction(Action):  # type: ignore[misc]
        """Annotate what the transaction linked, clean what it unlinked."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            # conda builds the action in _prepare, before anything is linked: a clone's
            # copied state is dropped now, and the link scripts that run next learn
            # that this plugin annotates after them.
            super().__init__(*args, **kwargs)
            if _enabled() and self.target_prefix:
                from vbridge.integrations.conda.handoff import PLUGIN_SYNCS_VARIABLE

                os.environ[PLUGIN_SYNCS_VARIABLE] = "1"
                with contextlib.suppress(OSError):
                    drop_copied_state(Path(self.target_prefix))

        def verify(self) -> Exception | None:
            self._verified = True
            return None

        def execute(self) -> None:
            if not _enabled() or not self.target_prefix:
                return
            prefix = Path(self.target_prefix)
            link_precs = list(self.link_precs or ())
            unlink_precs = list(self.unlink_precs or ())
            run_guarded(
                prefix,
                "update variant metadata",
                lambda: _sync(prefix, link_precs, unlink_precs),
            )
            forget_log(prefix)

        def reverse(self) -> None:
            """Nothing to undo: ``execute`` never raises."""

        def cleanup(self) -> None:
            """Nothing to clean up."""

    return VbridgeSyncAction


@hookimpl
def conda_post_transaction_actions() -> Iterator[Any]:
    """conda 25.5+: run after every transaction, with what it linked and unlinked."""
    from conda.plugins.types import CondaPostTransactionAction

    yield CondaPostTransactionAction(name=PLUGIN_NAME, action=post_transaction_action_class())


def sync_after_command(command: str) -> None:
    """Older conda: after a command that changes an environment, replay its change.

    The change is the last block of ``conda-meta/history`` (conda writes one per
    transaction); a command that changed nothing replays the previous block, which
    rewrites the same files to the same bytes.
    """
    if not _enabled():
        return
    from conda.base.context import context

    prefix = Path(context.target_prefix)

    def work() -> str:
        from vbridge.integrations.conda.transaction import last_history_change

        change = last_history_change(prefix)
        if change is None:
            return ""
        return _sync_change(prefix, change)

    run_guarded(prefix, "update variant metadata", work)
    forget_log(prefix)


def announce_sync(command: str) -> None:
    """Older conda, before the command: tell the link scripts it runs that this plugin
    annotates afterwards (they then leave out "run vbridge annotate")."""
    if _enabled():
        from vbridge.integrations.conda.handoff import PLUGIN_SYNCS_VARIABLE

        os.environ[PLUGIN_SYNCS_VARIABLE] = "1"


@hookimpl
def conda_pre_commands() -> Iterator[Any]:
    """Older conda only: the post-transaction action says it itself on conda 25.5+."""
    from conda.plugins import types

    if hasattr(types, "CondaPostTransactionAction") or not hasattr(types, "CondaPreCommand"):
        return
    yield types.CondaPreCommand(name=PLUGIN_NAME, action=announce_sync, run_for=set(RUN_FOR))


@hookimpl
def conda_post_commands() -> Iterator[Any]:
    """Older conda only: the post-transaction hook does the work on conda 25.5+."""
    from conda.plugins import types

    if hasattr(types, "CondaPostTransactionAction"):
        return
    yield types.CondaPostCommand(name=PLUGIN_NAME, action=sync_after_command, run_for=set(RUN_FOR))


def _marks() -> tuple[str, str]:
    with contextlib.suppress(ImportError):
        from conda.base.constants import OK_MARK, X_MARK

        return str(OK_MARK), str(X_MARK)
    return "✅", "❌"


def health_check(prefix: str, verbose: bool) -> None:
    """``conda doctor``: vbridge's findings and stale metadata for the environment."""
    ok, bad = _marks()

    def work() -> None:
        from vbridge.decide.assess import assess_environment
        from vbridge.integrations.conda.health import environment_health
        from vbridge.scan import scan_environment

        report = environment_health(assess_environment(scan_environment(Path(prefix))))
        if report.healthy:
            print(f"{ok} vbridge: no mixed builds, no pip shadowing, variant metadata current.\n")
            return
        for finding in report.findings:
            print(f"{bad} vbridge {finding.severity}: {finding.message}")
        if report.stale:
            print(
                f"{bad} vbridge: variant metadata is stale for {len(report.stale)} "
                f"distribution(s); `conda doctor --fix {HEALTH_CHECK_NAME}` rewrites it."
            )
            for item in report.stale if verbose else report.stale[:5]:
                print(f"  {item.name}: {item.reason}")
            if not verbose and len(report.stale) > 5:
                print(f"  ... and {len(report.stale) - 5} more (--verbose lists all)")
        print()

    run_guarded(Path(prefix), "check the environment", lambda: work())


def health_fix(prefix: str, args: Namespace, confirm: Callable[[str], None]) -> int:
    """``conda doctor --fix vbridge``: rewrite the stale metadata."""
    from vbridge.decide.assess import assess_environment
    from vbridge.destinations.annotate import annotate_environment
    from vbridge.integrations.conda.health import environment_health
    from vbridge.scan import scan_environment

    env = assess_environment(scan_environment(Path(prefix)))
    report = environment_health(env)
    if not report.stale:
        print("vbridge: variant metadata is current; nothing to fix.")
        return 0
    print(f"vbridge: variant metadata is stale for {len(report.stale)} distribution(s):")
    for item in report.stale:
        print(f"  {item.name}: {item.reason}")
    confirm("Rewrite their variant metadata?")
    annotate_environment(env, only=[item.dist_info for item in report.stale])
    return 0


@hookimpl
def conda_health_checks() -> Iterator[Any]:
    """``conda doctor``: one check, with a fixer."""
    from conda.plugins.types import CondaHealthCheck

    try:
        check = CondaHealthCheck(
            name=HEALTH_CHECK_NAME,
            action=health_check,
            fixer=health_fix,
            summary="Mixed BLAS/MPI/OpenMP builds, pip shadowing conda, stale variant metadata",
            fix="Rewrite vbridge's variant metadata from the conda records",
        )
    except TypeError:  # conda before 26.1: no fixer, summary or fix fields
        check = CondaHealthCheck(name=HEALTH_CHECK_NAME, action=health_check)
    yield check

"""The conda plugin's hooks, through a STAND-IN of conda's plugin interface
(tests/conda_standin.py: conda itself cannot be installed here), driven by real
transactions that py-rattler performs on real prefixes.

The stand-in loads vbridge through its real ``conda`` entry point (pluggy's entry-point
loader, as conda's plugin manager does), builds the post-transaction action with conda's
constructor arguments and runs it the way conda runs the transaction's ``final`` group.
``link_precs``/``unlink_precs`` are the records rattler actually linked and unlinked.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import conda_standin
import condaenv
import pytest
from vbridge.destinations.variant_json import read_variant_json

SITE = condaenv.SITE


@pytest.fixture(scope="module")
def blas_channel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The conda-forge-shaped stack with both MKL and OpenBLAS libblas builds."""
    openblas_libs = [
        p
        for p in condaenv.science_packages(blas="openblas")
        if p.name in {"libblas", "libcblas", "liblapack"}
    ]
    root = tmp_path_factory.mktemp("channels")
    packages = [*condaenv.science_packages("mkl"), *openblas_libs]
    return condaenv.build_channel(root / "both", packages)


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> conda_standin.StandinConda:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # the user's log
    return conda_standin.install(monkeypatch)


@pytest.fixture
def legacy_standin(monkeypatch: pytest.MonkeyPatch) -> conda_standin.StandinConda:
    return conda_standin.install(monkeypatch, legacy=True)


class Transaction:
    """A real rattler transaction on one prefix, seen as conda's link/unlink records."""

    def __init__(self, channel: Path, prefix: Path, cache: Path) -> None:
        self.channel, self.prefix, self.cache = channel, prefix, cache

    def run(self, specs: list[str]) -> tuple[list[Any], list[Any]]:
        before = (
            {r.dist_str(): r for r in conda_standin.prefix_records(self.prefix)}
            if (self.prefix / "conda-meta").is_dir()
            else {}
        )
        condaenv.install(self.channel, specs, self.prefix, self.cache)
        after = {r.dist_str(): r for r in conda_standin.prefix_records(self.prefix)}
        # As conda hands them over: linked packages as the PackageRecords it solved for
        # (no files), unlinked ones as the prefix's PrefixRecords.
        linked: list[object] = [
            conda_standin.package_record(after[k]) for k in sorted(set(after) - set(before))
        ]
        unlinked: list[object] = [before[k] for k in sorted(set(before) - set(after))]
        return linked, unlinked


@pytest.fixture
def transaction(blas_channel: Path, tmp_path: Path, conda_cache: Path) -> Transaction:
    return Transaction(blas_channel, tmp_path / "env", conda_cache)


def run_hook(
    standin: conda_standin.StandinConda, prefix: Path, linked: list[object], unlinked: list[object]
) -> None:
    actions = standin.manager.get_post_transaction_actions(
        {}, str(prefix), unlinked, linked, [], [], []
    )
    conda_standin.run_final_action_group(actions)


def variant(prefix: Path, dist: str) -> set[str] | None:
    path = prefix / SITE / dist / "variant.json"
    if not path.exists():
        return None
    return {p.to_str() for p in read_variant_json(path.read_text()).properties}


def test_hooks_are_registered_through_the_conda_entry_point(
    standin: conda_standin.StandinConda,
) -> None:
    actions = standin.manager.get_hook_results("post_transaction_actions")
    assert [a.name for a in actions] == ["vbridge-sync"]
    assert issubclass(actions[0].action, conda_standin.Action)
    # conda 25.5+: the transaction hook does the work, no post-command as well.
    assert standin.manager.get_hook_results("post_commands") == []
    (check,) = standin.manager.get_hook_results("health_checks")
    assert check.name == "vbridge" and check.fixer is not None and check.summary


def test_older_conda_gets_a_post_command_instead(
    legacy_standin: conda_standin.StandinConda,
) -> None:
    (command,) = legacy_standin.manager.get_hook_results("post_commands")
    assert command.name == "vbridge-sync"
    assert command.run_for == {"install", "create", "update", "remove", "env_create", "env_update"}
    (check,) = legacy_standin.manager.get_hook_results("health_checks")
    assert check.name == "vbridge"  # built without the fixer fields older conda lacks
    # Before the command, the plugin tells the link scripts conda runs that it will
    # annotate afterwards (conda 25.5+: the post-transaction action does).
    (pre,) = legacy_standin.manager.get_hook_results("pre_commands")
    assert os.environ.get("VBRIDGE_CONDA_PLUGIN_SYNCS") != "1"
    legacy_standin.manager.invoke_pre_commands("install")
    assert os.environ["VBRIDGE_CONDA_PLUGIN_SYNCS"] == "1" and pre.name == "vbridge-sync"


def test_each_transaction_updates_only_what_it_touched(
    standin: conda_standin.StandinConda, transaction: Transaction
) -> None:
    prefix = transaction.prefix
    linked, unlinked = transaction.run(["numpy", "scipy", "h5py", "libblas=*=*mkl"])
    run_hook(standin, prefix, linked, unlinked)
    assert "blas_lapack :: provider :: mkl" in (variant(prefix, "numpy-1.26.4.dist-info") or ())
    assert "mpi :: implementation :: openmpi" in (variant(prefix, "h5py-3.11.0.dist-info") or ())
    # Registered with conda: the record of numpy lists the files vbridge added.
    numpy_record = json.loads(
        (prefix / "conda-meta" / "numpy-1.26.4-py311h64a7726_0.json").read_text()
    )
    assert f"{SITE}/numpy-1.26.4.dist-info/variant.json" in numpy_record["files"]

    # h5py's metadata is removed by hand: a rescan of the whole prefix would restore it,
    # the incremental sync of a BLAS switch must not touch h5py at all.
    (prefix / SITE / "h5py-3.11.0.dist-info" / "variant.json").unlink()
    linked, unlinked = transaction.run(["numpy", "scipy", "h5py", "libblas=*=*openblas"])
    assert {r.name for r in linked} >= {"libblas", "libopenblas"}
    assert "numpy" not in {r.name for r in linked}  # rattler did not relink numpy
    run_hook(standin, prefix, linked, unlinked)
    for dist in ("numpy-1.26.4.dist-info", "scipy-1.11.4.dist-info"):
        props = variant(prefix, dist) or set()
        assert "blas_lapack :: provider :: openblas" in props
        assert "blas_lapack :: provider :: mkl" not in props
    assert variant(prefix, "h5py-3.11.0.dist-info") is None


def test_uninstalled_packages_leave_nothing_behind(
    standin: conda_standin.StandinConda, transaction: Transaction
) -> None:
    prefix = transaction.prefix
    linked, unlinked = transaction.run(["numpy", "h5py", "six"])
    run_hook(standin, prefix, linked, unlinked)
    ledger = json.loads((prefix / ".vbridge" / "ledger.json").read_text())
    assert any("numpy-1.26.4.dist-info" in key for key in ledger["distributions"])

    linked, unlinked = transaction.run(["six"])
    assert {"numpy", "h5py"} <= {r.name for r in unlinked}
    run_hook(standin, prefix, linked, unlinked)
    site = prefix / SITE
    assert not (site / "numpy-1.26.4.dist-info").exists()
    assert not (site / "h5py-3.11.0.dist-info").exists()
    # Nothing annotated is left, so vbridge's state directory is gone with it, its log
    # too (the log of what the sync did is the user's now).
    assert not (prefix / ".vbridge").exists()


def test_a_clone_drops_the_copied_state_and_is_annotated_afresh(
    standin: conda_standin.StandinConda, transaction: Transaction, tmp_path: Path
) -> None:
    prefix = transaction.prefix
    linked, unlinked = transaction.run(["numpy", "libblas=*=*mkl"])
    run_hook(standin, prefix, linked, unlinked)
    assert (prefix / ".vbridge" / "conda-plugin.log").exists()
    # `conda create --clone` / `conda rename`: every file no record lists is copied
    # into the new prefix before its transaction (.vbridge/ among them).
    clone = tmp_path / "clone"
    shutil.copytree(prefix / ".vbridge", clone / ".vbridge")
    clone_tx = Transaction(transaction.channel, clone, transaction.cache)
    # conda builds the post-transaction action in _prepare, before linking anything.
    actions = standin.manager.get_post_transaction_actions({}, str(clone), [], [], [], [], [])
    assert not (clone / ".vbridge").exists()
    linked, unlinked = clone_tx.run(["numpy", "libblas=*=*mkl"])
    for action in actions:
        action.link_precs = linked
    conda_standin.run_final_action_group(actions)
    assert "blas_lapack :: provider :: mkl" in (variant(clone, "numpy-1.26.4.dist-info") or ())
    ledger = json.loads((clone / ".vbridge" / "ledger.json").read_text())
    assert all(not key.startswith("/") for key in ledger["distributions"])
    # The source prefix keeps its own state.
    assert (prefix / ".vbridge" / "ledger.json").exists()


def test_a_failure_is_one_line_and_never_fails_the_transaction(
    standin: conda_standin.StandinConda,
    transaction: Transaction,
    capsys: pytest.CaptureFixture[str],
) -> None:
    prefix = transaction.prefix
    linked, unlinked = transaction.run(["numpy"])
    state = prefix / ".vbridge"
    state.mkdir()
    (state / "ledger.json").write_text("{not json")  # damaged state: annotate refuses
    run_hook(standin, prefix, linked, unlinked)  # must not raise: conda would roll back
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"vbridge: could not update variant metadata in {prefix}: ")
    assert "ledger" in err[0] and "conda-plugin.log" in err[0]
    log = (state / "conda-plugin.log").read_text()
    assert "Traceback" in log and "RecordError" in log


def test_disabled_by_environment_variable(
    standin: conda_standin.StandinConda,
    transaction: Transaction,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VBRIDGE_CONDA_PLUGIN", "0")
    linked, unlinked = transaction.run(["numpy"])
    run_hook(standin, transaction.prefix, linked, unlinked)
    assert variant(transaction.prefix, "numpy-1.26.4.dist-info") is None


def append_history_block(prefix: Path, linked: list[object], unlinked: list[object]) -> None:
    """STAND-IN for conda's History writer (conda/history.py): rattler writes an empty
    history, conda appends one block per transaction in this format."""
    lines = ["==> 2026-08-21 12:00:00 <==", "# cmd: conda install numpy", "# conda version: 25.3.0"]
    lines += [f"-{r.dist_str()}" for r in unlinked]  # type: ignore[attr-defined]
    lines += [f"+{r.dist_str()}" for r in linked]  # type: ignore[attr-defined]
    with open(prefix / "conda-meta" / "history", "a") as fh:
        fh.write("\n".join(lines) + "\n# update specs: ['numpy']\n")


def test_older_conda_replays_the_last_history_block(
    legacy_standin: conda_standin.StandinConda, transaction: Transaction
) -> None:
    prefix = transaction.prefix
    linked, unlinked = transaction.run(["numpy", "libblas=*=*mkl"])
    append_history_block(prefix, linked, unlinked)
    legacy_standin.context.target_prefix = str(prefix)
    legacy_standin.manager.invoke_post_commands("install")
    assert "blas_lapack :: provider :: mkl" in (variant(prefix, "numpy-1.26.4.dist-info") or ())

    linked, unlinked = transaction.run(["numpy", "libblas=*=*openblas"])
    append_history_block(prefix, linked, unlinked)
    legacy_standin.manager.invoke_post_commands("install")
    assert "blas_lapack :: provider :: openblas" in (
        variant(prefix, "numpy-1.26.4.dist-info") or ()
    )
    # Commands that do not change an environment are not hooked.
    legacy_standin.manager.invoke_post_commands("list")


@pytest.fixture(scope="module")
def six_wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("wheels")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(out), "six==1.17.0"],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip(f"the package index is not reachable: {result.stderr.strip()[-200:]}")
    yield next(out.glob("six-1.17.0-*.whl"))


@pytest.mark.network
def test_conda_doctor_reports_and_fixes(
    standin: conda_standin.StandinConda,
    transaction: Transaction,
    six_wheel: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prefix = transaction.prefix
    (check,) = standin.manager.get_hook_results("health_checks")
    linked, unlinked = transaction.run(["numpy", "six", "libblas=*=*mkl"])
    run_hook(standin, prefix, linked, unlinked)
    capsys.readouterr()
    check.action(str(prefix), False)
    assert capsys.readouterr().out.startswith(f"{conda_standin.OK_MARK} vbridge:")

    # pip installs six beside conda's; a BLAS switch happens with the plugin off.
    # --ignore-installed: the test venv's own six must not count as installed there.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--ignore-installed",
            "--no-deps",
            "--prefix",
            str(prefix),
            str(six_wheel),
        ],
        check=True,
        env={**os.environ, "PIP_NO_INDEX": "1"},
        capture_output=True,
        text=True,
    )
    monkeypatch.setenv("VBRIDGE_CONDA_PLUGIN", "0")
    linked, unlinked = transaction.run(["numpy", "six", "libblas=*=*openblas"])
    run_hook(standin, prefix, linked, unlinked)
    monkeypatch.delenv("VBRIDGE_CONDA_PLUGIN")
    check.action(str(prefix), True)
    out = capsys.readouterr().out
    # pip's six shadows conda's: Python imports pip's copy.
    assert f"{conda_standin.X_MARK} vbridge warn: Python imports six 1.17.0 (pip" in out
    assert "stale for 1 distribution(s)" in out
    assert "numpy: variant metadata says blas_lapack :: provider :: mkl" in out

    confirmed: list[str] = []
    assert check.fixer(str(prefix), None, confirmed.append) == 0
    assert confirmed and "Rewrite" in confirmed[0]
    assert "blas_lapack :: provider :: openblas" in (
        variant(prefix, "numpy-1.26.4.dist-info") or ()
    )
    capsys.readouterr()
    check.action(str(prefix), False)
    assert "stale" not in capsys.readouterr().out


def test_plugin_module_imports_without_conda() -> None:
    code = (
        "import sys; import vbridge.integrations.conda.plugin as p; "
        "assert 'conda' not in sys.modules; print(p.conda_health_checks.__name__)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# --- the stand-in per conda version, as real conda behaves -------------------------------


@pytest.mark.parametrize("version", conda_standin.CONDA_VERSIONS)
def test_the_plugin_registers_with_every_conda_version(
    version: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    standin = conda_standin.install(monkeypatch, version=version)
    transactions = standin.manager.get_hook_results("post_transaction_actions") if (
        version != "25.3"
    ) else []
    commands = standin.manager.get_hook_results("post_commands")
    pre = standin.manager.get_hook_results("pre_commands")
    assert len(pre) == (1 if version == "25.3" else 0)
    # One way to sync per version: the transaction hook from 25.5, else a post-command.
    assert [p.name for p in transactions + commands] == ["vbridge-sync"]
    (check,) = standin.manager.get_hook_results("health_checks")
    assert check.name == "vbridge"
    has_fixer = getattr(check, "fixer", None) is not None
    assert has_fixer == (version >= "26.1")


def test_conda_no_plugins_loads_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONDA_NO_PLUGINS", "true")
    standin = conda_standin.install(monkeypatch)
    assert standin.manager.get_hook_results("post_transaction_actions") == []


@pytest.mark.parametrize("safety_checks", ["warn", "disabled"])
def test_a_whole_transaction_on_threads(
    standin: conda_standin.StandinConda, transaction: Transaction, safety_checks: str
) -> None:
    """The action is built before anything is linked (unverified when safety checks
    are off) and the final group runs on conda's thread pool."""
    prefix = transaction.prefix
    run: list[tuple[list[object], list[object]]] = []
    tx = conda_standin.UnlinkLinkTransaction(
        standin.manager, str(prefix), [], [], safety_checks=safety_checks, execute_threads=4
    )
    tx.prepare()
    tx.verify()

    def link() -> None:
        linked, unlinked = transaction.run(["numpy", "libblas=*=*mkl"])
        run.append((linked, unlinked))
        for action in tx.actions:  # conda passed the solved records to _prepare
            action.link_precs, action.unlink_precs = linked, unlinked

    tx.execute(link, rollback=lambda: None)
    assert "blas_lapack :: provider :: mkl" in (variant(prefix, "numpy-1.26.4.dist-info") or ())


def test_doctor_fix_dry_run_changes_nothing(
    standin: conda_standin.StandinConda, transaction: Transaction, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = transaction.prefix
    linked, unlinked = transaction.run(["numpy", "libblas=*=*mkl"])
    run_hook(standin, prefix, linked, unlinked)
    monkeypatch.setenv("VBRIDGE_CONDA_PLUGIN", "0")
    transaction.run(["numpy", "libblas=*=*openblas"])  # stale now
    before = (prefix / SITE / "numpy-1.26.4.dist-info" / "variant.json").read_bytes()
    assert conda_standin.doctor_fix(standin.manager, str(prefix), dry_run=True) == {"vbridge": -1}
    assert conda_standin.doctor_fix(standin.manager, str(prefix), answer=False) == {"vbridge": -1}
    assert (prefix / SITE / "numpy-1.26.4.dist-info" / "variant.json").read_bytes() == before
    assert conda_standin.doctor_fix(standin.manager, str(prefix)) == {"vbridge": 0}
    assert "blas_lapack :: provider :: openblas" in (
        variant(prefix, "numpy-1.26.4.dist-info") or ()
    )

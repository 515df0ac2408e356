"""Path attacks: nothing outside the environment is written, deleted or created.

Each case plants a link or a ledger entry that leads out of a real (rattler-built) conda
prefix, runs the command a user would, and compares checksums of the whole prefix and
of a sentinel directory outside it before and after: one line on stderr, exit 2, and
nothing changed on either side.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from debian_root import lay_out_fixture_root
from prefixstate import changed, snapshot

VBRIDGE = str(Path(sys.executable).with_name("vbridge"))
NUMPY = "lib/python3.11/site-packages/numpy-1.26.4.dist-info"


def vbridge(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VBRIDGE, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def pristine(
    tmp_path_factory: pytest.TempPathFactory, mkl_channel: Path, conda_cache: Path
) -> Path:
    import condaenv

    base = tmp_path_factory.mktemp("paths")
    return condaenv.install(mkl_channel, ["numpy", "libblas=*=*mkl"], base / "env", conda_cache)


@pytest.fixture
def prefix(pristine: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "env"
    shutil.copytree(pristine, copy, symlinks=True)
    return copy


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the prefix, with content an escape would damage."""
    target = tmp_path / "outside"
    (target / "sboms").mkdir(parents=True)
    (target / "keep.txt").write_text("keep\n")
    (target / ".keep.txt.vbridge-tmp").write_text("looks like vbridge's temp file\n")
    return target


def _one_line_exit_2(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("vbridge: ")
    assert "Traceback" not in result.stderr
    return result.stderr


def _annotated(prefix: Path) -> dict[str, object]:
    assert vbridge("annotate", str(prefix)).returncode == 0
    ledger = prefix / ".vbridge" / "ledger.json"
    return dict(json.loads(ledger.read_text()))


def _edit_ledger(prefix: Path, change: object) -> None:
    ledger = prefix / ".vbridge" / "ledger.json"
    document = json.loads(ledger.read_text())
    change(document)  # type: ignore[operator]
    ledger.write_text(json.dumps(document, indent=2))


def test_a_state_directory_linked_elsewhere_is_refused(prefix: Path, outside: Path) -> None:
    (prefix / ".vbridge").symlink_to(outside)
    before, elsewhere = snapshot(prefix), snapshot(outside)
    for command in ("annotate", "clean"):
        line = _one_line_exit_2(vbridge(command, str(prefix)))
        assert "state directory is a symlink" in line
    assert snapshot(prefix) == before and snapshot(outside) == elsewhere


def test_a_dangling_lock_link_gets_no_target(prefix: Path, tmp_path: Path) -> None:
    (prefix / ".vbridge").mkdir()
    target = tmp_path / "created-through-the-link"
    (prefix / ".vbridge" / "lock").symlink_to(target)
    before = snapshot(prefix)
    _one_line_exit_2(vbridge("annotate", str(prefix)))
    assert not target.exists() and snapshot(prefix) == before


def test_a_ledger_link_out_is_not_read_or_written(prefix: Path, outside: Path) -> None:
    _annotated(prefix)
    ledger = prefix / ".vbridge" / "ledger.json"
    shutil.move(ledger, outside / "ledger.json")
    ledger.symlink_to(outside / "ledger.json")
    before, elsewhere = snapshot(prefix), snapshot(outside)
    for command in ("annotate", "clean"):
        _one_line_exit_2(vbridge(command, str(prefix)))
    assert snapshot(prefix) == before and snapshot(outside) == elsewhere


@pytest.mark.parametrize(
    "entry",
    ["dirs-absolute", "dirs-dotdot", "dirs-through-link", "files-outside", "edits-outside"],
)
def test_ledger_paths_out_of_the_prefix(prefix: Path, outside: Path, entry: str) -> None:
    _annotated(prefix)
    (prefix / "lib" / "escape").symlink_to(outside)
    rel_outside = os.path.relpath(outside, prefix)

    def plant(document: dict[str, object]) -> None:
        dists = document["distributions"]
        assert isinstance(dists, dict)
        numpy = dists[NUMPY]
        if entry == "dirs-absolute":
            numpy["dirs"].append(str(outside / "sboms"))
        elif entry == "dirs-dotdot":
            numpy["dirs"].append(rel_outside)
        elif entry == "dirs-through-link":
            numpy["dirs"].append("lib/escape/sboms")
        elif entry == "files-outside":
            numpy["files"][f"{rel_outside}/keep.txt"] = ["0" * 64]
        else:
            numpy["edits"].append(f"{rel_outside}/keep.txt")

    _edit_ledger(prefix, plant)
    before, elsewhere = snapshot(prefix), snapshot(outside)
    line = _one_line_exit_2(vbridge("clean", str(prefix)))
    assert ".vbridge/ledger.json" in line or "outside the environment" in line
    assert snapshot(outside) == elsewhere, "something outside the prefix changed"
    assert changed(before, snapshot(prefix)) == [], "clean did something before refusing"


def test_a_fifo_as_ledger_is_one_line_not_a_hang(prefix: Path) -> None:
    (prefix / ".vbridge").mkdir()
    os.mkfifo(prefix / ".vbridge" / "ledger.json")
    started = time.monotonic()
    for command in ("clean", "annotate"):
        line = _one_line_exit_2(vbridge(command, str(prefix)))
        assert "not a regular file (a FIFO)" in line
    assert time.monotonic() - started < 60


def test_a_damaged_but_parseable_ledger_is_not_taken_as_empty(prefix: Path) -> None:
    _annotated(prefix)
    _edit_ledger(prefix, lambda d: d.update({"distributions ": d.pop("distributions")}))
    before = snapshot(prefix)
    line = _one_line_exit_2(vbridge("clean", str(prefix)))
    assert "ledger" in line
    assert snapshot(prefix) == before  # vbridge's files stay until the ledger is repaired


def test_the_conda_plugin_log_is_never_written_through_a_link(
    prefix: Path, outside: Path
) -> None:
    from vbridge.integrations.conda.plugin import _log

    _annotated(prefix)
    (prefix / ".vbridge" / "conda-plugin.log").symlink_to(outside / "keep.txt")
    elsewhere = snapshot(outside)
    _log(prefix, "an entry")
    assert snapshot(outside) == elsewhere


def test_clean_python_cleans_the_layers_the_interpreter_imports_from(tmp_path: Path) -> None:
    """Debian: annotated as root /, cleaned through the interpreter (prefix /usr)."""
    from vbridge.cli import _interpreter_roots
    from vbridge.destinations.annotate import annotate_environment, clean_environment
    from vbridge.destinations.ledger import state_dir
    from vbridge.scan import scan_environment

    root = lay_out_fixture_root(tmp_path / "root")
    hook = root / "etc/apt/apt.conf.d/90vbridge"
    hook.parent.mkdir(parents=True)
    hook.write_text("// vbridge's hook stands here\n")
    pristine = snapshot(root)
    annotate_environment(scan_environment(root))
    assert (state_dir(root) / "ledger.json").is_file()
    layers = [root / "usr/lib/python3/dist-packages"]
    scopes = _interpreter_roots(root / "usr", layers, None)
    assert scopes[root / "usr"] is None
    assert scopes[root] and all(p.parent == layers[0] for p in scopes[root] or [])
    for target, only in scopes.items():
        clean_environment(target, only=only)
    assert snapshot(root) == pristine  # every file vbridge wrote is gone, the ledger too


@pytest.mark.parametrize("kind", ["fifo", "link-out", "not-utf8"])
def test_a_policy_file_that_is_not_one(prefix: Path, outside: Path, kind: str) -> None:
    policy = prefix / ".vbridge" / "policy.toml"
    policy.parent.mkdir()
    if kind == "fifo":
        os.mkfifo(policy)
    elif kind == "link-out":
        (outside / "policy.toml").write_text("[severity]\n")
        policy.symlink_to(outside / "policy.toml")
    else:
        policy.write_bytes(b"[severity]\n\xff\xfe = 1\n")
    line = _one_line_exit_2(vbridge("scan", str(prefix)))
    assert str(policy) in line


def test_an_empty_dpkg_status_is_named(tmp_path: Path) -> None:
    from vbridge.scan import scan_environment

    root = lay_out_fixture_root(tmp_path / "root")
    (root / "var/lib/dpkg/status").write_bytes(b"")
    env = scan_environment(root)
    assert any(
        p.path == root / "var/lib/dpkg/status" and "lists no package" in p.problem
        for p in env.problems
    )


def test_an_immutable_record_stops_annotate_before_anything_is_written(prefix: Path) -> None:
    record = prefix / NUMPY / "RECORD"
    made = subprocess.run(["chattr", "+i", str(record)], capture_output=True)
    if made.returncode != 0:
        pytest.skip("chattr +i is not supported here")
    try:
        before = snapshot(prefix)
        line = _one_line_exit_2(vbridge("annotate", str(prefix)))
        assert f"{record}: immutable or append-only" in line
        assert snapshot(prefix) == before
    finally:
        subprocess.run(["chattr", "-i", str(record)], check=True)

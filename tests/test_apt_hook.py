"""The apt hook: apt.conf.d entry management, `vbridge sync`, and a real apt round trip."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
from debian_root import debian_installed, lay_out_fixture_root, requires_root
from typer.testing import CliRunner
from vbridge.cli import app
from vbridge.integrations.apt_hook import HOOK_NAME, STATE, added_files, hook_text, sync_debian
from vbridge.model import Environment

VBRIDGE = Path(sys.executable).with_name("vbridge")
NUMPY_EGG = "usr/lib/python3/dist-packages/numpy-1.24.2.egg-info"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def add_vbridge_files(dist_info: Path) -> None:
    """Stand-in for the dist-info writer (vbridge.destinations.annotate, built on another branch):
    put the files it adds where it adds them."""
    for rel in added_files():
        (dist_info / rel).parent.mkdir(parents=True, exist_ok=True)
        (dist_info / rel).write_text(
            '{"written by": "stand-in for vbridge.destinations.annotate"}\n'
        )


# --- apt.conf.d management ------------------------------------------------------------


def test_install_and_uninstall_in_a_conf_dir(tmp_path: Path) -> None:
    conf = tmp_path / "apt.conf.d"
    conf.mkdir()
    log = tmp_path / "vbridge.log"
    code, out, _ = invoke("apt-hook", "install", "--conf-dir", str(conf), "--log", str(log))
    assert code == 0, out
    hook = conf / HOOK_NAME
    text = hook.read_text()
    assert "DPkg::Post-Invoke" in text
    assert f"'{VBRIDGE}' sync --apt-hook --log '{log}' || true" in text
    assert oct(hook.stat().st_mode & 0o777) == "0o644"

    # apt itself parses it: the value is the shell command apt will run.
    dump = subprocess.run(
        ["apt-config", "-c", str(hook), "dump", "DPkg::Post-Invoke"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"'{VBRIDGE}' sync --apt-hook" in dump

    assert invoke("apt-hook", "install", "--conf-dir", str(conf), "--log", str(log))[0] == 0
    assert hook.read_text() == text  # idempotent
    assert [p.name for p in conf.iterdir()] == [HOOK_NAME]  # no temp file left

    code, out, _ = invoke("apt-hook", "uninstall", "--conf-dir", str(conf))
    assert code == 0 and "removed" in out
    assert not hook.exists()
    code, out, _ = invoke("apt-hook", "uninstall", "--conf-dir", str(conf))
    assert code == 0 and "was not installed" in out


def test_a_file_vbridge_did_not_write_is_left_alone(tmp_path: Path) -> None:
    conf = tmp_path / "apt.conf.d"
    conf.mkdir()
    foreign = conf / HOOK_NAME
    foreign.write_text('APT::Install-Recommends "false";\n')
    for args in (("install",), ("uninstall",)):
        code, _, err = invoke("apt-hook", *args, "--conf-dir", str(conf))
        assert code == 2
        assert err.count("\n") == 1 and str(foreign) in err and "not written by vbridge" in err
    assert foreign.read_text() == 'APT::Install-Recommends "false";\n'


def test_unsafe_paths_are_refused(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="without quotes"):
        hook_text(Path("/opt/it's/vbridge"), tmp_path / "log")
    code, _, err = invoke(
        "apt-hook", "install", "--conf-dir", str(tmp_path), "--log", str(tmp_path / 'a"b')
    )
    assert code == 2 and err.count("\n") == 1


def test_the_hook_command_never_fails(tmp_path: Path) -> None:
    conf = tmp_path / "apt.conf.d"
    conf.mkdir()
    # The log path is a directory: sync cannot log, must still exit 0 with one line.
    log_dir = tmp_path / "log-is-a-dir"
    log_dir.mkdir()
    hook = Path(
        invoke("apt-hook", "install", "--conf-dir", str(conf), "--log", str(log_dir))[1]
        .split(" written to ")[1]
        .strip()
    )
    dump = subprocess.run(
        ["apt-config", "-c", str(hook), "dump", "DPkg::Post-Invoke"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    prefix = 'DPkg::Post-Invoke:: "'
    (shell_command,) = [
        line[len(prefix) : -2]
        for line in dump.splitlines()
        if line.startswith(prefix) and str(VBRIDGE) in line
    ]
    # Run as apt runs it (sh -c), with sync pointed at a directory that is no Debian root.
    broken = shell_command.replace("sync --apt-hook", f"sync --root {tmp_path} --apt-hook")
    result = subprocess.run(["sh", "-c", broken], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("vbridge: apt hook: ")
    assert "cannot be written" in result.stderr and "apt is not affected" in result.stderr

    # vbridge uninstalled but the hook left behind: still exit 0, and silent.
    gone = shell_command.replace(str(VBRIDGE), str(tmp_path / "no-such-vbridge"))
    result = subprocess.run(["sh", "-c", gone], capture_output=True, text=True, check=False)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_sync_as_hook_logs_errors_and_prints_one_line(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "vbridge.log"
    result = subprocess.run(
        [str(VBRIDGE), "sync", "--apt-hook", "--root", str(tmp_path), "--log", str(log)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert result.stderr.count("\n") == 1
    assert f"details in {log}" in result.stderr
    assert "failed:" in log.read_text() and "var/lib/dpkg/status" in log.read_text()


# --- sync on a Debian root --------------------------------------------------------------


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return lay_out_fixture_root(tmp_path / "root")


def test_sync_removes_vbridge_files_from_directories_dpkg_abandoned(root: Path) -> None:
    owned = root / NUMPY_EGG
    add_vbridge_files(owned)
    abandoned = root / "usr/lib/python3/dist-packages/oldpkg-1.0.dist-info"
    abandoned.mkdir()
    add_vbridge_files(abandoned)
    shared = root / "usr/lib/python3/dist-packages/other-2.0.dist-info"
    shared.mkdir()
    add_vbridge_files(shared)
    (shared / "METADATA").write_text("Name: other\n")

    result = sync_debian(root)
    assert result.cleaned == [abandoned]
    assert not abandoned.exists()
    # An owned directory keeps vbridge's files; one holding other files is left whole.
    assert all((owned / rel).is_file() for rel in added_files())
    assert [p for p, _ in result.kept] == [shared]
    assert all((shared / rel).is_file() for rel in added_files())
    assert (shared / "METADATA").is_file()


def test_sync_after_an_upgrade_to_a_new_version_directory(root: Path) -> None:
    sync_debian(root)  # the state before the upgrade
    old = root / NUMPY_EGG
    add_vbridge_files(old)
    # What dpkg does on upgrade: unpack the new directory, remove the files of the old
    # one that the new version no longer has (the list now names the new directory).
    new = old.with_name("numpy-1.26.4.egg-info")
    listing = root / "var/lib/dpkg/info/python3-numpy.list"
    lines = listing.read_text().splitlines()
    new_lines = [line.replace("numpy-1.24.2.egg-info", "numpy-1.26.4.egg-info") for line in lines]
    listing.write_text("\n".join(new_lines) + "\n")
    new.mkdir()
    for line in lines:
        if "numpy-1.24.2.egg-info/" in line:
            (root / line.lstrip("/")).unlink()
            (new / Path(line).name).touch()

    result = sync_debian(root)
    assert result.cleaned == [old] and not old.exists()
    assert new.is_dir()
    assert any(item.startswith("numpy 1.26.4 ") for item in result.new)
    assert any(item.startswith("numpy 1.24.2 ") for item in result.gone)
    state = json.loads((root / STATE).read_text())
    assert str(new) in state["distributions"] and str(old) not in state["distributions"]


def test_sync_hands_the_scan_to_the_writer(root: Path) -> None:
    calls: list[Environment] = []
    # Stand-in for vbridge.destinations.annotate (the writer, built on another branch).
    writer = types.ModuleType("stand_in_annotate")

    def annotate_environment(env: Environment) -> str:
        calls.append(env)
        return "2 written"

    writer.annotate_environment = annotate_environment  # type: ignore[attr-defined]
    result = sync_debian(root, writer=writer)
    assert result.writer == "stand_in_annotate" and result.written == "2 written"
    (env,) = calls
    numpy = next(d for d in env.distributions if d.name == "numpy")
    assert numpy.owner is not None and numpy.owner.name == "python3-numpy"
    assert "written='2 written'" in result.summary()


# --- the real thing: apt-get install, apt-get remove with the hook installed ------------

# Small, links BLAS and LAPACK through the alternatives (`libblas3 | libblas.so.3`), so it
# has variant properties to write, and its egg-info is a directory.
PACKAGE = "python3-cvxopt"
DIST = "cvxopt"


@pytest.mark.network
@pytest.mark.debian
@pytest.mark.root
@requires_root
def test_apt_round_trip_with_the_hook_installed(tmp_path: Path) -> None:
    if not debian_installed("python3-numpy"):
        pytest.skip("not the Debian test machine (no python3-numpy in /var/lib/dpkg/status)")
    if debian_installed(PACKAGE):
        pytest.skip(f"{PACKAGE} is already installed here; it is not this test's to remove")
    conf = Path("/etc/apt/apt.conf.d")
    if (conf / HOOK_NAME).exists():
        pytest.skip(f"{conf / HOOK_NAME} exists already; not replacing a hook in use")
    log = tmp_path / "vbridge.log"
    layer = Path("/usr/lib/python3/dist-packages")
    apt = ["apt-get", "-y", "-q", "-o", "DPkg::Lock::Timeout=600"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

    def run_apt(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*apt, *args], capture_output=True, text=True, env=env, timeout=900, check=False
        )

    state = Path("/") / STATE
    had_state = state.exists()
    assert invoke("apt-hook", "install", "--log", str(log))[0] == 0
    installed = False
    try:
        subprocess.run([str(VBRIDGE), "sync"], check=True, capture_output=True)  # baseline
        result = run_apt("install", "--no-install-recommends", PACKAGE)
        installed = True
        assert result.returncode == 0, result.stdout + result.stderr
        dist_infos = sorted(layer.glob(f"{DIST}-*-info"))
        assert len(dist_infos) == 1
        dist_info = dist_infos[0]
        assert dist_info.is_dir()
        after_install = log.read_text()
        assert f"new=[{DIST} " in after_install and f"({PACKAGE} " in after_install
        # The hook annotated it: variant.json says which BLAS the alternatives select,
        # and readers find it through importlib.metadata under Debian's python.
        assert all((dist_info / rel).is_file() for rel in added_files())
        variant = json.loads((dist_info / "variant.json").read_text())
        (properties,) = variant["variants"].values()
        assert properties["blas_lapack"]["provider"]
        read_back = subprocess.run(
            ["/usr/bin/python3", "-c",
             f"import importlib.metadata as m; print(m.distribution('{DIST}')"
             ".read_text('variant.json') is not None)"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        assert read_back == "True"

        result = run_apt("remove", PACKAGE)
        assert result.returncode == 0, result.stdout + result.stderr
        installed = False
        log_text = log.read_text()[len(after_install) :]
        assert f"gone=[{DIST} " in log_text
        # The directory dpkg could not remove (it held vbridge's files) is gone: the
        # hook's annotate drops a ghost's files, or the orphan sweep removes them.
        assert "written=" in log_text or f"cleaned=[{dist_info}]" in log_text
        assert not dist_info.exists()
        assert sorted(layer.glob(f"{DIST}*")) == []
    finally:
        if installed:
            run_apt("remove", PACKAGE)
        invoke("apt-hook", "uninstall")
        # The syncs annotated the machine's other Debian distributions: take it all back.
        subprocess.run([str(VBRIDGE), "clean", "/"], check=False, capture_output=True)
        if not had_state:  # leave the machine as it was
            state.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                state.parent.rmdir()
    assert not (conf / HOOK_NAME).exists()


# --- annotate on a Debian root: only with the hook, RECORD left to dpkg ----------------


def _tree_digest(root: Path) -> dict[str, bytes]:
    layer = root / "usr/lib/python3/dist-packages"
    return {str(p): p.read_bytes() for p in sorted(layer.rglob("*")) if p.is_file()}


def test_annotate_debian_needs_the_hook_and_leaves_record_to_dpkg(root: Path) -> None:
    from vbridge.destinations.annotate import annotate_environment, clean_environment
    from vbridge.scan import scan_environment

    before = _tree_digest(root)
    result = annotate_environment(scan_environment(root))
    assert result.changed == []
    assert {f.code for f in result.findings} == {"annotate-needs-hook"}
    assert "vbridge apt-hook install" in result.findings[0].message
    assert _tree_digest(root) == before

    hook = root / "etc/apt/apt.conf.d/90vbridge"
    hook.parent.mkdir(parents=True, exist_ok=True)
    hook.write_text("// vbridge's hook stands here\n")
    result = annotate_environment(scan_environment(root))
    numpy = root / NUMPY_EGG
    variant = json.loads((numpy / "variant.json").read_text())
    (properties,) = variant["variants"].values()
    assert properties["blas_lapack"]["provider"] == ["openblas"]
    scipy = next((root / "usr/lib/python3/dist-packages").glob("scipy-*.dist-info"))
    assert (scipy / "variant.json").is_file()
    # dpkg owns scipy's RECORD (dpkg --verify checks it): vbridge does not edit it.
    assert (scipy / "RECORD").read_bytes() == before[str(scipy / "RECORD")]

    clean_environment(root)
    assert _tree_digest(root) == before

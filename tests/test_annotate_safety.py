"""Safety of `vbridge annotate`/`clean`: lock, symlinks, read-only site-packages, bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import condaenv
import pytest
from conftest import CondaPrefixFactory, run_vbridge
from prefixstate import changed, snapshot
from vbridge.destinations.annotate import annotate_environment, clean_environment
from vbridge.destinations.envlock import EnvironmentLock
from vbridge.errors import EnvironmentLocked, UnsafePath
from vbridge.model import Evidence, Property
from vbridge.scan import scan_environment

SITE = condaenv.SITE
NUMPY = f"{SITE}/numpy-1.26.4.dist-info"


def _one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vbridge: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def _holds_open(pid: int, path: Path) -> bool:
    fds = Path(f"/proc/{pid}/fd")
    try:
        return any(os.readlink(fd) == str(path) for fd in fds.iterdir())
    except OSError:
        return False


def test_a_second_run_stops_with_a_clear_message_or_waits(
    mkl_channel: Path, conda_prefix: CondaPrefixFactory
) -> None:
    prefix = conda_prefix(mkl_channel, ["numpy", "libblas=*=*mkl"])
    with EnvironmentLock(prefix):
        before = snapshot(prefix)
        line = _one_line_error(run_vbridge("annotate", str(prefix)))
        assert f"{prefix}: another vbridge run holds this environment's lock" in line
        assert "--wait" in line
        assert run_vbridge("clean", str(prefix)).returncode == 0  # nothing to clean: no lock
        with pytest.raises(EnvironmentLocked):
            annotate_environment(scan_environment(prefix))
        assert snapshot(prefix) == before

        # With --wait, the run queues behind the holder and then does its work.
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("vbridge")), "annotate", str(prefix),
             "--wait", "120"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        while proc.poll() is None and not _holds_open(proc.pid, prefix):
            threading.Event().wait(0.05)
        assert proc.poll() is None  # it opened the environment and is waiting for its lock
        assert not (prefix / NUMPY / "variant.json").exists()
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert (prefix / NUMPY / "variant.json").is_file()


def test_concurrent_runs_end_in_the_state_of_one_run(
    mkl_channel: Path, conda_prefix: CondaPrefixFactory, tmp_path: Path
) -> None:
    prefix = conda_prefix(mkl_channel, ["scipy", "h5py", "mpi4py", "libblas=*=*mkl"])
    reference = tmp_path / "reference"
    shutil.copytree(prefix, reference, symlinks=True)
    annotate_environment(scan_environment(reference))
    exe = str(Path(sys.executable).with_name("vbridge"))
    procs = [
        subprocess.Popen([exe, "annotate", str(prefix), "--wait", "120"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    results = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], results
    assert changed(snapshot(reference), snapshot(prefix)) == []


def test_symlink_out_of_the_prefix_is_refused_before_writing(
    mkl_channel: Path, conda_prefix: CondaPrefixFactory, tmp_path: Path
) -> None:
    prefix = conda_prefix(mkl_channel, ["numpy", "scipy", "libblas=*=*mkl"])
    outside = tmp_path / "outside"
    outside.mkdir()
    # numpy's dist-info lives elsewhere and site-packages only links to it.
    shutil.move(str(prefix / NUMPY), str(outside / "numpy-1.26.4.dist-info"))
    os.symlink(outside / "numpy-1.26.4.dist-info", prefix / NUMPY)
    before, outside_before = snapshot(prefix), snapshot(outside)

    line = _one_line_error(run_vbridge("annotate", str(prefix)))
    assert f"{prefix / NUMPY}: resolves to {outside / 'numpy-1.26.4.dist-info'}" in line
    assert "outside the environment" in line
    assert snapshot(prefix) == before and snapshot(outside) == outside_before
    with pytest.raises(UnsafePath):
        annotate_environment(scan_environment(prefix))
    assert snapshot(prefix) == before


def test_symlinked_target_file_out_of_the_prefix_is_refused(
    mkl_channel: Path, conda_prefix: CondaPrefixFactory, tmp_path: Path
) -> None:
    prefix = conda_prefix(mkl_channel, ["numpy", "libblas=*=*mkl"])
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    # Someone planted sboms/ as a link out of the prefix: vbridge must not write there.
    os.symlink(outside, prefix / NUMPY / "sboms")
    before = snapshot(prefix)
    line = _one_line_error(run_vbridge("annotate", str(prefix)))
    assert "sboms" in line and "outside the environment" in line
    assert snapshot(prefix) == before and list(outside.iterdir()) == []


def _run_with_read_only(site: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    exe = str(Path(sys.executable).with_name("vbridge"))
    if os.geteuid() == 0:
        # root ignores permission bits: make site-packages a read-only mount, as on a
        # system image, in a private mount namespace.
        script = 'mount --bind -o ro "$1" "$1" && shift && exec "$@"'
        cmd = ["unshare", "--mount", "sh", "-c", script, "sh", str(site), exe, *args]
    else:
        subprocess.run(["chmod", "-R", "a-w", str(site)], check=True)
        cmd = [exe, *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    finally:
        if os.geteuid() != 0:
            subprocess.run(["chmod", "-R", "u+w", str(site)], check=True)


def test_read_only_site_packages_is_one_clear_error(
    mkl_channel: Path, conda_prefix: CondaPrefixFactory
) -> None:
    if os.geteuid() == 0 and subprocess.run(
        ["unshare", "--mount", "true"], capture_output=True
    ).returncode != 0:
        pytest.skip("running as root without mount namespaces: cannot make a read-only mount")
    prefix = conda_prefix(mkl_channel, ["numpy", "scipy", "libblas=*=*mkl"])
    before = snapshot(prefix)
    proc = _run_with_read_only(prefix / SITE, ["annotate", str(prefix)])
    line = _one_line_error(proc)
    assert str(prefix / SITE) in line and "not writable" in line
    assert "run vbridge as the user that owns the environment" in line
    assert snapshot(prefix) == before  # nothing half-written, not even the lock

    # clean on a read-only environment it wrote to earlier: same clear error.
    annotate_environment(scan_environment(prefix))
    annotated = snapshot(prefix)
    line = _one_line_error(_run_with_read_only(prefix / SITE, ["clean", str(prefix)]))
    assert "not writable" in line
    assert snapshot(prefix) == annotated
    clean_environment(prefix)
    assert changed(before, snapshot(prefix)) == []


def test_bad_input_gives_one_line_and_partial_results(
    tmp_path: Path, conda_cache: Path, conda_prefix: CondaPrefixFactory, mkl_channel: Path
) -> None:
    assert "no such directory" in _one_line_error(run_vbridge("annotate", str(tmp_path / "nope")))
    assert _one_line_error(run_vbridge("annotate", str(tmp_path), "--python", sys.executable))

    prefix = conda_prefix(mkl_channel, ["numpy", "scipy", "libblas=*=*mkl"])
    # A damaged RECORD: scipy is skipped with a warning naming it, numpy is annotated.
    record = prefix / SITE / "scipy-1.11.4.dist-info" / "RECORD"
    damaged = record.read_bytes() + b"a,b\n"
    record.unlink()  # a hard link into rattler's package cache: never write through it
    record.write_bytes(damaged)
    proc = run_vbridge("annotate", str(prefix), "--json")
    assert proc.returncode == 0, proc.stderr
    (result,) = json.loads(proc.stdout)["environments"]
    (finding,) = result["findings"]
    assert finding["code"] == "annotate-skipped-bad-record" and str(record) in finding["message"]
    assert (prefix / NUMPY / "variant.json").is_file()
    assert not (record.parent / "variant.json").exists()


def test_unreadable_owner_record_means_hands_off(
    mkl_channel: Path, conda_prefix: CondaPrefixFactory
) -> None:
    prefix = conda_prefix(mkl_channel, ["numpy", "libblas=*=*mkl"])
    (meta,) = (prefix / "conda-meta").glob("numpy-*.json")
    meta.write_text("{ not json")
    # INSTALLER says conda, but no conda record lists numpy: conda could never remove
    # what vbridge would add, so nothing is added.
    env = scan_environment(prefix)
    numpy = next(d for d in env.distributions if d.name == "numpy")
    assert numpy.owner is None and numpy.installer == "conda"
    # Give it a property as another adapter (a describer) could.
    numpy.add(Property.from_str("blas_lapack :: provider :: mkl"),
              Evidence("conda:libblas", "build", "20_linux64_mkl", "test"))
    before = snapshot(prefix)
    result = annotate_environment(env)
    assert [f.code for f in result.findings] == ["annotate-skipped-owner"]
    assert "no conda record lists it" in result.findings[0].message
    assert snapshot(prefix) == before


def test_only_limits_the_cli_run_to_named_dist_infos(
    mkl_channel: Path, conda_prefix: CondaPrefixFactory
) -> None:
    prefix = conda_prefix(mkl_channel, ["numpy", "scipy", "libblas=*=*mkl"])
    before = snapshot(prefix)
    scipy = prefix / SITE / "scipy-1.11.4.dist-info"
    proc = run_vbridge("annotate", str(prefix), "--only", str(scipy))
    assert proc.returncode == 0, proc.stderr
    assert (scipy / "variant.json").is_file(), proc.stdout
    assert not (prefix / NUMPY / "variant.json").exists()
    assert run_vbridge("annotate", str(prefix)).returncode == 0
    proc = run_vbridge("clean", str(prefix), "--only", str(prefix / NUMPY))
    assert proc.returncode == 0, proc.stderr
    assert (scipy / "variant.json").is_file() and not (prefix / NUMPY / "variant.json").exists()
    assert run_vbridge("clean", str(prefix)).returncode == 0
    assert changed(before, snapshot(prefix)) == []


def test_a_run_sweeps_what_a_killed_run_left_in_every_ledger_directory(
    mkl_channel: Path, conda_prefix: CondaPrefixFactory
) -> None:
    """Temporary files a killed run left in any directory the ledger names (another
    dist-info, its sboms/, conda-meta where records were edited) are removed by the
    next run, even one limited to another distribution; a file that only looks like one
    (not hidden) and the files around them stay."""
    from vbridge import safefs

    prefix = conda_prefix(mkl_channel, ["numpy", "scipy", "libblas=*=*mkl"])
    assert run_vbridge("annotate", str(prefix)).returncode == 0
    scipy = prefix / SITE / "scipy-1.11.4.dist-info"
    left = [
        scipy / f".RECORD.{'ab' * 6}{safefs.TEMP_SUFFIX}",
        scipy / "sboms" / f".vbridge.cdx.json.{'cd' * 6}{safefs.TEMP_SUFFIX}",
        prefix / "conda-meta" / f".scipy.json.{'ef' * 6}{safefs.TEMP_SUFFIX}",
    ]
    kept = scipy / f"RECORD.{'ab' * 6}{safefs.TEMP_SUFFIX}"
    for path in [*left, kept]:
        path.write_text("half-written")
    proc = run_vbridge("annotate", str(prefix), "--only", str(prefix / NUMPY))
    assert proc.returncode == 0, proc.stderr
    assert [p for p in left if p.exists()] == []
    assert kept.read_text() == "half-written" and (scipy / "variant.json").is_file()


def test_temporary_files_are_new_private_and_never_a_planted_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vbridge import safefs

    fd, name = safefs.create_temp(tmp_path, ".RECORD.", safefs.TEMP_SUFFIX)
    os.close(fd)
    assert Path(name).parent == tmp_path and name.endswith(safefs.TEMP_SUFFIX)
    assert os.stat(name).st_mode & 0o777 == 0o600
    # Every name taken (here: one name, planted as a link to a file outside): never
    # opened through it, and the error says so.
    monkeypatch.setattr(os, "urandom", lambda n: b"\0" * n)  # the os safefs uses
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.write_bytes(b"keep")
    taken = tmp_path / f".x.{'00' * 6}{safefs.TEMP_SUFFIX}"
    taken.symlink_to(outside)
    with pytest.raises(FileExistsError, match="no unused temporary file name"):
        safefs.create_temp(tmp_path, ".x.", safefs.TEMP_SUFFIX)
    assert outside.read_bytes() == b"keep"


def test_a_dist_info_without_record_gets_nothing(tmp_path: Path) -> None:
    # pip's own layout, minus RECORD: no installer could remove files added here.
    site = tmp_path / "lib" / "python3.12" / "site-packages"
    dist_info = site / "six-1.17.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: six\nVersion: 1.17.0\n")
    (dist_info / "INSTALLER").write_text("pip\n")
    env = scan_environment(tmp_path)
    (six,) = env.distributions
    assert six.owner is None and six.installer == "pip"
    six.add(Property.from_str("blas_lapack :: provider :: mkl"),
            Evidence("wheel:six", "extra.bundled", "six.libs/libmkl.so", "test"))
    before = snapshot(tmp_path)
    result = annotate_environment(env)
    assert [f.code for f in result.findings] == ["annotate-skipped-no-record"]
    assert "has no RECORD" in result.findings[0].message
    assert result.changed == [] and result.annotated == []
    assert snapshot(tmp_path) == before
    # With a RECORD the same distribution is annotated and RECORD lists the files.
    (dist_info / "RECORD").write_text("six-1.17.0.dist-info/METADATA,,\n")
    result = annotate_environment(env)
    assert result.findings == [] and (dist_info / "variant.json").is_file()
    assert "six-1.17.0.dist-info/variant.json," in (dist_info / "RECORD").read_text()


def test_the_sweep_resolves_directories_as_realpath_does(tmp_path: Path) -> None:
    """annotate's sweep resolves the parents the ledger's directories share once
    (annotate._realpath): the same answers as os.path.realpath, links in and out,
    dangling, missing and ``..`` included."""
    from vbridge.destinations.annotate import _realpath

    root = tmp_path / "env"
    (root / "lib/site-packages/a.dist-info/sboms").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    os.symlink("lib", root / "lib64")
    os.symlink(tmp_path / "outside", root / "lib/site-packages/out.dist-info")
    os.symlink("missing", root / "lib/site-packages/dangling.dist-info")
    os.symlink("a.dist-info", root / "lib/site-packages/b.dist-info")
    paths = [
        "lib/site-packages/a.dist-info/sboms",
        "lib64/site-packages/a.dist-info/sboms",
        "lib/site-packages/out.dist-info/sboms",
        "lib/site-packages/dangling.dist-info",
        "lib/site-packages/b.dist-info/sboms",
        "lib/site-packages/gone.dist-info/sboms",
        "lib64/site-packages/../site-packages/a.dist-info",
        "",
    ]
    resolved: dict[str, str] = {}
    for rel in paths * 2:  # then from what the first pass resolved
        path = os.path.join(root, rel) if rel else str(root)
        assert _realpath(path, resolved) == os.path.realpath(path), rel

"""vbridge verify's children: isolated, one per distribution, and a hang, a crash or a
failing import costs one line while the rest is verified.

The environment is a real venv (``python -m venv``) with small distributions planted in
its site-packages, each with a dist-info and RECORD as pip writes them: one whose import
hangs, one that kills its process with SIGSEGV, one that raises, one that exits, one that
reports what its process was given, and one that imports fine.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_vbridge
from vbridge.scan import scan_python
from vbridge.verify import NotSupported, verify_environment

PACKAGES = {
    "hangpkg": "import time\ntime.sleep(600)\n",
    "crashpkg": "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n",
    "failpkg": "raise ImportError('libfoo.so.1: cannot open shared object file')\n",
    "exitpkg": "raise SystemExit(3)\n",
    "goodpkg": "VALUE = 1\n",
    "envpkg": (
        "import json, os, sys, pathlib\n"
        "pathlib.Path(__file__).with_name('seen.json').write_text(json.dumps({\n"
        "    'cwd': os.getcwd(), 'listing': os.listdir('.'), 'env': dict(os.environ),\n"
        "    'isolated': sys.flags.isolated, 'path0': sys.path[0]}))\n"
    ),
}


def _hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def plant(site: Path, name: str, source: str) -> None:
    """A distribution as pip installs it: the package and a dist-info with a RECORD."""
    (site / name).mkdir()
    init = source.encode()
    (site / name / "__init__.py").write_bytes(init)
    info = site / f"{name}-1.0.dist-info"
    info.mkdir()
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n".encode()
    (info / "METADATA").write_bytes(meta)
    (info / "INSTALLER").write_bytes(b"pip\n")
    rows = [
        f"{name}/__init__.py,{_hash(init)},{len(init)}",
        f"{info.name}/METADATA,{_hash(meta)},{len(meta)}",
        f"{info.name}/INSTALLER,{_hash(b'pip' + bytes([10]))},4",
        f"{info.name}/RECORD,,",
    ]
    (info / "RECORD").write_text("\n".join(rows) + "\n")


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("verify-child") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next(venv.glob("lib/python3*/site-packages"))
    for name, source in PACKAGES.items():
        plant(site, name, source)
    return venv / "bin" / "python"


def test_hang_crash_and_failures_are_one_line_each(planted: Path) -> None:
    result = run_vbridge(
        "verify", "--python", str(planted), "--timeout", "3",
        "hangpkg", "crashpkg", "failpkg", "exitpkg", "goodpkg",
    )
    lines = result.stdout.splitlines()
    assert result.returncode == 1, result.stdout + result.stderr

    def block(name: str) -> list[str]:
        start = next(i for i, line in enumerate(lines) if line.startswith(f"{name} 1.0 "))
        return lines[start + 1 : start + 2]

    assert block("hangpkg") == ["  timed-out: timed out after 3 s while importing hangpkg"]
    assert block("crashpkg") == [
        "  crashed: crashed (signal 11, SIGSEGV) while importing crashpkg"
    ]
    assert block("failpkg") == [
        "  import failed: failpkg: ImportError: libfoo.so.1: cannot open shared object file"
    ]
    assert block("exitpkg") == ["  import failed: exitpkg: SystemExit: 3"]
    assert block("goodpkg") == [
        "  imported 1 module(s); nothing of BLAS/OpenMP/MPI/HDF5 loaded or recorded"
    ]
    # The whole-process child leaves out what hung or crashed and imports the rest.
    assert "one process importing 3 distribution(s):" in lines


def test_json_names_each_outcome_and_the_refusals(planted: Path) -> None:
    env = scan_python(str(planted))
    verification = verify_environment(
        env, str(planted), ["hangpkg", "crashpkg", "failpkg", "goodpkg"], timeout=3, jobs=2
    )
    status = {d.name: d.status for d in verification.distributions}
    assert status == {
        "hangpkg": "timed-out", "crashpkg": "crashed", "failpkg": "import-failed",
        "goodpkg": "ok",
    }
    codes = sorted((f.code, f.severity) for f in verification.findings)
    assert codes == [
        ("verify-crashed", "refuse"), ("verify-import-failed", "refuse"),
        ("verify-timed-out", "refuse"),
    ]
    assert verification.exit_code == 1
    document = verification.to_dict()
    json.dumps(document)
    assert document["summary"] == {"crashed": 1, "import-failed": 1, "timed-out": 1}


def test_the_child_is_isolated(planted: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VBRIDGE_TEST_SECRET", "must-not-reach-the-child")
    monkeypatch.setenv("LD_LIBRARY_PATH", "/opt/example/lib")
    monkeypatch.setenv("OMP_NUM_THREADS", "64")
    env = scan_python(str(planted))
    verification = verify_environment(env, str(planted), ["envpkg"], timeout=30)
    assert [d.status for d in verification.distributions] == ["ok"]
    seen = json.loads(next(planted.parents[1].glob("lib/python3*/site-packages/envpkg/seen.json"))
                      .read_text())
    assert seen["isolated"] == 1
    assert "vbridge-verify-" not in seen["path0"]  # the program's directory is not on sys.path
    assert seen["cwd"] != os.getcwd() and seen["listing"] == []  # a new, empty directory
    assert "VBRIDGE_TEST_SECRET" not in seen["env"]
    assert seen["env"]["LD_LIBRARY_PATH"] == "/opt/example/lib"  # passed on: data/verify.toml
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        assert seen["env"][name] == "1"
    assert set(seen["env"]) <= {
        "PATH", "LANG", "LC_ALL", "HOME", "LD_LIBRARY_PATH", "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
        "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS",
    }
    assert seen["env"]["HOME"] == seen["cwd"]


def test_default_selection_skips_pure_python_without_properties(planted: Path) -> None:
    env = scan_python(str(planted))
    # Nothing planted has compiled extensions or properties: nothing to run.
    verification = verify_environment(env, str(planted), timeout=3)
    assert verification.distributions == []


def test_unknown_name_is_bad_input(planted: Path) -> None:
    result = run_vbridge("verify", "--python", str(planted), "no-such-dist")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("vbridge: ")
    assert "no distribution named no-such-dist" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_not_linux_is_one_line(planted: Path) -> None:
    env = scan_python(str(planted))
    with pytest.raises(NotSupported, match="not supported on darwin: it reads /proc/self/maps"):
        verify_environment(env, str(planted), ["goodpkg"], platform="darwin")


def test_ctrl_c_ends_the_children(tmp_path: Path) -> None:
    import signal
    import time

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next(venv.glob("lib/python3*/site-packages"))
    pidfile = tmp_path / "child.pid"
    plant(site, "hangpkg", f"import os, time\nopen({str(pidfile)!r}, 'w').write(str(os.getpid()))\n"
                           "time.sleep(600)\n")
    vbridge = Path(sys.executable).with_name("vbridge")
    run = subprocess.Popen([str(vbridge), "verify", "--python", str(venv / "bin/python"),
                            "hangpkg"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not pidfile.exists() or not pidfile.read_text():
        assert time.monotonic() < deadline and run.poll() is None
        time.sleep(0.1)
    child = int(pidfile.read_text())
    run.send_signal(signal.SIGINT)
    run.communicate(timeout=30)
    assert run.returncode != 0

    def alive(pid: int) -> bool:
        try:
            state = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            return False
        return "\nState:\tZ" not in state  # a zombie waiting for its reaper is gone too

    while alive(child):
        assert time.monotonic() < deadline, "the hanging child outlived vbridge"
        time.sleep(0.1)


def test_db_adds_its_tables_to_a_schema_1_inventory(planted: Path, tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "inventory.db"
    assert run_vbridge("scan", "--db", str(db), "--python", str(planted)).returncode == 0
    with sqlite3.connect(db) as conn:  # as a vbridge of schema 1 left it
        conn.execute("DROP TABLE verified")
        conn.execute("DROP TABLE verifications")
        conn.execute("PRAGMA user_version = 1")
    conn.close()
    before = run_vbridge("inventory", "verified", "--db", str(db), "--json")
    assert before.returncode == 0 and json.loads(before.stdout) == []
    result = run_vbridge("verify", "--db", str(db), "--python", str(planted), "failpkg", "goodpkg")
    assert result.returncode == 1, result.stderr
    rows = json.loads(run_vbridge("inventory", "verified", "--db", str(db), "--json").stdout)
    assert [(r["distribution"], r["feature"], r["status"]) for r in rows] == [
        ("failpkg", "", "import-failed")
    ]
    assert rows[0]["message"] == "failpkg: ImportError: libfoo.so.1: cannot open shared object file"
    with sqlite3.connect(db) as conn:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        (scans,) = conn.execute("SELECT COUNT(*) FROM scans").fetchone()
        (linked,) = conn.execute(
            "SELECT COUNT(*) FROM verifications v JOIN scans s ON s.id = v.scan_id"
        ).fetchone()
    conn.close()
    assert version == 2 and scans == 2 and linked == 1

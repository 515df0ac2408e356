"""Runs at the same time, damaged or full storage: every run ends in one line or its work.

- ``clean`` while ``annotate --wait`` / ``clean --wait`` runs queue on the same prefix:
  the lock is on the prefix directory, so removing ``.vbridge/`` takes nothing from
  under the waiters; all of them finish (exit 0) and the prefix ends annotated or clean.
- concurrent ``scan --db`` runs into one inventory queue (busy timeout, WAL): none fails,
  none is lost.
- a damaged inventory (a corrupted page, a dropped table): one line, exit 2.
- a full disk during annotate: one line, exit 2, nothing half-written; once there is
  space again, ``clean`` restores the prefix byte for byte.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefixstate import changed, snapshot
from vbridge.destinations.envlock import EnvironmentLock

VBRIDGE = str(Path(sys.executable).with_name("vbridge"))
NUMPY = "lib/python3.11/site-packages/numpy-1.26.4.dist-info"


def vbridge(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VBRIDGE, *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def pristine(
    tmp_path_factory: pytest.TempPathFactory, mkl_channel: Path, conda_cache: Path
) -> Path:
    """A real prefix cut down to what vbridge reads: conda-meta and numpy's dist-info."""
    import condaenv

    base = tmp_path_factory.mktemp("concurrency")
    full = condaenv.install(mkl_channel, ["numpy", "libblas=*=*mkl"], base / "full", conda_cache)
    small = base / "env"
    shutil.copytree(full / "conda-meta", small / "conda-meta")
    shutil.copytree(full / NUMPY, small / NUMPY)
    return small


@pytest.fixture
def prefix(pristine: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "env"
    shutil.copytree(pristine, copy, symlinks=True)
    return copy


def test_waiters_survive_a_clean_that_removes_the_state_directory(prefix: Path) -> None:
    pristine = snapshot(prefix)
    assert vbridge("annotate", str(prefix)).returncode == 0
    annotated = snapshot(prefix)
    commands = [["clean"], ["annotate"], ["clean"], ["annotate"], ["clean"], ["clean"]]
    with EnvironmentLock(prefix):  # everybody queues behind this holder
        procs = [
            subprocess.Popen(
                [VBRIDGE, *command, str(prefix), "--wait", "240"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            for command in commands
        ]
    results = [(p, *p.communicate(timeout=300)) for p in procs]
    for proc, _out, err in results:
        assert proc.returncode == 0, err
        assert "Traceback" not in err and "FileNotFoundError" not in err
    final = snapshot(prefix)
    assert final in (pristine, annotated)  # the state of one run, never a mix
    assert vbridge("clean", str(prefix)).returncode == 0
    assert changed(pristine, snapshot(prefix)) == []  # no .vbridge/ left behind


def test_concurrent_scans_into_one_inventory_queue_and_none_is_lost(
    pristine: Path, tmp_path: Path
) -> None:
    prefixes = []
    for i in range(6):
        shutil.copytree(pristine, tmp_path / f"env{i}", symlinks=True)
        prefixes.append(tmp_path / f"env{i}")
    db = tmp_path / "inventory.db"
    procs = [
        subprocess.Popen(
            [VBRIDGE, "scan", "--db", str(db), str(p), str(prefixes[(i + 1) % 6])],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i, p in enumerate(prefixes)
    ]
    for proc in procs:
        _out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert "locked" not in err and "Traceback" not in err
    with contextlib.closing(sqlite3.connect(db)) as conn:
        paths = {row[0] for row in conn.execute("SELECT path FROM environments")}
        scans = conn.execute("SELECT count(*) FROM scans").fetchone()[0]
    assert paths == {str(p) for p in prefixes}
    assert scans >= 6  # each environment recorded at least once, none lost


@pytest.fixture
def inventory(pristine: Path, tmp_path: Path) -> Path:
    db = tmp_path / "inventory.db"
    assert vbridge("scan", "--db", str(db), str(pristine)).returncode == 0
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db


def _one_line_exit_2(result: subprocess.CompletedProcess[str], db: Path) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert str(db) in result.stderr
    return result.stderr


def test_a_corrupted_page_is_one_line(inventory: Path) -> None:
    data = bytearray(inventory.read_bytes())
    page = 4096
    for i in range(page, len(data)):  # every page but the schema's first
        data[i] = 0xA5
    inventory.write_bytes(bytes(data))
    for args in (["inventory", "findings"], ["inventory", "owners", "numpy"]):
        line = _one_line_exit_2(vbridge(*args, "--db", str(inventory)), inventory)
        assert "damaged" in line or "not an SQLite database" in line


def test_a_dropped_table_is_one_line(inventory: Path, pristine: Path) -> None:
    with contextlib.closing(sqlite3.connect(inventory)) as conn:
        conn.execute("DROP TABLE findings")
        conn.commit()
    line = _one_line_exit_2(vbridge("inventory", "findings", "--db", str(inventory)), inventory)
    assert "damaged" in line


def test_not_an_inventory_is_one_line(tmp_path: Path, pristine: Path) -> None:
    db = tmp_path / "garbage.db"
    db.write_bytes(os.urandom(8192))
    _one_line_exit_2(vbridge("scan", "--db", str(db), str(pristine)), db)


@contextlib.contextmanager
def _small_filesystem(where: Path, size: int) -> Iterator[Path]:
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_disk_during_annotate(pristine: Path, tmp_path: Path) -> None:
    size = sum(p.stat().st_size for p in pristine.rglob("*") if p.is_file())
    with _small_filesystem(tmp_path / "small", size + 512 * 1024) as fs:
        prefix = fs / "env"
        shutil.copytree(pristine, prefix)
        before = snapshot(prefix)
        filler = fs / "filler"  # leaves a few KB: room for the ledger, not for the rest
        free = os.statvfs(fs).f_bavail * os.statvfs(fs).f_frsize
        filler.write_bytes(b"\0" * (free - 3 * 4096))
        result = vbridge("annotate", str(prefix))
        assert result.returncode == 2, (result.stdout, result.stderr)
        assert result.stderr.count("\n") == 1 and "no space left" in result.stderr
        assert "Traceback" not in result.stderr
        for path in (prefix / NUMPY).iterdir():  # nothing torn: vbridge's files whole
            if path.name == "variant.json":
                json.loads(path.read_text())
        filler.unlink()
        assert vbridge("clean", str(prefix)).returncode == 0
        assert changed(before, snapshot(prefix)) == []

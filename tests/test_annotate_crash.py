"""Crash safety: `vbridge annotate` and `vbridge clean` killed with SIGKILL at random points.

A real rattler prefix with 100+ Python distributions is annotated (and, separately,
cleaned) by the real console script, which is killed at a random moment: anywhere in
the run, or once a random share of its writes has happened (files added, RECORDs
rewritten). After every kill each RECORD and conda-meta record must parse and be either
the old or the new version, and one more `annotate` must give exactly the state of an
uninterrupted run, one `clean` exactly the state before.

The runs set ``VBRIDGE_FSYNC=0``: flushing to disk protects against power loss, not
against a killed process (the kernel keeps what was written). The prefixes live in
memory (``/dev/shm``) when the machine has it. Both keep dozens of trials quick.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import condaenv
import pytest
import rattler
from installer.records import RecordEntry, parse_record_file
from prefixstate import changed, snapshot
from vbridge.destinations.annotate import annotate_environment, clean_environment
from vbridge.scan import scan_environment

N_DISTS = 110
TRIALS = 36
CLEAN_TRIALS = 12
SITE = condaenv.SITE


@dataclass
class Prefixes:
    base: Path
    annotated: Path
    before: dict[str, str]
    after: dict[str, str]
    run_seconds: float
    work: Path


def _many_packages() -> list[condaenv.CondaPackage]:
    packages = condaenv.science_packages(blas="mkl")
    for i in range(N_DISTS):
        deps = ["libblas >=3.9.0,<4.0a0"] if i % 3 else ["openmpi >=4.1.6,<5.0a0"]
        packages.append(condaenv.python_package(f"tiny{i:03d}", "1.0", "h0_0", deps))
    return packages


def _vbridge_annotate(prefix: Path, command: str = "annotate") -> subprocess.Popen[bytes]:
    exe = str(Path(sys.executable).with_name("vbridge"))
    return subprocess.Popen(
        [exe, command, str(prefix)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "VBRIDGE_FSYNC": "0"},
    )


@pytest.fixture(scope="module")
def prefixes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prefixes]:
    os.environ["VBRIDGE_FSYNC"] = "0"  # module scope: restored below
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        root = Path(tempfile.mkdtemp(prefix="vbridge-crash-", dir=shm))
    else:
        root = tmp_path_factory.mktemp("crash")
    channel = condaenv.build_channel(root / "channel", _many_packages())
    specs = [f"tiny{i:03d}" for i in range(N_DISTS)] + ["libblas=*=*mkl"]
    base = condaenv.install(channel, specs, root / "base", root / "cache")
    before = snapshot(base)
    reference = root / "reference"
    shutil.copytree(base, reference, symlinks=True)
    # How long a run takes: only to spread the kill times over it.
    started = time.monotonic()
    proc = _vbridge_annotate(reference)
    _, err = proc.communicate(timeout=300)
    finished = time.monotonic()
    assert proc.returncode == 0, err
    after = snapshot(reference)
    try:
        yield Prefixes(base, reference, before, after, finished - started, root / "trials")
    finally:
        os.environ.pop("VBRIDGE_FSYNC", None)
        shutil.rmtree(root, ignore_errors=True)


def _check_records(prefix: Path, p: Prefixes) -> str:
    """Every RECORD and conda-meta record parses and is the old or new version."""
    state = snapshot(prefix)
    records = [k for k in state if k.endswith("/RECORD")]
    metas = [k for k in state if k.startswith("conda-meta/") and k.endswith(".json")]
    assert len(records) >= N_DISTS and len(metas) >= N_DISTS
    for rel in records:
        lines = (prefix / rel).read_text().splitlines()
        for row in parse_record_file(lines):
            RecordEntry.from_elements(*row)
        assert state[rel] in {p.before[rel], p.after[rel]}, rel
    for rel in metas:
        json.loads((prefix / rel).read_bytes())
        rattler.PrefixRecord.from_path(prefix / rel)
        assert state[rel] in {p.before[rel], p.after[rel]}, rel
    # Added files are written whole: present ones are the new version.
    for rel, digest in state.items():
        if rel.endswith(("variant.json", "vbridge.cdx.json")):
            assert digest == p.after[rel], rel
    added = [k for k in p.after if k.endswith(("variant.json", "vbridge.cdx.json"))]
    touched = [k for k in records + metas if p.before[k] != p.after[k]] + added
    done = [k for k in touched if state.get(k) == p.after[k]]
    if not done:
        return "before"
    return "after" if len(done) == len(touched) else "partial"


def _kill_at_random(prefix: Path, p: Prefixes, rng: random.Random, trial: int) -> None:
    """Kill a run at a random time, or once a random share of its writes happened."""
    added = [prefix / k for k in p.after if k.endswith(("variant.json", "vbridge.cdx.json"))]
    records = [prefix / k for k in p.after if k.endswith("/RECORD")]
    sizes = {path: path.stat().st_size for path in records}
    proc = _vbridge_annotate(prefix)
    phase = trial % 3
    if phase == 0:  # anywhere: start-up, scan, planning, backups, writes
        time.sleep(rng.uniform(0, p.run_seconds))
    elif phase == 1:  # while it adds variant.json / SBOM files
        target = rng.randint(1, len(added) - 1)
        while proc.poll() is None and sum(path.exists() for path in added) < target:
            time.sleep(0.0002)
    else:  # while it rewrites RECORDs and conda-meta records
        target = rng.randint(1, len(sizes) - 1)
        while proc.poll() is None and sum(
            path.stat().st_size != size for path, size in sizes.items()
        ) < target:
            time.sleep(0.0002)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    if proc.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(proc.stderr.read() if proc.stderr else proc.returncode)
    if proc.stderr:
        proc.stderr.close()


def test_sigkill_at_random_points_never_corrupts_and_is_recoverable(p: Prefixes) -> None:
    rng = random.Random(20260825)
    outcomes: list[str] = []
    for trial in range(TRIALS):
        prefix = p.work / f"t{trial}"
        shutil.copytree(p.base, prefix, symlinks=True)
        _kill_at_random(prefix, p, rng, trial)
        outcomes.append(_check_records(prefix, p))

        if trial % 2 == 0:
            annotate_environment(scan_environment(prefix))
            assert changed(p.after, snapshot(prefix)) == [], f"trial {trial}: annotate"
        else:
            clean_environment(prefix)
            assert changed(p.before, snapshot(prefix)) == [], f"trial {trial}: clean"
        shutil.rmtree(prefix)
    # The kills landed in the middle of the writes, not only before or after them.
    assert outcomes.count("partial") >= TRIALS // 4, outcomes


def test_sigkill_during_clean_is_recoverable(p: Prefixes) -> None:
    rng = random.Random(770)
    outcomes: list[str] = []
    for trial in range(CLEAN_TRIALS):
        prefix = p.work / f"c{trial}"
        shutil.copytree(p.annotated, prefix, symlinks=True)
        added = [prefix / k for k in p.after if k.endswith(("variant.json", "vbridge.cdx.json"))]
        proc = _vbridge_annotate(prefix, "clean")
        if trial % 2:
            time.sleep(rng.uniform(0, p.run_seconds))
        else:  # once a random number of RECORDs has its original size back
            target = rng.randint(1, N_DISTS - 1)
            sizes = {
                prefix / k: (p.base / k).stat().st_size for k in p.after if k.endswith("/RECORD")
            }
            while proc.poll() is None and sum(
                path.stat().st_size == size for path, size in sizes.items()
            ) < target:
                time.sleep(0.0002)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        if proc.stderr:
            proc.stderr.close()
        assert proc.returncode in (0, -signal.SIGKILL)
        outcomes.append(_check_records(prefix, p))
        assert all(not path.exists() or snapshot_file(path) == p.after[
            path.relative_to(prefix).as_posix()] for path in added)
        if trial % 3 == 0:
            annotate_environment(scan_environment(prefix))
            assert changed(p.after, snapshot(prefix)) == [], f"trial {trial}: annotate"
        else:
            clean_environment(prefix)
            assert changed(p.before, snapshot(prefix)) == [], f"trial {trial}: clean"
        shutil.rmtree(prefix)
    assert outcomes.count("partial") >= CLEAN_TRIALS // 4, outcomes


def snapshot_file(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


@pytest.fixture
def p(prefixes: Prefixes) -> Prefixes:
    return prefixes

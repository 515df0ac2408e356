"""Seeded fuzzing of every format vbridge reads: no traceback, no hang, one line naming
the file, whatever a record holds.

Each format has a workspace built once (a real rattler conda prefix, a Spack tree, a
Debian root from the recorded dpkg database, a venv-like layer of pip-installed
dist-infos, an annotated prefix's ledger, the conda record cache, a wheel file). A case
writes one mutated file (tests/mutator.py, or a FIFO in its place) and runs the reader
the command line runs, in this process for speed: the scan, the findings and the JSON
document, or ``clean --dry-run``, or the wheel reader of ``check --candidate``.
Allowed outcomes: success, or a :class:`~vbridge.errors.VbridgeError` of one line; any
other exception is a crash, more than 10 s a hang. A file that stopped being JSON must
be named by a reported problem (never skipped silently). Then a sample of cases runs
``vbridge`` itself: exit 0, 1 or 2, stderr ``vbridge: `` lines, never a traceback.

``VBRIDGE_FUZZ_SEED`` and ``VBRIDGE_FUZZ_CASES`` (per format) change the run; the
figures of a run are printed (``pytest -s``) and asserted.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import traceback
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import pytest
from mutator import is_json, mutate
from vbridge.errors import VbridgeError

SEED = int(os.environ.get("VBRIDGE_FUZZ_SEED", "20261201"))
CASES = int(os.environ.get("VBRIDGE_FUZZ_CASES", "400"))  # per format: 7 formats
FIXTURES = Path(__file__).parent / "fixtures"
VBRIDGE = str(Path(sys.executable).with_name("vbridge"))
ELF = next(
    p for p in (Path("/usr/lib/x86_64-linux-gnu/libz.so.1"), Path(sys.executable)) if p.is_file()
)


class Hang(Exception):
    """A case ran longer than its alarm."""


@dataclass
class Outcome:
    """What a reader said (problem lines) and which files it read as records."""

    problems: list[str]
    sources: set[str | None] = field(default_factory=set)


@dataclass
class Target:
    """One file a format's cases mutate, and the bytes it starts from."""

    path: Path
    kind: str  # mutator kind: json, lines, zip
    seeds: list[bytes]  # original contents to mutate (the file's own, and others alike)
    # "read": the file is read as a record or named by a problem, whatever it holds (no
    # silent drop); "json": once it is not JSON, a problem names it; "": no claim.
    must_name: str


@dataclass
class Format:
    name: str
    root: Path
    targets: list[Target]
    read: Callable[[], Outcome]  # raises on refusal
    cases: int = CASES


@dataclass
class Figures:
    cases: int = 0
    refused: int = 0  # one-line VbridgeError
    reported: int = 0  # completed with problems reported
    crashes: list[str] = field(default_factory=list)
    hangs: list[str] = field(default_factory=list)
    unnamed: list[str] = field(default_factory=list)


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise Hang()


# --- the workspaces ---------------------------------------------------------------------


def _scan_reader(root: Path) -> Callable[[], Outcome]:
    from vbridge.adapters import spack, wheel
    from vbridge.decide.assess import assess_environment
    from vbridge.destinations.report import render_table, to_document
    from vbridge.scan import scan_environment

    def read() -> Outcome:
        # Caches for the process's life, keyed by size and mtime (a byte flipped within
        # the clock's tick keeps both): a case is a run of its own.
        wheel._CACHE.clear()
        for cached in (
            spack._load_json_cached,
            spack._read_specfile_cached,
            spack._specfile_root_cached,
            spack._read_database_cached,
        ):
            cached.cache_clear()
        env = assess_environment(scan_environment(root))
        json.dumps(to_document([env]))
        render_table([env])
        for record in env.records:
            dict(record.extra)  # a wheel's binary facts, read when first asked for
        return Outcome([str(p) for p in env.problems], {r.source for r in env.records})

    return read


def _conda_seeds() -> list[bytes]:
    return [p.read_bytes() for p in sorted(FIXTURES.rglob("conda-meta/*.json"))]


def _conda_format(prefix: Path) -> Format:
    meta = sorted((prefix / "conda-meta").glob("*.json"))
    seeds = _conda_seeds()
    targets = [Target(p, "json", [p.read_bytes(), *seeds[:: len(meta) or 1]], "read") for p in meta]
    targets.append(Target(prefix / "conda-meta" / "zz-extra-1.0-0.json", "json", seeds, "read"))
    return Format("conda-meta", prefix, targets, _scan_reader(prefix))


def _record_cache_format(prefix: Path, cache_home: Path) -> Format:
    os.environ.pop("VBRIDGE_NO_CACHE", None)
    for record in (prefix / "conda-meta").glob("*.json"):
        os.utime(record, (time.time() - 3600, time.time() - 3600))  # not "racily clean"
    _scan_reader(prefix)()  # writes the cache
    (cache,) = (cache_home / "vbridge" / "conda-records").glob("*.json")
    target = Target(cache, "json", [cache.read_bytes()], "")
    return Format("record-cache", prefix, [target], _scan_reader(prefix), cases=CASES // 2)


def _spack_format(root: Path) -> Format:
    import spacktree

    site = spacktree.build_tree(root)
    index = root / ".spack-db" / "index.json"
    specs = sorted(root.rglob(".spack/spec.json"))
    real_specs = [p.read_bytes() for p in sorted((FIXTURES / "spack" / "v2_layout").iterdir())]
    targets = [Target(index, "json", [index.read_bytes()], "read")]
    targets += [Target(p, "json", [p.read_bytes(), *real_specs], "") for p in specs]
    return Format("spack", site.tree, targets, _scan_reader(site.tree))


def _debian_format(root: Path) -> Format:
    import debian_root

    debian_root.lay_out_fixture_root(root)
    status = root / "var/lib/dpkg/status"
    listed = {p.name.split(":")[0].removesuffix(".list") for p in status.parent.glob("info/*")}
    stanzas = status.read_bytes().split(b"\n\n")
    kept = [
        s for s in stanzas
        if s.startswith(b"Package: ") and s.split(b"\n", 1)[0][9:].decode() in listed | {"dpkg"}
    ]
    status.write_bytes(b"\n\n".join(kept) + b"\n")
    lists = sorted((root / "var/lib/dpkg/info").glob("*.list"))
    targets = [Target(status, "lines", [status.read_bytes()], "")]
    targets += [Target(p, "lines", [p.read_bytes()], "") for p in lists]
    return Format("dpkg", root, targets, _scan_reader(root))


def _dist_info(site: Path, name: str) -> Path:
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    lib = site / name / f"_{name}.so"
    lib.parent.mkdir()
    shutil.copyfile(ELF, lib)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "INSTALLER").write_text("pip\n")
    variant = {"variants": {"abc": {"blas_lapack": {"provider": ["openblas"]}}}}
    (info / "variant.json").write_text(json.dumps(variant, indent=2))
    (info / "sboms").mkdir()
    bom = {"bomFormat": "CycloneDX", "components": [{"name": "libopenblas", "purl": "pkg:x"}]}
    (info / "sboms" / "auditwheel.cdx.json").write_text(json.dumps(bom))
    (info / "direct_url.json").write_text(json.dumps({"url": "file:///x.whl"}))
    rows = [f"{name}/_{name}.so,,", f"{info.name}/METADATA,,", f"{info.name}/RECORD,,"]
    rows += [f"{name}.libs/libopenblas-0a1b.so,,", f"{info.name}/variant.json,,"]
    (info / "RECORD").write_text("\n".join(rows) + "\n")
    return info


def _dist_info_format(root: Path) -> Format:
    site = root / "lib/python3.11/site-packages"
    infos = [_dist_info(site, "alpha"), _dist_info(site, "beta")]
    (root / "pyvenv.cfg").write_text("home = /usr/bin\n")
    targets: list[Target] = []
    for info in infos:
        for name, kind, named in (
            ("RECORD", "lines", ""),
            ("METADATA", "lines", ""),
            ("INSTALLER", "lines", ""),
            ("variant.json", "json", "json"),
            ("sboms/auditwheel.cdx.json", "json", "json"),
            ("direct_url.json", "json", ""),
        ):
            path = info / name
            targets.append(Target(path, kind, [path.read_bytes()], named))
    return Format("dist-info", root, targets, _scan_reader(root))


def _ledger_format(prefix: Path) -> Format:
    from vbridge.destinations.annotate import annotate_environment, clean_environment
    from vbridge.scan import scan_environment

    annotate_environment(scan_environment(prefix))
    ledger = prefix / ".vbridge" / "ledger.json"
    assert ledger.is_file()
    scan = _scan_reader(prefix)

    def read() -> Outcome:
        clean_environment(prefix, dry_run=True)
        return scan()

    return Format("ledger", prefix, [Target(ledger, "json", [ledger.read_bytes()], "json")], read)


def _wheel_format(root: Path) -> Format:
    from vbridge.adapters.wheel import wheel_record

    wheel = root / "gamma-1.0-cp311-cp311-linux_x86_64.whl"
    root.mkdir(parents=True)
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(ELF, "gamma/_gamma.so")
        zf.write(ELF, "gamma.libs/libopenblas-0a1b.so")
        zf.writestr("gamma-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: gamma\n")
        zf.writestr("gamma-1.0.dist-info/variant.json", json.dumps(
            {"variants": {"abc": {"blas_lapack": {"provider": ["openblas"]}}}}))
        zf.writestr("gamma-1.0.dist-info/sboms/auditwheel.cdx.json", json.dumps(
            {"components": [{"name": "libopenblas"}]}))
        zf.writestr("gamma-1.0.dist-info/RECORD", "")
    bomb = root / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb/_big.so", b"\x7fELF" + bytes(20 * 1024 * 1024))

    def read() -> Outcome:
        try:
            facts = wheel_record(wheel).extra
            dict(facts)
        except ValueError as exc:  # the documented refusal: the caller names the wheel
            return Outcome([f"{wheel}: {exc}"])
        return Outcome([])

    target = Target(wheel, "zip", [wheel.read_bytes(), bomb.read_bytes()], "")
    return Format("wheel", root, [target], read)


@pytest.fixture(scope="module")
def formats(
    tmp_path_factory: pytest.TempPathFactory, mkl_channel: Path, conda_cache: Path
) -> Iterator[list[Format]]:
    import condaenv

    base = tmp_path_factory.mktemp("fuzz")
    cache_home = base / "cache"
    saved = {k: os.environ.get(k) for k in ("XDG_CACHE_HOME", "VBRIDGE_NO_CACHE", "VBRIDGE_FSYNC")}
    os.environ["XDG_CACHE_HOME"] = str(cache_home)
    os.environ["VBRIDGE_FSYNC"] = "0"
    prefix = condaenv.install(mkl_channel, ["numpy", "libblas=*=*mkl"], base / "conda", conda_cache)
    annotated = base / "annotated"
    shutil.copytree(prefix, annotated, symlinks=True)
    cached = base / "cached"
    shutil.copytree(prefix, cached, symlinks=True)
    built = [_record_cache_format(cached, cache_home)]
    os.environ["VBRIDGE_NO_CACHE"] = "1"
    built += [
        _conda_format(prefix),
        _spack_format(base / "spack"),
        _debian_format(base / "debian"),
        _dist_info_format(base / "venv"),
        _ledger_format(annotated),
        _wheel_format(base / "wheel"),
    ]
    yield built
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


# --- the cases ---------------------------------------------------------------------------


def _write_case(rng: random.Random, target: Target) -> bytes | None:
    """Put a mutated file (or, one time in 40, a FIFO) at the target; its bytes."""
    if target.path.exists() or target.path.is_symlink():
        target.path.unlink()
    if rng.random() < 1 / 40:
        os.mkfifo(target.path)
        return None
    data = mutate(rng, rng.choice(target.seeds), target.kind)
    target.path.write_bytes(data)
    return data


def _restore(target: Target, original: bytes | None) -> None:
    if target.path.exists() or target.path.is_symlink():
        target.path.unlink()
    if original is not None:
        target.path.write_bytes(original)


def _run_case(fmt: Format, target: Target, data: bytes | None, label: str, fig: Figures) -> None:
    fig.cases += 1
    signal.setitimer(signal.ITIMER_REAL, 10)
    sources: set[str | None] = set()
    try:
        outcome = fmt.read()
        problems, sources = outcome.problems, outcome.sources
    except Hang:
        fig.hangs.append(label)
        return
    except VbridgeError as exc:
        text = str(exc)
        if "\n" in text or not text:
            fig.crashes.append(f"{label}: a refusal of more than one line: {text!r}")
        fig.refused += 1
        problems = [text]
    except Exception as exc:
        where = traceback.extract_tb(exc.__traceback__)[-1]
        fig.crashes.append(
            f"{label}: {type(exc).__name__}: {str(exc)[:200]} "
            f"({Path(where.filename).name}:{where.lineno})"
        )
        if os.environ.get("VBRIDGE_FUZZ_KEEP") and data is not None:
            (Path(os.environ["VBRIDGE_FUZZ_KEEP"]) / label.replace(" ", "_")).write_bytes(data)
        return
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    if problems:
        fig.reported += 1
    for line in problems:
        if "\n" in line:
            fig.crashes.append(f"{label}: a problem of more than one line: {line!r}")
    named = any(str(target.path) in line for line in problems)
    if target.must_name == "read" and not named and str(target.path) not in sources:
        fig.unnamed.append(f"{label}: {target.path} neither read nor named: {problems[:3]}")
    if target.must_name == "json" and (data is None or not is_json(data)) and not named:
        shown = "a FIFO" if data is None else repr(data[:120])
        if os.environ.get("VBRIDGE_FUZZ_KEEP") and data is not None:
            keep = Path(os.environ["VBRIDGE_FUZZ_KEEP"]) / label.replace(" ", "_")
            keep.write_bytes(data)
        fig.unnamed.append(f"{label}: no problem names {target.path} ({shown}): {problems[:3]}")


def test_fuzz_every_format(formats: list[Format]) -> None:
    """>= 2,000 mutated files across the formats: no crash, no hang, each one named."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    rng = random.Random(SEED)
    figures: dict[str, Figures] = {}
    started = time.perf_counter()
    try:
        for fmt in formats:
            fig = figures[fmt.name] = Figures()
            for case in range(fmt.cases):
                target = rng.choice(fmt.targets)
                original = target.path.read_bytes() if target.path.exists() else None
                label = f"seed {SEED} {fmt.name} case {case} {target.path.name}"
                try:
                    data = _write_case(rng, target)
                    _run_case(fmt, target, data, label, fig)
                finally:
                    _restore(target, original)
    finally:
        signal.signal(signal.SIGALRM, previous)
    seconds = time.perf_counter() - started
    total = sum(f.cases for f in figures.values())
    for name, fig in figures.items():
        print(
            f"fuzz {name}: {fig.cases} cases, {fig.refused} refused in one line, "
            f"{fig.reported} with problems reported, {len(fig.crashes)} crashes, "
            f"{len(fig.hangs)} hangs, {len(fig.unnamed)} unnamed"
        )
    print(f"fuzz: {total} cases in {seconds:.1f} s (seed {SEED})")
    crashes = [c for f in figures.values() for c in f.crashes]
    hangs = [h for f in figures.values() for h in f.hangs]
    unnamed = [u for f in figures.values() for u in f.unnamed]
    assert total >= 2000 or CASES < 400
    assert not crashes, "\n".join(crashes[:20])
    assert not hangs, "\n".join(hangs[:20])
    assert not unnamed, "\n".join(unnamed[:20])


SAMPLE = 14  # cases run through the console script (each a process: ~0.5 s)


def test_a_sample_through_the_command_line(formats: list[Format]) -> None:
    """The same kind of cases, as a user meets them: exit 0/1/2, never a traceback."""
    rng = random.Random(SEED + 1)
    commands: dict[str, Callable[[Format], list[str]]] = {
        "wheel": lambda f: ["check", str(f.root / "prefix"), "--candidate", str(f.targets[0].path)],
        "ledger": lambda f: ["clean", "--dry-run", str(f.root)],
    }
    failures: list[str] = []
    for case in range(SAMPLE):
        fmt = formats[case % len(formats)]
        target = rng.choice(fmt.targets)
        original = target.path.read_bytes() if target.path.exists() else None
        if fmt.name == "wheel":
            (fmt.root / "prefix/lib/python3.11/site-packages").mkdir(parents=True, exist_ok=True)
        command = commands.get(fmt.name)
        args = command(fmt) if command is not None else ["scan", "--json", str(fmt.root)]
        try:
            _write_case(rng, target)
            result = subprocess.run(
                [VBRIDGE, *args], capture_output=True, text=True, timeout=60, env=os.environ
            )
        except subprocess.TimeoutExpired:
            failures.append(f"{fmt.name} case {case}: hung")
            continue
        finally:
            _restore(target, original)
        if result.returncode not in (0, 1, 2) or "Traceback" in result.stderr:
            failures.append(f"{fmt.name} case {case}: exit {result.returncode}: {result.stderr}")
        bad = [
            line for line in result.stderr.splitlines()
            if line and not line.startswith("vbridge")
        ]
        if bad:
            failures.append(f"{fmt.name} case {case}: stderr lines not vbridge's: {bad[:3]}")
    assert not failures, "\n".join(failures)


def test_the_mutator_is_seeded() -> None:
    data = json.dumps({"name": "x", "depends": ["a"], "files": ["b"]}).encode()
    first = [mutate(random.Random(7), data, "json") for _ in range(3)]
    assert first == [mutate(random.Random(7), data, "json") for _ in range(3)]
    assert any(not is_json(mutate(random.Random(s), data, "json")) for s in range(50))


def test_what_the_fuzzer_found_stays_fixed(tmp_path: Path) -> None:
    """Cases the mutator found, kept as they were (seed 13: a v1 specfile with no node)."""
    from vbridge.adapters.spack import read_specfile

    spec = tmp_path / ".spack" / "spec.json"
    spec.parent.mkdir()
    spec.write_text('{"spec": [], "buildcache_layout_version": 2}')
    with pytest.raises(VbridgeError, match="Spack specfile without nodes"):
        read_specfile(spec, root_only=True)

"""The conda adapter's record cache: unchanged records are not parsed again, changed
ones are, and a scan with the cache says exactly what a scan without it says. Prefixes
are real (py-rattler from a local channel, tests/condaenv.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CondaPrefixFactory, mark_newest_used
from vbridge.adapters import conda
from vbridge.destinations.report import to_document
from vbridge.scan import scan_environment


def age(root: Path, seconds: int = 3600) -> None:
    """Every mtime under ``root`` an hour back: records this old are cached (a record
    changed within the last second is not: its mtime may not move on the next change)."""
    when = time.time() - seconds
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + dirnames:
            os.utime(os.path.join(dirpath, name), (when, when), follow_symlinks=False)


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    monkeypatch.delenv("VBRIDGE_NO_CACHE", raising=False)
    return home


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the records the adapter actually decodes."""
    calls: list[int] = []
    real = conda.read_fields

    def counting(data: bytes, path: Path | str = "record") -> conda.PrefixRecordFields:
        calls.append(len(data))
        return real(data, path)

    monkeypatch.setattr(conda, "read_fields", counting)
    return calls


def _document(prefix: Path) -> dict[str, object]:
    return to_document([scan_environment(prefix)])


def test_unchanged_records_are_not_parsed_again(
    mkl_channel: Path, conda_prefix: CondaPrefixFactory, cache_home: Path, parses: list[int]
) -> None:
    prefix = conda_prefix(mkl_channel, ["scipy", "h5py", "libblas=*=*mkl"])
    age(prefix)
    count = len(list((prefix / "conda-meta").glob("*.json")))
    cold = _document(prefix)
    assert len(parses) == count
    (cache_file,) = (cache_home / "vbridge" / "conda-records").glob("*.json")
    assert json.loads(cache_file.read_text())["prefix"] == os.path.realpath(prefix)
    warm = _document(prefix)
    assert len(parses) == count  # nothing parsed the second time
    assert warm == cold

    # The same prefix through a symlink: one cache, paths as given.
    link = prefix.parent / "link-to-env"
    link.symlink_to(prefix)
    through_link = scan_environment(link)
    assert len(parses) == count
    numpy = next(d for d in through_link.distributions if d.name == "numpy")
    assert numpy.owner_record is not None
    assert all(str(p).startswith(str(link)) for p in numpy.owner_record.python_dists)


def test_a_rewrite_that_puts_size_and_mtime_back_is_read_again(
    mkl_channel: Path, conda_prefix: CondaPrefixFactory, cache_home: Path, parses: list[int]
) -> None:
    prefix = conda_prefix(mkl_channel, ["numpy", "libblas=*=*mkl"])
    age(prefix)
    _document(prefix)
    parses.clear()
    (libblas,) = (prefix / "conda-meta").glob("libblas-*.json")
    data = libblas.read_bytes()
    st = libblas.stat()
    build = json.loads(data)["build"]
    assert build.endswith("mkl")
    rewritten = data.replace(f'"{build}"'.encode(), f'"{build[:-3]}xyz"'.encode())
    assert len(rewritten) == len(data) and rewritten != data
    libblas.write_bytes(rewritten)
    os.utime(libblas, ns=(st.st_atime_ns, st.st_mtime_ns))  # size and mtime as they were
    env = scan_environment(prefix)
    assert len(parses) == 1  # its ctime moved: read again
    assert next(r for r in env.records if r.name == "libblas").build == f"{build[:-3]}xyz"


def test_changed_added_and_removed_records(
    mkl_channel: Path, conda_prefix: CondaPrefixFactory, cache_home: Path, parses: list[int]
) -> None:
    prefix = conda_prefix(mkl_channel, ["numpy", "libblas=*=*mkl"])
    age(prefix)
    _document(prefix)
    parses.clear()
    meta = prefix / "conda-meta"
    (libblas,) = meta.glob("libblas-*.json")
    record = json.loads(libblas.read_text())
    record["build"] = "20_linux64_openblas"
    libblas.write_text(json.dumps(record))
    an_hour_ago = time.time() - 3600
    os.utime(libblas, (an_hour_ago, an_hour_ago))
    (llvm,) = meta.glob("llvm-openmp-*.json")
    llvm.unlink()
    env = scan_environment(prefix)
    assert len(parses) == 1  # only the rewritten record
    libblas_record = next(r for r in env.records if r.name == "libblas")
    assert libblas_record.build == "20_linux64_openblas"
    assert not any(r.name == "llvm-openmp" for r in env.records)
    (cache_file,) = (cache_home / "vbridge" / "conda-records").glob("*.json")
    cached = json.loads(cache_file.read_text())["records"]
    assert llvm.name not in cached and libblas.name in cached
    # What is cached is what parse_record reads, not the file lists' hashes and sizes.
    assert "paths_data" not in cached[libblas.name][4]


def test_records_changed_just_now_are_not_cached(
    mkl_channel: Path, conda_prefix: CondaPrefixFactory, cache_home: Path, parses: list[int]
) -> None:
    prefix = conda_prefix(mkl_channel, ["numpy", "libblas=*=*mkl"])
    age(prefix)
    (fresh,) = (prefix / "conda-meta").glob("numpy-*.json")
    os.utime(fresh)  # modified now
    _document(prefix)
    parses.clear()
    _document(prefix)
    assert len(parses) == 1  # the fresh one is read again, until it is a second old


def test_broken_cache_and_no_cache(
    tmp_path: Path,
    mkl_channel: Path,
    conda_prefix: CondaPrefixFactory,
    cache_home: Path,
    parses: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prefix = conda_prefix(mkl_channel, ["numpy", "libblas=*=*mkl"])
    age(prefix)
    cold = _document(prefix)
    (cache_file,) = (cache_home / "vbridge" / "conda-records").glob("*.json")
    cache_file.write_text('{"format": 1, "prefix": "' + os.path.realpath(prefix) + '", "rec')
    parses.clear()
    assert _document(prefix) == cold  # an unreadable cache is an empty one...
    assert parses
    json.loads(cache_file.read_text())  # ...and is written anew

    monkeypatch.setenv("VBRIDGE_NO_CACHE", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "other-cache"))
    parses.clear()
    assert _document(prefix) == cold
    _document(prefix)
    assert len(parses) == 2 * (len(list((prefix / "conda-meta").glob("*.json"))) + 1)
    # (+1: the python record, read again for its site-packages path)
    assert not (tmp_path / "other-cache").exists()


def test_cache_file_read_once_per_scan_and_again_when_another_process_wrote_it(
    mkl_channel: Path,
    conda_prefix: CondaPrefixFactory,
    cache_home: Path,
    parses: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prefix = conda_prefix(mkl_channel, ["numpy", "libblas=*=*mkl"])
    age(prefix)
    cold = _document(prefix)
    loads: list[int] = []
    from vbridge.typed_json import decode as real_decode

    def counting_decode(data: bytes, into: type[object]) -> object:
        if into is conda._CacheFile:
            loads.append(len(data))
        return real_decode(data, into)

    monkeypatch.setattr(conda, "decode", counting_decode)
    parses.clear()
    assert _document(prefix) == cold
    assert parses == [] and loads == []  # the file this process wrote, unchanged
    # Another process rewrites the file (here: an empty cache of the same prefix).
    (cache_file,) = (cache_home / "vbridge" / "conda-records").glob("*.json")
    stored = json.loads(cache_file.read_text())
    emptied = json.dumps({**stored, "records": {}})
    cache_file.write_text(emptied)
    assert _document(prefix) == cold
    assert loads == [len(emptied)]  # read again, once
    assert len(parses) == len(list((prefix / "conda-meta").glob("*.json")))


FIXTURES = Path(__file__).parent / "fixtures"


def _fixture_records() -> list[Path]:
    found = []
    for path in sorted(FIXTURES.rglob("conda-meta/*.json")):
        try:
            if isinstance(json.loads(path.read_bytes()), dict):
                found.append(path)
        except ValueError:
            continue
    return found


def test_what_is_cached_gives_the_record_the_file_gives() -> None:
    """A cache entry keeps one file per metadata directory: the record built from it
    is the one built from the whole file, for every real record in the fixtures."""
    records = _fixture_records()
    owning = 0
    for path in records:
        try:
            data = conda.read_fields(path.read_bytes())
        except ValueError:
            continue  # a deliberately mistyped record
        prefix = path.parent.parent
        full = conda.parse_record(prefix, path, data)
        kept = conda._essentials(data)
        assert conda.parse_record(prefix, path, kept) == full, path
        # One file per metadata directory is kept, not the directory's every file.
        assert len(kept.files or []) == len(full.python_dists), path
        owning += bool(full.python_dists)
    assert len(records) > 40 and owning > 10


def test_the_digest_is_hashlibs_for_small_and_large_contents() -> None:
    """:func:`vbridge.safefs.sha256_hex` (the record cache's file name, RECORD rows, the
    ledger): hashlib's SHA-256, from the built-in implementation for a small content
    and OpenSSL's for a large one, inside a run's memory of digests too."""
    import hashlib

    from vbridge.safefs import remembered_digests, sha256_hex

    contents = [
        t.encode("utf-8", "surrogateescape")
        for t in ("/opt/conda/envs/x", "/tmp/é ü", "/a/\udcff", "")
    ]
    contents += [b"x" * (16 * 1024 - 1), b"y" * (16 * 1024), bytes(range(256)) * 4096]
    for data in contents:
        assert sha256_hex(data) == hashlib.sha256(data).hexdigest()
    with remembered_digests():
        for data in contents * 2:
            assert sha256_hex(data) == hashlib.sha256(data).hexdigest()


def test_openssl_is_loaded_only_once_a_process_hashes_much() -> None:
    """A process that hashes a few contents (a post-link hook: its conda-meta record
    about three times, RECORD rows) does it with CPython's built-in SHA-256, without
    loading OpenSSL's library; past 512 KiB of contents of 16 KiB or more, hashlib's
    OpenSSL: the same digests either way."""
    code = (
        "import sys\n"
        "from vbridge.safefs import sha256_digest, sha256_hex\n"
        "seen = []\n"
        "for size in (10, 150_000, 150_001, 150_002, 20, 100_000, 30, 5_000_000):\n"
        "    data = bytes(range(256)) * (size // 256) + b'x' * (size % 256)\n"
        "    seen.append((size, sha256_hex(data), '_hashlib' in sys.modules))\n"
        "print(repr((seen, sha256_digest(b'abc').hex())))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    import ast
    import hashlib

    seen, digest = ast.literal_eval(result.stdout)
    assert digest == hashlib.sha256(b"abc").hexdigest()
    for size, hex_digest, _ in seen:
        data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        assert hex_digest == hashlib.sha256(data).hexdigest()
    # 450,003 bytes within the budget; 100,000 more past it.
    assert [loaded for *_, loaded in seen] == [False] * 5 + [True] * 3


def test_the_built_in_sha256_is_looked_for_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hook hashes ~20 small contents: the built-in module is imported once, not
    looked up (on Python 3.11, ``_sha2`` searched for on every sys.path entry) per
    content."""
    import hashlib
    import importlib

    from vbridge import safefs

    monkeypatch.setattr(safefs, "_BUILTIN_SHA256", safefs._UNKNOWN)
    asked: list[str] = []
    real = importlib.import_module

    def counting(name: str, package: str | None = None) -> object:
        asked.append(name)
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", counting)
    for data in (b"a", b"b" * 100, b"c" * 1000):
        assert safefs.sha256_hex(data) == hashlib.sha256(data).hexdigest()
    assert asked == ["_sha2" if sys.version_info >= (3, 12) else "_sha256"]


def test_the_cache_keeps_the_prefixes_scanned_last(
    mkl_channel: Path,
    conda_prefix: CondaPrefixFactory,
    cache_home: Path,
    parses: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One cache file per prefix, the directory pruned to the prefixes scanned last
    (here two): a prefix pruned away is parsed again, one kept is not."""
    monkeypatch.setattr(conda, "_CACHED_PREFIXES", 2)
    built = conda_prefix(mkl_channel, ["numpy", "libblas=*=*mkl"])
    copies = []
    for number in range(3):
        copy = built.parent / f"copy-{number}"
        shutil.copytree(built, copy, symlinks=True)
        age(copy)
        copies.append(copy)
    count = len(list((built / "conda-meta").glob("*.json")))
    files = cache_home / "vbridge" / "conda-records"
    for number, copy in enumerate(copies):
        scan_environment(copy)
        mark_newest_used(list(files.glob("*.json")), number)
    assert len(parses) == 3 * count
    assert len(list(files.glob("*.json"))) == 2
    scan_environment(copies[2])
    scan_environment(copies[1])
    assert len(parses) == 3 * count  # kept
    scan_environment(copies[0])
    assert len(parses) == 4 * count  # pruned: parsed again
    assert len(list(files.glob("*.json"))) == 2

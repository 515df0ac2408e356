"""The ledger (vbridge/destinations/ledger.py): what vbridge wrote into an environment,
its backups of edited files, and its refusal of a ledger that would act outside."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from vbridge.destinations.ledger import (
    DistEntry,
    EditEntry,
    EnvironmentFileEntry,
    Ledger,
    LedgerStore,
    state_dir,
)
from vbridge.errors import RecordError, UnsafePath

DIST = "lib/python3.12/site-packages/six-1.17.0.dist-info"
RECORD = f"{DIST}/RECORD"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _ledger() -> Ledger:
    ledger = Ledger()
    ledger.distributions[DIST] = DistEntry(
        files={f"{DIST}/variant.json": [_digest(b"{}")]}, dirs=[f"{DIST}/sboms"], edits=[RECORD]
    )
    ledger.edited[RECORD] = EditEntry(_digest(b"original"), [_digest(b"edited")])
    return ledger


def test_bytes_round_trip_sorted_and_stable() -> None:
    data = _ledger().to_bytes()
    assert Ledger.from_bytes(data) == _ledger()
    assert Ledger.from_bytes(data).to_bytes() == data
    document = json.loads(data)
    assert document["format"] == 1 and list(document) == sorted(document)
    assert data.endswith(b"}\n") and data.startswith(b'{\n  "distributions"')


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(format=2), "ledger format 2 is not 1"),
        (lambda d: d["distributions"][DIST].update(files={"../../etc/passwd": []}),
         "not a path inside the environment"),
        (lambda d: d["distributions"][DIST].update(dirs=["/etc"]),
         "not a path inside the environment"),
        (lambda d: d["edited"][RECORD].update(original="not-a-digest"), "where a SHA-256"),
        (lambda d: d.update(edited={}), "keeps no original of it"),
        (lambda d: d["distributions"][DIST].update(files=[]), "not readable"),
    ],
)
def test_a_ledger_that_would_act_outside_or_is_damaged_is_refused(
    change: object, message: str, tmp_path: Path
) -> None:
    document = json.loads(_ledger().to_bytes())
    change(document)  # type: ignore[operator]
    with pytest.raises(RecordError, match=message) as info:
        Ledger.from_bytes(json.dumps(document).encode(), tmp_path / "ledger.json")
    assert str(info.value).startswith(f"{tmp_path / 'ledger.json'}: ")
    assert "\n" not in str(info.value)


def test_malformed_json_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(RecordError, match="the vbridge ledger is not readable"):
        Ledger.from_bytes(b"{ not json", tmp_path / "ledger.json")


def test_state_directories() -> None:
    assert state_dir(Path("/opt/env")) == Path("/opt/env/.vbridge")
    assert state_dir(Path("/")) == Path("/var/lib/vbridge")
    assert state_dir(Path("/usr")) == Path("/var/lib/vbridge/usr")


def test_store_saves_only_changes_and_loads_what_it_saved(tmp_path: Path) -> None:
    store = LedgerStore.of(tmp_path)
    assert store.load() == Ledger()  # no ledger yet: empty
    assert store.save(_ledger()) is True
    assert store.path == tmp_path / ".vbridge" / "ledger.json"
    assert store.load() == _ledger()
    mtime = store.path.stat().st_mtime_ns
    assert store.save(_ledger()) is False and store.path.stat().st_mtime_ns == mtime


def test_backups_keep_bytes_and_mtime_and_are_pruned(tmp_path: Path) -> None:
    store = LedgerStore.of(tmp_path)
    digest = store.backup(b"original", mtime_ns=1_600_000_000_000_000_000)
    assert digest == _digest(b"original")
    assert store.original(digest) == b"original"
    assert store.original_mtime(digest) == 1_600_000_000_000_000_000
    assert store.backup(b"original") == digest  # kept once
    other = store.backup(b"unused")
    (store.backups / digest).write_bytes(b"damaged")
    assert store.original(digest) is None  # a damaged backup is never restored
    store.prune_backups(_ledger())
    assert sorted(os.listdir(store.backups)) == [digest] and other != digest
    store.prune_backups(Ledger())
    assert not store.backups.exists()


def test_a_state_directory_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = tmp_path / "env"
    env.mkdir()
    os.symlink(elsewhere, env / ".vbridge")
    with pytest.raises(UnsafePath, match="a symlink or not a directory"):
        LedgerStore.of(env).check()


def test_a_copy_is_what_a_round_trip_through_bytes_gives() -> None:
    """Ledger.copy (annotate's intent and final ledgers): keys in order, each list
    sorted and without duplicates, the same as from_bytes(to_bytes())."""
    ledger = _ledger()
    other = "lib/python3.12/site-packages/abc-1.0.dist-info"
    ledger.distributions[other] = DistEntry(
        files={f"{other}/z": [_digest(b"2"), _digest(b"1"), _digest(b"2")], f"{other}/a": []},
        dirs=[f"{other}/sboms", f"{other}/sboms", f"{other}/a"],
        edits=[RECORD, RECORD],
    )
    ledger.edited[RECORD].written += [_digest(b"a"), _digest(b"edited")]
    ledger.environment["pip.conf"] = EnvironmentFileEntry(None, [_digest(b"y"), _digest(b"x")])
    copy = ledger.copy()
    round_trip = Ledger.from_bytes(ledger.to_bytes())
    assert copy == round_trip and copy.to_bytes() == ledger.to_bytes()
    assert list(copy.distributions) == list(round_trip.distributions)
    assert list(copy.distributions[other].files) == list(round_trip.distributions[other].files)
    copy.distributions[DIST].files[f"{DIST}/variant.json"].append("changed")
    assert ledger.distributions[DIST].files[f"{DIST}/variant.json"] == [_digest(b"{}")]

"""vbridge.parsed_toml: TOML files kept parsed while they are unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import mark_newest_used
from vbridge import parsed_toml
from vbridge.errors import RuleError
from vbridge.parsed_toml import load_toml
from vbridge.rules import data_path

tomllib = parsed_toml.toml_module()  # tomli before Python 3.11
DATA_FILES = sorted(data_path("conda.toml").parent.glob("*.toml"))


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("VBRIDGE_NO_CACHE", raising=False)


def _kept_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "cache" / "vbridge" / "toml").glob("*.marshal"))


def _aged(path: Path, text: str) -> Path:
    """``path`` written with ``text``, its mtime two seconds back (not racily clean)."""
    path.write_text(text, encoding="utf-8")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - 2_000_000_000))
    return path


def _same(a: object, b: object) -> bool:
    """Equal, with the same types and key order all the way down."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        assert isinstance(b, list)
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b or (a != a and b != b)  # NaN


@pytest.mark.parametrize("path", DATA_FILES, ids=lambda p: p.name)
def test_every_data_file_is_given_back_as_tomllib_parses_it(path: Path, tmp_path: Path) -> None:
    expected = tomllib.loads(path.read_text(encoding="utf-8"))
    first = load_toml(path)
    assert _same(first, expected)
    if _kept_files(tmp_path):  # not when the file changed in the last second
        assert _same(load_toml(path), expected)


def test_kept_data_has_the_parsed_types_and_order(tmp_path: Path) -> None:
    text = (
        'z = "last first"\nb = true\ni = 9223372036854775808\nn = -0.0\nf = nan\n'
        'g = inf\nx = 1.0000000000000002\n[t]\na = [1, "2", [3.5], {k = "v"}]\n'
        '[[rows]]\nq = 1\n[[rows]]\nq = 2\nu = "\\u00e9\\U0001F600"\n'
    )
    path = _aged(tmp_path / "r.toml", text)
    expected = tomllib.loads(text)
    assert _same(load_toml(path), expected)
    assert len(_kept_files(tmp_path)) == 1
    assert _same(load_toml(path), expected)


def test_a_kept_file_is_read_without_importing_tomllib(tmp_path: Path) -> None:
    path = _aged(tmp_path / "r.toml", '[a]\nb = "c"\n')
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from vbridge.parsed_toml import load_toml\n"
        f"print(load_toml(Path({str(path)!r})), 'tomllib' in sys.modules)\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("VBRIDGE_NO_CACHE", None)
    runs = [
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        ).stdout
        for _ in range(2)
    ]
    assert runs == ["{'a': {'b': 'c'}} True\n", "{'a': {'b': 'c'}} False\n"]


def test_a_changed_file_is_parsed_again(tmp_path: Path) -> None:
    path = _aged(tmp_path / "r.toml", 'a = "one"\n')
    assert load_toml(path) == {"a": "one"}
    # The same size and mtime: the ctime still tells the change.
    st = path.stat()
    path.write_text('a = "two"\n', encoding="utf-8")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert load_toml(path) == {"a": "two"}
    # Replaced by another file (another inode) of the same size and mtime.
    other = _aged(tmp_path / "other.toml", 'a = "six"\n')
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(other, path)
    assert load_toml(path) == {"a": "six"}


def test_what_is_not_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Changed less than a second ago: parsed, not kept.
    fresh = tmp_path / "fresh.toml"
    fresh.write_text("a = 1\n", encoding="utf-8")
    assert load_toml(fresh) == {"a": 1}
    assert _kept_files(tmp_path) == []
    # Dates and times, which marshal cannot hold: parsed each time.
    dated = _aged(tmp_path / "dated.toml", "d = 1979-05-27\nt = 07:32:00\n")
    assert load_toml(dated) == tomllib.loads(dated.read_text())
    assert _kept_files(tmp_path) == []
    # VBRIDGE_NO_CACHE=1.
    monkeypatch.setenv("VBRIDGE_NO_CACHE", "1")
    plain = _aged(tmp_path / "plain.toml", "a = 2\n")
    assert load_toml(plain) == {"a": 2}
    assert _kept_files(tmp_path) == []


def test_a_damaged_or_foreign_kept_file_is_a_miss(tmp_path: Path) -> None:
    path = _aged(tmp_path / "r.toml", "a = 1\n")
    assert load_toml(path) == {"a": 1}
    (kept,) = _kept_files(tmp_path)
    for damage in (b"", b"\x00garbage", kept.read_bytes()[:-3]):
        kept.write_bytes(damage)
        assert load_toml(path) == {"a": 1}
    # Writable by others: marshal data is trusted data, so it is not read.
    st = path.stat()
    key = (parsed_toml._FORMAT, sys.version_info[:2], str(path), *parsed_toml._signature(st))
    import marshal

    kept.write_bytes(marshal.dumps((key, {"a": "forged"})))
    assert load_toml(path) == {"a": "forged"}  # the file is the user's own: read
    kept.chmod(0o666)
    assert load_toml(path) == {"a": 1}


def test_a_rule_file_that_is_not_toml_is_a_rule_error(tmp_path: Path) -> None:
    from vbridge.rules import _load_toml

    bad = _aged(tmp_path / "bad.toml", "a = \n")
    with pytest.raises(RuleError, match=r"bad\.toml"):
        _load_toml(bad, str(bad))
    assert _load_toml(tmp_path / "missing.toml", "missing") == {}
    undecodable = tmp_path / "latin1.toml"
    undecodable.write_bytes(b'a = "\xe9"\n')
    with pytest.raises(UnicodeDecodeError):
        _load_toml(undecodable, str(undecodable))


def test_kept_files_are_pruned_to_those_read_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With room for two, keeping a third file's parse removes the first's: read again,
    it is parsed again (tomllib is needed), the second is still given back kept."""
    monkeypatch.setattr(parsed_toml, "_KEPT_FILES", 2)
    paths = [_aged(tmp_path / f"f{n}.toml", f"number = {n}\n") for n in range(3)]
    for number, path in enumerate(paths):
        assert load_toml(path) == {"number": number}
        mark_newest_used(_kept_files(tmp_path), number)
    assert len(_kept_files(tmp_path)) == 2

    def no_tomllib() -> None:
        raise AssertionError("parsed, not given back kept")

    monkeypatch.setattr(parsed_toml, "toml_module", no_tomllib)
    assert load_toml(paths[1]) == {"number": 1}
    assert load_toml(paths[2]) == {"number": 2}
    with pytest.raises(AssertionError, match="parsed, not given back kept"):
        load_toml(paths[0])


def test_a_scan_with_the_data_files_kept_parsed_imports_no_tomllib(tmp_path: Path) -> None:
    """tomllib is for a file vbridge parses: a scan that finds its rules and policy kept
    parsed, and no policy override in the environment, does not import it."""
    prefix = Path(__file__).parent / "fixtures" / "conda" / "rattler-conda-meta"
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from vbridge.scan_report import report_environment\n"
        f"code = report_environment(Path({str(prefix)!r}), None, as_json=True, strict=False)\n"
        "print(code, 'tomllib' in sys.modules, file=sys.stderr)\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("VBRIDGE_NO_CACHE", None)
    runs = [
        subprocess.run(
            [sys.executable, "-I", "-c", code],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
            check=True,
        )
        for _ in range(2)
    ]
    assert runs[0].stdout == runs[1].stdout and '"distributions"' in runs[0].stdout
    assert [r.stderr.splitlines()[-1] for r in runs] == ["0 True", "0 False"]

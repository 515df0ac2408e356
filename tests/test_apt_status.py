"""Reading the dpkg status file: the plain-file path gives what the line-by-line path
(Deb822 for every stanza, the line accounting) gives, stanza for stanza and problem for
problem; whatever the plain path does not read itself goes line by line; the
``info/*.list`` files are read as ``read_regular(path, root=root)`` reads them.

The real Debian 12 status file (tests/fixtures/debian/status) is checked whole, then
changed in the ways a status file can be odd: continuation lines, comments, stray
words, whitespace-only lines, CR line ends, other spellings of field names, duplicate
fields, missing fields, blank lines where dpkg writes none, a cut-off end.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from debian.deb822 import Deb822
from debian_root import lay_out_fixture_root
from vbridge.adapters import apt
from vbridge.errors import UnreadableFile
from vbridge.model import RecordProblem
from vbridge.safefs import directory_files, read_regular

FIXTURE = Path(__file__).parent / "fixtures" / "debian"
STATUS_TEXT = (FIXTURE / "status").read_text(encoding="utf-8")

Read = tuple[list[tuple[int, dict[str, str]]], list[str]]


def _both(tmp_path: Path, text: str) -> tuple[Read, Read]:
    """What iter_status reads of ``text``, and what the line-by-line path reads."""
    path = tmp_path / "status"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    plain: list[RecordProblem] = []
    stanzas = [(s.line, s.fields) for s in apt.iter_status(path, plain)]
    careful: list[RecordProblem] = []
    reference = [(s.line, s.fields) for s in apt._stanzas_of(path, apt._lines_of(text), careful)]
    return (stanzas, [str(p) for p in plain]), (reference, [str(p) for p in careful])


def test_the_real_status_file_takes_the_plain_path_and_reads_the_same(tmp_path: Path) -> None:
    assert not apt._needs_line_by_line(STATUS_TEXT)  # else this test proves nothing
    fast, reference = _both(tmp_path, STATUS_TEXT)
    assert fast == reference
    assert len(fast[0]) == STATUS_TEXT.count("\nPackage: ") + 1 and not fast[1]


def test_every_fixture_stanza_reads_as_deb822_reads_it() -> None:
    """The values the plain path takes are Deb822's, field for field (all fields the
    adapter reads, in every stanza of the real file)."""
    path = FIXTURE / "status"
    stanzas = list(apt._plain_stanzas(path, STATUS_TEXT, []))
    paragraphs = STATUS_TEXT.split("\n\n")
    assert len(stanzas) == len([p for p in paragraphs if p.strip()])
    for stanza, paragraph in zip(stanzas, (p for p in paragraphs if p.strip()), strict=True):
        parsed = Deb822(paragraph.splitlines())
        expected = {f: parsed[f] for f in apt._READ_FIELDS.values() if f in parsed}
        assert stanza.fields == expected


def _first_stanza_of(package: str) -> re.Match[str]:
    match = re.search(rf"(?m)^Package: {re.escape(package)}\n(?:.+\n)+", STATUS_TEXT)
    assert match is not None
    return match


def _replace_in(package: str, old: str, new: str) -> str:
    match = _first_stanza_of(package)
    stanza = match.group(0)
    assert old in stanza, (package, old)
    return STATUS_TEXT[: match.start()] + stanza.replace(old, new, 1) + STATUS_TEXT[match.end() :]


# Each change, and whether the plain path still reads that file itself.
CHANGES: dict[str, tuple[Callable[[], str], bool]] = {
    "multi-line Depends": (
        lambda: _replace_in("python3-numpy", "Depends: ", "Depends: python3 (>= 3.11),\n "),
        True,
    ),
    "multi-line Provides, tab": (
        lambda: _replace_in("python3-numpy", "Provides: ", "Provides:\n\tpython3-x,\n "),
        True,
    ),
    "multi-line Description (not read)": (lambda: STATUS_TEXT, True),
    "spaces and a tab around values": (
        lambda: _replace_in("python3-numpy", "Version: ", "Version: \t  ").replace(
            "Architecture: amd64\n", "Architecture:amd64  \t\n", 1
        ),
        True,
    ),
    "no-break space after a value": (
        lambda: _replace_in("python3-numpy", "Source: numpy", "Source: numpy\u00a0"),
        True,
    ),
    "empty Source": (lambda: _replace_in("python3-numpy", "Source: ", "Source:\nX-Was: "), True),
    "duplicate Version": (
        lambda: _replace_in("python3-numpy", "Version: ", "Version: 0.1\nVersion: "),
        True,
    ),
    "missing Version mid-file": (
        lambda: _replace_in("python3-numpy", "Version: ", "X-Version: "),
        True,
    ),
    "missing Status at the end": (
        lambda: STATUS_TEXT.rstrip("\n").rsplit("\nStatus: ", 1)[0] + "\n",
        True,
    ),
    "extra blank lines": (lambda: "\n\n" + STATUS_TEXT.replace("\n\n", "\n\n\n", 7) + "\n\n", True),
    "no blank line at the end": (lambda: STATUS_TEXT.rstrip("\n") + "\n", True),
    "empty file": (lambda: "", True),
    "lower-case field name": (
        lambda: _replace_in("python3-numpy", "Depends: ", "depends: "),
        False,
    ),
    "upper-case Package": (lambda: _replace_in("python3-scipy", "Package: ", "PACKAGE: "), False),
    "comment line": (
        lambda: _replace_in("python3-numpy", "Version: ", "# a comment\nVersion: "),
        False,
    ),
    "stray word": (lambda: _replace_in("python3-numpy", "Version: ", "oops\nVersion: "), False),
    "field name with a space before the colon": (
        lambda: _replace_in("python3-numpy", "Version: ", "Version : "),
        False,
    ),
    "whitespace-only separator": (lambda: STATUS_TEXT.replace("\n\n", "\n \n", 3), False),
    "no-break space line inside a stanza (a separator to str.strip)": (
        lambda: _replace_in("python3-numpy", "Version: ", " \u00a0\nVersion: "),
        False,
    ),
    "Kelvin sign in a field name": (
        lambda: _replace_in("python3-numpy", "Package: ", "Pac\u212aage: "),
        False,
    ),
    "tab-only line inside a stanza": (
        lambda: _replace_in("python3-numpy", "Version: ", "\t\nVersion: "),
        False,
    ),
    "continuation line opening a stanza": (
        lambda: STATUS_TEXT.replace(
            "\n\nPackage: python3-numpy\n", "\n\n more\nPackage: python3-numpy\n"
        ),
        False,
    ),
    "continuation line opening the file": (lambda: " more\n" + STATUS_TEXT, False),
    "CRLF line ends": (lambda: STATUS_TEXT.replace("\n", "\r\n"), False),
    "CR after one value": (
        lambda: _replace_in("python3-numpy", "Architecture: amd64", "Architecture: amd64\r"),
        True,
    ),
    "cut off mid-line": (lambda: STATUS_TEXT[: STATUS_TEXT.rindex("\nVersion: ") + 12], False),
    "cut off at a line end": (lambda: STATUS_TEXT[: STATUS_TEXT.rindex("\nVersion: ") + 1], True),
    "invalid UTF-8": (
        lambda: _replace_in("python3-numpy", "Version: ", "X-Bytes: \udcff\udcfe\nVersion: "),
        True,
    ),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_odd_status_files_read_as_line_by_line(tmp_path: Path, change: str) -> None:
    make, plain = CHANGES[change]
    text = make()
    decoded = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    assert apt._needs_line_by_line(decoded) is not plain
    fast, reference = _both(tmp_path, text)
    assert fast == reference


def _plain_line_by_line(text: str) -> bool:
    """Whether ``text`` is a plain status file, said line by line (the module's rules)."""
    if not text:
        return True
    if not text.endswith("\n"):
        return False  # truncated
    after_empty = True  # the file's start counts as after an empty line
    for line in text[:-1].split("\n"):
        if not line:
            after_empty = True
            continue
        if line[0] in " \t":
            if after_empty or not line.strip():  # opening a stanza, or whitespace only
                return False
        else:
            field = re.match(r"[A-Za-z0-9][A-Za-z0-9_.-]*:", line)
            if field is None:
                return False  # neither a field nor a continuation
            name = field.group()[:-1]
            if name.lower() in apt._READ_FIELDS and name not in apt._READ_FIELDS.values():
                return False  # a read field in another spelling
        after_empty = False
    return True


LINES = [
    *STATUS_TEXT.split("\n")[:300],
    *("", "", " ", "\t", " \t ", " \u00a0", "\t\u2003", "\u00a0 x", " x\u00a0", "\r", "\x0c"),
    *("#c", "a", "a:b", ":x", "-x: y", "X-Y_z.1: v", "PACKAGE: x", "Package:x", "Packages: x"),
    *("package: b", "Multi-arch: same", "pre-Depends: a", "Status: install ok installed"),
]


@pytest.mark.parametrize("seed", range(8))
def test_the_plain_file_grammar_says_what_the_line_rules_say(seed: int) -> None:
    # Texts cut from the real status file with odd lines put in: the one match of the
    # plain file's grammar decides as the rules above applied to each line.
    rng = random.Random(seed)
    plain = 0
    for _ in range(500):
        lines = STATUS_TEXT.split("\n")[: rng.randint(0, 80)]
        for _ in range(rng.choice((0, 0, 1, 2))):
            lines.insert(rng.randint(0, len(lines)), rng.choice(LINES))
        text = "\n" * rng.choice((0, 0, 1, 2)) + "\n".join(lines) + rng.choice(("", "\n", "\n\n"))
        expected = _plain_line_by_line(text)
        plain += expected
        assert apt._needs_line_by_line(text) is not expected, repr(text[-300:])
    assert 100 < plain < 450  # both kinds, many of each


def test_a_multi_line_field_is_parsed_by_deb822(tmp_path: Path) -> None:
    text = _replace_in("python3-numpy", "Depends: ", "Depends: python3 (>= 3.11),\n ")
    (stanzas, problems), _ = _both(tmp_path, text)
    numpy = next(fields for _, fields in stanzas if fields["Package"] == "python3-numpy")
    assert numpy["Depends"].startswith("python3 (>= 3.11),\n ")
    assert not problems


def test_odd_stanzas_are_reported_with_their_line(tmp_path: Path) -> None:
    """The problems the odd files give are the line-numbered ones (not just equal)."""
    line = STATUS_TEXT[: _first_stanza_of("python3-numpy").start()].count("\n") + 1
    text = _replace_in("python3-numpy", "Version: ", "X-Version: ")
    (_, problems), _ = _both(tmp_path, text)
    assert problems == [
        f"{tmp_path / 'status'}: line {line}: the stanza for python3-numpy has no Version "
        f"({apt._STATUS_HINT})"
    ]
    text = _replace_in("python3-numpy", "Version: ", "oops\nVersion: ")
    (_, problems), _ = _both(tmp_path, text)
    assert len(problems) == 1 and "not a 'Field: value' line: 'oops'" in problems[0]


# --- info/*.list ---------------------------------------------------------------------


def _careful(root: Path, name: str) -> bytes | str:
    try:
        return read_regular(root / apt.INFO / name, root=root)
    except (UnreadableFile, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"


def _cheap(root: Path, name: str) -> bytes | str:
    try:
        return directory_files(root, root / apt.INFO).read(name)
    except (UnreadableFile, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"


def test_list_files_read_as_read_regular_reads_them(tmp_path: Path) -> None:
    root = lay_out_fixture_root(tmp_path / "root")
    info = root / apt.INFO
    outside = tmp_path / "outside.list"
    outside.write_bytes(b"/etc/passwd\n")
    os.symlink(outside, info / "out.list")
    os.symlink("python3-mpi4py.list", info / "in.list")
    os.mkfifo(info / "fifo.list")
    (info / "dir.list").mkdir()
    names = sorted(directory_files(root, info).names)
    assert {"out.list", "in.list", "fifo.list", "python3-mpi4py.list"} <= set(names)
    for name in [*names, "missing.list"]:
        assert _cheap(root, name) == _careful(root, name), name
    assert _cheap(root, "in.list") == (info / "python3-mpi4py.list").read_bytes()
    assert "outside the environment" in str(_cheap(root, "out.list"))
    assert "not a regular file" in str(_cheap(root, "fifo.list"))


def test_an_info_directory_leading_out_of_the_root_is_refused(tmp_path: Path) -> None:
    root = lay_out_fixture_root(tmp_path / "root")
    elsewhere = tmp_path / "elsewhere"
    os.rename(root / apt.INFO, elsewhere)
    os.symlink(elsewhere, root / apt.INFO)
    files = directory_files(root, root / apt.INFO)
    assert "python3-mpi4py.list" in files.names
    refusal = _cheap(root, "python3-mpi4py.list")
    assert refusal == _careful(root, "python3-mpi4py.list")
    assert "outside the environment" in str(refusal)


def test_records_of_the_fixture_root_name_their_lists_dists(tmp_path: Path) -> None:
    root = lay_out_fixture_root(tmp_path / "root")
    problems: list[RecordProblem] = []
    records = {r.name: r for r in apt.read_records(root, problems)}
    # The fixture keeps the lists of the packages these tests look at, not all of them.
    assert [p.problem.split(" (")[0] for p in problems] == [
        f"no file list for {STATUS_TEXT.count('install ok installed') - 13} installed package(s)"
    ]
    mpi4py = records["python3-mpi4py"]
    assert [p.name for p in mpi4py.python_dists] == [
        line.rsplit("/", 1)[1]
        for line in (FIXTURE / "info" / "python3-mpi4py.list").read_text().splitlines()
        if re.fullmatch(r"/usr/lib/python3/dist-packages/[^/]+\.(dist|egg)-info", line)
    ]
    assert records["libblas.so.3"].extra["selected_package"] == "libopenblas0-pthread"

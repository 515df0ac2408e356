"""apt/dpkg: ``<root>/var/lib/dpkg/status``, ``info/*.list`` and ``/etc/alternatives``.

A Debian root is ``/`` or any directory laid out like one (a chroot, the ``--root`` of
dpkg). What it yields:

- one record per *installed* package of the status file (a file as dpkg writes it is
  read in one pass, its single-line fields as python-debian reads them; python-debian
  parses a stanza with a multi-line field; any other file is read line by line, which
  names the line of a malformed or truncated stanza: see ``_plain_file``),
  with ``depends`` = ``Pre-Depends`` + ``Depends`` as raw specs, ``extra["provides"]``
  (``python3-numpy-abi9``) and the ``.dist-info``/``.egg-info`` directories its
  ``info/<pkg>[:arch].list`` places in ``/usr/lib/python3/dist-packages``;
- one record per run-time alternative named in ``data/apt.toml`` (``libblas.so.3``,
  ``liblapack.so.3``): the ``/etc/alternatives`` link is resolved *inside the root*
  and the package whose ``.list`` holds the target is its ``selected_package``. The
  record is named after the virtual package, so ``Depends: libblas3 | libblas.so.3``
  reaches it and the rules give what it selects to every package that depends on it.

>>> dpkg_path_in_root(Path("/srv/chroot"), "/usr/lib/x86_64-linux-gnu/blas/libblas.so.3")
PosixPath('/srv/chroot/usr/lib/x86_64-linux-gnu/blas/libblas.so.3')
>>> split_relations("libc6 (>= 2.34), libblas3 | libblas.so.3")
('libc6 (>= 2.34)', 'libblas3 | libblas.so.3')
"""

from __future__ import annotations

import functools
import os
import re
import weakref
from collections.abc import Iterable, Iterator, Mapping
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec
from vbridge.adapters import Adapter
from vbridge.adapters._apt_roots import STATUS, find_root
from vbridge.errors import UnreadableFile
from vbridge.model import InstallRecord, RecordIndex, RecordProblem, Requirement
from vbridge.rules import dependency_names, load_data
from vbridge.safefs import DirectoryFiles, directory_files, open_regular, read_regular
from vbridge.sitepackages import split_metadata_dir_name

if TYPE_CHECKING:
    from vbridge.inventory.discover import DiscoveryConfig, Target

__all__ = [
    "ADAPTER",
    "ECOSYSTEM",
    "STATUS",
    "AlternativeChoice",
    "DebianRoot",
    "StatusStanza",
    "dpkg_path_in_root",
    "find_root",
    "iter_status",
    "pep440_of_relation",
    "read_alternatives",
    "read_records",
    "requirements",
    "resolve_in_root",
    "site_packages",
    "split_relations",
]

ECOSYSTEM = "apt"

UPDATES = Path("var/lib/dpkg/updates")
INFO = Path("var/lib/dpkg/info")
ALTERNATIVES = Path("etc/alternatives")
DIST_PACKAGES = "/usr/lib/python3/dist-packages/"

_REQUIRED = ("Package", "Status", "Version")
# The fields this adapter reads of a status stanza, by their lower-case names (field
# names are case-insensitive).
_READ_FIELDS = {
    f.lower(): f
    for f in (
        *_REQUIRED,
        "Architecture",
        "Multi-Arch",
        "Source",
        "Pre-Depends",
        "Depends",
        "Provides",
    )
}
_METADATA_SUFFIXES = (".dist-info", ".egg-info")
_METADATA_LINE_ENDS = tuple(s.encode() + b"\n" for s in _METADATA_SUFFIXES)
_DIST_PACKAGES = DIST_PACKAGES.encode()
_DIST_PACKAGES_LINE = b"\n" + _DIST_PACKAGES
_MAX_LINK_HOPS = 40
_STATUS_HINT = "that stanza is skipped; compare with /var/backups/dpkg.status.0 or run dpkg --audit"


def _data() -> Mapping[str, Any]:
    return load_data("apt")


def site_packages(root: Path) -> list[Path]:
    """Where Debian's python3 imports from: dpkg's layer, then pip's (``/usr/local``)."""
    found = [root / DIST_PACKAGES.strip("/")]
    found.extend(sorted(root.glob("usr/local/lib/python3*/dist-packages")))
    return [p for p in found if p.is_dir()]


def split_relations(value: str | None) -> tuple[str, ...]:
    """A Debian relationship field as raw specs, one per comma-separated clause."""
    if not value:
        return ()
    if value.isprintable() and "  " not in value:
        # No whitespace but single spaces (every other whitespace character is not
        # printable): a clause's runs are already single spaces, only its ends go.
        return tuple(filter(None, map(str.strip, value.split(","))))
    # Each clause with its whitespace runs as one space, empty ones left out.
    return tuple(filter(None, map(" ".join, map(str.split, value.split(",")))))


def dpkg_path_in_root(root: Path, dpkg_path: str) -> Path:
    """Where an absolute path as dpkg records it lives under ``root``."""
    return root / os.path.normpath("/" + dpkg_path).lstrip("/")


def resolve_in_root(root: Path, dpkg_path: str) -> str | None:
    """Resolve symlinks in ``dpkg_path`` as if ``root`` were ``/`` (never leaving it).

    Returns the resolved dpkg path, or None when a component does not exist (a
    dangling link) or the links loop.

    >>> resolve_in_root(Path("/nonexistent-root"), "/etc/alternatives/x") is None
    True
    """
    parts = [p for p in os.path.normpath("/" + dpkg_path).split("/") if p]
    resolved: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        if part == ".":
            continue
        candidate = root.joinpath(*resolved, part)
        if candidate.is_symlink():
            hops += 1
            if hops > _MAX_LINK_HOPS:
                return None
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p] + parts
            continue
        if not os.path.lexists(candidate):
            return None
        resolved.append(part)
    return "/" + "/".join(resolved)


# --- the status file ------------------------------------------------------------------


class StatusStanza(msgspec.Struct, frozen=True):
    """One package stanza of the status file and the line it starts on.

    ``fields`` holds the values of the fields the adapter reads (``_READ_FIELDS``), as
    python-debian's Deb822 gives them, under their usual spelling (``Multi-Arch``); not
    the others.
    """

    line: int
    fields: dict[str, str]

    @property
    def package(self) -> str:
        return str(self.fields.get("Package", ""))

    @property
    def installed(self) -> bool:
        status = str(self.fields.get("Status", ""))
        if status == "install ok installed":  # nearly every stanza: no split
            return True
        words = status.split()
        return len(words) == 3 and words[2] == "installed"


def _check_stanza(lines: list[tuple[int, str]]) -> tuple[str | None, list[str]]:
    """Why a stanza is unusable (or None; the reason names the offending line), and the
    lines of the fields in ``_READ_FIELDS`` with their continuation lines."""
    if lines[0][1][:1] in (" ", "\t"):
        return f"line {lines[0][0]}: continuation line without a field before it", []
    wanted: list[str] = []
    keep = False
    for number, text in lines:
        if text[:1] in (" ", "\t"):
            if keep:
                wanted.append(text)
            continue
        if not _field_line().match(text):
            return f"line {number}: not a 'Field: value' line: {text[:60]!r}", []
        keep = text[: text.index(":")].lower() in _READ_FIELDS
        if keep:
            wanted.append(text)
    return None, wanted


@functools.cache
def _field_line() -> re.Pattern[str]:
    """A line that starts a field (only stanzas read line by line are checked)."""
    return re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*:")


def iter_status(path: Path, problems: list[RecordProblem]) -> Iterator[StatusStanza]:
    """Every well-formed stanza of a dpkg status file, in file order.

    A malformed stanza (a line that is neither a field nor a continuation), one
    missing ``Package``/``Status``/``Version``, or the cut-off end of a truncated file
    is reported in ``problems`` with its line number and skipped; the rest is read.
    """
    try:
        raw = open_regular(path, hint="dpkg's database is not readable")
    except UnreadableFile as exc:
        problems.append(RecordProblem(path, exc.problem, exc.hint))
        return
    except OSError as exc:
        problems.append(
            RecordProblem(path, f"cannot read: {exc.strerror}", "check its permissions")
        )
        return
    data: list[bytes] = []
    failure: OSError | None = None
    with raw:
        try:
            while chunk := raw.read(1 << 22):
                data.append(chunk)
        except OSError as exc:  # what was read before the error is still read
            failure = exc
    text = b"".join(data).decode("utf-8", errors="replace")
    if _needs_line_by_line(text):
        yield from _stanzas_of(path, _lines_of(text), problems)
    else:
        yield from _plain_stanzas(path, text, problems)
    if failure is not None:
        problems.append(
            RecordProblem(path, f"cannot read: {failure.strerror}", "check its permissions")
        )


# A status file as dpkg writes it is stanzas of "Field: value" lines (Debian Policy
# 5.1, "Syntax of control files": a field name, a colon, the value; continuation lines
# begin with a space or a tab; stanzas are separated by empty lines). Such a file is
# read by _plain_stanzas: the value of a single-line field is the text after the colon
# with surrounding whitespace removed, as Deb822 gives it (tests/test_apt_status.py
# compares both on every fixture stanza); a stanza with a multi-line field that
# _READ_FIELDS names is given to Deb822. Anything else goes line by line through
# _stanzas_of, which names the offending line: a line that is neither a field nor a
# continuation (a comment, a stray word), a whitespace-only line (a separator to dpkg),
# a continuation line opening a stanza, a file not ending in a newline (truncated), or
# a field name _READ_FIELDS names spelt in another case (field names are
# case-insensitive; dpkg writes them as named there). One match from the start of the
# text decides: the plain file's grammar, every repeat possessive (no backtracking),
# reaches the end of a plain file and stops at the first line of any other.
# (The patterns are compiled at the first status file read, not at import.)
_FIELD_NAMES = "|".join(re.escape(f) for f in _READ_FIELDS.values())


@functools.cache
def _plain_file() -> re.Pattern[str]:
    """A plain status file (see above), matched from its start: empty lines, then
    stanzas of a field line followed by field and continuation lines, each stanza
    followed by empty lines."""
    field = (
        rf"(?:(?:{_FIELD_NAMES}):"  # a read field as dpkg spells it
        rf"|(?!(?ai:{_FIELD_NAMES}):)[A-Za-z0-9][A-Za-z0-9_.-]*+:)"  # any other field
        r"[^\n]*+\n"
    )
    continuation = r"[ \t][^\S\n]*+\S[^\n]*+\n"  # not whitespace only
    return re.compile(rf"\n*+(?:{field}(?:{continuation}|{field})*+\n*+)*+")


@functools.cache
def _read_field_line() -> re.Pattern[str]:
    """A single-line field as dpkg writes it; group 3: a continuation line follows (a
    multi-line value: Deb822 parses that stanza)."""
    return re.compile(rf"\n({_FIELD_NAMES}):([^\n]*)(\n[ \t])?")


def _needs_line_by_line(text: str) -> bool:
    """Whether ``text`` is not a plain status file (see above)."""
    plain = _plain_file().match(text)
    return plain is None or plain.end() != len(text)


def _lines_of(text: str) -> Iterator[str]:
    """The lines of ``text``, each with its ``\\n`` (dpkg's separator; no other)."""
    start = 0
    while (end := text.find("\n", start)) != -1:
        yield text[start : end + 1]
        start = end + 1
    if start < len(text):
        yield text[start:]


def _plain_stanzas(path: Path, text: str, problems: list[RecordProblem]) -> Iterator[StatusStanza]:
    """The stanzas of a status file ``_needs_line_by_line`` found plain, in file order."""
    read_fields = _read_field_line().findall
    # The chunks of text.split("\n\n"), by position: text[chunk:end] (no copies).
    size = len(text)
    line = 1
    chunk = 0
    while chunk <= size:
        end = text.find("\n\n", chunk)
        if end == -1:
            end = size
        start = line
        line += text.count("\n", chunk, end) + 2
        body = chunk
        while body < end and text[body] == "\n":  # more than one empty line before it
            body += 1
        start += body - chunk
        chunk = end + 2
        if body == end:
            continue
        # The fields of "\n" + the stanza: the newline before it is the text's own.
        found = read_fields(text, body - 1, end) if body else read_fields("\n" + text[:end])
        fields = {}
        multi_line = False
        for key, value, continued in found:
            fields[key] = value.strip()
            if continued:
                multi_line = True
        if multi_line or not (
            fields.get("Package") and fields.get("Status") and fields.get("Version")  # _REQUIRED
        ):
            # Deb822 reads it, or the line accounting says what is missing.
            numbered = list(enumerate(text[body:end].rstrip("\n").split("\n"), start))
            stanza = _stanza(path, numbered, problems, at_end=end == size)
            if stanza is not None:
                yield stanza
            continue
        yield StatusStanza(start, fields)


def _stanzas_of(
    path: Path, fh: Iterable[str], problems: list[RecordProblem]
) -> Iterator[StatusStanza]:
    lines: list[tuple[int, str]] = []
    number = 0
    ended_mid_line = False
    for raw in fh:
        number += 1
        ended_mid_line = not raw.endswith("\n")
        text = raw.rstrip("\n")
        if text.strip():
            lines.append((number, text))
            continue
        if lines:
            stanza = _stanza(path, lines, problems, at_end=False)
            if stanza is not None:
                yield stanza
            lines = []
    if not lines:
        return
    if ended_mid_line:
        problems.append(
            RecordProblem(
                path,
                f"line {number}: the file ends in the middle of a line of the stanza for "
                f"{_package_of(lines)} (truncated)",
                _STATUS_HINT,
            )
        )
        return
    stanza = _stanza(path, lines, problems, at_end=True)
    if stanza is not None:
        yield stanza


def _package_of(lines: list[tuple[int, str]]) -> str:
    for _, text in lines:
        if text.startswith("Package:"):
            return text.partition(":")[2].strip() or "?"
    return "an unnamed package"


def _stanza(
    path: Path, lines: list[tuple[int, str]], problems: list[RecordProblem], at_end: bool
) -> StatusStanza | None:
    start = lines[0][0]
    reason, wanted = _check_stanza(lines)
    if reason is not None:
        problems.append(
            RecordProblem(path, f"{reason} (stanza for {_package_of(lines)})", _STATUS_HINT)
        )
        return None
    from debian.deb822 import Deb822  # imported when a status file is read (30 ms)

    # Deb822 parses only the fields read here: Description, Conffiles and the rest
    # are most of a status file's lines.
    fields = {_READ_FIELDS[key.lower()]: value for key, value in Deb822(wanted).items()}
    missing = [f for f in _REQUIRED if not str(fields.get(f, "")).strip()]
    if missing:
        cut = " (the file looks truncated)" if at_end else ""
        problems.append(
            RecordProblem(
                path,
                f"line {start}: the stanza for {_package_of(lines)} has no "
                f"{'/'.join(missing)}{cut}",
                _STATUS_HINT,
            )
        )
        return None
    return StatusStanza(start, fields)


def _pending_updates(
    root: Path, problems: list[RecordProblem]
) -> dict[tuple[str, str], StatusStanza]:
    """Stanzas dpkg journalled in ``updates/`` but not yet merged into ``status``."""
    pending: dict[tuple[str, str], StatusStanza] = {}
    try:
        names = sorted(e.name for e in os.scandir(root / UPDATES) if e.name.isdigit())
    except OSError:
        return pending
    for name in names:
        for stanza in iter_status(root / UPDATES / name, problems):
            arch = str(stanza.fields.get("Architecture", ""))
            pending[(stanza.package, arch)] = stanza
    return pending


# --- file ownership (info/*.list) -----------------------------------------------------


class _Ownership:
    """What a scan of the ``.list`` files found: dist dirs per package, target owners.

    ``candidates`` are the paths of each alternative's choice, best first
    (:attr:`AlternativeChoice.candidates`); an alternative's owner is the owner of its
    first owned candidate, so once a candidate is owned, the ones after it in the same
    choice are no longer looked for (``searched``: the ``/usr``-merge alias no list
    holds would otherwise be searched for in all of them).
    """

    def __init__(self, candidates: tuple[tuple[str, ...], ...]) -> None:
        self.candidates = candidates
        self.owners: dict[str, tuple[str, str]] = {}  # path -> (pkg, arch)
        self.missing: list[str] = []
        self.target_lines: dict[str, bytes] = {}  # path -> b"\n<path>\n"
        self.searched: dict[str, bytes] = {}  # the target_lines still looked for
        # A part of every searched line, newline-free: a list without it holds none of
        # them, and is not searched for each (b"": no such part, every list is).
        self.common = b""
        for target in sorted({c for choice in self.candidates for c in choice}):
            try:
                encoded = target.encode("utf-8", "surrogateescape")
                self.target_lines[target] = b"\n" + encoded + b"\n"
            except UnicodeEncodeError:  # no line of a .list decodes to it
                continue
        self._refresh()

    def found(self, target: str, owner: tuple[str, str]) -> None:
        """``owner``'s list is the first to hold ``target``."""
        self.owners[target] = owner
        self._refresh()

    def _refresh(self) -> None:
        wanted: set[str] = set()
        for choice in self.candidates:
            for candidate in choice:
                if candidate in self.owners:
                    break
                wanted.add(candidate)
        self.searched = {t: line for t, line in self.target_lines.items() if t in wanted}
        self.common = _common_part(list(self.searched.values()))


def _common_part(lines: list[bytes]) -> bytes:
    """The longest newline-free byte string in every one of ``lines`` (b"" if none).

    >>> _common_part([b"\\n/usr/lib/a/libblas.so.3\\n", b"\\n/lib/a/liblapack.so.3\\n"])
    b'/lib/a/lib'
    """
    if not lines:
        return b""
    shortest = min(lines, key=len)
    for size in range(len(shortest), 0, -1):
        for start in range(len(shortest) - size + 1):
            part = shortest[start : start + size]
            if b"\n" not in part and all(part in line for line in lines):
                return part
    return b""


def _list_file(info: DirectoryFiles, package: str, arch: str, multi_arch: str) -> str | None:
    """The name of the package's ``.list`` in ``info``: ``<pkg>:<arch>.list`` first for
    a ``Multi-Arch: same`` package, else ``<pkg>.list`` first."""
    plain = package + ".list"
    if multi_arch != "same" and "/" not in package and plain in info.names:
        return plain
    qualified = f"{package}:{arch}.list"
    order = (qualified, plain) if multi_arch == "same" else (plain, qualified)
    if "/" in package:  # not a name dpkg accepts: looked up where the path leads
        return next((c for c in order if os.path.lexists(os.path.join(info.directory, c))), None)
    for candidate in order:
        if candidate in info.names:
            return candidate
    return None


def _read_list(
    root: Path,
    info: DirectoryFiles,
    package: str,
    fields: dict[str, str],
    ownership: _Ownership,
    problems: list[RecordProblem],
) -> tuple[Path, ...]:
    """Python metadata dirs the package owns; notes which alternative targets it owns."""
    arch = fields.get("Architecture", "")
    list_name = _list_file(info, package, arch, fields.get("Multi-Arch", ""))
    if list_name is None:
        ownership.missing.append(package)
        return ()
    try:
        if "/" in package:
            data = read_regular(info.directory / list_name, root=root)
        else:
            data = info.read(list_name)
    except UnreadableFile as exc:
        problems.append(
            RecordProblem(
                info.directory / list_name,
                f"cannot read the file list of {package}: {exc.problem}",
                "its Python distributions are shown without an owner",
            )
        )
        return ()
    except OSError as exc:
        problems.append(
            RecordProblem(
                info.directory / list_name,
                f"cannot read the file list of {package}: {exc.strerror}",
                "its Python distributions are shown without an owner; check permissions",
            )
        )
        return ()
    # A .list is one path a line, thousands of them; only a few lines matter, so they
    # are found with bytes searches and only those are decoded. A list is copied with a
    # newline around it (every line between two) only when a newline-free part of what
    # is looked for is in it. (bytes.find, not ``in``: ``in`` first tries the needle as
    # a byte value and raises and clears a TypeError for every search.)
    lines = b""
    if ownership.searched and data.find(ownership.common) != -1:
        lines = b"\n" + data + b"\n"
        for target, needle in list(ownership.searched.items()):
            if target in ownership.searched and lines.find(needle) != -1:
                ownership.found(target, (package, arch))
    if data.find(_DIST_PACKAGES) == -1:
        return ()
    return _metadata_dirs(root, lines or b"\n" + data + b"\n")


def _metadata_dirs(root: Path, data: bytes) -> tuple[Path, ...]:
    """The ``.dist-info``/``.egg-info`` dirs directly in dist-packages that the lines of
    ``data`` (a ``.list`` with a newline before and after it) name, in list order."""
    dists: list[Path] = []
    found: list[tuple[int, bytes]] = []
    for suffix in _METADATA_LINE_ENDS:
        end = data.find(suffix)
        while end != -1:
            start = data.rfind(b"\n", 0, end) + 1
            line = data[start : end + len(suffix) - 1]
            name = line[len(_DIST_PACKAGES_LINE) - 1 :]
            if line.startswith(_DIST_PACKAGES_LINE[1:]) and b"/" not in name:
                found.append((start, line))
            end = data.find(suffix, end + 1)
    for _, line in sorted(found):
        dists.append(dpkg_path_in_root(root, line.decode("utf-8", "surrogateescape")))
    return tuple(dists)


# --- alternatives ---------------------------------------------------------------------


class AlternativeChoice(msgspec.Struct, frozen=True):
    """The current choice of one run-time alternative, as its link says.

    ``name`` is the alternative (``libblas.so.3-x86_64-linux-gnu``), ``virtual`` the
    virtual package packages depend on (``libblas.so.3``), ``target`` the dpkg path the
    link points at and ``candidates`` the paths to look up in the ``.list`` files (the
    target, then what it resolves to, with and without the ``/usr`` merge).
    """

    name: str
    virtual: str
    link: Path
    target: str
    candidates: tuple[str, ...]


def _usr_merge_aliases(dpkg_path: str) -> list[str]:
    for merged in ("/bin/", "/sbin/", "/lib/", "/lib32/", "/lib64/", "/libx32/"):
        if dpkg_path.startswith("/usr" + merged):
            return [dpkg_path, dpkg_path[4:]]
        if dpkg_path.startswith(merged):
            return [dpkg_path, "/usr" + dpkg_path]
    return [dpkg_path]


def read_alternatives(root: Path, problems: list[RecordProblem]) -> list[AlternativeChoice]:
    """The current choice of every alternative ``data/apt.toml`` names, for each triplet.

    A link that is not a symlink or points at nothing is reported and skipped.
    """
    virtuals: list[str] = list(_data().get("alternatives", {}).get("virtuals", []))
    directory = root / ALTERNATIVES
    try:
        entries = sorted(e.name for e in os.scandir(directory))
    except OSError:
        return []
    choices: list[AlternativeChoice] = []
    for name in entries:
        virtual = next((v for v in virtuals if name.startswith(v + "-")), None)
        if virtual is None:
            continue
        link = directory / name
        try:
            target = os.readlink(link)
        except OSError:
            problems.append(
                RecordProblem(
                    link,
                    f"not a symbolic link; the alternatives system cannot say what {virtual} is",
                    f"run update-alternatives --auto {name} to repair it",
                )
            )
            continue
        if not target.startswith("/"):
            target = os.path.normpath(f"/{ALTERNATIVES}/{target}")
        resolved = resolve_in_root(root, target)
        if resolved is None:
            problems.append(
                RecordProblem(
                    link,
                    f"dangling alternatives link: {target} does not exist in {root}, so "
                    f"the {virtual} provider is unknown",
                    f"run update-alternatives --auto {name} (or --config) to repair it",
                )
            )
            continue
        candidates: list[str] = []
        for path in (target, resolved):
            for alias in _usr_merge_aliases(os.path.normpath(path)):
                if alias not in candidates:
                    candidates.append(alias)
        choices.append(AlternativeChoice(name, virtual, link, target, tuple(candidates)))
    return choices


def _alternative_record(
    choice: AlternativeChoice, owner: InstallRecord, root: Path
) -> InstallRecord:
    link_path = "/" + str(choice.link.relative_to(root))
    return InstallRecord(
        ecosystem=ECOSYSTEM,
        name=choice.virtual,
        version=owner.version,
        subdir=owner.subdir,
        source=str(choice.link),
        depends=(owner.name,),
        extra={
            "kind": "alternative",
            "alternative": choice.name,
            "link": link_path,
            "target": choice.target,
            "selected_package": owner.name,
        },
    )


# --- records --------------------------------------------------------------------------


def _dist_facts(name: str, provides: list[str], depends: tuple[str, ...]) -> dict[str, object]:
    """Facts about a package's Python distributions that are not variant properties."""
    data = _data()
    facts: dict[str, object] = {}
    abi = _abi_pattern()
    abi_provides = [p for p in provides if abi.search(p)]
    abi_requires = sorted({n for d in depends for n in _dependency_names(d) if abi.search(n)})
    if abi_provides:
        facts["abi_provides"] = abi_provides
    if abi_requires:
        facts["abi_requires"] = abi_requires
    for table in data.get("import_selection", []):
        if name in table.get("packages", []):
            facts["import_name"] = table.get("import_name")
            facts["selected_at_import"] = table.get("note")
    return facts


def _record(
    status: Path, stanza: StatusStanza, package: str, dists: tuple[Path, ...]
) -> InstallRecord:
    """The record of an installed package's stanza (``package``: its name)."""
    get = stanza.fields.get
    depends = split_relations(get("Depends"))
    if pre_depends := get("Pre-Depends"):
        depends = split_relations(pre_depends) + depends
    extra: dict[str, object] = {"status_line": stanza.line}
    provides: list[str] = []
    if provided := get("Provides"):
        provides = [n for spec in split_relations(provided) for n in _dependency_names(spec)]
        if provides:
            extra["provides"] = provides
    architecture = get("Architecture")
    if architecture:
        extra["architecture"] = architecture
    if source := get("Source"):
        extra["source_package"] = source
    if multi_arch := get("Multi-Arch"):
        extra["multi_arch"] = multi_arch
    if dists and (facts := _dist_facts(package, provides, depends)):
        extra["dist_facts"] = facts
    return InstallRecord(
        ecosystem=ECOSYSTEM,
        name=package,
        version=stanza.fields["Version"],
        subdir=architecture or None,
        source=str(status),
        depends=depends,
        python_dists=dists,
        extra=extra,
    )


def read_records(root: Path, problems: list[RecordProblem]) -> Iterator[InstallRecord]:
    """Every installed package of the Debian root, then its run-time alternatives."""
    status = root / STATUS
    choices = read_alternatives(root, problems)
    ownership = _Ownership(tuple(choice.candidates for choice in choices))
    pending = _pending_updates(root, problems)
    by_key: dict[tuple[str, str], InstallRecord] = {}
    native_arch = ""
    info = directory_files(root, root / INFO)  # listed once: 3,000 lookups, no realpaths

    def emit(stanza: StatusStanza) -> InstallRecord | None:
        nonlocal native_arch
        package = stanza.package
        if package == "dpkg":
            native_arch = str(stanza.fields.get("Architecture", ""))
        if not stanza.installed:
            return None
        dists = _read_list(root, info, package, stanza.fields, ownership, problems)
        record = _record(status, stanza, package, dists)
        by_key[(record.name, record.subdir or "")] = record
        return record

    stanzas = 0
    for stanza in iter_status(status, problems):
        stanzas += 1
        if pending:  # a journalled update replaces the status file's stanza
            stanza = pending.pop((stanza.package, stanza.fields.get("Architecture", "")), stanza)
        record = emit(stanza)
        if record is not None:
            yield record
    for stanza in pending.values():
        record = emit(stanza)
        if record is not None:
            yield record
    if not stanzas and not pending and not any(p.path == status for p in problems):
        problems.append(
            RecordProblem(
                status,
                "lists no package at all (empty); dpkg would think nothing is installed",
                "restore it from /var/backups/dpkg.status.0",
            )
        )
    if ownership.missing:
        shown = ", ".join(ownership.missing[:5])
        more = f" and {len(ownership.missing) - 5} more" if len(ownership.missing) > 5 else ""
        problems.append(
            RecordProblem(
                root / INFO,
                f"no file list for {len(ownership.missing)} installed package(s) "
                f"({shown}{more}); dpkg treats them as owning no files",
                "reinstall them with apt-get install --reinstall to restore the lists",
            )
        )
    yield from _alternative_records(root, choices, ownership, by_key, native_arch, problems)


def _alternative_records(
    root: Path,
    choices: list[AlternativeChoice],
    ownership: _Ownership,
    by_key: dict[tuple[str, str], InstallRecord],
    native_arch: str,
    problems: list[RecordProblem],
) -> Iterator[InstallRecord]:
    """One record per virtual: the native architecture's choice (other arches' only if
    no native one was found)."""
    found: dict[str, list[tuple[bool, InstallRecord]]] = {}
    for choice in choices:
        owner_key = next(
            (ownership.owners[c] for c in choice.candidates if c in ownership.owners), None
        )
        owner = by_key.get(owner_key) if owner_key else None
        if owner is None:
            problems.append(
                RecordProblem(
                    choice.link,
                    f"points at {choice.target}, which no installed package owns",
                    f"the {choice.virtual} provider is unknown; "
                    f"run update-alternatives --auto {choice.name}",
                )
            )
            continue
        native = not native_arch or owner.subdir in (native_arch, "all")
        found.setdefault(choice.virtual, []).append(
            (native, _alternative_record(choice, owner, root))
        )
    for virtual in sorted(found):
        ranked = sorted(found[virtual], key=lambda pair: not pair[0])
        yield ranked[0][1]


def debian_system(config: DiscoveryConfig) -> Target | None:
    """The Debian root (``config.root``, ``/``), when it has a dpkg database and a
    ``python3``."""
    from vbridge.inventory.discover import Target

    root = config.root
    if (root / STATUS).is_file() and (root / "usr" / "bin" / "python3").exists():
        return Target(root, "debian system")
    return None


class DebianRoot(Adapter):
    """Debian roots: the dpkg database and ``/etc/alternatives`` (see the module's
    functions)."""

    ECOSYSTEM = ECOSYSTEM
    DISCOVER_SETTINGS: ClassVar[Mapping[str, type]] = {"debian": bool}
    DISCOVER_RANK = 20

    def find_root(self, path: Path) -> Path | None:
        return find_root(path)

    def read_records(self, root: Path, problems: list[RecordProblem]) -> Iterator[InstallRecord]:
        return read_records(root, problems)

    def site_packages(self, root: Path) -> list[Path]:
        return site_packages(root)

    # dpkg records every package's dependencies: a Debian package's Requires-Dist is
    # never held against it (python3-gi declares pycairo, which Debian does not
    # install with it).
    RECORDS_DEPENDENCIES = True

    def requirements(self, record: InstallRecord, index: RecordIndex) -> Iterator[Requirement]:
        return requirements(record, index)

    def dependency_names(self, spec: str) -> list[str]:
        return list(_dependency_names(spec))

    def discover(self, config: DiscoveryConfig) -> list[Target]:
        system = debian_system(config) if config.enabled("debian") else None
        return [] if system is None else [system]


# --- what records require of Python distributions ----------------------------------------


@functools.cache
def _relation() -> re.Pattern[str]:
    """One alternative of a relation: name (``:any`` dropped), operator, version."""
    return re.compile(
        r"^\s*([A-Za-z0-9][A-Za-z0-9+.\-]*)(?::[a-z0-9]+)?"  # name, :any
        r"\s*(?:\((<<|<=|=|>=|>>)\s*([^)\s]+)\s*\))?"  # (op version)
    )


_DEBIAN_OPERATORS = {"<<": "<", "<=": "<=", "=": "==", ">=": ">=", ">>": ">"}


def pep440_of_relation(op: str, version: str) -> str | None:
    """A Debian version relation as a PEP 440 specifier on the upstream version, when it
    maps (epoch and Debian revision dropped; ``~`` pre-releases do not map).

    >>> pep440_of_relation(">=", "1:1.22.0")
    '>=1.22.0'
    >>> pep440_of_relation("<<", "1:1.25~") is None
    True
    """
    upstream = version.split(":", 1)[-1].rsplit("-", 1)[0].split("+", 1)[0]
    if not upstream or "~" in upstream or not upstream[0].isdigit():
        return None
    return f"{_DEBIAN_OPERATORS[op]}{upstream}"


@functools.lru_cache(maxsize=1)
def _abi_pattern() -> re.Pattern[str]:
    """``data/apt.toml`` ``[abi] pattern``: the virtual packages that version a C ABI."""
    return re.compile(str(_data().get("abi", {}).get("pattern", r"^$")))


# The scan's dependency walk asks for the names of every relation of every package
# (3,000 packages: ~27,000 relations, most of them repeated texts): each text once.
@functools.lru_cache(maxsize=16384)
def _dependency_names(relation: str) -> tuple[str, ...]:
    """:func:`vbridge.rules.dependency_names` of ``relation``, kept."""
    return tuple(dependency_names(relation))


def requirements(record: InstallRecord, index: RecordIndex) -> Iterator[Requirement]:
    """What ``record`` requires of the Python distributions other packages own.

    A relation on a C ABI virtual package (``python3-numpy-abi9``, alternatives such as
    ``python3-numpy2-abi0 | python3-numpy-abi9`` included) is one ``abi`` requirement:
    the package was built against that ABI. A version relation on a package owning a
    dist-info (``python3-numpy (>= 1:1.22.0)``) is a ``version`` requirement.
    """
    depends = record.depends
    if record.extra.get("kind") == "alternative" or not depends:
        return iter(())
    leading, known, reaching = _reach(index)
    # Most packages (2,933 of 3,002 in the bench root): no relation reaches one, found
    # with one set test and without a generator made and dropped for each.
    if reaching.isdisjoint(depends):
        if known.issuperset(depends):
            return iter(())
        # A record from outside the index: its relations' names looked at.
        if leading.isdisjoint(
            chain.from_iterable(map(_LOWER_NAMES, map(_parsed_relation, depends)))
        ):
            return iter(())
    return _requirements(record, index, leading)


def _requirements(
    record: InstallRecord, index: RecordIndex, leading: frozenset[str]
) -> Iterator[Requirement]:
    """:func:`requirements` of a record one of whose relations reaches ``leading``."""
    for relation in record.depends:
        alternatives, abi_names, lower_names = _parsed_relation(relation)
        if leading.isdisjoint(lower_names):
            continue  # no alternative is a package (or provided by one) owning a dist-info
        targets: dict[str, InstallRecord] = {}
        for name, _, _ in alternatives:
            for provider in index.providing(name):
                for dist_path in provider.python_dists:
                    targets.setdefault(split_metadata_dir_name(dist_path.name)[0], provider)
        for target, provider in targets.items():
            if abi_names:
                yield Requirement(
                    target,
                    relation,
                    "abi",
                    ECOSYSTEM,
                    record.key,
                    str(record.source or ""),
                    provider.key,
                    None,
                    abi_names,
                    binary=True,
                )
            elif len(alternatives) == 1 and (op := alternatives[0][1]):
                yield Requirement(
                    target,
                    relation,
                    "version",
                    ECOSYSTEM,
                    record.key,
                    str(record.source or ""),
                    provider.key,
                    pep440_of_relation(op, alternatives[0][2] or ""),
                )


# Per index (the dependents check asks for the requirements of every record against
# one index): the names a relation can reach a dist-info through, the relation texts of
# the index's records and those of them that reach one (:func:`_reach`).
_Reach = tuple[frozenset[str], frozenset[str], frozenset[str]]
_REACH: weakref.WeakKeyDictionary[RecordIndex, _Reach] = weakref.WeakKeyDictionary()
# The last index asked about: asked 3,000 times in a row, it is found without a weak
# reference made for each lookup.
_LAST_REACH: list[tuple[weakref.ref[RecordIndex], _Reach]] = []


def _reach(index: RecordIndex) -> _Reach:
    """:func:`_names_leading_to_dists` of ``index``, the relation texts its records
    hold, and those of them one of whose alternatives is such a name."""
    if _LAST_REACH and _LAST_REACH[0][0]() is index:
        return _LAST_REACH[0][1]
    reach = _REACH.get(index)
    if reach is None:
        leading = _names_leading_to_dists(index)
        known = frozenset(chain.from_iterable(record.depends for record in index.records))
        reaching = frozenset(
            relation for relation in known if not leading.isdisjoint(_parsed_relation(relation)[2])
        )
        reach = _REACH[index] = (leading, known, reaching)
    _LAST_REACH[:] = [(weakref.ref(index), reach)]
    return reach


def _names_leading_to_dists(index: RecordIndex) -> frozenset[str]:
    """The lower-case names ``index.providing`` answers with a record owning Python
    distributions: such records' names and what they provide."""
    found: set[str] = set()
    for record in index.records:
        if record.python_dists:
            found.add(record.name.lower())
            provides = record.extra.get("provides")
            if isinstance(provides, (list, tuple)):
                found.update(str(name).lower() for name in provides)
    return frozenset(found)


_LOWER_NAMES = itemgetter(2)  # of a _parsed_relation


# A system's packages repeat the same relations (``libc6 (>= 2.34)``: 2,510 relations
# of 1,053 distinct texts in the Debian 12 fixture), each parsed once.
@functools.lru_cache(maxsize=16384)
def _parsed_relation(
    relation: str,
) -> tuple[tuple[tuple[str, str | None, str | None], ...], tuple[str, ...], frozenset[str]]:
    """``(name, operator, version)`` of each alternative of ``relation``, the names of
    those that are C ABI virtual packages (``data/apt.toml`` ``[abi] pattern``), and the
    alternatives' names in lower case."""
    abi = _abi_pattern()
    match = _relation().match
    alternatives = tuple(
        (m.group(1), m.group(2), m.group(3)) for alt in relation.split("|") if (m := match(alt))
    )
    return (
        alternatives,
        tuple(name for name, _, _ in alternatives if abi.search(name)),
        frozenset(name.lower() for name, _, _ in alternatives),
    )


ADAPTER = DebianRoot()

"""Plain pip, protected: ``<prefix>/.vbridge/constraints.txt`` and the site ``pip.conf``.

pip reads a configuration file in ``sys.prefix`` (``<prefix>/pip.conf``, its *site*
file, read after the global and user files) and honours ``[install] constraint =
FILE``. :func:`write_pip_constraints` writes, from a scan, a constraints file that pins
every distribution conda, apt or Spack owns to its installed version and carries the
bounds their dependents need (``numpy<2.0a0`` from conda's scipy, ``numpy<2`` from
Debian's ``python3-numpy-abi9``), and points the site ``pip.conf`` at it. The ``pip``
people type then leaves conda's numpy alone on ``pip install -U numpy`` and fails in
its resolver on ``pip install 'numpy>=2'``, with no alias and no wrapper.

Which rules become lines is policy (``data/policy.toml``, ``[constraints] pin``: the
severities of ``ownership.replace``/``ownership.shadow`` and ``dependents.broken`` that
give a line). A site ``pip.conf`` that exists is edited key by key (``[install]
constraint`` alone), never overwritten. pip keeps one value per key and the site file
wins, so a ``constraint`` the global, user or site configuration already set is chained
from vbridge's file (``-c FILE``) and keeps applying. Both files are in the ledger
(:mod:`vbridge.destinations.ledger`, ``environment``): :func:`remove_pip_constraints`
(``vbridge clean``) gives ``pip.conf`` its original bytes back (or removes it) and
removes the constraints file.

>>> print(pip_conf_with(b"[global]\\nindex-url = https://example.org/simple\\n",
...                     "/env/.vbridge/constraints.txt").decode(), end="")
[global]
index-url = https://example.org/simple
<BLANKLINE>
[install]
# vbridge: plain pip keeps what conda, apt and Spack installed (`vbridge clean` undoes it)
constraint = /env/.vbridge/constraints.txt
>>> pip_conf_without(pip_conf_with(b"", "/c.txt"), None, "/c.txt")
b''
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from vbridge.destinations.envlock import EnvironmentLock
from vbridge.destinations.ledger import EnvironmentFileEntry, Ledger, LedgerStore
from vbridge.errors import RecordError, VbridgeError
from vbridge.model import Distribution, Environment, Requirement
from vbridge.safefs import atomic_write, contained, read_bytes, remove_file, sha256_hex

if TYPE_CHECKING:
    import configparser  # imported where a pip.conf is parsed (not by the post-link hook)

    from vbridge.decide.policy import CouplingPolicy

__all__ = [
    "CONSTRAINTS_NAME",
    "DEBIAN_REGISTRY",
    "PIP_CONF",
    "ConstraintLine",
    "PipConstraintsResult",
    "constraint_lines",
    "constraints_text",
    "forget_copied_pip_conf",
    "inherited_constraints",
    "pip_conf_with",
    "pip_conf_without",
    "pip_constraints_written",
    "remove_pip_constraints",
    "sync_debian_environments",
    "write_pip_constraints",
]

PIP_CONF = "pip.conf"  # pip's site configuration file, in sys.prefix
CONSTRAINTS_NAME = "constraints.txt"  # in the state directory, beside the ledger
_SECTION = "install"
_KEY = "constraint"
_MARK = "# vbridge: plain pip keeps what conda, apt and Spack installed (`vbridge clean` undoes it)"
_HEADER = """\
# Written by vbridge from a scan of {root}.
# The site pip.conf ({pip_conf}) names this file as [install] constraint, so plain
# pip keeps what conda, apt and Spack installed. `vbridge annotate`, the conda plugin,
# conda link scripts and `vbridge sync` rewrite it; `vbridge clean` removes it.
# uv reads no pip.conf: UV_CONSTRAINT={path} uv pip install ... (or --constraint).
"""

Action = Literal["create", "update", "remove", "restore", "unchanged", "left-alone"]


@dataclass(frozen=True)
class ConstraintLine:
    """One requirement of the constraints file and why it is there.

    >>> ConstraintLine("numpy", "==1.26.4", "conda numpy 1.26.4 py311h64a7726_0").text()
    'numpy==1.26.4  # conda numpy 1.26.4 py311h64a7726_0'
    """

    name: str
    specifier: str
    comment: str

    def text(self) -> str:
        return f"{self.name}{self.specifier}  # {self.comment}"


@dataclass
class PipConstraintsResult:
    """What happened to the constraints file and to ``pip.conf``."""

    root: Path
    dry_run: bool = False
    changes: list[tuple[Path, Action]] = field(default_factory=list)
    lines: list[ConstraintLine] = field(default_factory=list)
    chained: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> list[tuple[Path, Action]]:
        return [(p, a) for p, a in self.changes if a not in ("unchanged", "left-alone")]

    def report_lines(self) -> list[str]:
        """One line per file changed and per note, as ``vbridge annotate`` prints them."""
        prefix = "would " if self.dry_run else ""
        out = [f"{prefix}{action} {path}" for path, action in self.changed]
        out += [f"vbridge: {note}" for note in self.notes]
        return out

    def to_dict(self) -> dict[str, object]:
        return {
            "root": str(self.root),
            "dry_run": self.dry_run,
            "changes": [{"path": str(p), "action": a} for p, a in self.changes],
            "constraints": [line.text() for line in self.lines],
            "chained": list(self.chained),
            "notes": list(self.notes),
        }


# --------------------------------------------------------------------------------------
# What the constraints file says


def _owner_text(dist: Distribution) -> str:
    """``conda numpy 1.26.4 py311h64a7726_0 (conda-forge)``."""
    owner = dist.owner
    assert owner is not None
    text = f"{owner.ecosystem} {owner.name} {owner.version}"
    if owner.build:
        text += f" {owner.build}"
    if owner.channel:
        text += f" ({owner.channel})"
    return text


def _properties_text(dist: Distribution) -> str:
    props = sorted(p.to_str() for p in dist.properties)
    return f" [{', '.join(props)}]" if props else ""


def _valid_version(version: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        Version(version)
    except InvalidVersion:
        return False
    return True


def _loaded(env: Environment) -> list[Distribution]:
    """The copy Python imports of each name (the first on ``sys.path`` order)."""
    from vbridge.decide.policy import loaded_distributions

    return loaded_distributions(env.distributions, env.site_packages)


def _inside(root: Path, path: str) -> bool:
    try:
        Path(os.path.abspath(path)).relative_to(Path(os.path.abspath(root)))
    except ValueError:
        return False
    return True


def _bound(req: Requirement, policy: CouplingPolicy) -> str | None:
    """The PEP 440 bound a foreign dependent's requirement puts on pip, if any: a conda
    pin, a Spack link edge, a Debian ABI package (``numpy<2``); not a ``Requires-Dist``
    (pip holds those itself), nor a version in an ecosystem's own words (Debian's
    epochs, ``dependents.version_constraints``)."""
    from vbridge.decide.dependents import requirement_bound

    if req.kind == "requires-dist":
        return None
    if req.kind not in ("abi", "link") and req.ecosystem not in policy.version_constraints:
        return None
    return requirement_bound(req, policy)


def _dependent_text(req: Requirement, env: Environment) -> str:
    key = req.dependent
    record = next((r for r in env.records if r.key == key), None)
    if record is None:
        return key
    text = f"{record.ecosystem} {record.name} {record.version}"
    if record.build and record.ecosystem != "apt":
        text += f" {record.build}"
    return text


def constraint_lines(
    env: Environment, policy: CouplingPolicy | None = None
) -> list[ConstraintLine]:
    """The lines of the constraints file for ``env``, in a stable order.

    Each distribution conda, apt or Spack owns, where it is the copy Python imports,
    pinned to its installed version (``ownership.replace``, or ``ownership.shadow`` for
    a layer outside the environment's root, such as Debian's dist-packages under a
    venv); each bound a foreign dependent needs (``dependents.broken``); only where the
    policy's severity is one of ``[constraints] pin``.
    """
    if policy is None:
        from vbridge.decide.policy import CouplingPolicy

        policy = CouplingPolicy.load(env.path)
    pins: list[ConstraintLine] = []
    bounds: list[ConstraintLine] = []
    loaded = _loaded(env)
    for dist in sorted(loaded, key=lambda d: d.name):
        if dist.owner is None:
            continue
        key = "replace" if _inside(env.path, dist.layer) else "shadow"
        severity = policy.ownership.get(key)
        if severity not in policy.pin_severities:
            continue
        if not _valid_version(dist.version):
            continue  # pip could not read such a pin; the gate still sees the distribution
        pins.append(
            ConstraintLine(
                dist.name,
                f"=={dist.version}",
                f"{_owner_text(dist)}{_properties_text(dist)}: {dist.owner.ecosystem} owns "
                f"it; pip must not {key} it (ownership.{key} = {severity})",
            )
        )
    if policy.dependents_broken in policy.pin_severities:
        from vbridge.decide.dependents import requirements_on

        for name, reqs in sorted(requirements_on(env).items()):
            seen: set[str] = set()
            for req in reqs:
                bound = _bound(req, policy)
                if bound is None or bound in seen:
                    continue
                seen.add(bound)
                spec = req.spec
                bounds.append(
                    ConstraintLine(
                        name,
                        bound,
                        f"{_dependent_text(req, env)} needs {spec} "
                        f"(dependents.broken = {policy.dependents_broken})",
                    )
                )
    return pins + bounds


def constraints_text(
    root: Path, lines: Sequence[ConstraintLine], chained: Sequence[tuple[str, str]] = ()
) -> str:
    """The constraints file: a header, ``-c`` lines for the constraints already
    configured (``(file, where it was set)``), then one line per constraint."""
    path = _constraints_path(root)
    out = [_HEADER.format(root=root, pip_conf=root / PIP_CONF, path=path)]
    out += [f"-c {value}  # chained: {where}" for value, where in chained]
    out += [line.text() for line in lines]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------
# pip's configuration files


_SECTION_RE = re.compile(r"^\s*\[(?P<name>[^\]]+)\]")
_KEY_RE = re.compile(r"^(?P<key>[^=:\s#;][^=:]*?)\s*[=:]")


def _parse(data: bytes, where: Path) -> configparser.RawConfigParser:
    """``data`` read as pip reads a configuration file (``RawConfigParser``)."""
    import configparser

    parser = configparser.RawConfigParser()
    try:
        parser.read_string(data.decode("utf-8"), source=str(where))
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise RecordError(
            f"{where}: pip cannot read this configuration file ({exc}); fix it, then "
            "run vbridge again"
        ) from exc
    return parser


def _value(parser: configparser.RawConfigParser, section: str) -> str | None:
    if parser.has_section(section) and parser.has_option(section, _KEY):
        return parser.get(section, _KEY)
    return None


def _key_span(lines: list[str], section: str) -> tuple[int | None, int | None, int]:
    """(header index, key index, end of the key's lines) of ``[section] constraint``."""
    header: int | None = None
    current = None
    for i, line in enumerate(lines):
        m = _SECTION_RE.match(line)
        if m:
            current = m.group("name").strip()
            if current == section and header is None:
                header = i
            continue
        if current != section:
            continue
        k = _KEY_RE.match(line)
        if k and k.group("key").strip().lower() == _KEY:
            end = i + 1
            while end < len(lines) and lines[end][:1] in (" ", "\t") and lines[end].strip():
                end += 1  # continuation lines of the value
            return header, i, end
    return header, None, 0


def pip_conf_with(current: bytes | None, constraints: str) -> bytes:
    """``current`` (a site ``pip.conf``, or None) with ``[install] constraint`` set to
    ``constraints``; every other line kept as it is."""
    text = (current or b"").decode("utf-8")
    lines = text.splitlines(keepends=True)
    header, key, end = _key_span(lines, _SECTION)
    ours = [f"{_MARK}\n", f"{_KEY} = {constraints}\n"]
    if key is not None:
        start = key - 1 if key > 0 and lines[key - 1].rstrip("\n") == _MARK else key
        lines[start:end] = ours
    elif header is not None:
        lines[header + 1 : header + 1] = ours
    else:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        if lines and lines[-1].strip():
            lines.append("\n")
        lines += [f"[{_SECTION}]\n", *ours]
    return "".join(lines).encode("utf-8")


def pip_conf_without(current: bytes, original_value: str | None, ours: str) -> bytes:
    """``current`` with vbridge's ``[install] constraint`` (naming ``ours``) undone: the
    value it had before (``original_value``), or no such key (and no ``[install]``
    section, when vbridge's key was all it held). A key naming another file is not
    vbridge's and stays."""
    lines = current.decode("utf-8").splitlines(keepends=True)
    header, key, end = _key_span(lines, _SECTION)
    if key is None:
        return current
    value = re.split(r"[=:]", "".join(lines[key:end]), maxsplit=1)[1].split()
    if value != [ours]:
        return current
    start = key - 1 if key > 0 and lines[key - 1].rstrip("\n") == _MARK else key
    if original_value is not None:
        lines[start:end] = [f"{_KEY} = {original_value}\n"]
        return "".join(lines).encode("utf-8")
    del lines[start:end]
    if header is not None:
        rest = lines[header + 1 :]
        next_header = next((i for i, x in enumerate(rest) if _SECTION_RE.match(x)), len(rest))
        if not any(x.strip() for x in rest[:next_header]):
            del lines[header : header + 1 + next_header]
            while lines and not lines[-1].strip():
                lines.pop()  # the blank line vbridge put before the section
    return "".join(lines).encode("utf-8")


def _config_files(environ: Mapping[str, str]) -> list[tuple[Path, str]]:
    """pip's global and user configuration files, in the order pip reads them."""
    found: list[tuple[Path, str]] = []
    xdg_dirs = environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
    for directory in xdg_dirs.split(os.pathsep):
        if directory:
            found.append((Path(directory) / "pip" / "pip.conf", "global"))
    found.append((Path("/etc/pip.conf"), "global"))
    home = Path(environ.get("HOME") or os.path.expanduser("~"))
    found.append((home / ".pip" / "pip.conf", "user"))
    xdg_home = Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
    found.append((xdg_home / "pip" / "pip.conf", "user"))
    if environ.get("PIP_CONFIG_FILE") and environ["PIP_CONFIG_FILE"] != os.devnull:
        found.append((Path(environ["PIP_CONFIG_FILE"]), "PIP_CONFIG_FILE"))
    return found


def inherited_constraints(
    site_pip_conf: Path,
    site_original: bytes | None,
    environ: Mapping[str, str] = os.environ,
) -> list[tuple[str, str]]:
    """The constraint files pip would apply to ``pip install`` without vbridge:
    ``(file, where it is set)``, from the global, user and ``PIP_CONFIG_FILE``
    configuration and the site file as it was before vbridge (``site_original``).

    pip takes ``[install]`` over ``[global]`` and a later file over an earlier one; the
    value is a whitespace-separated list of files.
    """
    files: list[tuple[Path, str, bytes | None]] = []
    if environ.get("PIP_CONFIG_FILE") != os.devnull:
        for path, variant in _config_files(environ):
            try:
                data = read_bytes(path)
            except (OSError, VbridgeError):
                data = None  # pip could not read it either
            files.append((path, variant, data))
    files.append((site_pip_conf, "site", site_original))
    chosen: tuple[str, str] | None = None
    for section in ("global", _SECTION):
        for path, variant, data in files:
            if data is None:
                continue
            value = _value(_parse(data, path), section)
            if value is not None:
                chosen = (value, f"[{section}] {_KEY} of {path} ({variant})")
    if chosen is None:
        return []
    value, where = chosen
    return [(item, where) for item in value.split()]


# --------------------------------------------------------------------------------------
# Writing and undoing


def _constraints_path(root: Path) -> Path:
    return LedgerStore.of(root).directory / CONSTRAINTS_NAME


def _constraints_key(root: Path) -> str:
    path = _constraints_path(root)
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def is_python_prefix(root: Path) -> bool:
    """Whether ``root`` is some interpreter's ``sys.prefix`` (a venv, a conda prefix
    with python), the directory whose ``pip.conf`` pip reads. The system's root and
    ``/usr`` are not: their pip is the distribution's (externally managed)."""
    from vbridge.destinations.ledger import state_dir

    if state_dir(root) != root / ".vbridge":
        return False
    if (root / "pyvenv.cfg").is_file():
        return True
    return any((root / rel).exists() for rel in ("bin/python3", "bin/python", "python.exe"))


def pip_constraints_written(root: Path) -> bool:
    """Whether vbridge keeps a constraints file for ``root`` (its ledger names one)."""
    try:
        ledger = LedgerStore.of(Path(os.path.abspath(root))).load()
    except RecordError:
        return False
    return PIP_CONF in ledger.environment


def _site_base(store: LedgerStore, ledger: Ledger, current: bytes | None) -> bytes | None:
    """``pip.conf`` as it would be without vbridge."""
    entry = ledger.environment.get(PIP_CONF)
    if current is None:
        return None
    if entry is None:
        # No record of writing it, yet it may hold vbridge's key (a copy of another
        # prefix's, its state lost): that key is not the user's.
        return _without_ours(current, None, store.root, created=True)
    if sha256_hex(current) in entry.written:
        return None if entry.original is None else store.original(entry.original)
    # Edited since vbridge wrote it: that edit is the user's; only vbridge's key goes.
    original = store.original(entry.original) if entry.original else None
    before = _value(_parse(original, store.root / PIP_CONF), _SECTION) if original else None
    return _without_ours(current, before, store.root, created=False)


def _without_ours(
    current: bytes, before: str | None, root: Path, *, created: bool
) -> bytes | None:
    """``current`` without vbridge's key naming ``root``'s constraints file (``before``
    put back); None when nothing else is left of a file vbridge ``created``."""
    rest = pip_conf_without(current, before, str(_constraints_path(root)))
    if created and rest != current and not rest.strip():
        return None
    return rest


def forget_copied_pip_conf(root: Path) -> bool:
    """Undo vbridge's ``[install] constraint`` in a ``pip.conf`` that came into ``root``
    with another prefix's files, before the state directory copied with it goes.

    ``conda create --clone`` and ``conda rename`` copy every file no package record
    lists, the old prefix replaced by the new one in their text: ``pip.conf`` then
    names ``root``'s own constraints file, which is dropped with the copied state
    (:func:`vbridge.integrations.conda.plugin.drop_copied_state`), and pip refuses to
    run without it. The value vbridge's key replaced is put back as the copied ledger's
    backup holds it; a ``pip.conf`` vbridge created is removed. True if it changed.
    """
    root = Path(os.path.abspath(root))
    conf_path = root / PIP_CONF
    contained(root, conf_path)
    current = read_bytes(conf_path, root=root)
    if current is None:
        return False
    store = LedgerStore.of(root)
    try:
        entry = store.load().environment.get(PIP_CONF)
    except (RecordError, OSError):
        entry = None  # a damaged copy: vbridge's key still goes
    before: str | None = None
    if entry is not None and entry.original:
        # Read as copied: the prefix rewritten in it moves its digest.
        original = read_bytes(store.backups / entry.original, root=store.directory)
        if original is not None:
            try:
                before = _value(_parse(original, conf_path), _SECTION)
            except RecordError:
                before = None
    rest = _without_ours(current, before, root, created=entry is None or not entry.original)
    if rest == current:
        return False
    if rest is None:
        remove_file(conf_path, root)
    else:
        atomic_write(conf_path, rest, root)
    return True


def _owner_of(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_uid, st.st_gid


def _give_back(owner: tuple[int, int] | None, *paths: Path) -> None:
    """Files root rewrote in someone's environment (apt's hook) stay theirs."""
    if owner is None or os.geteuid() != 0 or owner == (0, 0):
        return
    for path in paths:
        try:
            os.chown(path, *owner)
        except OSError:
            continue


def _action(old: bytes | None, new: bytes) -> Action:
    return "unchanged" if old == new else ("create" if old is None else "update")


def write_pip_constraints(
    env: Environment,
    *,
    dry_run: bool = False,
    wait: float = 0.0,
    environ: Mapping[str, str] = os.environ,
    policy: CouplingPolicy | None = None,
    registry: Path | None = None,
) -> PipConstraintsResult:
    """Write ``.vbridge/constraints.txt`` from ``env`` and point ``pip.conf`` at it.

    Nothing is written for a directory that is no interpreter's ``sys.prefix`` (a Spack
    install tree, the Debian system). With no line to write, a file vbridge wrote
    before is removed as by :func:`remove_pip_constraints`. An environment whose lines
    name what apt owns is registered in ``registry`` (:data:`DEBIAN_REGISTRY`), so
    apt's hook (``vbridge sync``) rewrites them after every dpkg run.
    """
    root = Path(os.path.abspath(env.path))
    result = PipConstraintsResult(root, dry_run)
    if not is_python_prefix(root):
        return result
    lines = constraint_lines(env, policy)
    result.lines = lines
    if not lines:
        if pip_constraints_written(root):
            removed = remove_pip_constraints(root, dry_run=dry_run, wait=wait)
            result.changes, result.notes = removed.changes, removed.notes
        return result
    store = LedgerStore.of(root)
    conf_path = root / PIP_CONF
    constraints = _constraints_path(root)
    contained(root, conf_path)

    def plan(ledger: Ledger) -> tuple[bytes | None, bytes | None, bytes, bytes]:
        current = read_bytes(conf_path, root=root)
        base = _site_base(store, ledger, current)
        chained = inherited_constraints(conf_path, base, environ)
        result.chained = [value for value, _ in chained]
        text = constraints_text(root, lines, chained).encode("utf-8")
        return current, base, pip_conf_with(base, str(constraints)), text

    def report(current: bytes | None, conf: bytes, text: bytes) -> None:
        old = read_bytes(constraints, root=root)
        result.changes = [(constraints, _action(old, text)), (conf_path, _action(current, conf))]

    if dry_run:
        current, _base, conf, text = plan(store.load())
        report(current, conf, text)
        return result
    apt_owned = any(line.comment.startswith("apt ") for line in lines)
    _register(root, apt_owned, registry or DEBIAN_REGISTRY, result.notes)
    store.check()
    store.directory.mkdir(parents=True, exist_ok=True)
    with EnvironmentLock(store.lock_path, wait=wait):
        store.check()
        ledger = store.load()
        current, base, conf, text = plan(ledger)
        report(current, conf, text)
        key = _constraints_key(root)
        if all(a == "unchanged" for _, a in result.changes) and PIP_CONF in ledger.environment:
            return result
        # Intent first: the ledger names both files, with every content they may hold.
        conf_entry = ledger.environment.get(PIP_CONF)
        original = None if base is None else store.backup(base)
        if conf_entry is None or conf_entry.original != original:
            conf_entry = ledger.environment[PIP_CONF] = EnvironmentFileEntry(original)
        conf_entry.written.append(sha256_hex(conf))
        text_entry = ledger.environment.setdefault(key, EnvironmentFileEntry(None))
        text_entry.written.append(sha256_hex(text))
        store.save(ledger)
        owner = _owner_of(conf_path) or _owner_of(root)
        atomic_write(constraints, text, root)
        atomic_write(conf_path, conf, root)
        _give_back(owner, constraints, conf_path, store.path)
        conf_entry.written = [sha256_hex(conf)]
        text_entry.written = [sha256_hex(text)]
        store.save(ledger)
        store.prune_backups(ledger)
    return result


def remove_pip_constraints(
    root: Path, *, dry_run: bool = False, wait: float = 0.0
) -> PipConstraintsResult:
    """Undo :func:`write_pip_constraints`: ``pip.conf`` gets its original bytes back
    (or is removed, if vbridge created it), the constraints file is removed.

    A ``pip.conf`` edited since vbridge wrote it keeps the edit: only vbridge's key is
    taken out (the value it had before put back), and a note says so.
    """
    root = Path(os.path.abspath(root))
    result = PipConstraintsResult(root, dry_run)
    store = LedgerStore.of(root)
    store.check()
    if not store.path.exists():
        return result
    ledger = store.load()
    ours = (PIP_CONF, _constraints_key(root))
    entries = {k: v for k, v in ledger.environment.items() if k in ours}
    if not entries:
        return result
    conf_path = root / PIP_CONF
    ours_path = str(_constraints_path(root))

    def plan() -> tuple[bytes | None, bytes | None, Action]:
        """(current, target: None = remove, action) for pip.conf."""
        current = read_bytes(conf_path, root=root)
        entry = entries.get(PIP_CONF)
        if entry is None or current is None:
            return current, current, "unchanged"
        original = store.original(entry.original) if entry.original else None
        if sha256_hex(current) in entry.written:
            if entry.original is None:
                return current, None, "remove"
            if original is None:
                result.notes.append(
                    f"{store.backups / entry.original}: the original of {conf_path} is "
                    "missing; vbridge's key is taken out instead"
                )
                return current, pip_conf_without(current, None, ours_path), "update"
            return current, original, "restore"
        before = _value(_parse(original, conf_path), _SECTION) if original else None
        target = pip_conf_without(current, before, ours_path)
        if target != current:
            result.notes.append(
                f"{conf_path}: edited since vbridge wrote it; only vbridge's [install] "
                "constraint was taken out, the rest is left as it is"
            )
            return current, target, "update"
        return current, current, "left-alone"

    _current, target, action = plan()
    result.changes.append((conf_path, action))
    constraints = _constraints_path(root)
    if read_bytes(constraints, root=root) is not None:
        result.changes.insert(0, (constraints, "remove"))
    if dry_run:
        return result
    store.check()
    with EnvironmentLock(store.lock_path, wait=wait):
        store.check()
        if action in ("restore", "update") and target is not None:
            atomic_write(conf_path, target, root)
        elif action == "remove":
            remove_file(conf_path, root)
        remove_file(constraints, root)
        _register(root, False, DEBIAN_REGISTRY, [])
        ledger = store.load()
        for key in entries:
            ledger.environment.pop(key, None)
        store.settle(ledger)
    return result


def refresh_pip_constraints(
    envs: Iterable[Environment], *, wait: float = 30.0
) -> list[PipConstraintsResult]:
    """:func:`write_pip_constraints` for each environment that is a Python prefix."""
    return [write_pip_constraints(env, wait=wait) for env in envs]


# --------------------------------------------------------------------------------------
# Debian venvs: apt's hook keeps them current


# Environments whose constraints name what apt owns (venvs over Debian's python), so that
# `vbridge sync` (apt's DPkg::Post-Invoke hook) rewrites theirs after every dpkg run.
DEBIAN_REGISTRY = Path("/var/lib/vbridge/pip-constraints.json")


def _registered(registry: Path) -> list[str]:
    try:
        data = read_bytes(registry)
        document = json.loads(data) if data is not None else {}
        return sorted({str(p) for p in document.get("environments", [])})
    except (ValueError, AttributeError, TypeError, OSError, VbridgeError):
        return []  # rewritten by the next registration


def _register(root: Path, wanted: bool, registry: Path, notes: list[str]) -> None:
    """Add ``root`` to (or take it out of) the registry apt's hook reads."""
    known = _registered(registry)
    if (str(root) in known) == wanted:
        return
    names = sorted({*known, str(root)} if wanted else set(known) - {str(root)})
    try:
        registry.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"format": 1, "environments": names}, indent=2) + "\n"
        atomic_write(registry, text.encode("utf-8"), registry.parent)
    except (OSError, VbridgeError):
        if wanted:
            notes.append(
                f"{registry}: not writable, so apt's hook will not rewrite {root}'s "
                "constraints; run `vbridge annotate` there after apt changes Python packages"
            )


def sync_debian_environments(
    registry: Path = DEBIAN_REGISTRY, *, wait: float = 30.0
) -> list[PipConstraintsResult]:
    """``vbridge sync``: rewrite the constraints of every registered environment (a
    venv over Debian's python) from a new scan; forget those gone or cleaned."""
    from vbridge.scan import scan_python

    results: list[PipConstraintsResult] = []
    for name in _registered(registry):
        root = Path(name)
        python = root / "bin" / "python"
        if not pip_constraints_written(root) or not python.exists():
            _register(root, False, registry, [])
            continue
        try:
            env = scan_python(str(python))
            results.append(write_pip_constraints(env, wait=wait, registry=registry))
        except VbridgeError as exc:
            failed = PipConstraintsResult(root)
            failed.notes.append(f"{root}: constraints not rewritten ({exc})")
            results.append(failed)
    return results

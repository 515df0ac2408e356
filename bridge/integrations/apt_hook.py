"""The apt integration: a ``DPkg::Post-Invoke`` hook that runs ``vbridge sync``.

After every dpkg run apt executes the hook; :func:`sync_debian` then

1. scans the Debian root (``adapters/apt.py``) and compares it with the previous sync
   (``<root>/var/lib/vbridge/apt-sync.json``): which distributions are new, changed
   (another package version) or gone,
2. hands the scan to the dist-info writer (``vbridge.destinations.annotate``) when it is installed,
3. removes vbridge's files from ``.dist-info``/``.egg-info`` directories that dpkg no
   longer owns (the package was removed, or upgraded to a new version directory), so
   dpkg never leaves behind a directory that holds only vbridge's files.

The hook never makes apt fail: the command ends in ``|| true`` and ``vbridge sync
--apt-hook`` itself writes errors to a log and one line on stderr, and exits 0.

>>> text = hook_text(Path("/usr/bin/vbridge"), Path("/var/log/vbridge.log"))
>>> print(text.replace("; ", ";\\n    "), end="")
// Written by `vbridge apt-hook install`;
    remove it with `vbridge apt-hook uninstall`.
DPkg::Post-Invoke { "if [ -x '/usr/bin/vbridge' ];
    then '/usr/bin/vbridge' sync --apt-hook --log '/var/log/vbridge.log' || true;
    fi";
    };
"""

from __future__ import annotations

import datetime
import importlib
import json
import os
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from vbridge.errors import (
    NotAnEnvironment,
    ReadOnlyEnvironment,
    UnreadableFile,
    UnsafePath,
    VbridgeError,
)
from vbridge.model import Environment
from vbridge.safefs import open_regular, read_json

__all__ = [
    "ADDED_FILES",
    "DEFAULT_CONF_DIR",
    "DEFAULT_LOG",
    "HOOK_NAME",
    "STATE",
    "SyncResult",
    "added_files",
    "hook_text",
    "install_hook",
    "run_as_hook",
    "sync_debian",
    "uninstall_hook",
    "vbridge_executable",
]

HOOK_NAME = "90vbridge"
DEFAULT_CONF_DIR = Path("/etc/apt/apt.conf.d")
DEFAULT_LOG = Path("/var/log/vbridge.log")
_MARKER = "// Written by `vbridge apt-hook install`"
STATE = Path("var/lib/vbridge/apt-sync.json")
# What the dist-info writer adds to a distribution's metadata directory (PEP 825
# variant.json, PEP 770 SBOM); the writer's own constants win when it is installed.
ADDED_FILES: tuple[str, ...] = ("variant.json", "sboms/vbridge.cdx.json")
_WRITER_FILES = (
    ("vbridge.destinations.variant_json", "VARIANT_JSON"),
    ("vbridge.destinations.sbom", "SBOM_PATH"),
)
_UNSAFE_CHARS = ("'", '"', "\\", "\n", "\r")


def vbridge_executable() -> Path:
    """The absolute path of the ``vbridge`` command beside the running interpreter."""
    argv0 = Path(sys.argv[0])
    if argv0.name == "vbridge" and argv0.is_file():
        return argv0.absolute()
    beside = Path(sys.executable).absolute().parent / "vbridge"
    if beside.is_file():
        return beside
    raise NotAnEnvironment(
        f"{beside}: no vbridge command beside this interpreter; pass --vbridge PATH"
    )


def hook_text(vbridge: Path, log: Path) -> str:
    """The apt.conf snippet; it runs vbridge only when vbridge is still installed."""
    for path in (vbridge, log):
        if any(c in str(path) for c in _UNSAFE_CHARS) or not path.is_absolute():
            raise UnsafePath(
                f"{path}: the apt hook needs an absolute path without quotes or "
                "backslashes; install vbridge elsewhere or pass another --log"
            )
    command = (
        f"if [ -x '{vbridge}' ]; then '{vbridge}' sync --apt-hook --log '{log}' || true; fi"
    )
    return (
        f"{_MARKER}; remove it with `vbridge apt-hook uninstall`.\n"
        f'DPkg::Post-Invoke {{ "{command}"; }};\n'
    )


def install_hook(conf_dir: Path, vbridge: Path, log: Path) -> Path:
    """Write ``<conf_dir>/90vbridge`` atomically; replace an older vbridge hook only.

    Raises :class:`UnsafePath` when a file of that name is not vbridge's.
    """
    target = conf_dir / HOOK_NAME
    text = hook_text(vbridge, log)
    if target.exists() and not _is_ours(target):
        raise UnsafePath(f"{target}: exists and was not written by vbridge; not replaced")
    if not conf_dir.is_dir():
        raise NotAnEnvironment(f"{conf_dir}: no such directory; is apt installed here?")
    temp = conf_dir / f".{HOOK_NAME}.tmp-{os.getpid()}"
    try:
        temp.write_text(text, encoding="utf-8")
        os.chmod(temp, 0o644)
        os.replace(temp, target)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise ReadOnlyEnvironment(
            f"{target}: cannot write ({exc.strerror}); run as root"
        ) from exc
    return target


def uninstall_hook(conf_dir: Path) -> bool:
    """Remove vbridge's hook; False when there was none. Never removes another file."""
    target = conf_dir / HOOK_NAME
    if not target.exists():
        return False
    if not _is_ours(target):
        raise UnsafePath(f"{target}: was not written by vbridge; not removed")
    try:
        target.unlink()
    except OSError as exc:
        raise ReadOnlyEnvironment(f"{target}: cannot remove ({exc.strerror}); run as root") from exc
    return True


def _is_ours(path: Path) -> bool:
    try:
        with open_regular(path) as fh:
            return fh.readline().decode("utf-8", errors="replace").startswith(_MARKER)
    except (OSError, UnreadableFile):
        return False


# --- sync -----------------------------------------------------------------------------


@dataclass
class SyncResult:
    """What one sync saw and did."""

    root: Path
    apt_distributions: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)  # "termcolor 1.1.0 (python3-termcolor 1.1.0-3)"
    changed: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    writer: str | None = None  # the writer module used, None when not installed
    written: object = None  # what the writer returned
    cleaned: list[Path] = field(default_factory=list)  # orphaned dirs removed
    kept: list[tuple[Path, str]] = field(default_factory=list)  # orphans left, and why
    problems: list[str] = field(default_factory=list)
    pip_constraints: list[str] = field(default_factory=list)  # venvs' files rewritten

    def summary(self) -> str:
        """One log line: ``sync / apt=38 writer=absent cleaned=[...]``."""
        parts = [f"sync {self.root}", f"apt={len(self.apt_distributions)}"]
        for label, items in (("new", self.new), ("changed", self.changed), ("gone", self.gone)):
            if items:
                parts.append(f"{label}=[{', '.join(items)}]")
        parts.append(f"writer={self.writer or 'absent'}")
        if self.written is not None:
            parts.append(f"written={self.written!r}")
        parts.append(f"cleaned=[{', '.join(str(p) for p in self.cleaned)}]")
        if self.kept:
            parts.append(
                "kept=[" + ", ".join(f"{p} ({why})" for p, why in self.kept) + "]"
            )
        if self.pip_constraints:
            parts.append(f"pip_constraints=[{', '.join(self.pip_constraints)}]")
        if self.problems:
            parts.append(f"problems={len(self.problems)}")
        return " ".join(parts)


def _writer_module() -> ModuleType | None:
    """The dist-info writer, when this vbridge has it (the hook point for writing)."""
    try:
        return importlib.import_module("vbridge.destinations.annotate")
    except ImportError:
        return None


def added_files() -> tuple[str, ...]:
    """The files the writer adds, from its own modules when installed, else ADDED_FILES."""
    found: list[str] = []
    for module_name, constant in _WRITER_FILES:
        try:
            value = getattr(importlib.import_module(module_name), constant)
        except (ImportError, AttributeError):
            return ADDED_FILES
        found.append(str(value))
    return tuple(found)


def _describe(written: object) -> object:
    """A short account of what the writer returned: its changed files when it says."""
    changed = getattr(written, "changed", None)
    if isinstance(changed, list):
        return f"{len(changed)} file(s) changed"
    return written


def sync_debian(root: Path = Path("/"), writer: ModuleType | None = None) -> SyncResult:
    """Bring vbridge's files in a Debian root in line with what dpkg has installed.

    ``writer`` defaults to ``vbridge.destinations.annotate`` when importable; its
    ``annotate_environment(env)`` writes the metadata of what is new or changed.
    Orphaned directories (no installed package owns them any more) lose vbridge's
    files, and the directory too once nothing else is left in it.
    """
    from vbridge.adapters import apt
    from vbridge.decide.assess import assess_environment
    from vbridge.scan import scan_environment

    root = root.absolute()
    if apt.find_root(root) != root:
        raise NotAnEnvironment(
            f"{root}: no {apt.STATUS}; give the directory dpkg --root would take"
        )
    env = assess_environment(scan_environment(root, adapters=[apt.ADAPTER]))
    result = SyncResult(root=root, problems=[str(p) for p in env.problems])
    current = {
        str(d.dist_info): f"{d.name} {d.version} ({d.owner.name} {d.owner.version})"
        for d in env.distributions
        if d.owner is not None and d.owner.ecosystem == apt.ECOSYSTEM
    }
    result.apt_distributions = sorted(current.values())
    previous = _read_state(root / STATE, result)
    if previous is not None:
        result.new = sorted(v for k, v in current.items() if k not in previous)
        result.changed = sorted(
            v for k, v in current.items() if k in previous and previous[k] != v
        )
        result.gone = sorted(v for k, v in previous.items() if k not in current)
    module = writer if writer is not None else _writer_module()
    if module is not None:
        result.writer = module.__name__
        result.written = _describe(module.annotate_environment(env))
    _remove_orphaned(root, env, added_files(), result)
    _write_state(root / STATE, current, result)
    if root == Path("/"):
        # venvs over Debian's python: plain pip's constraints name apt's packages.
        from vbridge.destinations.pip_constraints import sync_debian_environments

        for done in sync_debian_environments():
            result.pip_constraints.extend(str(path) for path, _action in done.changed)
            result.problems.extend(done.notes)
    return result


def _read_state(path: Path, result: SyncResult) -> dict[str, str] | None:
    """The previous sync's distributions, None on the first sync."""
    try:
        data = read_json(path)
    except FileNotFoundError:
        return None
    except (OSError, UnreadableFile) as exc:
        result.problems.append(f"{path}: unreadable ({exc}); rewritten by this sync")
        return None
    distributions = data.get("distributions") if isinstance(data, dict) else None
    if not isinstance(distributions, dict):
        result.problems.append(f"{path}: not a vbridge sync state; rewritten by this sync")
        return None
    return {str(k): str(v) for k, v in distributions.items()}


def _write_state(path: Path, current: dict[str, str], result: SyncResult) -> None:
    """Write the state atomically (temp file + rename)."""
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp.write_text(
            json.dumps({"version": 1, "distributions": current}, indent=1, sort_keys=True),
            encoding="utf-8",
        )
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        result.problems.append(f"{path}: cannot write the sync state ({exc.strerror})")


def _remove_orphaned(
    root: Path, env: Environment, added: tuple[str, ...], result: SyncResult
) -> None:
    from vbridge.adapters import apt

    owned = {p for record in env.records for p in record.python_dists}
    layer = root / apt.DIST_PACKAGES.strip("/")
    try:
        entries = sorted(os.scandir(layer), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if not entry.name.endswith((".dist-info", ".egg-info")):
            continue
        if not entry.is_dir(follow_symlinks=False):
            continue
        path = Path(entry.path)
        if path in owned:
            continue
        present = _relative_files(path)
        ours = [f for f in present if f in added]
        if not ours:
            continue
        others = [f for f in present if f not in added]
        if others:
            result.kept.append((path, f"also holds {', '.join(others[:3])}"))
            continue
        for rel in ours:
            (path / rel).unlink()
        for directory in sorted(_relative_dirs(path), key=len, reverse=True):
            (path / directory).rmdir()
        path.rmdir()
        result.cleaned.append(path)


def _relative_files(path: Path) -> list[str]:
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
        base = Path(dirpath).relative_to(path)
        found.extend(str(base / name) if str(base) != "." else name for name in filenames)
        # a symlink to a directory is listed in dirnames but not walked: count it as a file
        found.extend(
            str(base / d) if str(base) != "." else d
            for d in dirnames
            if (Path(dirpath) / d).is_symlink()
        )
    return sorted(found)


def _relative_dirs(path: Path) -> list[str]:
    return [
        str(Path(dirpath).relative_to(path))
        for dirpath, _, _ in os.walk(path, followlinks=False)
        if Path(dirpath) != path
    ]


def run_as_hook(root: Path, log: Path) -> int:
    """``vbridge sync --apt-hook``: never fails apt. Errors go to ``log`` and one line
    on stderr; the exit status is always 0."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines: list[str] = []
    message: str | None = None
    try:
        result = sync_debian(root)
        lines.append(f"{stamp} {result.summary()}")
        lines.extend(f"{stamp}   problem: {p}" for p in result.problems)
        if result.problems:
            message = f"sync finished with {len(result.problems)} problem(s)"
    except VbridgeError as exc:
        lines.append(f"{stamp} sync {root} failed: {exc}")
        message = str(exc)
    except Exception as exc:  # the hook must never break apt, whatever went wrong
        lines.append(f"{stamp} sync {root} failed: {exc!r}")
        lines.extend(f"{stamp}   {t}" for t in traceback.format_exc().splitlines())
        message = f"internal error: {exc!r}"
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
        where = f"details in {log}"
    except OSError as exc:
        where = f"and the log {log} cannot be written: {exc.strerror}"
    if message is not None:
        print(f"vbridge: apt hook: {message} ({where}); apt is not affected", file=sys.stderr)
    return 0

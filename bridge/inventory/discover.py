"""Which environments a machine has: the targets of ``vbridge scan --all``.

Each adapter names its ecosystem's environments (:meth:`vbridge.adapters.Adapter.discover`):

- conda: every conda environment the user's conda knows (``~/.conda/environments.txt``
  and the ``envs_dirs``);
- apt: the Debian system (the root ``/``, as ``vbridge scan --root /`` reads it), when
  ``/var/lib/dpkg/status`` and ``/usr/bin/python3`` exist;
- Spack: the install trees and environments named in the configuration;

and then every venv (a directory with ``pyvenv.cfg``) under the directories named in
the configuration.

The configuration is ``$XDG_CONFIG_HOME/vbridge/config.toml`` (or ``$VBRIDGE_CONFIG``)::

    [discover]
    spack = ["/opt/spack/opt/spack", "/home/me/spack-envs/sci"]
    venvs = ["/home/me/venvs"]
    conda = true
    debian = true

>>> config = DiscoveryConfig(home=Path("/nonexistent"), environ={}, settings={"debian": False})
>>> discover(config)
[]
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vbridge.errors import VbridgeError

__all__ = [
    "DiscoveryConfig",
    "Target",
    "discover",
    "load_config",
    "unique_paths",
    "unique_targets",
    "venvs_under",
]

# How deep below a configured directory venvs are looked for (~/venvs/project/.venv).
_VENV_DEPTH = 3
_SKIP_DIRS = frozenset({"node_modules", "__pycache__", ".git", "site-packages", "conda-meta"})


@dataclass(frozen=True)
class Target:
    """One environment to scan: a prefix, or an interpreter whose layers are scanned.

    ``origin`` says how it was found (``conda environments.txt``, ``argument`` ...).
    """

    path: Path
    origin: str = "argument"
    python: str | None = None

    @property
    def label(self) -> str:
        return f"{self.path} (python {self.python})" if self.python else str(self.path)


# The [discover] keys vbridge itself reads; each adapter adds its own (DISCOVER_SETTINGS).
_SETTINGS: dict[str, type] = {"venvs": list}


@dataclass
class DiscoveryConfig:
    """Where to look: the user's home and environment, the ``[discover]`` settings
    (``venvs``: folders with venvs; the adapters' own, ``spack = [...]``, ``conda =
    false``...), and the file-system root system package managers are looked for in."""

    home: Path = field(default_factory=Path.home)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    settings: Mapping[str, Any] = field(default_factory=dict)
    root: Path = Path("/")

    def enabled(self, key: str) -> bool:
        """A ``true``/``false`` setting (true unless set false)."""
        return self.settings.get(key, True) is not False

    def paths(self, key: str) -> list[Path]:
        """A list-of-paths setting (empty unless set)."""
        return [Path(p) for p in self.settings.get(key, [])]


def config_path(environ: Mapping[str, str], home: Path) -> Path:
    """``$VBRIDGE_CONFIG``, else ``$XDG_CONFIG_HOME/vbridge/config.toml``."""
    if environ.get("VBRIDGE_CONFIG"):
        return Path(environ["VBRIDGE_CONFIG"])
    base = Path(environ["XDG_CONFIG_HOME"]) if environ.get("XDG_CONFIG_HOME") else home / ".config"
    return base / "vbridge" / "config.toml"


def load_config(
    home: Path | None = None, environ: Mapping[str, str] | None = None
) -> DiscoveryConfig:
    """The discovery configuration of this user (defaults when there is no file)."""
    environ = dict(os.environ) if environ is None else environ
    home = Path(environ.get("HOME") or Path.home()) if home is None else home
    config = DiscoveryConfig(home=home, environ=environ)
    path = config_path(environ, home)
    from vbridge.safefs import read_regular

    try:
        text = read_regular(path, limit=1 << 20, hint="fix or remove it").decode("utf-8")
    except FileNotFoundError:
        return config
    except UnicodeDecodeError as exc:
        raise VbridgeError(f"{path}: not UTF-8 text ({exc.reason}); fix or remove it") from None
    except OSError as exc:
        raise VbridgeError(f"{path}: unreadable ({exc.strerror}); fix its permissions") from exc
    from vbridge.parsed_toml import toml_module

    tomllib = toml_module()  # imported where there is a configuration file to parse
    try:
        table = tomllib.loads(text).get("discover", {})
    except tomllib.TOMLDecodeError as exc:
        raise VbridgeError(f"{path}: not valid TOML ({exc}); fix or remove it") from exc
    if not isinstance(table, dict):
        raise VbridgeError(f"{path}: [discover] must be a table")
    from vbridge.adapters import all_adapters

    known = dict(_SETTINGS)
    for adapter in all_adapters():
        known.update(adapter.DISCOVER_SETTINGS)
    settings: dict[str, Any] = {}
    # Lists first, then switches: the order the errors were always checked in.
    for key, kind in sorted(known.items(), key=lambda kv: (kv[1] is not list, kv[0])):
        if key not in table:
            continue
        value = table[key]
        if kind is list:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise VbridgeError(f"{path}: discover.{key} must be a list of paths")
            settings[key] = [Path(v).expanduser() for v in value]
        elif not isinstance(value, bool):
            raise VbridgeError(f"{path}: discover.{key} must be true or false")
        else:
            settings[key] = value
    config.settings = settings
    return config


def venvs_under(directory: Path, depth: int = _VENV_DEPTH) -> Iterator[Path]:
    """Every venv (``pyvenv.cfg`` beside ``bin/``/``Scripts/``) up to ``depth`` below."""
    if (directory / "pyvenv.cfg").is_file():
        yield directory
        return
    if depth == 0:
        return
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.name in _SKIP_DIRS or not entry.is_dir(follow_symlinks=False):
            continue
        yield from venvs_under(Path(entry.path), depth - 1)


def unique_paths(paths: Iterable[Path]) -> list[Path]:
    """``paths`` without repeats (one directory reached by two paths counts once)."""
    seen: set[str] = set()
    out = []
    for path in paths:
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            out.append(path)
    return out


def discover(config: DiscoveryConfig | None = None) -> list[Target]:
    """Every environment of this machine that the configuration allows, each once."""
    from vbridge.adapters import all_adapters

    config = load_config() if config is None else config
    targets: list[Target] = []
    for adapter in sorted(all_adapters(), key=lambda a: a.DISCOVER_RANK):
        targets += adapter.discover(config)
    for directory in config.paths("venvs"):
        targets += [Target(p, "venv") for p in venvs_under(directory)]
    return unique_targets(targets)


def unique_targets(targets: Iterable[Target]) -> list[Target]:
    """Targets without repeats (the same prefix reached by two paths counts once)."""
    seen: set[tuple[str, str | None]] = set()
    out = []
    for target in targets:
        key = (os.path.realpath(target.path), target.python)
        if key not in seen:
            seen.add(key)
            out.append(target)
    return out

"""Which environments a machine has: the targets of ``vbridge scan --all``.

- every conda environment the user's conda knows: the prefixes conda lists in
  ``~/.conda/environments.txt`` (conda, mamba and micromamba append every environment
  they create), and every prefix under the ``envs_dirs`` (``$CONDA_ENVS_PATH``, the
  ``envs_dirs`` of the user's ``.condarc``, ``~/.conda/envs``, the root prefix's
  ``envs/``);
- the Debian system (the root ``/``, as ``vbridge scan --root /`` reads it), when
  ``/var/lib/dpkg/status`` and ``/usr/bin/python3`` exist;
- Spack install trees and environments named in the configuration;
- every venv (a directory with ``pyvenv.cfg``) under the directories named in the
  configuration.

The configuration is ``$XDG_CONFIG_HOME/vbridge/config.toml`` (or ``$VBRIDGE_CONFIG``)::

    [discover]
    spack = ["/opt/spack/opt/spack", "/home/me/spack-envs/sci"]
    venvs = ["/home/me/venvs"]
    conda = true
    debian = true

>>> config = DiscoveryConfig(home=Path("/nonexistent"), environ={}, debian=False)
>>> discover(config)
[]
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from vbridge.errors import VbridgeError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "DiscoveryConfig",
    "Target",
    "conda_environments",
    "debian_system",
    "discover",
    "load_config",
    "spack_targets",
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


@dataclass
class DiscoveryConfig:
    """Where to look: the user's home, and the Spack trees and venv folders to add."""

    home: Path = field(default_factory=Path.home)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    conda: bool = True
    debian: bool = True
    spack: list[Path] = field(default_factory=list)
    venvs: list[Path] = field(default_factory=list)
    debian_root: Path = Path("/")


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
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return config
    except OSError as exc:
        raise VbridgeError(f"{path}: unreadable ({exc.strerror}); fix its permissions") from exc
    try:
        table = tomllib.loads(text).get("discover", {})
    except tomllib.TOMLDecodeError as exc:
        raise VbridgeError(f"{path}: not valid TOML ({exc}); fix or remove it") from exc
    if not isinstance(table, dict):
        raise VbridgeError(f"{path}: [discover] must be a table")
    for key in ("spack", "venvs"):
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise VbridgeError(f"{path}: discover.{key} must be a list of paths")
        setattr(config, key, [Path(v).expanduser() for v in value])
    for key in ("conda", "debian"):
        value = table.get(key, True)
        if not isinstance(value, bool):
            raise VbridgeError(f"{path}: discover.{key} must be true or false")
        setattr(config, key, value)
    return config


def _is_conda_prefix(path: Path) -> bool:
    return (path / "conda-meta").is_dir()


def _condarc_envs_dirs(text: str) -> list[str]:
    """``envs_dirs`` of a ``.condarc``: the block list or flow list forms conda writes.

    >>> _condarc_envs_dirs("channels:\\n  - conda-forge\\nenvs_dirs:\\n  - ~/envs\\n  - /opt/e\\n")
    ['~/envs', '/opt/e']
    >>> _condarc_envs_dirs("envs_dirs: [/a, '/b']\\n")
    ['/a', '/b']
    """
    found: list[str] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.startswith("envs_dirs:"):
            continue
        rest = line.split(":", 1)[1].split(" #", 1)[0].strip()
        if rest.startswith("["):
            items = rest.strip("[]").split(",")
            found += [item.strip().strip("'\"") for item in items if item.strip()]
            continue
        for item in lines[i + 1 :]:
            stripped = item.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if not stripped.startswith("- "):
                break
            found.append(stripped[2:].split(" #", 1)[0].strip().strip("'\""))
    return found


def _conda_envs_dirs(config: DiscoveryConfig) -> list[Path]:
    env, home = config.environ, config.home
    dirs: list[Path] = []
    for var in ("CONDA_ENVS_PATH", "CONDA_ENVS_DIRS"):
        dirs += [Path(p) for p in env.get(var, "").split(os.pathsep) if p]
    condarcs = [home / ".condarc", home / ".conda" / ".condarc", home / ".config/conda/.condarc"]
    if env.get("XDG_CONFIG_HOME"):
        condarcs.append(Path(env["XDG_CONFIG_HOME"]) / "conda" / ".condarc")
    if env.get("CONDARC"):
        condarcs.append(Path(env["CONDARC"]))
    for rc in condarcs:
        try:
            text = rc.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for entry in _condarc_envs_dirs(text):
            if entry.startswith("~"):
                entry = str(home) + entry[1:]
            dirs.append(Path(os.path.expandvars(entry)))
    dirs.append(home / ".conda" / "envs")
    for var in ("CONDA_ROOT", "MAMBA_ROOT_PREFIX"):
        if env.get(var):
            dirs.append(Path(env[var]) / "envs")
    if env.get("CONDA_EXE"):  # <root>/bin/conda or <root>/condabin/conda
        dirs.append(Path(env["CONDA_EXE"]).parent.parent / "envs")
    return dirs


def conda_environments(config: DiscoveryConfig) -> list[Path]:
    """Every conda prefix the user's conda knows, in the order conda lists them."""
    found: list[Path] = []
    listing = config.home / ".conda" / "environments.txt"
    try:
        lines = listing.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            found.append(Path(line))
    for var in ("CONDA_ROOT", "MAMBA_ROOT_PREFIX"):
        if config.environ.get(var):
            found.append(Path(config.environ[var]))
    for envs_dir in _conda_envs_dirs(config):
        try:
            children = sorted(os.scandir(envs_dir), key=lambda e: e.name)
        except OSError:
            continue
        found += [Path(e.path) for e in children if e.is_dir()]
    return [p for p in _unique(found) if _is_conda_prefix(p)]


def debian_system(config: DiscoveryConfig) -> Target | None:
    """The Debian root (``/``), when it has a dpkg database and a ``python3``."""
    root = config.debian_root
    if (root / "var" / "lib" / "dpkg" / "status").is_file() and (
        root / "usr" / "bin" / "python3"
    ).exists():
        return Target(root, "debian system")
    return None


def spack_targets(config: DiscoveryConfig) -> list[Path]:
    """The configured Spack install trees and environments that exist."""
    found = []
    for path in config.spack:
        if (path / ".spack-db" / "index.json").is_file() or (path / "spack.lock").is_file():
            found.append(path)
    return found


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


def _unique(paths: Iterable[Path]) -> list[Path]:
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
    config = load_config() if config is None else config
    targets: list[Target] = []
    if config.conda:
        targets += [Target(p, "conda") for p in conda_environments(config)]
    if config.debian:
        system = debian_system(config)
        if system is not None:
            targets.append(system)
    targets += [Target(p, "spack") for p in spack_targets(config)]
    for directory in config.venvs:
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

"""Who installed a loaded file: a conda record, a dpkg file list, a wheel, a Spack prefix.

:class:`OwnerIndex` answers for the files one verification saw, reading each ecosystem's
own records of file ownership, nearest first:

- a conda prefix (an ancestor with ``conda-meta/``): the record whose ``files`` lists it;
- a Spack prefix (an ancestor with ``.spack/spec.json``): that spec;
- a site-packages layer of the environment: the distribution whose ``RECORD`` (or
  ``installed-files.txt``) lists it, e.g. ``numpy.libs/libscipy_openblas64_-*.so``;
- a Debian root (``/var/lib/dpkg``): the package whose ``info/*.list`` has the path (the
  ``/usr``-merged alias too), as ``dpkg -S`` answers.

>>> LibraryOwner("apt", "libopenblas0-pthread", "0.3.21+ds-4").describe()
'apt libopenblas0-pthread 0.3.21+ds-4'
>>> LibraryOwner("wheel", "numpy", "2.2.6", "numpy.libs/").describe()
'wheel numpy 2.2.6 (numpy.libs/)'
"""

from __future__ import annotations

import csv
import io
import json
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vbridge.model import Environment

__all__ = ["LibraryOwner", "OwnerIndex"]

# Caps on what is read to answer: a record or file list larger than this is skipped.
_MAX_RECORD_BYTES = 64 * 1024 * 1024
_MAX_ANCESTORS = 12
_DPKG_INFO = Path("var/lib/dpkg/info")


@dataclass(frozen=True)
class LibraryOwner:
    """The package a loaded file belongs to."""

    ecosystem: str  # conda | apt | spack | wheel
    name: str
    version: str = ""
    detail: str = ""  # a build string, a Spack hash, a wheel's library folder

    def describe(self) -> str:
        text = f"{self.ecosystem} {self.name}"
        if self.version:
            text += f" {self.version}"
        if self.detail:
            text += f" ({self.detail})"
        return text

    def to_dict(self) -> dict[str, str]:
        return {
            "ecosystem": self.ecosystem,
            "name": self.name,
            "version": self.version,
            "detail": self.detail,
        }


def _read_capped(path: Path) -> bytes | None:
    """A regular file's bytes (capped), or None: unreadable records are skipped here,
    since owners are what a verification adds, not what it needs."""
    from vbridge.errors import RecordError
    from vbridge.safefs import read_regular

    try:
        return read_regular(path, limit=_MAX_RECORD_BYTES)
    except (OSError, RecordError):
        return None


def _usr_merge_aliases(path: str) -> list[str]:
    for merged in ("/bin/", "/sbin/", "/lib/", "/lib32/", "/lib64/", "/libx32/"):
        if path.startswith("/usr" + merged):
            return [path, path[4:]]
        if path.startswith(merged):
            return [path, "/usr" + path]
    return [path]


class OwnerIndex:
    """Owners of files, looked up in the records of ``env`` and of this machine."""

    def __init__(self, env: Environment, debian_root: Path = Path("/")) -> None:
        self.env = env
        self.debian_root = debian_root
        self._conda: dict[Path, dict[str, LibraryOwner]] = {}
        self._layers: dict[Path, dict[str, LibraryOwner]] = {}
        self._known: dict[str, LibraryOwner | None] = {}
        self._spack: dict[Path, LibraryOwner | None] = {}
        self._lock = threading.Lock()  # children's reports are judged in threads

    def owners(self, paths: Iterable[str]) -> dict[str, LibraryOwner | None]:
        """The owner of each path (None: no record lists it)."""
        paths = list(paths)
        with self._lock:
            wanted = [p for p in dict.fromkeys(paths) if p not in self._known]
            left: list[str] = []
            for path in wanted:
                owner = self._owner_outside_dpkg(path)
                if owner is None:
                    left.append(path)
                self._known[path] = owner
            if left:
                self._known.update(self._dpkg_owners(left))
            return {p: self._known.get(p) for p in paths}

    # --- conda, Spack, site-packages ------------------------------------------------------

    def _owner_outside_dpkg(self, path: str) -> LibraryOwner | None:
        candidate = Path(path)
        for directory in list(candidate.parents)[:_MAX_ANCESTORS]:
            if (directory / "conda-meta").is_dir():
                return self._conda_files(directory).get(candidate.relative_to(directory).as_posix())
            spec = directory / ".spack" / "spec.json"
            if spec.is_file():
                return self._spack_owner(directory)
            layer = self._layer_of(directory)
            if layer is not None:
                return self._layer_files(layer).get(candidate.relative_to(layer).as_posix())
        return None

    def _layer_of(self, directory: Path) -> Path | None:
        for layer in self.env.site_packages:
            if directory == layer or os.path.realpath(directory) == os.path.realpath(layer):
                return directory
        return None

    def _conda_files(self, prefix: Path) -> dict[str, LibraryOwner]:
        found = self._conda.get(prefix)
        if found is not None:
            return found
        found = {}
        try:
            names = sorted(e.name for e in os.scandir(prefix / "conda-meta"))
        except OSError:
            names = []
        for name in names:
            if not name.endswith(".json"):
                continue
            raw = _read_capped(prefix / "conda-meta" / name)
            if raw is None:
                continue
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(record, dict) or not isinstance(record.get("files"), list):
                continue
            owner = LibraryOwner(
                "conda",
                str(record.get("name", "")),
                str(record.get("version", "")),
                str(record.get("build", "")),
            )
            for rel in record["files"]:
                if isinstance(rel, str) and (".so" in rel or rel.endswith((".dylib", ".dll"))):
                    found.setdefault(rel.replace("\\", "/"), owner)
        self._conda[prefix] = found
        return found

    def _spack_owner(self, prefix: Path) -> LibraryOwner | None:
        if prefix in self._spack:
            return self._spack[prefix]
        from vbridge.adapters.spack import read_specfile
        from vbridge.errors import RecordError

        owner: LibraryOwner | None = None
        try:
            nodes = read_specfile(prefix / ".spack" / "spec.json", root_only=True)
        except (RecordError, OSError, ValueError):
            nodes = []
        if nodes:
            owner = LibraryOwner("spack", nodes[0].name, nodes[0].version, nodes[0].hash[:7])
        self._spack[prefix] = owner
        return owner

    def _layer_files(self, layer: Path) -> dict[str, LibraryOwner]:
        found = self._layers.get(layer)
        if found is not None:
            return found
        found = {}
        for dist in self.env.distributions:
            if os.path.realpath(dist.layer) != os.path.realpath(layer):
                continue
            for rel in distribution_files(dist.dist_info):
                if ".so" not in rel and not rel.endswith((".dylib", ".dll", ".pyd")):
                    continue
                if dist.owner is not None:  # conda, apt or Spack installed it
                    o = dist.owner
                    owner = LibraryOwner(o.ecosystem, o.name, o.version, o.build)
                else:
                    top = rel.split("/", 1)[0]
                    folder = f"{top}/" if top.endswith(".libs") else ""
                    owner = LibraryOwner("wheel", dist.name, dist.version, folder)
                found.setdefault(rel, owner)
        self._layers[layer] = found
        return found

    # --- dpkg -----------------------------------------------------------------------------

    def _dpkg_owners(self, paths: Sequence[str]) -> dict[str, LibraryOwner | None]:
        info = self.debian_root / _DPKG_INFO
        out: dict[str, LibraryOwner | None] = {p: None for p in paths}
        if not info.is_dir():
            return out
        needles = {
            p: [b"\n" + a.encode("utf-8", "surrogateescape") + b"\n" for a in _usr_merge_aliases(p)]
            for p in paths
        }
        versions = _dpkg_versions(self.debian_root)
        try:
            lists = sorted(e.name for e in os.scandir(info) if e.name.endswith(".list"))
        except OSError:
            return out
        for name in lists:
            if all(out.values()):
                break
            data = _read_capped(info / name)
            if data is None:
                continue
            data = b"\n" + data + b"\n"
            package = name[: -len(".list")].split(":")[0]
            for path, options in needles.items():
                if out[path] is None and any(n in data for n in options):
                    out[path] = LibraryOwner("apt", package, versions.get(package, ""))
        return out


def _dpkg_versions(root: Path) -> dict[str, str]:
    """Installed version of each package in ``root``'s dpkg status (Package/Version)."""
    versions: dict[str, str] = {}
    raw = _read_capped(root / "var/lib/dpkg/status")
    if raw is None:
        return versions
    package = ""
    for line in raw.decode("utf-8", "replace").splitlines():
        if line.startswith("Package:"):
            package = line.partition(":")[2].strip()
        elif line.startswith("Version:") and package:
            versions.setdefault(package, line.partition(":")[2].strip())
    return versions


def distribution_files(dist_info: Path) -> list[str]:
    """Paths relative to the layer that a dist-info's ``RECORD`` (or an egg-info's
    ``installed-files.txt``) lists; ``[]`` when it has neither."""
    record = _read_capped(dist_info / "RECORD")
    if record is not None:
        rows = csv.reader(io.StringIO(record.decode("utf-8", "replace")))
        return [os.path.normpath(row[0]).replace("\\", "/") for row in rows if row and row[0]]
    listed = _read_capped(dist_info / "installed-files.txt")
    if listed is not None:
        out = []
        for line in listed.decode("utf-8", "replace").splitlines():
            if line.strip():
                rel = os.path.normpath(os.path.join(dist_info.name, line.strip()))
                out.append(rel.replace("\\", "/"))
        return out
    return []

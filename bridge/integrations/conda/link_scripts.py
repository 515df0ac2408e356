"""Link scripts: what a conda package's ``post-link.sh`` and ``pre-unlink.sh`` call.

conda, mamba and rattler run ``bin/.<name>-post-link.sh`` after linking a package and
``bin/.<name>-pre-unlink.sh`` before unlinking it, with ``PREFIX``, ``PKG_NAME``,
``PKG_VERSION`` and ``PKG_BUILDNUM`` set. A script must not print; messages for the
user go to ``$PREFIX/.messages.txt``, which the installer shows and deletes. A failing
post-link script makes conda roll the transaction back, so the commands exit 0 unless
``--strict`` asks otherwise.

``vbridge conda-post-link`` (:func:`run_post_link`) annotates the package's Python
distributions; ``vbridge conda-pre-unlink`` (:func:`run_pre_unlink`) removes what
vbridge wrote into them, so nothing is left behind even where the files could not be
registered with the installer.

Installers differ in when the package's own ``conda-meta`` record exists:

- rattler and pixi run link scripts after every record of the transaction is written:
  the record is read as usual;
- conda and mamba run post-link scripts *before* writing the records of the
  transaction. The package's files are linked, but its record (and the records of
  packages linked in the same transaction, such as the ``libblas`` that came with
  ``numpy``) are not there yet. The same facts are in the extracted package in the
  package cache (``info/index.json``, ``info/paths.json``), which conda linked from:
  those records are read from there, choosing the cached build whose files are the
  ones linked into the prefix.

>>> request = PostLinkRequest.from_environ(
...     {"PREFIX": "/env", "PKG_NAME": "numpy", "PKG_VERSION": "1.26.4", "PKG_BUILDNUM": "0"})
>>> (request.name, request.version, request.build_number)
('numpy', '1.26.4', 0)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from vbridge.adapters.conda import CondaPrefix
from vbridge.errors import VbridgeError
from vbridge.model import InstallRecord, RecordProblem
from vbridge.rules import dependency_names

__all__ = [
    "MESSAGES_FILE",
    "PostLinkError",
    "PostLinkOutcome",
    "PostLinkRequest",
    "append_messages",
    "package_cache_dirs",
    "run_link_script",
    "run_post_link",
    "run_pre_unlink",
]

MESSAGES_FILE = ".messages.txt"


class PostLinkError(VbridgeError):
    """The post-link environment is incomplete (not run by a conda installer?)."""


def package_cache_dirs(environ: Mapping[str, str]) -> list[Path]:
    """Where conda-compatible installers keep extracted packages, in search order.

    ``CONDA_PKGS_DIRS`` (comma-separated, as conda reads it), then ``pkgs/`` under
    ``ROOT_PREFIX`` (set by conda for link scripts), ``MAMBA_ROOT_PREFIX`` and
    ``CONDA_ROOT``, then ``~/.conda/pkgs``.

    >>> package_cache_dirs({"CONDA_PKGS_DIRS": "/a,/b", "ROOT_PREFIX": "/opt/conda"})[:3]
    [PosixPath('/a'), PosixPath('/b'), PosixPath('/opt/conda/pkgs')]
    """
    dirs: list[Path] = []
    for entry in environ.get("CONDA_PKGS_DIRS", "").split(","):
        if entry.strip():
            dirs.append(Path(os.path.expanduser(entry.strip())))
    for var in ("ROOT_PREFIX", "MAMBA_ROOT_PREFIX", "CONDA_ROOT"):
        if environ.get(var):
            dirs.append(Path(environ[var]) / "pkgs")
    if environ.get("HOME"):
        dirs.append(Path(environ["HOME"]) / ".conda" / "pkgs")
    return list(dict.fromkeys(dirs))


@dataclass(frozen=True)
class PostLinkRequest:
    """The package a post-link script runs for, from conda's environment variables."""

    prefix: Path
    name: str
    version: str
    build_number: int | None = None
    pkgs_dirs: tuple[Path, ...] = ()

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> PostLinkRequest:
        missing = [v for v in ("PREFIX", "PKG_NAME", "PKG_VERSION") if not environ.get(v)]
        if missing:
            raise PostLinkError(
                f"{', '.join(missing)} not set: conda-post-link runs from a package's "
                "post-link.sh under conda, mamba or rattler (or set them by hand)"
            )
        buildnum = environ.get("PKG_BUILDNUM", "")
        return cls(
            prefix=Path(environ["PREFIX"]),
            name=environ["PKG_NAME"],
            version=environ["PKG_VERSION"],
            build_number=int(buildnum) if buildnum.isdigit() else None,
            pkgs_dirs=tuple(package_cache_dirs(environ)),
        )

    def matches(self, data: Mapping[str, Any]) -> bool:
        """Whether a record or ``index.json`` is this package."""
        if data.get("name") != self.name or str(data.get("version")) != self.version:
            return False
        return self.build_number is None or data.get("build_number") == self.build_number


@dataclass
class PostLinkOutcome:
    """What the post-link run did: where the package's facts came from, what it wrote."""

    source: Literal["record", "package-cache", "none"]
    annotated: list[Path] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


def append_messages(prefix: Path, lines: Sequence[str]) -> None:
    """Add lines to ``$PREFIX/.messages.txt``, which the installer prints and deletes."""
    if not lines:
        return
    with open(prefix / MESSAGES_FILE, "a", encoding="utf-8") as fh:
        fh.writelines(f"{line}\n" for line in lines)


def _read_json(path: Path) -> Any:
    with open(path, "rb") as fh:
        return json.load(fh)


def _written_records(request: PostLinkRequest) -> list[Path]:
    """The package's own ``conda-meta`` records, if the installer wrote them already."""
    found = []
    for path in sorted(
        (request.prefix / "conda-meta").glob(f"{request.name}-{request.version}-*.json")
    ):
        with contextlib.suppress(OSError, ValueError):
            if request.matches(_read_json(path)):
                found.append(path)
    return found


@dataclass(frozen=True)
class _CachedPackage:
    """An extracted package in a package cache: ``<pkgs>/<name>-<version>-<build>/``."""

    directory: Path
    index: Mapping[str, Any]

    def paths(self) -> list[Mapping[str, Any]]:
        info = self.directory / "info"
        with contextlib.suppress(OSError, ValueError):
            data = _read_json(info / "paths.json")
            return [p for p in data.get("paths", []) if isinstance(p, dict) and "_path" in p]
        with contextlib.suppress(OSError):
            lines = (info / "files").read_text(encoding="utf-8").splitlines()
            return [{"_path": line.strip()} for line in lines if line.strip()]
        return []

    def _linkable(self) -> list[Mapping[str, Any]]:
        return [p for p in self.paths() if p.get("path_type", "hardlink") == "hardlink"]

    def hard_linked_into(self, prefix: Path) -> bool:
        """Whether one of the prefix's files is a hard link to this cached build's file."""
        for entry in self._linkable():
            with contextlib.suppress(OSError):
                if os.path.samefile(self.directory / entry["_path"], prefix / entry["_path"]):
                    return True
        return False

    def content_in(self, prefix: Path) -> bool:
        """Whether the prefix holds this build's smallest file, by size and SHA-256."""
        entries = self._linkable()
        if not entries:
            return False
        entry = min(entries, key=lambda p: int(p.get("size_in_bytes") or 0))
        target = prefix / str(entry["_path"])
        try:
            size = entry.get("size_in_bytes")
            if size is not None and target.stat().st_size != int(size):
                return False
            expected = entry.get("sha256")
            if not expected:
                return target.is_file()
            return hashlib.sha256(target.read_bytes()).hexdigest() == str(expected)
        except OSError:
            return False

    @property
    def record_filename(self) -> str:
        index = self.index
        return f"{index.get('name')}-{index.get('version')}-{index.get('build')}.json"

    def record_data(self) -> dict[str, Any]:
        """The PrefixRecord-shaped data conda will write for it."""
        data = dict(self.index)
        data["files"] = [str(p["_path"]) for p in self.paths()]
        return data


def _cached_packages(
    pkgs_dirs: Sequence[Path], name: str, version: str | None = None
) -> Iterator[_CachedPackage]:
    pattern = f"{name}-{version}-*" if version else f"{name}-*"
    seen: set[str] = set()  # one cache may be listed twice (a symlink, two variables)
    for pkgs in pkgs_dirs:
        with contextlib.suppress(OSError):
            for directory in sorted(pkgs.glob(pattern)):
                real = os.path.realpath(directory)
                if real in seen:
                    continue
                seen.add(real)
                index_path = directory / "info" / "index.json"
                with contextlib.suppress(OSError, ValueError):
                    index = _read_json(index_path)
                    if isinstance(index, dict) and index.get("name") == name:
                        yield _CachedPackage(directory, index)


def _linked_build(prefix: Path, candidates: Sequence[_CachedPackage]) -> _CachedPackage | None:
    """Which cached build the prefix holds: the one hard-linked in (installers link from
    the cache), else the only one whose files match; None when it cannot be told."""
    if not candidates:
        return None
    for test in (_CachedPackage.hard_linked_into, _CachedPackage.content_in):
        found = [c for c in candidates if test(c, prefix)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            return None  # several builds fit: better no record than a wrong one
    return None


def _pending_records(request: PostLinkRequest) -> list[InstallRecord]:
    """Records of the package and its not-yet-recorded dependencies, from the caches."""
    from vbridge.adapters import conda

    own = _linked_build(
        request.prefix,
        [
            pkg
            for pkg in _cached_packages(request.pkgs_dirs, request.name, request.version)
            if request.matches(pkg.index)
        ],
    )
    if own is None:
        return []
    recorded = {
        path.name.rsplit("-", 2)[0] for path in (request.prefix / "conda-meta").glob("*.json")
    }
    records: list[InstallRecord] = []
    queue = [own]
    seen = {request.name}
    while queue:
        pkg = queue.pop(0)
        # Where the installer will write the record: annotate edits it only once it
        # exists, so the files are registered with conda by the next annotate.
        future = request.prefix / "conda-meta" / pkg.record_filename
        records.append(conda.parse_record(request.prefix, future, pkg.record_data()))
        for spec in pkg.index.get("depends", []):
            for dep in dependency_names(str(spec)):
                if dep in seen or dep in recorded or dep.startswith("__"):
                    continue
                seen.add(dep)
                linked = _linked_build(
                    request.prefix, list(_cached_packages(request.pkgs_dirs, dep))
                )
                if linked is not None:
                    queue.append(linked)
    return records


class _PendingCondaAdapter(CondaPrefix):
    """The conda adapter, plus records the installer has not written yet."""

    def __init__(self, prefix: Path, pending: Sequence[InstallRecord]) -> None:
        self._prefix = prefix
        self._pending = list(pending)

    def read_records(self, root: Path, problems: list[RecordProblem]) -> Iterator[InstallRecord]:
        yield from super().read_records(root, problems)
        if root == self._prefix:
            yield from self._pending


def run_post_link(request: PostLinkRequest, *, dry_run: bool = False) -> PostLinkOutcome:
    """Annotate the package's Python distributions in ``request.prefix``.

    Raises :class:`VbridgeError` subclasses (prefix missing, read-only, locked); the
    command turns them into a message.
    """
    from vbridge.adapters import conda
    from vbridge.decide.assess import assess_environment
    from vbridge.destinations.annotate import annotate_environment
    from vbridge.scan import scan_environment

    prefix = request.prefix
    label = f"{request.name} {request.version}"
    if not (prefix / "conda-meta").is_dir():
        raise PostLinkError(f"{prefix}: no conda-meta directory; PREFIX is not a conda prefix")

    own_paths = _written_records(request)
    if own_paths:
        outcome = PostLinkOutcome("record")
        # The scan reads every record (dependencies give properties) but translates
        # only the package's own distributions. Those are conda-owned: the other
        # adapters' records (a wheel's binaries, apt, Spack) give them nothing, and the
        # hook reports no scan findings, so neither is read.
        own_dists = _record_dists(prefix, own_paths)
        env = scan_environment(prefix, adapters=[conda.ADAPTER], only=own_dists)
        assess_environment(env, only=own_dists, findings=False)
        targets = [d for r in env.records if r.source in own_paths for d in r.python_dists]
    else:
        pending = _pending_records(request)
        if not pending:
            return PostLinkOutcome(
                "none",
                messages=[
                    f"vbridge: {label}: its conda record is not written yet and its "
                    "extracted package is in no known package cache (CONDA_PKGS_DIRS, "
                    'ROOT_PREFIX/pkgs); run `vbridge annotate "$PREFIX"` after the '
                    "install (the vbridge conda plugin does it for you)."
                ],
            )
        outcome = PostLinkOutcome("package-cache")
        if not (prefix / "bin" / f".{request.name}-pre-unlink.sh").exists():
            # Nothing will remove the files before the package goes: say what will.
            outcome.messages.append(
                f"vbridge: {label}: variant metadata written before the installer "
                "recorded the package; run `vbridge annotate` on this environment after "
                "the install (the vbridge conda plugin does it by itself) so uninstalling "
                "removes it"
            )
        targets = list(pending[0].python_dists)
        pending_adapter = _PendingCondaAdapter(prefix, pending)
        env = scan_environment(prefix, adapters=[pending_adapter], only=targets)
        assess_environment(env, only=targets, findings=False)
    present = {d.dist_info for d in env.distributions}
    targets = [t for t in targets if t in present]
    if targets:
        annotate_environment(env, only=targets, dry_run=dry_run, wait=30.0)
        outcome.annotated.extend(targets)
    return outcome


def _record_dists(prefix: Path, paths: Sequence[Path]) -> list[Path]:
    """The dist-info directories the records at ``paths`` own (unreadable ones: none)."""
    from vbridge.adapters import conda

    found: list[Path] = []
    for path in paths:
        with contextlib.suppress(OSError, ValueError):
            found.extend(conda.parse_record(prefix, path, _read_json(path)).python_dists)
    return found


def run_pre_unlink(request: PostLinkRequest, *, dry_run: bool = False) -> list[Path]:
    """Remove what vbridge wrote into the package's distributions, before it goes.

    The package's record is still there (every installer reads it to unlink); the
    dist-infos it owns are cleaned from the ledger: added files removed, ``RECORD`` and
    the record put back byte for byte. Returns the dist-infos cleaned.
    """
    from vbridge.destinations.annotate import clean_environment

    prefix = request.prefix
    if not (prefix / "conda-meta").is_dir():
        raise PostLinkError(f"{prefix}: no conda-meta directory; PREFIX is not a conda prefix")
    targets = _record_dists(prefix, _written_records(request))
    if not targets:
        return []
    from vbridge.adapters import conda

    result = clean_environment(
        prefix, only=targets, dry_run=dry_run, wait=30.0, adapters=[conda.ADAPTER]
    )
    return sorted(
        {t for t in targets if any(str(c.path).startswith(f"{t}/") for c in result.changed)}
    )


_DONE = {"post-link": "written", "pre-unlink": "removed"}


def run_link_script(
    kind: str,
    *,
    strict: bool = False,
    verbose: bool = False,
    print_template: bool = False,
    environ: Mapping[str, str] = os.environ,
) -> int:
    """``vbridge conda-post-link`` / ``conda-pre-unlink`` (``kind`` ``"post-link"`` or
    ``"pre-unlink"``): run, tell the user, return the exit code.

    Messages go to stderr and to ``$PREFIX/.messages.txt``; the exit code is 0 unless
    ``strict`` (the error's exit code, or 1 when the package's facts were not found).

    >>> run_link_script("post-link", environ={})  # doctest: +SKIP
    vbridge: ?: variant metadata not written: PREFIX, PKG_NAME, PKG_VERSION not set: ...
    0
    """
    if print_template:
        from importlib import resources

        template = resources.files("vbridge.data").joinpath(f"{kind}.sh")
        sys.stdout.write(template.read_text(encoding="utf-8"))
        sys.stdout.flush()
        return 0

    def tell(prefix: Path | None, line: str) -> None:
        print(line, file=sys.stderr, flush=True)
        if prefix is not None and prefix.is_dir():
            try:
                append_messages(prefix, [line])
            except OSError as exc:
                print(f"vbridge: cannot write {prefix}/{MESSAGES_FILE}: {exc}", file=sys.stderr)

    prefix = Path(environ["PREFIX"]) if environ.get("PREFIX") else None
    name = environ.get("PKG_NAME", "?")
    try:
        request = PostLinkRequest.from_environ(environ)
        label = f"{request.name} {request.version}"
        if kind == "pre-unlink":
            cleaned = run_pre_unlink(request)
            if cleaned and verbose:
                tell(request.prefix, f"vbridge: {label}: variant metadata removed")
            return 0
        outcome = run_post_link(request)
    except VbridgeError as exc:
        tell(prefix, f"vbridge: {name}: variant metadata not {_DONE[kind]}: {exc}")
        return exc.exit_code if strict else 0
    for line in outcome.messages:
        tell(request.prefix, line)
    if outcome.annotated and verbose:
        names = ", ".join(p.name for p in outcome.annotated)
        tell(request.prefix, f"vbridge: {label}: variant metadata written for {names}")
    return 1 if strict and outcome.source == "none" else 0

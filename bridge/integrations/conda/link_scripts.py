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
  ones linked into the prefix. Where the vbridge conda plugin runs in that conda, it
  annotates after the transaction and the script leaves the package to it
  (:mod:`vbridge.integrations.conda.handoff`).

>>> request = PostLinkRequest.from_environ(
...     {"PREFIX": "/env", "PKG_NAME": "numpy", "PKG_VERSION": "1.26.4", "PKG_BUILDNUM": "0"})
>>> (request.name, request.version, request.build_number)
('numpy', '1.26.4', 0)
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import msgspec
from vbridge.errors import VbridgeError
from vbridge.integrations.conda.handoff import PLUGIN_SYNCS_VARIABLE, record_names

if TYPE_CHECKING:  # the scan's modules are imported when a package is annotated
    from vbridge.model import InstallRecord

__all__ = [
    "MESSAGES_FILE",
    "PLUGIN_SYNCS_VARIABLE",
    "PostLinkError",
    "PostLinkOutcome",
    "PostLinkRequest",
    "append_messages",
    "condarc_pkgs_dirs",
    "package_cache_dirs",
    "run_link_script",
    "run_post_link",
    "run_pre_unlink",
]

MESSAGES_FILE = ".messages.txt"
# pip_constraints.PIP_CONF, the ledger's name for pip's site configuration file (that
# module is imported only where vbridge keeps a constraints file).
_PIP_CONF = "pip.conf"


class PostLinkError(VbridgeError):
    """The post-link environment is incomplete (not run by a conda installer?)."""


def package_cache_dirs(environ: Mapping[str, str]) -> list[Path]:
    """Where conda-compatible installers keep extracted packages, in search order.

    ``CONDA_PKGS_DIRS`` (comma-separated, as conda reads it), then the ``pkgs_dirs`` of
    the ``.condarc`` files conda reads (:func:`condarc_pkgs_dirs`: conda passes link
    scripts ``ROOT_PREFIX``, not its package caches), then ``pkgs/`` under
    ``ROOT_PREFIX``, ``MAMBA_ROOT_PREFIX`` and ``CONDA_ROOT``, then ``~/.conda/pkgs``.

    >>> package_cache_dirs({"CONDA_PKGS_DIRS": "/a,/b", "ROOT_PREFIX": "/opt/conda"})[:3]
    [PosixPath('/a'), PosixPath('/b'), PosixPath('/opt/conda/pkgs')]
    """
    dirs: list[Path] = []
    for entry in environ.get("CONDA_PKGS_DIRS", "").split(","):
        if entry.strip():
            dirs.append(Path(os.path.expanduser(entry.strip())))
    dirs.extend(condarc_pkgs_dirs(environ))
    for var in ("ROOT_PREFIX", "MAMBA_ROOT_PREFIX", "CONDA_ROOT"):
        if environ.get(var):
            dirs.append(Path(environ[var]) / "pkgs")
    if environ.get("HOME"):
        dirs.append(Path(environ["HOME"]) / ".conda" / "pkgs")
    return list(dict.fromkeys(dirs))


# conda's SEARCH_PATH (conda/base/constants.py) on POSIX, in reading order: a later file
# takes precedence. $CONDA_ROOT is the root prefix (ROOT_PREFIX in a link script).
_CONDARC_SEARCH = (
    "/etc/conda/.condarc", "/etc/conda/condarc", "/etc/conda/condarc.d/",
    "/var/lib/conda/.condarc", "/var/lib/conda/condarc", "/var/lib/conda/condarc.d/",
    "$CONDA_ROOT/.condarc", "$CONDA_ROOT/condarc", "$CONDA_ROOT/condarc.d/",
    "$XDG_CONFIG_HOME/conda/.condarc", "$XDG_CONFIG_HOME/conda/condarc",
    "$XDG_CONFIG_HOME/conda/condarc.d/",
    "~/.config/conda/.condarc", "~/.config/conda/condarc", "~/.config/conda/condarc.d/",
    "~/.conda/.condarc", "~/.conda/condarc", "~/.conda/condarc.d/", "~/.condarc",
    "$CONDA_PREFIX/.condarc", "$CONDA_PREFIX/condarc", "$CONDA_PREFIX/condarc.d/",
    "$CONDARC",
)  # fmt: skip
_CONDARC_LIMIT = 1 << 20


def _condarc_files(environ: Mapping[str, str]) -> list[Path]:
    """The condarc files conda would read, in its order (``condarc.d/*.yml`` sorted)."""
    env = dict(environ)
    if "CONDA_ROOT" not in env and env.get("ROOT_PREFIX"):
        env["CONDA_ROOT"] = env["ROOT_PREFIX"]
    files: list[Path] = []
    for entry in _CONDARC_SEARCH:
        var = entry[1:].split("/", 1)[0] if entry.startswith("$") else None
        if var is not None and not env.get(var):
            continue
        if entry.startswith("~"):
            if not env.get("HOME"):
                continue
            entry = env["HOME"] + entry[1:]
        elif var is not None:
            entry = env[var] + entry[1 + len(var) :]
        path = Path(entry)
        if entry.endswith("/"):
            with contextlib.suppress(OSError):
                files.extend(sorted(p for p in path.iterdir() if p.suffix in (".yml", ".yaml")))
        elif path.is_file():
            files.append(path)
    return files


def condarc_pkgs_dirs(environ: Mapping[str, str]) -> list[Path]:
    r"""The ``pkgs_dirs`` the ``.condarc`` files conda reads set, highest precedence first.

    Reads the one key, in either YAML form conda's own files use (a block sequence
    ``pkgs_dirs:\n  - /a`` or a flow sequence ``pkgs_dirs: [/a, /b]``, plain or quoted
    scalars; ``~`` and ``$VARS`` expanded as conda expands them). A file that is not
    readable or says nothing of it is skipped.

    >>> import tempfile
    >>> home = tempfile.mkdtemp()
    >>> _ = open(f"{home}/.condarc", "w").write("channels: [x]\npkgs_dirs:\n  - /srv/pkgs\n")
    >>> condarc_pkgs_dirs({"HOME": home})
    [PosixPath('/srv/pkgs')]
    """
    found: list[Path] = []
    for path in reversed(_condarc_files(environ)):
        with contextlib.suppress(OSError, UnicodeDecodeError):
            if path.stat().st_size > _CONDARC_LIMIT:
                continue
            for value in _yaml_sequence(_read_text(path), "pkgs_dirs"):
                expanded = os.path.expandvars(os.path.expanduser(value))
                found.append(Path(expanded))
    return list(dict.fromkeys(found))


def _yaml_scalar(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text.split(" #", 1)[0].strip()


def _yaml_sequence(text: str, key: str) -> list[str]:
    """The strings of the top-level ``key`` of a YAML document (the subset above)."""
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if not line.startswith(f"{key}:"):
            continue
        rest = line[len(key) + 1 :].split(" #", 1)[0].strip()
        if rest.startswith("["):
            inner = rest[1 : rest.rfind("]")] if "]" in rest else rest[1:]
            return [_yaml_scalar(v) for v in inner.split(",") if v.strip()]
        if rest:
            return [_yaml_scalar(rest)]
        values: list[str] = []
        for item in lines[number + 1 :]:
            stripped = item.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if not item[:1].isspace() and not stripped.startswith("-"):
                break  # the next top-level key
            if stripped.startswith("- ") or stripped == "-":
                values.append(_yaml_scalar(stripped[1:]))
            else:
                break
        return values
    return []


class PostLinkRequest(msgspec.Struct, frozen=True):
    """The package a post-link script runs for, from conda's environment variables."""

    prefix: Path
    name: str
    version: str
    build_number: int | None = None
    # The package caches to look in; None: found from ``environ`` when first needed (only
    # when the record is not written yet, conda's order: :meth:`package_caches`).
    pkgs_dirs: tuple[Path, ...] | None = None
    # The vbridge conda plugin runs in the installer (it says so in the environment it
    # passes on) and annotates after the transaction.
    plugin_syncs: bool = False
    environ: Mapping[str, str] = {}

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
            plugin_syncs=environ.get(PLUGIN_SYNCS_VARIABLE) == "1",
            environ=dict(environ),
        )

    def package_caches(self) -> tuple[Path, ...]:
        """``pkgs_dirs``, else :func:`package_cache_dirs` of ``environ``."""
        if self.pkgs_dirs is not None:
            return self.pkgs_dirs
        return tuple(package_cache_dirs(self.environ))

    def matches(self, data: Mapping[str, Any]) -> bool:
        """Whether a record or ``index.json`` is this package."""
        if data.get("name") != self.name or str(data.get("version")) != self.version:
            return False
        return self.build_number is None or data.get("build_number") == self.build_number


class PostLinkOutcome(msgspec.Struct):
    """What the post-link run did: where the package's facts came from, what it wrote."""

    # "plugin": the vbridge conda plugin annotates after the transaction (nothing done)
    source: Literal["record", "package-cache", "plugin", "none"]
    annotated: list[Path] = msgspec.field(default_factory=list)
    messages: list[str] = msgspec.field(default_factory=list)


def append_messages(prefix: Path, lines: Sequence[str]) -> None:
    """Add lines to ``$PREFIX/.messages.txt``, which the installer prints and deletes.

    conda prints the file right after the script, while its "Executing transaction"
    progress line is still open: a new file starts with an empty line, so the
    message gets lines of its own.
    """
    if not lines:
        return
    path = prefix / MESSAGES_FILE
    lead = "" if path.is_file() and path.stat().st_size else "\n"
    # Appended, never through a link (a .messages.txt that points out of the prefix).
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return
        fh.write(lead)
        fh.writelines(f"{line}\n" for line in lines)


def _read_json(path: Path) -> Any:
    """A JSON file of the prefix or the package cache, through safefs (a FIFO, a huge
    or too deeply nested file is a ``ValueError`` naming it, never a hang)."""
    from vbridge.errors import UnreadableFile
    from vbridge.safefs import read_json

    try:
        return read_json(path)
    except UnreadableFile as exc:
        raise ValueError(str(exc)) from None


def _read_bytes(path: Path) -> bytes:
    from vbridge.errors import UnreadableFile
    from vbridge.safefs import read_regular

    try:
        return read_regular(path)
    except UnreadableFile as exc:
        raise ValueError(str(exc)) from None


def _read_text(path: Path) -> str:
    return _read_bytes(path).decode("utf-8")


class _RecordIdentity(msgspec.Struct):
    """What :meth:`PostLinkRequest.matches` reads of a record (msgspec skips the rest)."""

    name: Any = None
    version: Any = None
    build_number: Any = None


def _written_records(request: PostLinkRequest) -> list[Path]:
    """The package's own ``conda-meta`` records, if the installer wrote them already."""
    from vbridge.errors import UnreadableFile
    from vbridge.safefs import read_regular
    from vbridge.typed_json import decode

    found = []
    meta = request.prefix / "conda-meta"
    try:
        names = record_names(os.fspath(meta), request.name, request.version)
    except OSError:
        names = []
    for path in (meta / name for name in names):
        with contextlib.suppress(OSError, ValueError, UnreadableFile):
            data = read_regular(path)
            if data.startswith(b"\xef\xbb\xbf"):
                continue  # not JSON to the json module (what this read before)
            identity = decode(data, _RecordIdentity)
            if request.matches(msgspec.structs.asdict(identity)):
                found.append(path)
    return found


class _CachedPackage(msgspec.Struct, frozen=True):
    """An extracted package in a package cache: ``<pkgs>/<name>-<version>-<build>/``."""

    directory: Path
    index: Mapping[str, Any]

    def paths(self) -> list[Mapping[str, Any]]:
        info = self.directory / "info"
        with contextlib.suppress(OSError, ValueError):
            data = _read_json(info / "paths.json")
            return [p for p in data.get("paths", []) if isinstance(p, dict) and "_path" in p]
        with contextlib.suppress(OSError, ValueError):
            lines = _read_text(info / "files").splitlines()
            return [{"_path": line.strip()} for line in lines if line.strip()]
        return []

    def linkable(self) -> list[Mapping[str, Any]]:
        """The files an installer links or copies into a prefix (not symbolic links)."""
        return [p for p in self.paths() if p.get("path_type", "hardlink") == "hardlink"]

    def links_in(self, prefix: Path) -> bool:
        """Whether every symbolic link this build ships is in the prefix, pointing
        where the cached one points."""
        for entry in self.paths():
            if entry.get("path_type") != "softlink":
                continue
            try:
                cached = os.readlink(self.directory / str(entry["_path"]))
                if os.readlink(prefix / str(entry["_path"])) != cached:
                    return False
            except OSError:
                return False
        return True

    def hard_linked_into(self, prefix: Path) -> bool:
        """Whether one of the prefix's files is a hard link to this cached build's file."""
        for entry in self.linkable():
            with contextlib.suppress(OSError):
                if os.path.samefile(self.directory / entry["_path"], prefix / entry["_path"]):
                    return True
        return False

    def content_in(self, prefix: Path) -> bool:
        """Whether the prefix holds this build's smallest file, by size and SHA-256."""
        entries = self.linkable()
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
            from vbridge.safefs import sha256_hex

            return sha256_hex(_read_bytes(target)) == str(expected)
        except (OSError, ValueError):
            return False

    @property
    def record_filename(self) -> str:
        index = self.index
        return f"{index.get('name')}-{index.get('version')}-{index.get('build')}.json"

    def record_data(self) -> dict[str, Any]:
        """The PrefixRecord-shaped data conda will write for it: ``info/index.json``,
        with what conda adds in ``info/repodata_record.json`` when it extracts the
        package (``channel``, ``url``, ``md5``, ``sha256``, ``fn``)."""
        data = dict(self.index)
        with contextlib.suppress(OSError, ValueError):
            repodata = _read_json(self.directory / "info" / "repodata_record.json")
            if isinstance(repodata, dict) and repodata.get("name") == data.get("name"):
                data.update(repodata)
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
    the cache), else the only one whose files match; None when it cannot be told.

    A package with no file to link (``_openmp_mutex`` ships symbolic links, a
    metapackage nothing) shows nothing in the prefix: it is the one cached build of
    its name whose links (if any) are all in the prefix.
    """
    if not candidates:
        return None
    for test in (_CachedPackage.hard_linked_into, _CachedPackage.content_in):
        found = [c for c in candidates if test(c, prefix)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            return None  # several builds fit: better no record than a wrong one
    fileless = [c for c in candidates if not c.linkable() and c.links_in(prefix)]
    return fileless[0] if len(fileless) == 1 else None


def _pending_records(request: PostLinkRequest) -> list[InstallRecord]:
    """Records of the package and its not-yet-recorded dependencies, from the caches."""
    from vbridge.adapters import conda
    from vbridge.rules import dependency_names

    pkgs_dirs = request.package_caches()
    own = _linked_build(
        request.prefix,
        [
            pkg
            for pkg in _cached_packages(pkgs_dirs, request.name, request.version)
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
        record = conda.parse_record(request.prefix, future, pkg.record_data())
        # Its files' hashes are taken already: RECORD is not to be edited now.
        extra = {**record.extra, "unrecorded": True}
        records.append(msgspec.structs.replace(record, extra=extra))
        for spec in pkg.index.get("depends", []):
            for dep in dependency_names(str(spec)):
                if dep in seen or dep in recorded or dep.startswith("__"):
                    continue
                seen.add(dep)
                linked = _linked_build(request.prefix, list(_cached_packages(pkgs_dirs, dep)))
                if linked is not None:
                    queue.append(linked)
    return records


def run_post_link(
    request: PostLinkRequest, *, dry_run: bool = False, whole_prefix: bool = False
) -> PostLinkOutcome:
    """Annotate the package's Python distributions in ``request.prefix``.

    Of the prefix's records, only those the package's properties can come from are
    parsed (:mod:`._package_records`); ``whole_prefix`` parses every one, as a full
    scan does (the tests compare both).

    Raises :class:`VbridgeError` subclasses (prefix missing, read-only, locked); the
    command turns them into a message.
    """
    prefix = request.prefix
    label = f"{request.name} {request.version}"
    if not (prefix / "conda-meta").is_dir():
        raise PostLinkError(f"{prefix}: no conda-meta directory; PREFIX is not a conda prefix")

    own_paths = _written_records(request)
    if own_paths:
        # The scan's modules are imported once there is something to scan.
        from vbridge.adapters import conda
        from vbridge.integrations.conda._package_records import ListedRecords, package_records
        from vbridge.scan import scan_environment

        outcome = PostLinkOutcome("record")
        own = {os.fspath(path) for path in own_paths}  # as records name their source
        # The scan translates only the package's own distributions, from the records
        # their properties can come from. Those are conda-owned: the other adapters'
        # records (a wheel's binaries, apt, Spack) give them nothing, and the hook
        # reports no findings and no metadata status, so neither is worked out.
        if whole_prefix:
            own_dists = _record_dists(prefix, own_paths)
            env = scan_environment(prefix, adapters=[conda.ADAPTER], only=own_dists)
        else:
            records = package_records(prefix, own_paths, [])
            own_dists = [d for r in records if r.source in own for d in r.python_dists]
            adapter = ListedRecords(prefix, records)
            env = scan_environment(prefix, adapters=[adapter], only=own_dists)
        targets = [d for r in env.records if r.source in own for d in r.python_dists]
    else:
        # conda and mamba: the records come after the scripts (and after the files'
        # hashes, RECORD's among them, were taken for them).
        if request.plugin_syncs:
            # The vbridge conda plugin annotates the package once its record is written
            # (vbridge.integrations.conda.handoff): nothing to write now.
            return PostLinkOutcome("plugin")
        if not (prefix / "bin" / f".{request.name}-pre-unlink.sh").exists():
            # Nothing would remove the files before the package goes (its record will
            # not list them): write nothing; the plugin, or an annotate, registers them.
            return PostLinkOutcome(
                "none",
                messages=[
                    f"vbridge: {label}: the installer records the package after this "
                    "script and the package has no pre-unlink script to remove what it "
                    f"would write, so nothing is written; run `vbridge annotate {prefix}` "
                    "after the install (the vbridge conda plugin does it by itself)"
                ],
            )
        pending = _pending_records(request)
        if not pending:
            return PostLinkOutcome(
                "none",
                messages=[
                    f"vbridge: {label}: its conda record is not written yet and its "
                    "extracted package is in no package cache vbridge knows "
                    "(CONDA_PKGS_DIRS, pkgs_dirs of .condarc, ROOT_PREFIX/pkgs); run "
                    f"`vbridge annotate {prefix}` after the install (the vbridge conda "
                    "plugin does it by itself)"
                ],
            )
        from vbridge.adapters import conda
        from vbridge.integrations.conda._package_records import ListedRecords, package_records
        from vbridge.scan import scan_environment

        outcome = PostLinkOutcome("package-cache")
        targets = list(pending[0].python_dists)
        if whole_prefix:
            records = [*conda.read_records(prefix, []), *pending]
        else:
            records = package_records(prefix, [], [], pending=pending)
        env = scan_environment(prefix, adapters=[ListedRecords(prefix, records)], only=targets)
    present = {d.dist_info for d in env.distributions}
    targets = [t for t in targets if t in present]
    if targets:
        from vbridge.destinations.annotate import annotate_environment

        result = annotate_environment(env, only=targets, dry_run=dry_run, wait=30.0)
        outcome.annotated.extend(targets)
        if _PIP_CONF in result.environment_files:
            _refresh_pip_constraints(prefix, dry_run)
    return outcome


def _refresh_pip_constraints(prefix: Path, dry_run: bool) -> None:
    """Plain pip's constraints file, where vbridge keeps one (the ledger, as annotate
    left it, names pip.conf): rewritten from a scan of the whole prefix (its pins name
    every conda-owned distribution), after the record of this package is written."""
    from vbridge.adapters import conda
    from vbridge.destinations.pip_constraints import write_pip_constraints
    from vbridge.scan import scan_environment

    write_pip_constraints(
        scan_environment(prefix, adapters=[conda.ADAPTER]), dry_run=dry_run, wait=30.0
    )


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

    Messages go to ``$PREFIX/.messages.txt`` (stderr when it cannot be written); the
    exit code is 0 unless
    ``strict`` (the error's exit code, or 1 when the package's facts were not found).

    >>> run_link_script("post-link", environ={})  # doctest: +SKIP
    vbridge: ?: variant metadata not written: PREFIX, PKG_NAME, PKG_VERSION not set: ...
    0
    """
    if print_template:
        from vbridge.entry_point import print_link_script_template

        return print_link_script_template(kind)

    def tell(prefix: Path | None, line: str) -> None:
        # The installer prints .messages.txt after the transaction; what a link script
        # prints lands on the installer's progress line, so stderr is the fallback.
        if prefix is not None and prefix.is_dir():
            try:
                append_messages(prefix, [line])
                return
            except OSError as exc:
                line += f" (cannot write {prefix / MESSAGES_FILE}: {exc.strerror})"
        print(f"\n{line}", file=sys.stderr, flush=True)

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

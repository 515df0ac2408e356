"""wheel: what the binaries of pip-installed distributions and of wheel files say.

Not a package manager's records: a wheel describes itself through the files it ships.
This adapter reads, without importing or extracting anything,

- shared libraries bundled privately (auditwheel's ``<name>.libs/``, delocate's
  ``.dylibs/``, ``lib*.so`` inside the package) and those installed for the whole
  environment (``<name>.data/data/lib/...``, ``../../../lib/...`` in an installed
  ``RECORD``);
- the ELF ``DT_NEEDED`` entries of those files (pyelftools), minus what the wheel
  ships itself and the base system libraries;
- an auditwheel SBOM under ``.dist-info/sboms/`` and a variant wheel's own
  ``variant.json``.

Each distribution becomes one :class:`~vbridge.model.InstallRecord` with
``foreign=False`` (it describes, it does not own); the facts live in ``extra``
(``bundled``, ``provided``, ``needed``, ``sbom``, ``variant``) where the rules of
``data/wheel.toml`` turn them into properties. For installed distributions the facts
are read lazily, on first use, so a scan of an environment whose distributions
another package manager owns reads no ELF file at all.

>>> classify("numpy.libs/libscipy_openblas64_-32a4b2a6.so")
'bundled'
>>> classify("mpich-5.0.2.data/data/lib/libmpi.so.12")
'provided'
>>> classify("../../../lib/libmpi.so.12")
'provided'
>>> classify("numpy/_core/_multiarray_umath.cpython-311-x86_64-linux-gnu.so")
'extension'
>>> classify("pkg-1.0.data/platlib/pkg.libs/libgomp-a34b3233.so.1")
'bundled'
>>> classify("numpy/__init__.py") is None
True
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    import zipfile

from vbridge.adapters import Adapter
from vbridge.errors import RecordError, UnreadableFile
from vbridge.imports import record_paths
from vbridge.model import InstallRecord, RecordProblem
from vbridge.rules import load_data
from vbridge.safefs import load_json, open_regular, read_json, read_regular
from vbridge.sitepackages import (
    LAYER_NAMES,
    metadata_dir_path,
    read_installer,
    split_metadata_dir_name,
)

__all__ = [
    "ADAPTER",
    "ECOSYSTEM",
    "FOREIGN",
    "BinaryFacts",
    "WheelBinaries",
    "classify",
    "find_root",
    "inspect_installed",
    "inspect_wheel",
    "read_records",
    "wheel_record",
]

ECOSYSTEM = "wheel"
# These records describe distributions; they are never a foreign owner.
FOREIGN = False

_SHARED_LIBRARY = re.compile(r"\.(?:so(?:\.\d+)*|dylib|pyd|dll)$")
_PROPERTY = re.compile(r"^[a-z0-9_]+ :: [a-z0-9_]+ :: [a-z0-9_.]+$")


def classify(path: str) -> str | None:
    """What a file of a wheel or RECORD is: ``bundled``, ``provided``, ``extension``.

    ``None`` for anything that is not a shared library.
    """
    name = path.rsplit("/", 1)[-1]
    if not _SHARED_LIBRARY.search(name):
        return None
    parts = path.split("/")
    if len(parts) > 2 and parts[0].endswith(".data") and parts[1] in ("purelib", "platlib"):
        return classify("/".join(parts[2:]))  # installed into site-packages after all
    if parts[0] == ".." or (len(parts) > 1 and parts[0].endswith(".data")):
        return "provided" if name.startswith("lib") else "extension"
    if parts[0].endswith(".libs") or ".dylibs" in parts[:-1]:
        return "bundled"
    if name.startswith("lib") and not _is_extension_name(name):
        return "bundled"
    return "extension"


def _is_extension_name(name: str) -> bool:
    """``foo.cpython-311-x86_64-linux-gnu.so``, ``foo.abi3.so``: a Python module."""
    stem = name.split(".", 1)
    return len(stem) == 2 and (
        stem[1].startswith(("cpython-", "abi3.", "pypy", "cp3")) or stem[1] in ("so", "pyd")
    )


def _system_libraries() -> tuple[str, ...]:
    return tuple(load_data("wheel").get("elf", {}).get("system_libraries", []))


def _elf_needed(stream: IO[bytes]) -> list[str]:
    """``DT_NEEDED`` of one ELF file; ``[]`` for a file that is not ELF (Mach-O, PE)."""
    from elftools.elf.elffile import ELFFile

    if stream.read(4) != b"\x7fELF":
        return []
    stream.seek(0)
    elf = ELFFile(stream)
    # The .dynamic section by name is the quick way in; a file without section
    # headers still has its PT_DYNAMIC segment.
    dynamic = elf.get_section_by_name(".dynamic")
    sources = [dynamic] if dynamic is not None else list(elf.iter_segments("PT_DYNAMIC"))
    needed: list[str] = []
    for source in sources:
        for tag in source.iter_tags():  # type: ignore[union-attr]
            if tag.entry.d_tag == "DT_NEEDED":
                needed.append(str(tag.needed))
    return needed


class BinaryFacts(Mapping[str, object]):
    """The facts of one distribution, read on first access.

    >>> facts = BinaryFacts(lambda: {"bundled": ["numpy.libs/libopenblas.so"]})
    >>> facts["bundled"]
    ['numpy.libs/libopenblas.so']
    """

    def __init__(self, load: Callable[[], dict[str, object]], key: object = None) -> None:
        self._load = load
        self._key = key
        self._data: dict[str, object] | None = None

    def _facts(self) -> dict[str, object]:
        if self._data is None:
            self._data = self._load()
        return self._data

    def __getitem__(self, key: str) -> object:
        return self._facts()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._facts())

    def __len__(self) -> int:
        return len(self._facts())

    def __eq__(self, other: object) -> bool:
        # Comparing records must not read binaries: facts are equal when their source is.
        if isinstance(other, BinaryFacts) and self._key is not None:
            return self._key == other._key
        return self is other

    def __hash__(self) -> int:
        return hash(self._key) if self._key is not None else id(self)

    def __repr__(self) -> str:
        return f"BinaryFacts({self._key!r})"


def _summarise(
    libraries: Iterable[tuple[str, str]],
    needed_of: Callable[[str], list[str]],
    sbom: list[str],
    variant: list[str],
) -> dict[str, object]:
    """Facts from the shared libraries (path, kind) of one distribution or wheel."""
    bundled: list[str] = []
    provided: list[str] = []
    shipped: set[str] = set()
    needed: dict[str, None] = {}
    for path, kind in libraries:
        shipped.add(path.rsplit("/", 1)[-1])
        if kind == "bundled":
            bundled.append(path)
        elif kind == "provided":
            provided.append(path)
        for name in needed_of(path):
            needed.setdefault(name, None)
    system = _system_libraries()
    external = [
        n for n in needed if n not in shipped and not any(fnmatch.fnmatch(n, p) for p in system)
    ]
    facts: dict[str, object] = {
        "bundled": sorted(bundled),
        "provided": sorted(provided),
        "needed": sorted(external),
    }
    if sbom:
        facts["sbom"] = sbom
    if variant:
        facts["variant"] = variant
    return facts


def _wrong_type(source: Path | str, field: str, expected: str, value: object) -> UnreadableFile:
    """A field of a metadata file of the wrong type, as one line."""
    found = {dict: "an object", list: "a list", str: "a string", bool: "true or false"}.get(
        type(value), "a number" if isinstance(value, int | float) else "null"
    )
    return UnreadableFile(source, f"field {field} should be {expected}, found {found}", "skipped")


def _sbom_components(data: bytes, source: Path | str) -> list[str]:
    """Names and purls of the libraries a CycloneDX SBOM lists (auditwheel's).

    Raises :class:`~vbridge.errors.UnreadableFile` naming ``source``.
    """
    doc = load_json(data, source)
    components = doc.get("components", []) if isinstance(doc, dict) else []
    if not isinstance(components, list):
        raise _wrong_type(source, "components", "a list of objects", components)
    out: list[str] = []
    for component in components:
        if not isinstance(component, dict):
            continue
        for key in ("name", "purl"):
            value = component.get(key)
            if isinstance(value, str) and value not in out:
                out.append(value)
    return out


def _variant_properties(data: bytes, source: Path | str) -> list[str]:
    """``ns :: feature :: value`` strings of a wheel's ``variant.json`` (PEP 825).

    Raises :class:`~vbridge.errors.UnreadableFile` naming ``source``.
    """
    doc = load_json(data, source)
    out: list[str] = []
    variants = doc.get("variants", {}) if isinstance(doc, dict) else {}
    if not isinstance(variants, dict):
        raise _wrong_type(source, "variants", "an object", variants)
    for label, namespaces in variants.items():
        if not isinstance(namespaces, dict):
            raise _wrong_type(source, f"variants.{label}", "an object", namespaces)
        for namespace, features in namespaces.items():
            if not isinstance(features, dict):
                raise _wrong_type(source, f"variants.{label}.{namespace}", "an object", features)
            for feature, values in features.items():
                for value in values if isinstance(values, list) else [values]:
                    text_prop = f"{namespace} :: {feature} :: {value}"
                    if _PROPERTY.match(text_prop) and text_prop not in out:
                        out.append(text_prop)
    return out


# --- installed distributions ------------------------------------------------------------

_CACHE: dict[tuple[str, int, int], dict[str, object]] = {}


def _read_record_paths(record: Path) -> list[str]:
    return record_paths(read_regular(record).decode("utf-8"), strict=True)


def inspect_installed(dist_info: Path, problems: list[RecordProblem]) -> dict[str, object]:
    """Facts of an installed distribution, from its ``RECORD`` and the files it lists.

    Cached per ``RECORD`` (path, mtime, size): a distribution is read once per process.
    """
    record = dist_info / "RECORD"
    try:
        stat = record.stat()
        key = (str(record), stat.st_mtime_ns, stat.st_size)
        cached = _CACHE.get(key)
        if cached is not None:
            return cached
        paths = _read_record_paths(record)
    except UnreadableFile as exc:
        problems.append(RecordProblem(record, exc.problem, exc.hint))
        return {}
    except (OSError, ValueError) as exc:  # UnicodeDecodeError too
        problems.append(RecordProblem(record, f"unreadable RECORD: {exc}", "skipped"))
        return {}
    layer = dist_info.parent
    libraries = [(p, kind) for p in paths if (kind := classify(p)) is not None]

    def needed_of(rel: str) -> list[str]:
        path = layer / rel
        try:
            with open_regular(path) as fh:
                return _elf_needed(fh)
        except FileNotFoundError:
            return []  # RECORD lists it but it is gone: nothing to read
        except UnreadableFile as exc:
            problems.append(RecordProblem(path, exc.problem, "its links are ignored"))
            return []
        except Exception as exc:  # pyelftools raises its own errors on corrupt files
            problems.append(
                RecordProblem(path, f"not a readable ELF file: {exc}", "its links are ignored")
            )
            return []

    sbom: list[str] = []
    for sbom_file in sorted((dist_info / "sboms").glob("*.json")):
        try:
            sbom.extend(_sbom_components(read_regular(sbom_file), sbom_file))
        except UnreadableFile as exc:
            problems.append(RecordProblem(sbom_file, f"SBOM {exc.problem}", exc.hint))
        except OSError as exc:
            problems.append(RecordProblem(sbom_file, f"unreadable SBOM: {exc}", "skipped"))
    variant: list[str] = []
    variant_file = dist_info / "variant.json"
    if os.path.lexists(variant_file):  # a FIFO there is said, not passed over
        try:
            variant = _variant_properties(read_regular(variant_file), variant_file)
        except UnreadableFile as exc:
            problems.append(RecordProblem(variant_file, f"variant.json {exc.problem}", exc.hint))
        except OSError as exc:
            problems.append(
                RecordProblem(variant_file, f"unreadable variant.json: {exc}", "skipped")
            )
    facts = _summarise(libraries, needed_of, sbom, variant)
    installer = read_installer(dist_info)
    if installer:
        facts["installer"] = installer
    url = _direct_url(dist_info)
    if url:
        facts["url"] = url
    _CACHE[key] = facts
    return facts


def _direct_url(dist_info: Path) -> str | None:
    try:
        data = read_json(dist_info / "direct_url.json")
    except (OSError, RecordError):
        return None
    url = data.get("url") if isinstance(data, dict) else None
    return url if isinstance(url, str) else None


def find_root(path: Path) -> Path | None:
    """Every site-packages directory is a root: the adapter describes each layer."""
    return path if path.name in LAYER_NAMES and path.is_dir() else None


def read_records(root: Path, problems: list[RecordProblem]) -> Iterator[InstallRecord]:
    """One describing record per ``*.dist-info`` with a ``RECORD`` in ``root``.

    Listing costs one ``scandir``; the binaries are read only when a rule asks.
    """
    try:
        entries = sorted(e.name for e in os.scandir(root) if e.name.endswith(".dist-info"))
    except OSError as exc:
        problems.append(RecordProblem(root, f"cannot list: {exc.strerror}"))
        return
    for entry in entries:
        dist_info = metadata_dir_path(root, entry)
        record = os.path.join(dist_info, "RECORD")
        if not os.path.isfile(record):
            continue
        name, version = split_metadata_dir_name(entry)

        def load(dist_info: Path = dist_info) -> dict[str, object]:
            return inspect_installed(dist_info, problems)

        yield InstallRecord(
            ecosystem=ECOSYSTEM,
            name=name,
            version=version,
            source=record,
            python_dists=(dist_info,),
            extra=BinaryFacts(load, key=str(dist_info)),
            foreign=False,
        )


class WheelBinaries(Adapter):
    """What installed distributions' binaries say: every site-packages layer is a root,
    every dist-info with a ``RECORD`` one describing record (see the module's
    functions)."""

    ECOSYSTEM = ECOSYSTEM
    FOREIGN = FOREIGN

    def find_root(self, path: Path) -> Path | None:
        return find_root(path)

    def read_records(self, root: Path, problems: list[RecordProblem]) -> Iterator[InstallRecord]:
        return read_records(root, problems)


ADAPTER = WheelBinaries()


# --- wheel files ------------------------------------------------------------------------


def inspect_wheel(wheel: Path) -> dict[str, object]:
    """Facts of a wheel file, read from the zip without extracting it (a compiled member
    is decompressed once into a seekable copy, in memory up to 64 MiB).

    Raises ``ValueError`` (with the reason) for a file that is not a readable wheel.
    """
    import shutil
    import tempfile
    import zipfile  # only wheel files need it: not every scan's start-up
    import zlib

    try:
        raw = open_regular(wheel)
    except UnreadableFile as exc:
        raise ValueError(exc.problem) from None
    except OSError as exc:
        raise ValueError(f"not a readable wheel: {exc}") from exc
    try:
        archive = zipfile.ZipFile(raw)
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        raw.close()
        raise ValueError(f"not a readable wheel: {exc}") from exc
    with raw, archive:
        names = archive.namelist()
        libraries = [(n, kind) for n in names if (kind := classify(n)) is not None]

        def needed_of(member: str) -> list[str]:
            try:
                info = _bounded_member(archive, member)
                # Decompressed once into a seekable copy: the ELF reader seeks backwards,
                # and each backward seek in a zip stream decompresses the member again
                # (13,052 seeks in scipy's wheel). In memory up to _SPOOL_BYTES, on disk
                # beyond, so memory stays bounded whatever the member's size.
                with archive.open(info) as fh, tempfile.SpooledTemporaryFile(
                    max_size=_SPOOL_BYTES
                ) as copy:
                    shutil.copyfileobj(fh, copy, 1024 * 1024)
                    copy.seek(0)
                    return _elf_needed(copy)
            except ValueError:
                raise
            except Exception as exc:  # a corrupt member: say which
                raise ValueError(f"{member}: not a readable ELF file: {exc}") from exc

        def metadata(member: str) -> bytes:
            info = _bounded_member(archive, member, MAX_METADATA_BYTES)
            try:
                return archive.read(info)
            except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
                raise ValueError(f"{member}: damaged in the archive: {exc}") from exc

        try:
            sbom: list[str] = []
            for n in names:
                parts = n.split("/")
                if (
                    len(parts) == 3
                    and parts[0].endswith(".dist-info")
                    and parts[1] == "sboms"
                    and parts[2].endswith(".json")
                ):
                    sbom.extend(_sbom_components(metadata(n), f"{wheel}!{n}"))
            variant: list[str] = []
            for n in names:
                top, _, rest = n.partition("/")
                if top.endswith(".dist-info") and rest == "variant.json":
                    variant = _variant_properties(metadata(n), f"{wheel}!{n}")
        except UnreadableFile as exc:
            raise ValueError(f"unreadable metadata: {exc}") from exc
        return _summarise(libraries, needed_of, sbom, variant)


# A wheel member vbridge reads: at most this large decompressed, and at most this many
# times its compressed size (a real shared library compresses 2-5x; a zip bomb 1000x).
MAX_MEMBER_BYTES = 8 * 1024**3
# A wheel member's decompressed copy stays in memory up to this size (then a temp file).
_SPOOL_BYTES = 64 * 1024**2
MAX_METADATA_BYTES = 64 * 1024**2
MAX_RATIO = 200
_RATIO_FLOOR = 1024**2  # small members may compress as they like


def _bounded_member(
    archive: zipfile.ZipFile, member: str, limit: int = MAX_MEMBER_BYTES
) -> zipfile.ZipInfo:
    """The member's entry, or ``ValueError`` if it is larger than vbridge reads."""
    info = archive.getinfo(member)
    if info.file_size > limit:
        raise ValueError(f"{member}: {info.file_size} bytes uncompressed, more than {limit}")
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > _RATIO_FLOOR and ratio > MAX_RATIO:
        raise ValueError(
            f"{member}: expands {ratio:.0f} times ({info.compress_size} -> {info.file_size} "
            f"bytes), more than any real wheel (at most {MAX_RATIO}); not read"
        )
    return info


_WHEEL_NAME = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)-")


def wheel_record(wheel: Path) -> InstallRecord:
    """A describing record for a wheel file that is not installed yet.

    Raises ``ValueError`` when the file name or the archive cannot be read.
    """
    m = _WHEEL_NAME.match(wheel.name)
    if not m or not wheel.name.endswith(".whl"):
        raise ValueError("not a wheel file name (name-version-...-platform.whl)")
    name, version = split_metadata_dir_name(f"{m['name']}-{m['version']}.dist-info")
    return InstallRecord(
        ecosystem=ECOSYSTEM,
        name=name,
        version=version,
        source=str(wheel),
        extra=inspect_wheel(wheel),
        foreign=False,
    )


# --- Requires-Dist ----------------------------------------------------------------------

_MAX_METADATA = 4 << 20  # bytes of METADATA / PKG-INFO read at most


def _metadata_text(meta: Path) -> str | None:
    """The core metadata of an installed distribution or of a wheel file."""
    if meta.suffix == ".whl":
        import zipfile  # only for wheel files (candidates)

        try:
            with zipfile.ZipFile(open_regular(meta)) as zf:
                names = [n for n in zf.namelist() if n.count("/") == 1]
                found = next((n for n in names if n.endswith(".dist-info/METADATA")), None)
                if found is None:
                    return None
                info = _bounded_member(zf, found, _MAX_METADATA)
                with zf.open(info) as fh:
                    return fh.read(_MAX_METADATA + 1)[:_MAX_METADATA].decode(
                        "utf-8", errors="replace"
                    )
        except (OSError, UnreadableFile, zipfile.BadZipFile, KeyError, ValueError, EOFError):
            return None
    base = meta / "EGG-INFO" if meta.suffix == ".egg" else meta
    # A one-file egg-info is its own PKG-INFO.
    for path in (base / "METADATA", base / "PKG-INFO", meta):
        try:
            return read_regular(path, limit=_MAX_METADATA).decode("utf-8", errors="replace")
        except (OSError, UnreadableFile):
            continue
    return None


def requires_dist(meta: Path) -> list[str]:
    """The ``Requires-Dist`` lines of a distribution's metadata (``METADATA``,
    ``PKG-INFO``, an egg-info's ``requires.txt`` outside of ``[extra]`` sections), as
    written; ``[]`` when there is none or it cannot be read."""
    text = _metadata_text(meta)
    out: list[str] = []
    if text is not None:
        for line in text.split("\n\n", 1)[0].splitlines():
            if line[:14].lower() == "requires-dist:":
                out.append(line[14:].strip())
    if not out and meta.suffix == ".egg-info" and meta.is_dir():
        try:
            data = read_regular(meta / "requires.txt", limit=_MAX_METADATA)
        except (OSError, UnreadableFile):
            return out
        requires = data.decode("utf-8", errors="replace")
        for line in requires.splitlines():
            line = line.strip()
            if line.startswith("["):
                break  # extras and marker sections follow the plain requirements
            if line and not line.startswith("#"):
                out.append(line)
    return out

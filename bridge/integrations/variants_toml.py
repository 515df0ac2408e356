"""The environment's ``variants.toml``: variantlib's user configuration, installed first.

variantlib (``variantlib.configuration.get_configuration_files``) takes the *first*
``variants.toml`` that exists, in this order, without merging: the working directory,
``sys.prefix``, the user configuration directory
(``platformdirs.user_config_path("variantlib", appauthor=False, roaming=True)``:
``~/.config/variantlib/`` on Linux) and the site one
(``platformdirs.site_config_path("variantlib", appauthor=False)``: ``/etc/xdg/variantlib/``).
Its ``property_priorities`` put values first whatever provider plugin a package names.

``vbridge annotate --variants-toml`` writes one at the environment root (``sys.prefix``)
listing, per coupled feature, the values of the builds installed there
(:mod:`vbridge.integrations.preferences`), so a variant-aware installer ranks the
matching wheel variant first. That file hides the user's and the site's, so their
content is merged in: the user's priorities first, then the installed builds'. Where
the user's file prefers a value the installed builds cannot be mixed with
(``mixed = "refuse"`` in ``data/policy.toml``: MPI), nothing is written and the line
says why. A ``variants.toml`` in the working directory hides the environment's:
:func:`shadowing_notes` says so (``vbridge scan`` prints it). ``vbridge clean`` removes it.

The file is vbridge's only while it holds what vbridge wrote: ``.vbridge/variants-toml.json``
(beside the ledger) keeps the SHA-256 of every content vbridge may have left there. A
``variants.toml`` vbridge did not write, or one edited since, is never touched.

>>> from vbridge.integrations.preferences import FeaturePreference
>>> prefs = [FeaturePreference("blas_lapack", "provider", ("mkl",), ("openblas", "mkl"), False)]
>>> print(variants_toml_text(prefs), end="")  # doctest: +ELLIPSIS
# Written by `vbridge annotate --variants-toml`...
<BLANKLINE>
[property_priorities.blas_lapack]
provider = ["mkl"]
>>> user = UserConfiguration(Path("u.toml"), "0" * 64, ["x86_64"], {},
...                          {"blas_lapack": {"provider": ["blis"]}})
>>> print(variants_toml_text(prefs, user), end="")  # doctest: +ELLIPSIS
# Written by `vbridge annotate --variants-toml`...
# Merged with u.toml (sha256 0000...): its priorities first.
namespace_priorities = ["x86_64"]
<BLANKLINE>
[property_priorities.blas_lapack]
provider = ["blis", "mkl"]
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast

from vbridge.destinations.envlock import EnvironmentLock
from vbridge.destinations.ledger import LedgerStore
from vbridge.errors import RecordError
from vbridge.integrations.preferences import FeaturePreference, installed_preferences
from vbridge.model import Environment
from vbridge.safefs import atomic_write, read_bytes, remove_file, require_writable, sha256_hex

__all__ = [
    "RECORD_NAME",
    "VARIANTS_TOML",
    "UserConfiguration",
    "VariantsTomlResult",
    "configuration_files",
    "remove_variants_toml",
    "shadowed_configuration",
    "shadowing_notes",
    "variants_toml_is_ours",
    "variants_toml_text",
    "write_variants_toml",
]

VARIANTS_TOML = "variants.toml"  # variantlib.constants.CONFIG_FILENAME
RECORD_NAME = "variants-toml.json"
_HEADER = """\
# Written by `vbridge annotate --variants-toml`: variantlib's configuration for this
# environment (read from sys.prefix). The builds installed here come first, so a
# variant-aware installer prefers wheel variants that match them. `vbridge annotate
# --variants-toml` rewrites it, `vbridge clean` removes it; once edited, vbridge
# leaves it alone.
"""

Action = Literal["create", "update", "remove", "unchanged", "left-alone", "refused"]
Priorities = dict[str, dict[str, list[str]]]


def configuration_files(prefix: Path, cwd: Path | None = None) -> list[tuple[str, Path]]:
    """Where variantlib looks for ``variants.toml``, in its order (the first found wins).

    ``user`` and ``global`` are computed as variantlib computes them (platformdirs, for
    the user running this, with its ``XDG_*`` variables).
    """
    import platformdirs

    return [
        ("working directory", Path(cwd or Path.cwd()) / VARIANTS_TOML),
        ("environment", Path(prefix) / VARIANTS_TOML),
        (
            "user",
            platformdirs.user_config_path("variantlib", appauthor=False, roaming=True)
            / VARIANTS_TOML,
        ),
        ("global", platformdirs.site_config_path("variantlib", appauthor=False) / VARIANTS_TOML),
    ]


@dataclass(frozen=True)
class UserConfiguration:
    """A ``variants.toml`` the environment's file would hide (the user's or the site's)."""

    path: Path
    sha256: str
    namespace_priorities: list[str]
    feature_priorities: dict[str, list[str]]
    property_priorities: Priorities

    @classmethod
    def read(cls, path: Path) -> UserConfiguration:
        """Read it with variantlib's own configuration loader (its validation)."""
        from variantlib.configuration import VariantConfiguration

        data = read_bytes(path)
        if data is None:
            raise RecordError(f"{path}: cannot be read; fix or remove it")
        try:
            config = VariantConfiguration.get_config_from_file(path)
        except Exception as exc:  # variantlib raises RuntimeError / ConfigurationError
            cause = exc.__cause__ or exc
            raise RecordError(
                f"{path}: variantlib cannot read it ({cause}); fix it, or installers "
                "ignore it too"
            ) from exc
        return cls(
            path,
            sha256_hex(data),
            list(config.namespace_priorities),
            {ns: list(f) for ns, f in config.feature_priorities.items()},
            {
                ns: {feat: list(v) for feat, v in features.items()}
                for ns, features in config.property_priorities.items()
            },
        )


def shadowed_configuration(prefix: Path) -> UserConfiguration | None:
    """The file variantlib would use if the environment had no ``variants.toml``
    (working directory aside): the user's, else the site's, else None."""
    for kind, path in configuration_files(prefix):
        if kind in ("user", "global") and path.is_file():
            return UserConfiguration.read(path)
    return None


@dataclass
class VariantsTomlResult:
    """What happened to ``variants.toml``, and why if it was left alone."""

    path: Path
    action: Action
    dry_run: bool = False
    reason: str = ""
    priorities: Priorities = field(default_factory=dict)
    merged: Path | None = None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"path": str(self.path), "action": self.action}
        if self.reason:
            out["reason"] = self.reason
        if self.priorities:
            out["property_priorities"] = self.priorities
        if self.merged is not None:
            out["merged"] = str(self.merged)
        return out

    def line(self) -> str:
        done = {"create": "wrote", "update": "rewrote", "remove": "removed"}
        planned = {"create": "would write", "update": "would rewrite", "remove": "would remove"}
        verb = (planned if self.dry_run else done).get(self.action)
        if verb is None:
            return f"vbridge: {self.path}: {self.reason or 'unchanged'}"
        merged = f" (merged with {self.merged}, its priorities first)" if self.merged else ""
        return f"vbridge: {verb} {self.path}{merged}"


def property_priorities(prefs: Sequence[FeaturePreference]) -> Priorities:
    """``{namespace: {feature: [installed values]}}`` for features with installed builds."""
    out: Priorities = {}
    for pref in prefs:
        if pref.installed:
            out.setdefault(pref.namespace, {})[pref.feature] = list(pref.installed)
    return out


def _merged(installed: Priorities, user: UserConfiguration | None) -> Priorities:
    """The user's values first, then the installed builds' (each value once)."""
    if user is None:
        return installed
    out: Priorities = {ns: {f: list(v) for f, v in fs.items()} for ns, fs in
                       user.property_priorities.items()}
    for namespace, features in installed.items():
        for feature, values in features.items():
            merged = out.setdefault(namespace, {}).setdefault(feature, [])
            merged.extend(v for v in values if v not in merged)
    return out


def conflicts(prefs: Sequence[FeaturePreference], user: UserConfiguration) -> list[str]:
    """Features the user's file puts a value first that the installed builds refuse."""
    out = []
    for pref in prefs:
        wanted = user.property_priorities.get(pref.namespace, {}).get(pref.feature, [])
        if pref.exclusive and pref.installed and wanted and wanted[0] not in pref.installed:
            out.append(
                f"{user.path} prefers {pref.key} :: {wanted[0]}, but the builds installed "
                f"here need {' or '.join(pref.installed)} ({pref.key} must match)"
            )
    return out


def _toml_list(values: Sequence[str]) -> str:
    # Names and values match [a-z0-9_.]+ (variantlib validates them): a JSON string is
    # a valid TOML string.
    return f"[{', '.join(json.dumps(v) for v in values)}]"


def variants_toml_text(
    prefs: Sequence[FeaturePreference], user: UserConfiguration | None = None
) -> str:
    """The file's text: a header, the user's top-level priorities (if merged) and one
    ``[property_priorities.<ns>]`` table per namespace."""
    lines = [_HEADER.rstrip("\n")]
    if user is not None:
        lines.append(
            f"# Merged with {user.path} (sha256 {user.sha256[:4]}...): its priorities first."
        )
        if user.namespace_priorities:
            lines.append(f"namespace_priorities = {_toml_list(user.namespace_priorities)}")
    lines.append("")
    if user is not None and user.feature_priorities:
        lines.append("[feature_priorities]")
        for namespace, names in sorted(user.feature_priorities.items()):
            lines.append(f"{namespace} = {_toml_list(names)}")
        lines.append("")
    for namespace, features in sorted(_merged(property_priorities(prefs), user).items()):
        lines.append(f"[property_priorities.{namespace}]")
        for feature, values in features.items():
            lines.append(f"{feature} = {_toml_list(values)}")
        lines.append("")
    return "\n".join(lines)


def _record_path(root: Path) -> Path:
    return LedgerStore.of(root).directory / RECORD_NAME


def _record(root: Path) -> dict[str, object]:
    data = read_bytes(_record_path(root))
    if data is None:
        return {}
    try:
        document = json.loads(data)
        [str(h) for h in document["written"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise RecordError(
            f"{_record_path(root)}: not readable ({exc}); remove it to make vbridge "
            f"forget it wrote {root / VARIANTS_TOML}"
        ) from exc
    return cast("dict[str, object]", document)


def _written(root: Path) -> list[str]:
    return [str(h) for h in cast("list[object]", _record(root).get("written", []))]


def _save_record(root: Path, hashes: list[str], merged: UserConfiguration | None) -> None:
    path = _record_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    document: dict[str, object] = {
        "format": 1,
        "path": VARIANTS_TOML,
        "written": sorted(set(hashes)),
    }
    if merged is not None:
        document["merged"] = {"path": str(merged.path), "sha256": merged.sha256}
    text = json.dumps(document)
    atomic_write(path, (text + "\n").encode(), path.parent)


def variants_toml_is_ours(root: Path) -> bool:
    """Whether ``root/variants.toml`` exists and holds what vbridge wrote there."""
    current = read_bytes(Path(root) / VARIANTS_TOML)
    return current is not None and sha256_hex(current) in _written(Path(root))


def write_variants_toml(
    env: Environment, *, dry_run: bool = False, wait: float = 0.0
) -> VariantsTomlResult:
    """Write (or refresh) ``variants.toml`` at the root of ``env`` from its installed builds,
    merged with the user's (or site's) file it would hide.

    With no coupled build installed there is nothing to prefer: a file vbridge wrote
    earlier is removed, none is created. Where the user's file prefers a value the
    installed builds refuse, nothing is written (``refused``, with the reason).
    """
    root = Path(os.path.abspath(env.path))
    target = root / VARIANTS_TOML
    prefs = installed_preferences(env)
    installed = property_priorities(prefs)
    user = shadowed_configuration(root)
    current = read_bytes(target)
    written = _written(root)
    if current is not None and sha256_hex(current) not in written:
        return VariantsTomlResult(
            target,
            "left-alone",
            dry_run,
            "exists and was not written by vbridge (or was edited since); left alone",
            installed,
        )
    if not installed:
        if current is None:
            return VariantsTomlResult(target, "unchanged", dry_run, "no coupled build installed")
        return remove_variants_toml(root, dry_run=dry_run, wait=wait)
    if user is not None and (problems := conflicts(prefs, user)):
        return VariantsTomlResult(
            target,
            "refused",
            dry_run,
            "; ".join(problems)
            + ". Nothing written: an environment file would hide yours; change that "
            "preference (or remove it) and run `vbridge annotate --variants-toml` again",
            installed,
        )
    data = variants_toml_text(prefs, user).encode("utf-8")
    action: Action = "unchanged" if current == data else ("create" if current is None else "update")
    merged = user.path if user is not None else None
    result = VariantsTomlResult(target, action, dry_run, priorities=_merged(installed, user),
                                merged=merged)
    if dry_run or action == "unchanged":
        return result
    store = LedgerStore.of(root)
    require_writable(root)
    store.check()
    require_writable(store.directory)
    with EnvironmentLock(store.lock_path, wait=wait):
        store.check()
        store.directory.mkdir(parents=True, exist_ok=True)
        # Intent first: the record names the new content before the file holds it.
        _save_record(root, [*_written(root), sha256_hex(data)], user)
        atomic_write(target, data, root)
        _save_record(root, [sha256_hex(data)], user)
    return result


def shadowing_notes(root: Path, cwd: Path | None = None) -> list[str]:
    """What hides the environment's ``variants.toml`` from installers, or leaves it
    out of date with the file it merged (one line each, for ``vbridge scan``)."""
    root = Path(os.path.abspath(root))
    if not (root / VARIANTS_TOML).is_file():
        return []  # nothing to hide (and nothing imported for the common case)
    files = dict(configuration_files(root, cwd))
    env_file = files["environment"]
    notes: list[str] = []
    local = files["working directory"]
    if env_file.is_file() and local.is_file() and local.resolve() != env_file.resolve():
        notes.append(
            f"{local} hides {env_file} from installers run in this directory (variantlib "
            "reads the first variants.toml it finds: working directory, sys.prefix, user, "
            "global); move or merge it"
        )
    if not variants_toml_is_ours(root):
        return notes
    try:
        user = shadowed_configuration(root)
    except RecordError as exc:
        return [*notes, str(exc)]
    recorded = _record(root).get("merged")
    recorded_hash = recorded.get("sha256") if isinstance(recorded, dict) else None
    if user is not None and user.sha256 != recorded_hash:
        notes.append(
            f"{env_file} (vbridge's) hides {user.path}, which "
            f"{'changed since it was merged' if recorded_hash else 'it does not include'}; "
            "run `vbridge annotate --variants-toml` again"
        )
    elif user is None and recorded_hash is not None:
        notes.append(
            f"{env_file} (vbridge's) still holds the priorities of "
            f"{recorded.get('path') if isinstance(recorded, dict) else 'a removed file'}, "
            "which is gone; run `vbridge annotate --variants-toml` again"
        )
    return notes


def remove_variants_toml(
    root: Path, *, dry_run: bool = False, wait: float = 0.0
) -> VariantsTomlResult:
    """Remove ``root/variants.toml`` if it holds what vbridge wrote; forget the record."""
    root = Path(os.path.abspath(root))
    target = root / VARIANTS_TOML
    record = _record_path(root)
    if not record.exists():
        return VariantsTomlResult(target, "unchanged", dry_run, "not written by vbridge")
    current = read_bytes(target)
    ours = current is not None and sha256_hex(current) in _written(root)
    if current is not None and not ours:
        result = VariantsTomlResult(
            target, "left-alone", dry_run, "edited since vbridge wrote it; left in place"
        )
    else:
        result = VariantsTomlResult(target, "remove" if ours else "unchanged", dry_run)
    if dry_run:
        return result
    store = LedgerStore.of(root)
    store.check()
    require_writable(store.directory)
    with EnvironmentLock(store.lock_path, wait=wait):
        if ours:
            require_writable(root)
            remove_file(target, root)
        record.unlink(missing_ok=True)
    return result



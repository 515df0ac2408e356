"""The environment's ``variants.toml``: variantlib's user configuration, installed first.

variantlib reads ``variants.toml`` from the current directory, ``sys.prefix``, the user
and the site configuration directories; its ``property_priorities`` put values first
whatever provider plugin a package names. ``vbridge annotate --variants-toml`` writes
one at the environment root (``sys.prefix``) listing, per coupled feature, the values
of the builds installed there (:mod:`vbridge.integrations.preferences`), so a variant-aware
installer ranks the matching wheel variant first. ``vbridge clean`` removes it.

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
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from vbridge.destinations.envlock import EnvironmentLock
from vbridge.destinations.ledger import LedgerStore
from vbridge.errors import RecordError
from vbridge.integrations.preferences import FeaturePreference, installed_preferences
from vbridge.model import Environment
from vbridge.safefs import atomic_write, read_bytes, remove_file, require_writable, sha256_hex

__all__ = [
    "RECORD_NAME",
    "VARIANTS_TOML",
    "VariantsTomlResult",
    "remove_variants_toml",
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

Action = Literal["create", "update", "remove", "unchanged", "left-alone"]


@dataclass
class VariantsTomlResult:
    """What happened to ``variants.toml``, and why if it was left alone."""

    path: Path
    action: Action
    dry_run: bool = False
    reason: str = ""
    priorities: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"path": str(self.path), "action": self.action}
        if self.reason:
            out["reason"] = self.reason
        if self.priorities:
            out["property_priorities"] = self.priorities
        return out

    def line(self) -> str:
        done = {"create": "wrote", "update": "rewrote", "remove": "removed"}
        planned = {"create": "would write", "update": "would rewrite", "remove": "would remove"}
        verb = (planned if self.dry_run else done).get(self.action)
        if verb is None:
            return f"vbridge: {self.path}: {self.reason or 'unchanged'}"
        return f"vbridge: {verb} {self.path}"


def property_priorities(prefs: Sequence[FeaturePreference]) -> dict[str, dict[str, list[str]]]:
    """``{namespace: {feature: [installed values]}}`` for features with installed builds."""
    out: dict[str, dict[str, list[str]]] = {}
    for pref in prefs:
        if pref.installed:
            out.setdefault(pref.namespace, {})[pref.feature] = list(pref.installed)
    return out


def variants_toml_text(prefs: Sequence[FeaturePreference]) -> str:
    """The file's text: a header and one ``[property_priorities.<ns>]`` table per namespace.

    Names and values match ``[a-z0-9_.]+`` (variantlib validates them), so a JSON
    string is a valid TOML string.
    """
    lines = [_HEADER]
    for namespace, features in sorted(property_priorities(prefs).items()):
        lines.append(f"[property_priorities.{namespace}]")
        for feature, values in features.items():
            lines.append(f"{feature} = [{', '.join(json.dumps(v) for v in values)}]")
        lines.append("")
    return "\n".join(lines)


def _record_path(root: Path) -> Path:
    return LedgerStore.of(root).directory / RECORD_NAME


def _written(root: Path) -> list[str]:
    data = read_bytes(_record_path(root))
    if data is None:
        return []
    try:
        document = json.loads(data)
        return [str(h) for h in document["written"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise RecordError(
            f"{_record_path(root)}: not readable ({exc}); remove it to make vbridge "
            f"forget it wrote {root / VARIANTS_TOML}"
        ) from exc


def _save_record(root: Path, hashes: list[str]) -> None:
    path = _record_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"format": 1, "path": VARIANTS_TOML, "written": sorted(set(hashes))})
    atomic_write(path, (text + "\n").encode(), path.parent)


def variants_toml_is_ours(root: Path) -> bool:
    """Whether ``root/variants.toml`` exists and holds what vbridge wrote there."""
    current = read_bytes(Path(root) / VARIANTS_TOML)
    return current is not None and sha256_hex(current) in _written(Path(root))


def write_variants_toml(
    env: Environment, *, dry_run: bool = False, wait: float = 0.0
) -> VariantsTomlResult:
    """Write (or refresh) ``variants.toml`` at the root of ``env`` from its installed builds.

    With no coupled build installed there is nothing to prefer: a file vbridge wrote
    earlier is removed, none is created.
    """
    root = Path(os.path.abspath(env.path))
    target = root / VARIANTS_TOML
    prefs = installed_preferences(env)
    priorities = property_priorities(prefs)
    data = variants_toml_text(prefs).encode("utf-8")
    current = read_bytes(target)
    written = _written(root)
    if current is not None and sha256_hex(current) not in written:
        return VariantsTomlResult(
            target,
            "left-alone",
            dry_run,
            "exists and was not written by vbridge (or was edited since); left alone",
            priorities,
        )
    if not priorities:
        if current is None:
            return VariantsTomlResult(target, "unchanged", dry_run, "no coupled build installed")
        return remove_variants_toml(root, dry_run=dry_run, wait=wait)
    action: Action = "unchanged" if current == data else ("create" if current is None else "update")
    result = VariantsTomlResult(target, action, dry_run, priorities=priorities)
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
        _save_record(root, [*_written(root), sha256_hex(data)])
        atomic_write(target, data, root)
        _save_record(root, [sha256_hex(data)])
    return result


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

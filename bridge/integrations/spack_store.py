"""Annotating a Spack environment or view: the files go where they really are.

A Spack view (an environment's ``.spack-env/view``, ``spack view symlink``, a view with
projections) is a tree of symbolic links into the install tree's prefixes: its
dist-info directories are real directories whose files (``RECORD`` too) are links to
the prefix's. vbridge therefore writes into the prefix, under the install tree's
ledger (``<store>/.vbridge/``), and links what it wrote into the view, as Spack links
every file of a prefix; ``clean`` removes the files from the prefix and the links from
every view it knows of (those annotated through, listed in ``<store>/.vbridge/views.json``),
including the links of a view Spack rebuilt while the files were there.

>>> real_dist_info(Path("/nonexistent/numpy-2.5.0.dist-info"))
PosixPath('/nonexistent/numpy-2.5.0.dist-info')
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from vbridge.destinations.annotate import (
    AnnotateResult,
    Change,
    CleanResult,
    annotate_environment,
    clean_environment,
)
from vbridge.destinations.ledger import LedgerStore
from vbridge.destinations.sbom import SBOM_PATH
from vbridge.destinations.variant_json import VARIANT_JSON, Layout
from vbridge.errors import UnsafePath
from vbridge.model import Environment, Finding
from vbridge.safefs import atomic_write, contained, read_bytes

__all__ = [
    "VIEWS_FILE",
    "StoreTarget",
    "annotate_spack",
    "clean_spack",
    "known_views",
    "real_dist_info",
    "relink_views",
    "store_targets",
]

VIEWS_FILE = "views.json"
# What vbridge adds to a dist-info, as paths inside it (linked into views).
_ADDED = (VARIANT_JSON, SBOM_PATH)


def real_dist_info(dist_info: Path) -> Path:
    """Where a dist-info's files really are: a view's dist-info holds links to them."""
    metadata = dist_info / "METADATA"
    if metadata.is_symlink():
        return Path(os.path.realpath(metadata)).parent
    return dist_info


def _tree_above(prefix: Path) -> Path | None:
    for candidate in (prefix, *prefix.parents):
        if (candidate / ".spack-db" / "index.json").is_file():
            return candidate
    return None


@dataclass
class StoreTarget:
    """The install tree to annotate for an environment or view, and its views."""

    env: Environment  # rooted at the install tree; its dist-infos are the prefixes'
    views: list[Path] = field(default_factory=list)  # view roots to keep consistent
    # real dist-info -> the view dist-info directories that link to its files
    links: dict[Path, list[Path]] = field(default_factory=dict)


def store_targets(env: Environment) -> list[StoreTarget]:
    """For a scanned Spack environment or view: one target per install tree holding
    the real dist-infos of its Spack-owned distributions; [] for anything else (an
    install tree or prefix is annotated as it is).
    """
    from vbridge.adapters import spack

    root = spack.find_root(env.path)
    if root is None or spack.is_tree(root) or spack.is_prefix(root):
        return []
    views = spack.view_roots(root)
    targets: dict[Path, StoreTarget] = {}
    for dist in env.distributions:
        record = dist.owner_record
        if record is None or record.ecosystem != "spack":
            continue
        real = real_dist_info(dist.dist_info)
        prefix = record.extra.get("prefix")
        tree = _tree_above(Path(str(prefix))) if prefix else None
        if tree is None:
            continue
        target = targets.get(tree)
        if target is None:
            target = targets[tree] = StoreTarget(
                Environment(
                    path=tree,
                    ecosystems=list(env.ecosystems),
                    records=env.records,
                    problems=env.problems,
                ),
                views=list(views),
            )
        if real != dist.dist_info:
            target.links.setdefault(real, []).append(dist.dist_info)
        if any(d.dist_info == real for d in target.env.distributions):
            continue
        target.env.distributions.append(
            msgspec.structs.replace(dist, dist_info=real, layer=str(real.parent))
        )
        if real.parent not in target.env.site_packages:
            target.env.site_packages.append(real.parent)
    return list(targets.values())


# --- the views an install tree's annotations are linked into ---------------------------


def _views_file(tree: Path) -> Path:
    return LedgerStore.of(tree).directory / VIEWS_FILE


def known_views(tree: Path) -> list[Path]:
    """The views vbridge linked its files into (``<store>/.vbridge/views.json``)."""
    data = read_bytes(_views_file(tree))
    if data is None:
        return []
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        views = json.loads(data).get("views", [])
        return [Path(v) for v in views if isinstance(v, str)]
    return []


def _save_views(tree: Path, views: Iterable[Path], dry_run: bool) -> None:
    wanted = sorted({str(v) for v in views})
    path = _views_file(tree)
    if dry_run:
        return
    if not wanted:
        path.unlink(missing_ok=True)
        return
    if not path.parent.is_dir():
        return  # annotate wrote nothing here: nothing to keep linked
    data = (json.dumps({"views": wanted}, indent=2) + "\n").encode("utf-8")
    if read_bytes(path) != data:
        atomic_write(path, data, path.parent)


def _view_dist_infos(view: Path) -> Iterator[Path]:
    """Every dist-info directory of a view (of each projection of a projection view)."""
    from vbridge.adapters import spack
    from vbridge.sitepackages import iter_metadata_dirs

    for root in spack.projection_views(view) or [view]:
        for layer in spack.site_packages(root):
            for meta in iter_metadata_dirs(layer):
                if meta.path.is_dir() and not meta.path.is_symlink():
                    yield meta.path


def _link_into(view_dist: Path, real: Path, view: Path, result: AnnotateResult) -> None:
    """Link the files vbridge wrote into ``real`` from the view's dist-info."""
    for rel in _ADDED:
        source = real / rel
        link = view_dist / rel
        if not source.is_file():
            continue
        if link.is_symlink() and os.readlink(link) == str(source):
            continue
        if link.exists() or link.is_symlink():
            continue  # not vbridge's to replace
        contained(view, view_dist)
        if not result.dry_run:
            link.parent.mkdir(exist_ok=True)
            contained(view, link.parent)
            os.symlink(source, link)
        result.changes.append(Change(link, "create", real.name))


def _unlink_dangling(view: Path, tree: Path, dry_run: bool) -> list[Change]:
    """Remove a view's links to vbridge's files that no longer exist in ``tree``."""
    changes: list[Change] = []
    tree_real = os.path.realpath(tree)
    for view_dist in _view_dist_infos(view):
        for rel in _ADDED:
            link = view_dist / rel
            if not link.is_symlink() or link.exists():
                continue
            target = os.readlink(link)
            if not os.path.isabs(target) or os.path.commonpath([tree_real, target]) != tree_real:
                continue
            contained(view, link.parent)
            if not dry_run:
                link.unlink()
            changes.append(Change(link, "remove", view_dist.name))
        sboms = view_dist / Path(SBOM_PATH).parent
        real_sboms = real_dist_info(view_dist) / Path(SBOM_PATH).parent
        with contextlib.suppress(OSError):
            vestigial = sboms.is_dir() and not sboms.is_symlink() and not real_sboms.exists()
            if vestigial and (dry_run or not os.listdir(sboms)):
                if not dry_run:
                    sboms.rmdir()
                changes.append(Change(sboms, "remove", view_dist.name))
    return changes


# --- the entry points -------------------------------------------------------------------


def annotate_spack(
    env: Environment,
    *,
    dry_run: bool = False,
    wait: float = 0.0,
    variant_layout: Layout | None = None,
) -> list[AnnotateResult] | None:
    """Annotate a Spack environment or view where its files are; None when ``env`` is
    not one (annotate it as usual).

    Each install tree is annotated for this environment's distributions only; what
    was written is linked into the environment's views, and the views are remembered
    so that cleaning the tree removes the links too.
    """
    targets = store_targets(env)
    if not targets:
        return None
    results: list[AnnotateResult] = []
    for target in targets:
        tree = target.env.path
        only = [d.dist_info for d in target.env.distributions]
        result = annotate_environment(
            target.env, only=only, dry_run=dry_run, wait=wait, variant_layout=variant_layout
        )
        views = sorted(set(known_views(tree)) | set(target.views))
        relink_views(tree, views, result)
        _save_views(tree, views, dry_run)
        results.append(result)
    return results


def relink_views(tree: Path, views: Iterable[Path], result: AnnotateResult) -> None:
    """Make each view show what vbridge wrote into ``tree``: link the files its prefixes
    have, remove links to files that are gone."""
    for view in views:
        if not view.is_dir():
            continue
        for view_dist in _view_dist_infos(view):
            real = real_dist_info(view_dist)
            if real == view_dist or not _under(real, tree):
                continue
            try:
                _link_into(view_dist, real, view, result)
            except (OSError, UnsafePath) as exc:
                result.findings.append(_link_finding(view_dist, exc))
        result.changes.extend(_unlink_dangling(view, tree, result.dry_run))


def _under(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def _link_finding(view_dist: Path, exc: Exception) -> Finding:
    return Finding(
        "warn",
        "annotate-view-not-linked",
        f"{view_dist}: vbridge's files could not be linked into this view ({exc}); "
        "`spack env view regenerate` links them",
        (view_dist.name,),
    )


def clean_spack(
    path: Path,
    *,
    env: Environment | None = None,
    only: Collection[Path] | None = None,
    dry_run: bool = False,
    wait: float = 0.0,
) -> list[CleanResult] | None:
    """Clean a Spack environment or view, or an install tree whose annotations are
    linked into views; None when ``path`` is neither (clean it as usual).

    An environment or view: its distributions are cleaned in their install trees and
    the links removed from its views. An install tree: cleaned as usual, then the
    links to what is gone are removed from every view it is linked into.
    """
    from vbridge.adapters import spack
    from vbridge.scan import scan_environment

    root = spack.find_root(path)
    if root is None or spack.is_prefix(root):
        return None
    if spack.is_tree(root):
        views = known_views(root)
        if not views:
            return None
        result = clean_environment(root, only=only, dry_run=dry_run, wait=wait)
        for view in views:
            if view.is_dir():
                result.changes.extend(_unlink_dangling(view, root, dry_run))
        _forget_views(root, dry_run)
        return [result]
    scanned = env if env is not None else scan_environment(path)
    targets = store_targets(scanned)
    if not targets:
        return None
    results: list[CleanResult] = []
    for target in targets:
        tree = target.env.path
        keys = [d.dist_info for d in target.env.distributions]
        if only is not None:
            wanted = {os.path.abspath(p) for p in only}
            keys = [k for k in keys if os.path.abspath(k) in wanted or any(
                os.path.abspath(v) in wanted for v in target.links.get(k, [])
            )]
        result = clean_environment(tree, only=keys, dry_run=dry_run, wait=wait)
        for view in sorted(set(target.views) | set(known_views(tree))):
            if view.is_dir():
                result.changes.extend(_unlink_dangling(view, tree, dry_run))
        _forget_views(tree, dry_run)
        results.append(result)
    return results


def _forget_views(tree: Path, dry_run: bool) -> None:
    """Once nothing of vbridge's is left in the tree, the view list goes too."""
    store = LedgerStore.of(tree)
    if dry_run or store.path.exists():
        return
    _views_file(tree).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        store.directory.rmdir()

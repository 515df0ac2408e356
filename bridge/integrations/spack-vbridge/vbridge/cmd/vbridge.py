"""``spack vbridge``: wheel-variant properties of the Python packages Spack installed.

Spack loads this module as ``spack.extensions.vbridge.cmd.vbridge`` from the
``spack-vbridge`` directory that vbridge ships (``vbridge spack-extension path``, or
the ``spack.extensions`` entry point). Nothing of vbridge is imported until the
command runs, so ``spack help`` works wherever Spack does.

::

    spack vbridge scan [--json] [PATH ...]
    spack vbridge annotate [--dry-run] [PATH ...]
    spack vbridge clean [PATH ...]

Without a PATH the command reads the active environment's specs, else every installed
spec, through Spack's own store (``spack.store.STORE.db``). A PATH is an install tree,
an environment directory, a view or an installed prefix, read from its files.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

description = "show and write wheel-variant properties of Spack-installed Python packages"
section = "query"
level = "long"

_PATH_HELP = (
    "install tree, environment directory, view or installed prefix "
    "(default: the active environment, else every installed spec)"
)


def setup_parser(subparser: argparse.ArgumentParser) -> None:
    """Add ``scan``, ``annotate`` and ``clean`` to the ``spack vbridge`` parser."""
    commands = subparser.add_subparsers(metavar="SUBCOMMAND", dest="vbridge_command")
    commands.required = True

    scan = commands.add_parser(
        "scan",
        help="list Python distributions, their Spack package and properties",
        description="List each Python distribution, the Spack spec that installed it "
        "and its wheel-variant properties (BLAS/LAPACK and MPI providers from the "
        "dependency edges' virtuals, hdf5 +mpi, x86-64 level), then conflicts.",
    )
    scan.add_argument("--json", action="store_true", dest="as_json", help="print JSON")
    scan.add_argument("paths", nargs="*", metavar="PATH", help=_PATH_HELP)

    annotate = commands.add_parser(
        "annotate",
        help="write the properties into the distributions' dist-info",
        description="Write the wheel-variant properties into each Spack-installed "
        "distribution's .dist-info (vbridge annotate).",
    )
    annotate.add_argument(
        "--dry-run", action="store_true", help="show what would be written, write nothing"
    )
    annotate.add_argument("paths", nargs="*", metavar="PATH", help=_PATH_HELP)

    clean = commands.add_parser(
        "clean",
        help="remove what annotate wrote",
        description="Remove every file vbridge wrote, restoring touched files byte for byte.",
    )
    clean.add_argument("paths", nargs="*", metavar="PATH", help=_PATH_HELP)


def vbridge(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Run ``spack vbridge <subcommand>``; the return value is the exit status."""
    try:
        from vbridge.errors import VbridgeError
    except ImportError as exc:
        _say(
            f"cannot import vbridge in the Python that runs Spack ({exc}); "
            f"install it with: {sys.executable} -m pip install vbridge"
        )
        return 2
    try:
        if args.vbridge_command == "scan":
            return _scan(args)
        if args.vbridge_command == "annotate":
            return _annotate(args)
        return _clean(args)
    except VbridgeError as exc:
        _say(str(exc))
        return exc.exit_code


def _say(message: str) -> None:
    print(f"vbridge: {message}", file=sys.stderr)


def _spack_active_environment() -> Any | None:
    """The environment ``spack -e ENV`` / ``spack env activate`` made active; None
    outside Spack or without one."""
    try:
        import spack.environment  # type: ignore[import-not-found]
    except ImportError:
        return None
    return spack.environment.active_environment()


def _spack_store_source() -> Any | None:
    """Every spec Spack's store (with its upstreams) knows, as a vbridge adapter; None
    outside Spack."""
    try:
        import spack.store  # type: ignore[import-not-found]
    except ImportError:
        return None
    from vbridge.adapters.spack import InstalledSpecs

    db = spack.store.STORE.db
    with db.read_transaction():
        specs = db.query(installed=True)
        explicit = {s.dag_hash() for s in db.query(installed=True, explicit=True)}
    entries = [
        (s.node_dict_with_hashes(), str(s.prefix), True, s.dag_hash() in explicit) for s in specs
    ]
    root = Path(str(spack.store.STORE.root))
    index = root / ".spack-db" / "index.json"
    return InstalledSpecs(root, entries, source=index if index.is_file() else None)


def _default_paths() -> list[Path]:
    """Outside Spack: the environment ``spack env activate`` set, else the default tree."""
    from vbridge.errors import NotAnEnvironment

    env = os.environ.get("SPACK_ENV")
    if env:
        return [Path(env)]
    spack_root = os.environ.get("SPACK_ROOT")
    if spack_root and (Path(spack_root) / "opt" / "spack" / ".spack-db").is_dir():
        return [Path(spack_root) / "opt" / "spack"]
    raise NotAnEnvironment(
        "no Spack store to read: give an install tree, environment, view or prefix "
        "(Spack is not importable here and neither SPACK_ENV nor SPACK_ROOT is set)"
    )


def _environments(paths: Sequence[str]) -> list[Any]:
    """Scan the PATHs, or what Spack has installed: the active environment as its view
    shows it, else Spack's store (else the default paths, outside Spack)."""
    from vbridge.adapters import all_adapters
    from vbridge.decide.assess import assess_environment
    from vbridge.scan import scan_environment

    if paths:
        return [_scan_spack_environment(_spack_root(p)) for p in paths]
    active = _spack_active_environment()
    if active is not None:
        # What the environment puts on sys.path is its view: read from its files, as
        # `vbridge scan ENV_DIR` does (build-only dependencies are not in it).
        return [_scan_spack_environment(Path(str(active.path)))]
    source = _spack_store_source()
    if source is not None:
        others = [a for a in all_adapters() if a.ECOSYSTEM != source.ECOSYSTEM]
        return [assess_environment(scan_environment(source.root, adapters=[source, *others]))]
    return [_scan_spack_environment(p.absolute()) for p in _default_paths()]


def _scan_spack_environment(path: Path) -> Any:
    from vbridge.adapters import spack
    from vbridge.decide.assess import assess_environment
    from vbridge.model import RecordProblem
    from vbridge.scan import scan_environment

    env = assess_environment(scan_environment(path))
    root = spack.find_root(path)
    if root is not None and (root / "spack.lock").is_file() and not spack.view_roots(root):
        env.problems.append(
            RecordProblem(
                root / "spack.yaml",
                "the environment has no view (`view: false`), so no Python distribution "
                "is listed for it",
                "scan its packages' prefixes, or the install tree",
            )
        )
    return env


def _spack_root(given: str) -> Path:
    """A PATH as the Spack records that govern it (a prefix's site-packages: the
    prefix), so the report names what Spack installed."""
    from vbridge.adapters import spack
    from vbridge.errors import NotAnEnvironment

    path = Path(given).absolute()
    if not path.exists():
        raise NotAnEnvironment(
            f"{path}: no such directory; give an install tree, environment directory, "
            "view or installed prefix"
        )
    return spack.find_root(path) or path


def _scan(args: argparse.Namespace) -> int:
    from vbridge.destinations.report import render_json, render_table

    envs = _environments(args.paths)
    for env in envs:
        for problem in env.problems:
            _say(str(problem))
    print(render_json(envs) if args.as_json else render_table(envs), end="")
    if any(e.problems and not any(r.ecosystem == "spack" for r in e.records) for e in envs):
        return 2  # nothing of Spack's could be read
    return 1 if any(f.severity == "refuse" for e in envs for f in e.findings) else 0


def _annotate(args: argparse.Namespace) -> int:
    from vbridge.destinations.annotate import annotate_environment
    from vbridge.integrations import spack_store

    for env in _environments(args.paths):
        for problem in env.problems:
            _say(str(problem))
        # An environment or view: written where its files are (the install tree), and
        # linked into its views.
        results = spack_store.annotate_spack(env, dry_run=args.dry_run)
        if results is None:
            result = annotate_environment(env, dry_run=args.dry_run)
            spack_store.relink_views(env.path, spack_store.known_views(env.path), result)
            results = [result]
        for result in results:
            print("\n".join(result.report_lines("annotate")))
    return 0


def _clean(args: argparse.Namespace) -> int:
    from vbridge.destinations.annotate import clean_environment
    from vbridge.integrations import spack_store

    if args.paths:
        paths = [_spack_root(p) for p in args.paths]
    else:
        paths = [e.path for e in _environments(())]
    for path in paths:
        results = spack_store.clean_spack(path)
        for result in results if results is not None else [clean_environment(path)]:
            print("\n".join(result.report_lines("clean")))
    return 0

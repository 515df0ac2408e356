"""A toy ecosystem, ``toy``: the whole of what a new ecosystem needs, in one module.

Its package manager keeps a plain manifest, ``<prefix>/toy-manifest.toml``::

    site_packages = "lib/toy/site"          # where it installs Python distributions

    [[package]]
    name = "numpy"
    version = "1.26.4"
    build = "py311_0"
    depends = ["libblas@3.9", "python"]     # its spec syntax: name@version-prefix
    dists = ["numpy-1.26.4.dist-info"]      # relative to site_packages

Its rules live beside it (``tests/data/toy.toml``, where a shipped adapter's would be
``data/toy.toml``). tests/test_new_ecosystem.py shows that vbridge attributes
ownership and properties through it without any other module knowing of it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vbridge.adapters import Adapter
from vbridge.model import InstallRecord, RecordProblem

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ECOSYSTEM = "toy"
MANIFEST = "toy-manifest.toml"


def _manifest(root: Path) -> dict[str, Any]:
    with open(root / MANIFEST, "rb") as fh:
        manifest: dict[str, Any] = tomllib.load(fh)
    return manifest


class ToyManifest(Adapter):
    """Records of the toy package manager: one per ``[[package]]`` of its manifest."""

    ECOSYSTEM = ECOSYSTEM
    RULES = Path(__file__).parent / "data" / "toy.toml"

    def find_root(self, path: Path) -> Path | None:
        for candidate in (path, *list(path.parents)[:3]):
            if (candidate / MANIFEST).is_file():
                return candidate
        return None

    def read_records(self, root: Path, problems: list[RecordProblem]) -> Iterator[InstallRecord]:
        try:
            manifest = _manifest(root)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            problems.append(RecordProblem(root / MANIFEST, f"unreadable: {exc}", "skipped"))
            return
        site = root / manifest.get("site_packages", "site-packages")
        for package in manifest.get("package", []):
            yield InstallRecord(
                ecosystem=ECOSYSTEM,
                name=package["name"],
                version=package["version"],
                build=package.get("build", ""),
                source=str(root / MANIFEST),
                depends=tuple(package.get("depends", ())),
                python_dists=tuple(site / d for d in package.get("dists", ())),
            )

    def site_packages(self, root: Path) -> list[Path]:
        return [root / _manifest(root).get("site_packages", "site-packages")]

    # name@version-prefix: the generic name parser would keep the "@..." in the name.
    def dependency_names(self, spec: str) -> list[str]:
        return [spec.split("@", 1)[0].strip()]

    def spec_name(self, spec: str) -> str:
        return spec.split("@", 1)[0].strip().lower()

    def spec_is_exact(self, spec: str) -> bool:
        return "@" in spec

    def spec_matches(self, spec: str, record: InstallRecord) -> bool:
        name, _, version = spec.partition("@")
        return record.name.lower() == name.strip().lower() and record.version.startswith(
            version.strip()
        )


ADAPTER = ToyManifest()

"""The built-in demo environment: a conda prefix in which pip replaced numpy.

Built from ``data/demo.json`` into a fresh directory, so ``vbridge scan --demo`` shows
what vbridge sees (MKL via libblas, Open MPI via mpi4py's dependency, a conda numpy
replaced by a pip wheel) without any package manager on the machine.
"""

from __future__ import annotations

import json
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["build_demo_environment"]


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _dist_info_files(dist_info: Path, name: str, version: str, installer: str) -> None:
    _write(dist_info / "METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    _write(dist_info / "INSTALLER", installer)
    _write(dist_info / "WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: false\n")


def build_demo_environment(target: Path | None = None) -> Path:
    """Write the demo prefix into ``target`` (a new temporary directory by default)."""
    spec: dict[str, Any] = json.loads(
        resources.files("vbridge.data").joinpath("demo.json").read_text(encoding="utf-8")
    )
    prefix = Path(target) if target else Path(tempfile.mkdtemp(prefix="vbridge-demo-"))
    site = prefix / spec["site_packages"]
    replaced = set(spec["replaced_by_pip"])
    (prefix / "conda-meta").mkdir(parents=True, exist_ok=True)
    _write(prefix / "conda-meta" / "history", "")
    for record in spec["conda_records"]:
        stem = f"{record['name']}-{record['version']}-{record['build']}"
        _write(prefix / "conda-meta" / f"{stem}.json", json.dumps(record, indent=2))
        if f"{record['name']}-{record['version']}" in replaced:
            continue
        dist_infos = {
            f.split(".dist-info/")[0] + ".dist-info" for f in record["files"] if ".dist-info/" in f
        }
        for rel in dist_infos:
            _dist_info_files(prefix / rel, record["name"], record["version"], "conda")
        for rel in record["files"]:
            if ".dist-info/" not in rel and not (prefix / rel).exists():
                _write(prefix / rel, "")
        for rel in dist_infos:
            lines = [
                f"{f.split(spec['site_packages'] + '/', 1)[1]},,"
                for f in record["files"]
                if f.startswith(spec["site_packages"])
            ]
            _write(prefix / rel / "RECORD", "\n".join(lines) + "\n")
    for dist in spec["pip_distributions"]:
        dist_info = site / f"{dist['name']}-{dist['version']}.dist-info"
        _dist_info_files(dist_info, dist["name"], dist["version"], dist["installer"] + "\n")
        record_lines = []
        for rel, content in dist["files"].items():
            _write(site / rel, content)
            record_lines.append(f"{rel},,")
        for meta in ("METADATA", "INSTALLER", "WHEEL", "RECORD"):
            record_lines.append(f"{dist_info.name}/{meta},,")
        _write(dist_info / "RECORD", "\n".join(record_lines) + "\n")
    return prefix

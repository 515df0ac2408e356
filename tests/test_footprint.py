"""vbridge installs beside what conda 26.x's base and Spack 1.x's Python already hold:
pip's resolver, given vbridge and each pinned set, keeps every pin and adds vbridge
without py-rattler or sqlite-utils (not needed / an extra). The sets are in
tests/fixtures/footprint/ (SOURCES.md says where they come from)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SETS = Path(__file__).parent / "fixtures" / "footprint"


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, _, version = line.partition("==")
            pins[name.split("[", 1)[0].strip().lower().replace("_", "-")] = version.strip()
    return pins


def _resolve(tmp_path: Path, requirements: Path) -> dict[str, str]:
    report = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
         "--quiet", "--report", str(report), str(ROOT), "-r", str(requirements)],
        capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    installs = json.loads(report.read_text())["install"]
    return {
        i["metadata"]["name"].lower().replace("_", "-"): i["metadata"]["version"] for i in installs
    }


@pytest.mark.network
@pytest.mark.parametrize("pinned", ["conda-26.7.1-base.txt", "spack-1.x-python.txt"])
def test_resolves_beside_the_pinned_set(tmp_path: Path, pinned: str) -> None:
    requirements = SETS / pinned
    resolved = _resolve(tmp_path, requirements)
    assert "vbridge" in resolved
    for name, version in _pins(requirements).items():
        assert resolved.get(name.replace(".", "-")) == version or resolved.get(name) == version, (
            name, version, resolved.get(name),
        )  # fmt: skip
    assert not {"py-rattler", "sqlite-utils"} & set(resolved), sorted(resolved)

"""Real pip on an annotated environment: list, show, check and uninstall still work.

The environment is a real venv (``python -m venv``) holding a real wheel from the
package index installed by its own pip, and a conda package installed into the same
prefix by py-rattler (a conda-owned dist-info, as in a conda env where pip also runs).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import condaenv
import pytest
from prefixstate import snapshot
from vbridge.destinations.annotate import annotate_environment
from vbridge.model import Evidence, Property
from vbridge.scan import scan_environment

SITE = condaenv.SITE


def _pip(venv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True, text=True, timeout=300,
    )


@pytest.fixture
def venv(tmp_path: Path, conda_cache: Path) -> Path:
    if f"python{sys.version_info[0]}.{sys.version_info[1]}" not in SITE:
        pytest.skip(f"the conda test packages are built for {SITE}")
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(wheels),
         "six==1.17.0"],
        check=True,
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install = _pip(venv, "install", "-q", "--no-deps", str(next(wheels.glob("six-*.whl"))))
    assert install.returncode == 0, install.stderr
    # A conda package with a Python distribution linked against MKL's libblas.
    packages = [p for p in condaenv.science_packages(blas="mkl") if p.name != "python"]
    packages.append(condaenv.python_package("blasext", "0.3", "h0_0", ["libblas >=3.9.0,<4.0a0"]))
    channel = condaenv.build_channel(tmp_path / "channel", packages)
    condaenv.install(channel, ["blasext", "libblas=*=*mkl"], venv, conda_cache)
    return venv


@pytest.mark.network
def test_pip_works_after_annotate_and_uninstall_leaves_no_ghost(venv: Path) -> None:
    site = venv / SITE
    env = scan_environment(venv)
    dists = {d.name: d for d in env.distributions}
    assert dists["blasext"].owner is not None  # conda owns it
    assert dists["six"].owner is None and dists["six"].installer == "pip"
    # six is pip's, with no properties of its own here; give it one as the wheel
    # adapter does for a wheel's bundled libraries (that adapter is another module).
    dists["six"].add(
        Property.from_str("blas_lapack :: provider :: openblas"),
        Evidence("pip:six-1.17.0", "bundled", "libopenblas.so", "test"),
    )
    meta_before = {k: v for k, v in snapshot(venv).items() if k.startswith("conda-meta/")}
    result = annotate_environment(env)
    assert {c.path for c in result.changed if c.path.name == "variant.json"} == {
        site / "six-1.17.0.dist-info" / "variant.json",
        site / "blasext-0.3.dist-info" / "variant.json",
    }

    listed = _pip(venv, "list", "--format", "json")
    assert listed.returncode == 0 and "WARNING" not in listed.stderr, listed.stderr
    assert {d["name"] for d in json.loads(listed.stdout)} >= {"six", "blasext"}
    for name, dist_info in (("six", "six-1.17.0.dist-info"), ("blasext", "blasext-0.3.dist-info")):
        shown = _pip(venv, "show", "-f", name)
        assert shown.returncode == 0, shown.stderr
        files = {line.strip() for line in shown.stdout.splitlines()}
        assert f"{dist_info}/variant.json" in files
        assert f"{dist_info}/sboms/vbridge.cdx.json" in files
    check = _pip(venv, "check")
    assert check.returncode == 0 and "No broken requirements found." in check.stdout

    # pip removes what RECORD lists: vbridge's files go with the distribution.
    for name, dist_info in (("six", "six-1.17.0.dist-info"), ("blasext", "blasext-0.3.dist-info")):
        gone = _pip(venv, "uninstall", "-y", name)
        assert gone.returncode == 0, gone.stderr
        assert not (site / dist_info).exists()
    assert not (site / "six.py").exists()
    assert _pip(venv, "check").returncode == 0
    names = {d["name"] for d in json.loads(_pip(venv, "list", "--format", "json").stdout)}
    assert not names & {"six", "blasext"}

    # The next annotate forgets both, and gives conda-meta its bytes back: nothing of
    # vbridge is left in the environment.
    again = annotate_environment(scan_environment(venv))
    assert {c.action for c in again.changed} <= {"restore"}
    after = snapshot(venv)
    assert {k: v for k, v in after.items() if k.startswith("conda-meta/")} == meta_before
    assert not [k for k in after if "vbridge" in k or k.endswith("variant.json")]

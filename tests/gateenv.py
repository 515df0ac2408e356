"""Real wheels and real environments for the pip gate tests.

- :func:`wheelhouse`: numpy, scipy, mpich, mpi4py and six wheels (pinned versions)
  downloaded once per test session by real pip from the package index (pip's cache
  makes later runs quick); every test that uses it is marked ``network``.
- :func:`variant_wheel`: a PEP 825 variant wheel made by variantlib's own
  ``make-variant`` command from a real wheel (no variant wheel is on the index).
- :func:`make_venv`: ``python -m venv``, optionally over the system's site-packages.
- :func:`conda_prefix_with_python`: a real conda prefix installed by py-rattler, made
  runnable: conda-forge's python cannot be downloaded here, so the channel's python
  package carries only its metadata and ``python -m venv`` makes this test
  interpreter the prefix's own (a stand-in for conda's python binary; every record
  in ``conda-meta/`` is written by rattler as usual).
- :func:`listing`: every path under a directory with its size, mode and mtime, to
  prove that a refusal left an environment exactly as it was.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import condaenv
import pytest

# name -> requirement, pinned: the tests read these wheels' contents (bundled
# libraries, DT_NEEDED); six (pure Python, tiny) is the base of a variant wheel.
WHEELS = {"numpy": "numpy==2.4.6", "scipy": "scipy==1.17.1", "mpich": "mpich==5.0.2",
          "mpi4py": "mpi4py==4.1.2", "six": "six==1.17.0"}
DEBIAN_PYTHON = "/usr/bin/python3"
# The test channel's python and the pinned wheels are CPython 3.11 builds. A plain
# bool, not a sys.version_info test: the type checker reads this code as 3.10's.
PYTHON_311 = tuple(sys.version_info[:2]) == (3, 11)


def wheelhouse(base: Path) -> Path:
    """The real wheels the tests read, downloaded once into ``base/wheelhouse``."""
    dest = base / "wheelhouse"
    if not all(any(dest.glob(f"{name}-*.whl")) for name in WHEELS):
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--only-binary=:all:", "--dest", str(dest), *WHEELS.values()],
            check=True,
        )
    return dest


def wheel(house: Path, name: str) -> Path:
    (found,) = house.glob(f"{name}-*.whl")
    return found


def make_venv(
    path: Path, python: str = sys.executable, system_site: bool = False, pip: bool = True
) -> Path:
    """A venv at ``path``; returns its interpreter."""
    cmd = [python, "-m", "venv", str(path)]
    if system_site:
        cmd.append("--system-site-packages")
    if not pip:
        cmd.append("--without-pip")
    subprocess.run(cmd, check=True)
    return path / "bin" / "python"


def pip_install(python: Path, *args: str) -> None:
    """Plain pip (no gate), to set an environment up."""
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *args], check=True)


def metadata_only_python(packages: Sequence[condaenv.CondaPackage]) -> list[condaenv.CondaPackage]:
    """The channel's packages with the python package's placeholder binary left out."""
    return [
        dataclasses.replace(
            p, files={k: v for k, v in p.files.items() if not k.startswith("bin/")}
        )
        if p.name == "python"
        else p
        for p in packages
    ]


def conda_prefix_with_python(
    channel: Path, specs: Sequence[str], prefix: Path, cache: Path
) -> Path:
    """Install ``specs`` with rattler, then give the prefix a working interpreter.

    The interpreter is the one running the tests, made a venv over the prefix: it sees
    the prefix's ``lib/python3.11/site-packages`` only when it is a 3.11 itself.
    """
    if not PYTHON_311:
        pytest.skip("the test channel's python is 3.11: another interpreter sees none of it")
    condaenv.install(channel, [*specs, "python"], prefix, cache)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(prefix)], check=True)
    return prefix / "bin" / "python"


def listing(root: Path) -> dict[str, tuple[str, int, int, int]]:
    """Every path under ``root``: kind, size, mode, mtime (ns). Symlinks not followed."""
    out: dict[str, tuple[str, int, int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            kind = "link" if path.is_symlink() else ("dir" if path.is_dir() else "file")
            size = 0 if kind == "dir" else st.st_size
            out[str(path.relative_to(root))] = (kind, size, st.st_mode, st.st_mtime_ns)
    return out


VARIANT_PROVIDERS = """\
[variant.default-priorities]
namespace = ["x86_64", "nvidia"]

[variant.providers.x86_64]
static-properties = { level = ["v1", "v2", "v3", "v4"] }

[variant.providers.nvidia]
static-properties = { cuda_version_lower_bound = ["12.0", "12.8"] }
"""


def variant_wheel(base: Path, out: Path, *properties: str) -> Path:
    """``variantlib make-variant`` on a real wheel, with static providers."""
    pyproject = out / "pyproject.toml"
    out.mkdir(parents=True, exist_ok=True)
    pyproject.write_text(VARIANT_PROVIDERS)
    cmd = [str(Path(sys.executable).with_name("variantlib")), "make-variant",
           "-f", str(base), "-o", str(out), "--skip-plugin-validation",
           "--pyproject-toml", str(pyproject)]
    for prop in properties:
        cmd += ["-p", prop]
    subprocess.run(cmd, check=True, capture_output=True)
    (made,) = out.glob("*.whl")
    return made

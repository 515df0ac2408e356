"""Make a rattler-built conda prefix a working Python environment for a test.

The test channel's ``python`` package is an empty placeholder, so a real interpreter is
laid over the prefix with ``python -m venv`` (same Python version as the channel's,
so its ``lib/python3.X/site-packages`` is the prefix's). ``sys.prefix`` of that
interpreter is the conda prefix, which is what variantlib and vbridge's variant plugin
look at. vbridge itself (and variantlib) is made importable there by a ``.pth`` file
that adds the test venv's site-packages, as if vbridge were installed in the prefix.
"""

from __future__ import annotations

import site
import subprocess
import sys
from pathlib import Path

PTH_NAME = "_vbridge_test_venv.pth"


def site_packages(prefix: Path) -> Path:
    return prefix / f"lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"


def make_python_environment(prefix: Path) -> Path:
    """Lay an interpreter over ``prefix``; returns its ``bin/python``."""
    base = Path(sys.base_prefix) / "bin" / "python3"
    subprocess.run([str(base), "-m", "venv", "--without-pip", str(prefix)], check=True)
    ours = [p for p in site.getsitepackages() if Path(p).is_dir()]
    lines = "".join(f"import site; site.addsitedir({p!r})\n" for p in ours)
    target = site_packages(prefix)
    target.mkdir(parents=True, exist_ok=True)
    (target / PTH_NAME).write_text(lines)
    return prefix / "bin" / "python"

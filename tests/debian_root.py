"""A Debian root laid out in a temporary directory from tests/fixtures/debian/.

The fixture is a real dpkg database (status, info/*.list, alternatives state) captured
on Debian 12; ``lay_out_fixture_root`` puts it where dpkg keeps it under a new root,
recreates what vbridge looks at of the files those packages installed (the Python
metadata directories with their files, the shared libraries; files empty) and the
/etc/alternatives links as update-alternatives left them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

FIXTURE = Path(__file__).parent / "fixtures" / "debian"
TRIPLET = "x86_64-linux-gnu"
LIBDIR = f"/usr/lib/{TRIPLET}"
BLAS = f"libblas.so.3-{TRIPLET}"
LAPACK = f"liblapack.so.3-{TRIPLET}"
# Candidates of the two alternatives in the fixture (and on the test machine).
BLAS_TARGETS = {
    "openblas": f"{LIBDIR}/openblas-pthread/libblas.so.3",
    "blis": f"{LIBDIR}/blis-openmp/libblas.so.3",
    "netlib": f"{LIBDIR}/blas/libblas.so.3",
}
LAPACK_TARGETS = {
    "openblas": f"{LIBDIR}/openblas-pthread/liblapack.so.3",
    "netlib": f"{LIBDIR}/lapack/liblapack.so.3",
}


def lay_out_fixture_root(root: Path) -> Path:
    """Copy the fixture dpkg database under ``root`` and recreate what it describes."""
    dpkg = root / "var/lib/dpkg"
    (dpkg / "info").mkdir(parents=True)
    (dpkg / "alternatives").mkdir()
    shutil.copyfile(FIXTURE / "status", dpkg / "status")
    listed: set[str] = set()
    for source in sorted((FIXTURE / "info").glob("*.list")):
        shutil.copyfile(source, dpkg / "info" / source.name)
        listed.update(line for line in source.read_text().splitlines() if line != "/.")
    for source in sorted((FIXTURE / "alternatives").iterdir()):
        if source.name != "etc-alternatives-links.txt":
            shutil.copyfile(source, dpkg / "alternatives" / source.name)
    parents = {os.path.dirname(p) for p in listed}
    for path in sorted(listed):
        if not _looked_at(path):
            continue  # Python modules, docs: thousands of files nothing here reads
        target = root / path.lstrip("/")
        if path in parents:
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()
    links = root / "etc/alternatives"
    links.mkdir(parents=True)
    for line in (FIXTURE / "alternatives/etc-alternatives-links.txt").read_text().splitlines():
        name, _, points_to = line.partition(" ")
        (links / name).symlink_to(points_to)
    return root


def _looked_at(path: str) -> bool:
    if path.startswith("/usr/lib/python3/dist-packages/"):
        top = path.split("/")[5]
        return top.endswith((".dist-info", ".egg-info"))
    return path.startswith(f"{LIBDIR}/")


def point_alternative(root: Path, name: str, target: str) -> Path:
    """Repoint ``<root>/etc/alternatives/<name>`` (as ``update-alternatives --set``)."""
    link = root / "etc/alternatives" / name
    if os.path.lexists(link):
        link.unlink()
    link.symlink_to(target)
    return link


# --- the real Debian system -------------------------------------------------------------

DEBIAN_PYTHON = Path("/usr/bin/python3")
STATUS = Path("/var/lib/dpkg/status")


def debian_installed(package: str) -> bool:
    """Whether the live dpkg database has ``package`` installed (read as dpkg-query does)."""
    if shutil.which("dpkg-query") is None:
        return False
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${db:Status-Abbrev}", package],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode == 0 and result.stdout.startswith("ii")


def dpkg_owners(paths: list[str]) -> dict[str, str]:
    """``dpkg -S``: the package (without ``:arch``) that owns each path."""
    if not paths:
        return {}
    out = subprocess.run(["dpkg", "-S", *paths], capture_output=True, text=True, check=False)
    owners: dict[str, str] = {}
    for line in out.stdout.splitlines():
        package, _, path = line.partition(": ")
        owners[path] = package.split(":")[0]
    return owners


requires_debian_numpy = pytest.mark.skipif(
    not debian_installed("python3-numpy"),
    reason="/var/lib/dpkg/status has no installed python3-numpy: not the Debian test "
    "machine (tools/test installs tools/debian-packages.txt as root)",
)
requires_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root (update-alternatives --set, apt-get)"
)

"""Spack install trees, environments and views, generated in Spack's documented formats.

Spack itself cannot be installed here, so the tests build what Spack would have left on
disk, seeded from the real records in ``tests/fixtures/spack/`` (Spack's own test data):
the real v8 database (hdf5~mpi, gcc-runtime, an external glibc ...) is the base of the
tree; new nodes copy the real nodes' shapes (``arch`` with a full target, parameters
with the compiler-flag lists, ``package_hash``, ``annotations``, v5 compiler edges to an
external gcc as in ``v2_layout``). Added on top:

- ``openblas`` and an external ``intel-oneapi-mkl`` (``external.path``);
- two ``py-numpy`` builds: one linked to openblas (edge ``virtuals: [blas, lapack]``,
  target ``x86_64_v3``), one to the external MKL;
- ``openmpi``, ``hdf5 +mpi`` (beside the real ``hdf5 ~mpi``), ``py-mpi4py``,
  ``py-h5py +mpi`` and ``py-tables`` (which reaches MPI only through hdf5);
- ``python`` with ensurepip's pip, ``python-venv``.

Every installed prefix has ``.spack/spec.json`` (specfile v5, the whole DAG root first)
and ``.spack/install_manifest.json``; every ``py-*`` prefix has
``lib/python3.11/site-packages/<name>-<version>.dist-info`` with ``METADATA``,
``INSTALLER`` (``pip``), ``WHEEL`` and ``RECORD``, as ``pip install --prefix`` writes.
:func:`build_environment` adds a Spack environment (``spack.yaml``, ``spack.lock``) with
its default view ``.spack-env/view -> ._view/<hash>`` linked the way Spack links views.
"""

from __future__ import annotations

import base64
import copy
import csv
import gzip
import hashlib
import io
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures" / "spack"
_FLAGS: dict[str, list[str]] = {
    k: [] for k in ("cflags", "cppflags", "cxxflags", "fflags", "ldflags", "ldlibs")
}


def real_database() -> dict[str, Any]:
    """The real v8 database from Spack's test data."""
    with gzip.open(FIXTURES / "index.json.v7_v8.json.gz", "rt", encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def _dag_hash(content: Any) -> str:
    """A 32-character base32 hash, the shape of Spack's DAG hashes."""
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).digest()
    return base64.b32encode(digest).decode().lower()[:32]


@dataclass
class Dep:
    node: Node
    deptypes: tuple[str, ...]
    virtuals: tuple[str, ...] = ()


@dataclass
class Node:
    """One spec node being generated (specfile v5 shape)."""

    name: str
    version: str
    parameters: dict[str, Any] = field(default_factory=dict)
    deps: list[Dep] = field(default_factory=list)
    arch: dict[str, Any] | None = None
    external: dict[str, Any] | None = None
    template: dict[str, Any] | None = None  # a real node kept as it is
    explicit: bool = False
    dist: str | None = None  # the Python distribution a py-* prefix holds

    @property
    def hash(self) -> str:
        if self.template is not None:
            return str(self.template["hash"])
        return _dag_hash(
            [
                self.name,
                self.version,
                self.parameters,
                self.arch,
                self.external,
                [(d.node.hash, d.deptypes, d.virtuals) for d in self.deps],
            ]
        )

    def node_dict(self) -> dict[str, Any]:
        if self.template is not None:
            return copy.deepcopy(self.template)
        out: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "arch": copy.deepcopy(self.arch),
            "namespace": "builtin",
            "parameters": {**self.parameters, **copy.deepcopy(_FLAGS)},
            "package_hash": _dag_hash(["package", self.name, self.version]) + "=" * 4,
        }
        deps = sorted(self.deps, key=lambda d: d.node.name)
        if deps:
            out["dependencies"] = [
                {
                    "name": d.node.name,
                    "hash": d.node.hash,
                    "parameters": {"deptypes": list(d.deptypes), "virtuals": list(d.virtuals)},
                }
                for d in deps
            ]
        if self.external is not None:
            out["external"] = copy.deepcopy(self.external)
        out["annotations"] = {"original_specfile_version": 5}
        out["hash"] = self.hash
        return out

    def dag(self) -> Iterator[Node]:
        """This node, then every dependency, preorder by name (Spack's to_dict order)."""
        seen: set[str] = set()
        stack = [self]
        while stack:
            node = stack.pop()
            if node.hash in seen:
                continue
            seen.add(node.hash)
            yield node
            stack.extend(sorted((d.node for d in node.deps), key=lambda n: n.name, reverse=True))

    def linked(self) -> Iterator[Node]:
        """This node and what it links or runs with (what a view with link: run links)."""
        seen: set[str] = set()
        stack = [self]
        while stack:
            node = stack.pop()
            if node.hash in seen:
                continue
            seen.add(node.hash)
            yield node
            stack.extend(d.node for d in node.deps if {"link", "run"} & set(d.deptypes))

    def specfile(self) -> dict[str, Any]:
        return {"spec": {"_meta": {"version": 5}, "nodes": [n.node_dict() for n in self.dag()]}}


@dataclass
class SpackSite:
    """A generated Spack install tree and the nodes in it, by label."""

    tree: Path
    nodes: dict[str, Node]
    env: Path | None = None
    view: Path | None = None

    def prefix(self, label: str) -> Path:
        node = self.nodes[label]
        return self.tree / "linux-icelake" / f"{node.name}-{node.version}-{node.hash}"

    def site_packages(self, label: str) -> Path:
        return self.prefix(label) / "lib" / "python3.11" / "site-packages"

    def dist_info(self, label: str) -> Path:
        node = self.nodes[label]
        assert node.dist is not None
        return self.site_packages(label) / f"{node.dist}-{node.version}.dist-info"


def _nodes() -> dict[str, Node]:
    """The DAG: the real fixture records plus the Python stack on top of them."""
    db = real_database()["database"]["installs"]
    real = {rec["spec"]["name"]: rec["spec"] for rec in db.values()}
    nodes: dict[str, Node] = {}
    for name, spec in real.items():
        nodes[name] = Node(name, spec["version"], template=spec)
    nodes["hdf5"].explicit = True  # the real hdf5 ~mpi
    arch = copy.deepcopy(real["hdf5"]["arch"])  # linux, ubuntu20.04, icelake (with features)
    v3_arch = {**copy.deepcopy(arch), "target": "x86_64_v3"}  # a generic target: a string
    gcc_runtime, glibc, zlib = nodes["gcc-runtime"], nodes["glibc"], nodes["zlib-ng"]
    cmake, gmake, pkgconf = nodes["cmake"], nodes["gmake"], nodes["pkgconf"]
    # The compiler as a node (specfile v5), an external like v2_layout's gcc.
    gcc = nodes["gcc"] = Node(
        "gcc",
        "10.5.0",
        {"build_system": "generic", "languages": ["c", "c++", "fortran"]},
        arch={**copy.deepcopy(arch), "target": "x86_64"},
        external={
            "path": "/usr",
            "module": None,
            "extra_attributes": {
                "compilers": {
                    "c": "/usr/bin/gcc",
                    "cxx": "/usr/bin/g++",
                    "fortran": "/usr/bin/gfortran",
                }
            },
        },
    )

    def runtime(*extra: Dep, compilers: tuple[str, ...] = ("c", "cxx")) -> list[Dep]:
        return [
            Dep(gcc, ("build",), compilers),
            Dep(gcc_runtime, ("link",)),
            Dep(glibc, ("link",), ("libc",)),
            *extra,
        ]

    nodes["openblas"] = Node(
        "openblas",
        "0.3.28",
        {
            "build_system": "makefile",
            "ilp64": False,
            "shared": True,
            "symbol_suffix": "none",
            "threads": "openmp",
            "fortran": True,
        },
        runtime(Dep(gmake, ("build",)), compilers=("c", "fortran")),
        arch,
    )
    nodes["intel-oneapi-mkl"] = Node(
        "intel-oneapi-mkl",
        "2024.2.0",
        {
            "build_system": "generic",
            "cluster": False,
            "ilp64": False,
            "mpi_family": "none",
            "shared": True,
            "threads": "none",
        },
        arch=arch,
        external={"path": "/opt/intel/oneapi", "module": None, "extra_attributes": {}},
    )
    nodes["openmpi"] = Node(
        "openmpi",
        "5.0.5",
        {
            "build_system": "autotools",
            "fabrics": ["none"],
            "schedulers": ["none"],
            "romio": True,
            "static": False,
        },
        runtime(Dep(zlib, ("build", "link"), ("zlib-api",)), Dep(gmake, ("build",))),
        arch,
    )
    mpi_hdf5_params = {**real["hdf5"]["parameters"], "mpi": True}
    for flag in _FLAGS:
        mpi_hdf5_params.pop(flag, None)
    nodes["hdf5+mpi"] = Node(
        "hdf5",
        "1.14.5",
        mpi_hdf5_params,
        runtime(
            Dep(cmake, ("build",)),
            Dep(gmake, ("build",)),
            Dep(pkgconf, ("run",), ("pkgconfig",)),
            Dep(zlib, ("build", "link"), ("zlib-api",)),
            Dep(nodes["openmpi"], ("build", "link"), ("mpi",)),
        ),
        arch,
    )
    python = nodes["python"] = Node(
        "python",
        "3.11.9",
        {"build_system": "generic", "ensurepip": True, "shared": True, "optimizations": False},
        runtime(
            Dep(zlib, ("build", "link"), ("zlib-api",)), Dep(pkgconf, ("build",), ("pkgconfig",))
        ),
        arch,
        dist=None,
    )
    venv = nodes["python-venv"] = Node(
        "python-venv",
        "1.0",
        {"build_system": "generic"},
        [Dep(python, ("build", "run"))],
        arch,
    )

    def python_deps() -> list[Dep]:
        return [Dep(python, ("build", "link", "run")), Dep(venv, ("build", "run"))]

    nodes["py-numpy^openblas"] = Node(
        "py-numpy",
        "1.26.4",
        {"build_system": "python_pip"},
        runtime(*python_deps(), Dep(nodes["openblas"], ("build", "link"), ("blas", "lapack"))),
        v3_arch,
        dist="numpy",
    )
    nodes["py-numpy^mkl"] = Node(
        "py-numpy",
        "1.26.4",
        {"build_system": "python_pip"},
        runtime(
            *python_deps(), Dep(nodes["intel-oneapi-mkl"], ("build", "link"), ("blas", "lapack"))
        ),
        arch,
        dist="numpy",
        explicit=True,
    )
    nodes["py-mpi4py"] = Node(
        "py-mpi4py",
        "4.0.1",
        {"build_system": "python_pip"},
        runtime(*python_deps(), Dep(nodes["openmpi"], ("build", "link"), ("mpi",))),
        arch,
        dist="mpi4py",
        explicit=True,
    )
    nodes["py-h5py"] = Node(
        "py-h5py",
        "3.12.1",
        {"build_system": "python_pip", "mpi": True},
        runtime(
            *python_deps(),
            Dep(nodes["hdf5+mpi"], ("build", "link")),
            Dep(nodes["openmpi"], ("build", "link"), ("mpi",)),
            Dep(nodes["py-mpi4py"], ("build", "run")),
            Dep(nodes["py-numpy^mkl"], ("build", "run")),
        ),
        arch,
        dist="h5py",
        explicit=True,
    )
    nodes["py-tables"] = Node(
        "py-tables",
        "3.10.1",
        {"build_system": "python_pip", "lzo": False},
        runtime(
            *python_deps(),
            Dep(nodes["hdf5+mpi"], ("build", "link")),
            Dep(nodes["py-numpy^openblas"], ("build", "run")),
        ),
        arch,
        dist="tables",
        explicit=True,
    )
    return nodes


def _record_hash(path: Path) -> str:
    digest = hashlib.sha256(path.read_bytes()).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _write_dist(site: Path, dist: str, version: str) -> Path:
    """A dist-info as ``pip install --prefix`` leaves it (INSTALLER says pip)."""
    package = site / dist
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(f'__version__ = "{version}"\n', encoding="utf-8")
    info = site / f"{dist}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8"
    )
    (info / "INSTALLER").write_text("pip\n", encoding="utf-8")
    (info / "WHEEL").write_text(
        "Wheel-Version: 1.0\nGenerator: meson\nRoot-Is-Purelib: false\n"
        "Tag: cp311-cp311-linux_x86_64\n",
        encoding="utf-8",
    )
    rows = []
    for path in (package / "__init__.py", info / "METADATA", info / "INSTALLER", info / "WHEEL"):
        rows.append([path.relative_to(site).as_posix(), _record_hash(path), path.stat().st_size])
    rows.append([f"{info.name}/RECORD", "", ""])
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    (info / "RECORD").write_text(buf.getvalue(), encoding="utf-8")
    return info


def _write_manifest(prefix: Path) -> None:
    """``.spack/install_manifest.json`` as spack.verify.write_manifest writes it."""
    manifest: dict[str, dict[str, Any]] = {}
    for root, dirs, files in os.walk(prefix):
        for entry in dirs + files:
            path = Path(root) / entry
            st = path.lstat()
            data: dict[str, Any] = {"mode": st.st_mode, "owner": st.st_uid, "group": st.st_gid}
            if path.is_file() and not path.is_symlink():
                data.update(
                    hash=base64.b32encode(hashlib.sha1(path.read_bytes()).digest()).decode(),
                    time=st.st_mtime,
                    size=st.st_size,
                )
            manifest[str(path)] = data
    st = prefix.lstat()
    manifest[str(prefix)] = {"mode": st.st_mode, "owner": st.st_uid, "group": st.st_gid}
    (prefix / ".spack" / "install_manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def to_specfile_v4(node: dict[str, Any]) -> dict[str, Any]:
    """A v5 node as Spack 0.20-0.23 wrote it: a ``compiler`` key, no compiler edges."""
    out = copy.deepcopy(node)
    annotations = out.pop("annotations", {})
    compiler = annotations.get("compiler", "gcc@=10.5.0")
    name, _, version = compiler.partition("@")
    out["compiler"] = {"name": name, "version": version.lstrip("=")}
    out["dependencies"] = [
        d for d in out.get("dependencies", []) if d["name"] not in {"gcc", "compiler-wrapper"}
    ]
    if not out["dependencies"]:
        del out["dependencies"]
    return out


def to_specfile_v3(node: dict[str, Any]) -> dict[str, Any]:
    """A v4 node as Spack 0.17-0.19 wrote it: edges ``{name, hash, type}``, no virtuals."""
    out = to_specfile_v4(node)
    for dep in out.get("dependencies", []):
        dep["type"] = dep.pop("parameters")["deptypes"]
    return out


def build_tree(root: Path, db_version: int = 8) -> SpackSite:
    """An install tree under ``root``: database, prefixes, spec files, dist-infos."""
    nodes = _nodes()
    site = SpackSite(tree=root, nodes=nodes)
    real = real_database()["database"]["installs"]
    installs: dict[str, Any] = {}
    # The real records first (their prefixes are on another machine), so that a
    # by-name lookup of "hdf5" would find the real hdf5 ~mpi before hdf5 +mpi.
    for key, rec in real.items():
        installs[key] = rec
    for label, node in nodes.items():
        if node.template is not None:
            continue
        if node.external is not None:
            path = node.external["path"]
        else:
            prefix = site.prefix(label)
            (prefix / ".spack").mkdir(parents=True)
            (prefix / ".spack" / "spec.json").write_text(
                json.dumps(node.specfile(), indent=2), encoding="utf-8"
            )
            if label == "python":
                _write_dist(site.site_packages(label), "pip", "24.0")
            if node.dist:
                _write_dist(site.site_packages(label), node.dist, node.version)
            _write_manifest(prefix)
            path = str(prefix)
        installs[node.hash] = {
            "spec": node.node_dict(),
            "ref_count": 0 if node.explicit else 1,
            "path": path,
            "installed": True,
            "explicit": node.explicit,
            "installation_time": 1744963943.3,
            "deprecated_for": None,
        }
    if db_version == 7:
        for rec in installs.values():
            rec["spec"] = to_specfile_v4(rec["spec"])
    elif db_version == 6:
        for rec in installs.values():
            rec["spec"] = to_specfile_v3(rec["spec"])
    (root / ".spack-db").mkdir(parents=True, exist_ok=True)
    (root / ".spack-db" / "index.json").write_text(
        json.dumps({"database": {"version": str(db_version), "installs": installs}}),
        encoding="utf-8",
    )
    return site


def _link_tree(src: Path, dst: Path, link: str) -> None:
    """Merge ``src`` into ``dst`` the way Spack's LinkTree does: real directories,
    files symlinked (or copied)."""
    for dirpath, _dirnames, filenames in os.walk(src):
        rel = Path(dirpath).relative_to(src)
        (dst / rel).mkdir(parents=True, exist_ok=True)
        for name in filenames:
            target = dst / rel / name
            if link == "symlink":
                target.symlink_to(Path(dirpath) / name)
            else:
                shutil.copy2(Path(dirpath) / name, target)


def build_view(site: SpackSite, view: Path, roots: Iterable[str], link: str = "symlink") -> Path:
    """A view of ``roots`` and everything they link or run with (Spack's default
    ``link: all`` minus build-only nodes and externals)."""
    view.mkdir(parents=True)
    linked: dict[str, str] = {}
    for label in roots:
        for node in site.nodes[label].linked():
            label_of = next(k for k, v in site.nodes.items() if v is node)
            if node.external is None and node.template is None:
                linked.setdefault(node.name, label_of)
    for name, label in sorted(linked.items()):
        prefix = site.prefix(label)
        for entry in prefix.iterdir():
            if entry.name != ".spack":
                _link_tree(entry, view / entry.name, link)
        _link_tree(prefix / ".spack", view / ".spack" / name, link)
    return view


def build_environment(
    site: SpackSite,
    env: Path,
    roots: Iterable[str] = ("py-h5py", "py-mpi4py", "py-numpy^mkl"),
    lockfile_version: int = 6,
    link: str = "symlink",
) -> SpackSite:
    """A Spack environment: ``spack.yaml``, ``spack.lock`` and the default view."""
    roots = list(roots)
    env.mkdir(parents=True)
    specs = {
        "py-h5py": "py-h5py+mpi",
        "py-mpi4py": "py-mpi4py",
        "py-numpy^mkl": "py-numpy ^intel-oneapi-mkl",
        "py-tables": "py-tables",
        "py-numpy^openblas": "py-numpy ^openblas",
    }
    (env / "spack.yaml").write_text(
        "spack:\n  specs:\n"
        + "".join(f"  - {specs[r]}\n" for r in roots)
        + "  view: true\n  concretizer:\n    unify: true\n",
        encoding="utf-8",
    )
    concrete: dict[str, Any] = {}
    for label in roots:
        for node in site.nodes[label].dag():
            concrete.setdefault(node.hash, node.node_dict())
    lock = {
        "_meta": {
            "file-type": "spack-lockfile",
            "lockfile-version": lockfile_version,
            "specfile-version": 5,
        },
        "spack": {"version": "1.0.2", "type": "release"},
        "roots": [{"hash": site.nodes[r].hash, "spec": specs[r]} for r in roots],
        "concrete_specs": concrete,
    }
    (env / "spack.lock").write_text(json.dumps(lock, indent=2), encoding="utf-8")
    content = _dag_hash(sorted(concrete))
    real_view = env / ".spack-env" / "._view" / content
    build_view(site, real_view, roots, link)
    (env / ".spack-env" / "view").symlink_to(Path("._view") / content)
    site.env = env
    site.view = env / ".spack-env" / "view"
    return site

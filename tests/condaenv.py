"""Real conda prefixes for tests: tiny packages built with conda-package-handling,
indexed with py-rattler and installed offline by py-rattler (a real conda installer).

>>> channel = build_channel(tmp / "channel", science_packages(blas="mkl"))
>>> prefix = install(channel, ["numpy", "libblas=*=*mkl"], tmp / "env", tmp / "cache")

Nothing here is a stand-in: the prefix's ``conda-meta/*.json`` records are written by
rattler's installer exactly as pixi would write them.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SITE = "lib/python3.11/site-packages"
SUBDIR = "linux-64"


@dataclass
class CondaPackage:
    """A conda package to build: metadata plus payload files (path -> bytes)."""

    name: str
    version: str
    build: str
    build_number: int = 0
    depends: Sequence[str] = ()
    constrains: Sequence[str] = ()
    files: Mapping[str, bytes] = field(default_factory=dict)
    track_features: str = ""
    subdir: str = SUBDIR
    python_site_packages_path: str | None = None

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}-{self.build}.tar.bz2"


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def python_package(
    name: str,
    version: str,
    build: str,
    depends: Sequence[str] = (),
    modules: Mapping[str, bytes] | None = None,
    installer: bytes = b"conda",
    **kwargs: object,
) -> CondaPackage:
    """A conda package holding one Python distribution, dist-info and RECORD included.

    The dist-info is what conda-build leaves: ``INSTALLER`` says ``conda`` (no newline)
    and ``RECORD`` lists every file with its hash, so pip can read and uninstall it.
    """
    dist = f"{name.replace('-', '_')}-{version}.dist-info"
    payload: dict[str, bytes] = {}
    for rel, data in (modules or {f"{name.replace('-', '_')}/__init__.py": b""}).items():
        payload[rel] = data
    payload[f"{dist}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    )
    payload[f"{dist}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: false\n"
    payload[f"{dist}/INSTALLER"] = installer
    lines = [f"{rel},{_record_hash(data)},{len(data)}" for rel, data in payload.items()]
    lines.append(f"{dist}/RECORD,,")
    payload[f"{dist}/RECORD"] = ("\n".join(lines) + "\n").encode()
    files = {f"{SITE}/{rel}": data for rel, data in payload.items()}
    return CondaPackage(name, version, build, depends=depends, files=files, **kwargs)  # type: ignore[arg-type]


def science_packages(blas: str = "mkl", openmp: str = "llvm") -> list[CondaPackage]:
    """A conda-forge-shaped stack: numpy/scipy over libblas, BLAS, OpenMP, MPI, hdf5.

    Build strings and dependencies follow the real conda-forge feedstocks
    (blas-feedstock ``20_linux64_<impl>``, ``_openmp_mutex 4.5 <n>_<impl>``,
    hdf5/h5py ``mpi_openmpi_*``/``nompi_*``, the ``mpi`` metapackage).
    """
    mutex_build = {"gnu": "2_gnu", "llvm": "2_kmp_llvm"}[openmp]
    mutex_dep = {"gnu": "libgomp >=7.5.0", "llvm": "llvm-openmp >=9.0.1"}[openmp]
    impl_pkg = {"mkl": "mkl >=2023.2.0,<2024.0a0", "openblas": "libopenblas >=0.3.25,<1.0a0"}
    blas_build = f"20_linux64_{blas}"
    py = ["python >=3.11,<3.12.0a0", "python_abi 3.11.* *_cp311"]
    numpy_deps = [
        "libblas >=3.9.0,<4.0a0",
        "libcblas >=3.9.0,<4.0a0",
        "liblapack >=3.9.0,<4.0a0",
        "libgcc-ng >=12",
        *py,
    ]
    return [
        CondaPackage(
            "python", "3.11.9", "hb806964_0_cpython",
            files={"bin/python3.11": b"", f"{SITE}/README.txt": b"site-packages\n"},
            python_site_packages_path=SITE,
        ),
        CondaPackage("python_abi", "3.11", "5_cp311", 5, constrains=["python 3.11.* *_cpython"]),
        CondaPackage("libgomp", "13.2.0", "h77fa898_7", 7, files={"lib/libgomp.so.1": b"\x7fELF"}),
        CondaPackage("llvm-openmp", "18.1.6", "ha31de31_0", files={"lib/libomp.so": b"\x7fELF"}),
        CondaPackage(
            "_openmp_mutex", "4.5", mutex_build, int(mutex_build.split("_")[0]),
            depends=[mutex_dep],
        ),
        CondaPackage(
            "libgcc-ng", "13.2.0", "h77fa898_7", 7,
            depends=["_openmp_mutex >=4.5"], files={"lib/libgcc_s.so.1": b"\x7fELF"},
        ),
        CondaPackage(
            "mkl", "2023.2.0", "h84fe81f_50496", 50496,
            depends=["_openmp_mutex * *_llvm", "llvm-openmp >=16.0.6"],
            files={"lib/libmkl_rt.so.2": b"\x7fELF"},
        ),
        CondaPackage(
            "libopenblas", "0.3.25", "pthreads_h413a1c8_0",
            depends=["libgcc-ng >=12"], files={"lib/libopenblas.so.0": b"\x7fELF"},
        ),
        *[
            CondaPackage(
                lib, "3.9.0", blas_build, 20,
                depends=[impl_pkg[blas]] if lib == "libblas" else [f"libblas 3.9.0 {blas_build}"],
                constrains=[f"blas * {blas}"] if lib == "libblas" else [],
                track_features="" if blas == "openblas" else f"blas_{blas}",
                files={f"lib/{lib}.so.3": b"\x7fELF"},
            )
            for lib in ("libblas", "libcblas", "liblapack")
        ],
        python_package(
            "numpy", "1.26.4", "py311h64a7726_0", numpy_deps,
            {"numpy/__init__.py": b"__version__ = '1.26.4'\n"},
        ),
        python_package(
            "scipy", "1.11.4", "py311h64a7726_0",
            [*numpy_deps, "numpy >=1.23.5,<2.0a0"],
            {"scipy/__init__.py": b"__version__ = '1.11.4'\n"},
        ),
        CondaPackage("mpi", "1.0", "openmpi", subdir=SUBDIR),
        CondaPackage(
            "openmpi", "4.1.6", "hc5af2df_101", 101,
            depends=["mpi 1.0 openmpi", "libgcc-ng >=12"], files={"lib/libmpi.so.40": b"\x7fELF"},
        ),
        CondaPackage(
            "hdf5", "1.14.3", "mpi_openmpi_h8367ee7_8", 8,
            depends=["openmpi >=4.1.6,<5.0a0", "libgcc-ng >=12"],
            files={"lib/libhdf5.so.310": b"\x7fELF"},
        ),
        python_package(
            "mpi4py", "3.1.5", "py311h8ff6a2b_1", ["openmpi >=4.1.6,<5.0a0", *py],
        ),
        python_package(
            "h5py", "3.11.0", "mpi_openmpi_py311h4ab5c10_1",
            ["hdf5 >=1.14.3,<1.14.4.0a0 mpi_openmpi_*", "mpi4py >=3.0", "numpy >=1.23.5", *py],
        ),
        python_package("six", "1.16.0", "pyh6c4a22f_0", ["python >=3.11,<3.12.0a0"]),
    ]


def _build_one(pkg: CondaPackage, out_dir: Path, stage: Path) -> None:
    from conda_package_handling import api

    stage.mkdir(parents=True)
    info = stage / "info"
    info.mkdir()
    index: dict[str, object] = {
        "name": pkg.name,
        "version": pkg.version,
        "build": pkg.build,
        "build_number": pkg.build_number,
        "depends": list(pkg.depends),
        "constrains": list(pkg.constrains),
        "subdir": pkg.subdir,
        "license": "BSD-3-Clause",
        "timestamp": int(time.time() * 1000),
    }
    if pkg.track_features:
        index["track_features"] = pkg.track_features
    if pkg.python_site_packages_path:
        index["python_site_packages_path"] = pkg.python_site_packages_path
    if pkg.subdir == "noarch":
        index["noarch"] = "generic"
    (info / "index.json").write_text(json.dumps(index, indent=2))
    paths = []
    for rel, data in sorted(pkg.files.items()):
        target = stage / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        if rel.startswith("bin/") and rel.endswith(".sh"):
            target.chmod(0o755)
        paths.append(
            {
                "_path": rel,
                "path_type": "hardlink",
                "sha256": hashlib.sha256(data).hexdigest(),
                "size_in_bytes": len(data),
            }
        )
    (info / "files").write_text("".join(f"{rel}\n" for rel in sorted(pkg.files)))
    (info / "paths.json").write_text(json.dumps({"paths": paths, "paths_version": 1}))
    members = ["info/index.json", "info/files", "info/paths.json", *sorted(pkg.files)]
    api.create(str(stage), members, pkg.filename, out_folder=str(out_dir))


def build_channel(channel: Path, packages: Iterable[CondaPackage]) -> Path:
    """Build every package into ``channel/<subdir>/`` and index the channel."""
    import rattler.index

    for i, pkg in enumerate(packages):
        out_dir = channel / pkg.subdir
        out_dir.mkdir(parents=True, exist_ok=True)
        _build_one(pkg, out_dir, channel.parent / f".stage-{channel.name}" / f"{i}-{pkg.name}")
    (channel / "noarch").mkdir(parents=True, exist_ok=True)
    asyncio.run(rattler.index.index_fs(channel, write_zst=False, write_shards=False))
    return channel


def install(
    channel: Path,
    specs: Sequence[str],
    prefix: Path,
    cache_dir: Path,
    execute_link_scripts: bool = False,
) -> Path:
    """Solve ``specs`` against the local channel and install them with rattler."""
    import rattler

    match_specs = [rattler.MatchSpec(s) for s in specs]

    async def run() -> None:
        records = await rattler.solve(
            sources=[rattler.Channel(channel.as_uri())],
            specs=match_specs,
            platforms=[rattler.Subdir(SUBDIR), rattler.Subdir("noarch")],
            virtual_packages=[],
        )
        await rattler.install(
            records,
            target_prefix=prefix,
            cache_dir=cache_dir,
            execute_link_scripts=execute_link_scripts,
            show_progress=False,
            # py-rattler 0.28 does not unwrap MatchSpec here (documented workaround).
            requested_specs=[s._match_spec for s in match_specs],
        )

    asyncio.run(run())
    return prefix


def remove(records_to_keep: Sequence[str], channel: Path, prefix: Path, cache_dir: Path) -> None:
    """Re-install the prefix with only ``records_to_keep``: rattler unlinks the rest."""
    install(channel, records_to_keep, prefix, cache_dir)

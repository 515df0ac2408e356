"""Large, realistic inputs for the benchmarks, written into a directory of your choice.

Every generator takes the *shape* of real records (the conda-meta files in
``tests/fixtures/conda/rattler-conda-meta/``, a Debian 12 ``/var/lib/dpkg/status``, a
Spack ``index.json`` version 8) and scales it: record for record the same keys, the
same kinds of values and real-sized ``files``/``paths_data`` lists, so a reader pays
what it pays on a real machine. Output is deterministic for a given seed.

>>> prefix = conda_prefix(Path("/tmp/bench/env"), records=600)       # doctest: +SKIP
>>> status = dpkg_root(Path("/tmp/bench/debian"), packages=3000)     # doctest: +SKIP
>>> tree = spack_tree(Path("/tmp/bench/spack"), installs=2000)       # doctest: +SKIP
>>> envs = conda_environments(Path("/tmp/bench/envs"), count=200)    # doctest: +SKIP

Run as a script to generate one input and print its path::

    python bench/generate.py conda /tmp/bench/env --records 600
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import random
import re
import shutil
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE.parent / "tests" / "fixtures" / "conda" / "rattler-conda-meta"
SITE = "lib/python3.11/site-packages"
CHANNEL = "https://conda.anaconda.org/conda-forge/"
SUBDIR = "linux-64"


def _words(text: str) -> list[str]:
    return text.split()


# Real conda-forge and PyPI project stems, to make names that read like real ones.
_STEMS = _words(
    """
    attrs aiohttp anyio arrow astropy babel beautifulsoup4 bleach bokeh boto3 botocore
    cachetools certifi cffi charset-normalizer click cloudpickle colorama contourpy
    cryptography cycler cython dask debugpy decorator defusedxml distributed docutils
    executing fastjsonschema filelock fonttools fsspec gast greenlet h11 httpcore httpx
    idna imageio importlib-metadata iniconfig ipykernel ipython isort jedi jinja2 joblib
    jsonschema jupyter-client jupyter-core kiwisolver lazy-loader llvmlite locket lxml
    markdown markupsafe matplotlib-base mistune more-itertools msgpack-python multidict
    nbclient nbconvert nbformat nest-asyncio networkx numba numexpr packaging pandas
    parso partd pexpect pickleshare pillow platformdirs pluggy prompt-toolkit psutil
    ptyprocess pure-eval pyarrow pycparser pydantic pygments pyparsing pytest
    python-dateutil pytz pywavelets pyyaml pyzmq referencing regex rpds-py scikit-image
    scikit-learn seaborn setuptools six sniffio soupsieve sqlalchemy stack-data
    statsmodels sympy tblib threadpoolctl tifffile toolz tornado tqdm traitlets
    typing-extensions tzlocal urllib3 wcwidth webencodings wrapt xarray yarl zict zipp
    """
)
_LIB_STEMS = _words(
    """
    libarrow libaec libbrotlicommon libcurl libdeflate libedit libev libevent libgrpc
    libjpeg-turbo libnghttp2 libpng libprotobuf libssh2 libtiff libuv libwebp libxcb
    libxslt lz4-c snappy krb5 keyutils c-ares icu giflib freetype fontconfig glib
    harfbuzz pcre2 gettext expat libabseil re2 orc aws-c-common aws-c-io aws-crt-cpp
    libthrift libutf8proc lerc jxrlib libavif libzopfli blosc brotli zfp charls
    """
)


def _templates() -> list[dict[str, object]]:
    records = []
    for path in sorted(TEMPLATES.glob("*.json")):
        with open(path, "rb") as fh:
            records.append(json.load(fh))
    return records


def _is_python_template(record: dict[str, object]) -> bool:
    files = record.get("files") or []
    assert isinstance(files, list)
    return any("site-packages" in str(f) for f in files) and record["name"] != "python"


def _hexdigest(*parts: object) -> str:
    return hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()


@dataclass
class Package:
    """One package of a generated prefix, before it is written as a PrefixRecord."""

    name: str
    version: str
    build: str
    build_number: int
    depends: list[str]
    constrains: list[str] = field(default_factory=list)
    python: str | None = None  # importable module name when it ships a dist-info
    track_features: str = ""
    extra: dict[str, object] = field(default_factory=dict)


def _rewrite_files(template: dict[str, object], pkg: Package) -> list[str]:
    """The template's file list, renamed to the package, in linux-64 layout."""
    tname = str(template["name"])
    tversion = str(template["version"])
    tmod = tname.replace("-", "_")
    files = template.get("files") or []
    assert isinstance(files, list)
    out: list[str] = []
    for raw in files:
        rel = str(raw).replace("\\", "/")
        if rel.startswith("Lib/site-packages/"):
            rel = SITE + rel[len("Lib/site-packages") :]
        elif rel.startswith("site-packages/"):
            rel = SITE + rel[len("site-packages") :]
        if pkg.python:
            rel = rel.replace(f"{tmod}-{tversion}", f"{pkg.python}-{pkg.version}")
            rel = rel.replace(f"{tname}-{tversion}", f"{pkg.python}-{pkg.version}")
            rel = rel.replace(f"/{tmod}/", f"/{pkg.python}/")
            rel = rel.replace(".egg-info/", ".dist-info/").replace(
                "-py3.11.dist-info", ".dist-info"
            )
        else:
            rel = rel.replace(tname, pkg.name)
        out.append(rel)
    if pkg.python:
        dist = f"{SITE}/{pkg.python}-{pkg.version}.dist-info"
        for needed in ("INSTALLER", "METADATA", "RECORD", "WHEEL"):
            if f"{dist}/{needed}" not in out:
                out.append(f"{dist}/{needed}")
    return sorted(dict.fromkeys(out))


def _record(template: dict[str, object], pkg: Package, cache: str) -> dict[str, object]:
    """A PrefixRecord in rattler's key order, with ``files`` and ``paths_data``."""
    files = _rewrite_files(template, pkg)
    tpaths = template.get("paths_data", {})
    assert isinstance(tpaths, dict)
    shapes = tpaths.get("paths") or [
        {"path_type": "hardlink", "size_in_bytes": 1024, "sha256": "0" * 64}
    ]
    paths = []
    for i, rel in enumerate(files):
        shape = shapes[i % len(shapes)]
        entry: dict[str, object] = {
            "_path": rel,
            "path_type": shape.get("path_type", "hardlink"),
            "sha256": _hexdigest(pkg.name, rel),
            "sha256_in_prefix": _hexdigest(pkg.name, rel, "prefix"),
            "size_in_bytes": shape.get("size_in_bytes", 0),
        }
        if "prefix_placeholder" in shape:
            entry["prefix_placeholder"] = "/home/conda/feedstock_root/build_artifacts/placehold"
            entry["file_mode"] = shape.get("file_mode", "text")
        paths.append(entry)
    fn = f"{pkg.name}-{pkg.version}-{pkg.build}.conda"
    record: dict[str, object] = {
        "build": pkg.build,
        "build_number": pkg.build_number,
        "constrains": pkg.constrains,
        "depends": pkg.depends,
        "license": template.get("license", "BSD-3-Clause"),
        "license_family": template.get("license_family", "BSD"),
        "md5": _hexdigest(fn)[:32],
        "name": pkg.name,
        "purls": [f"pkg:pypi/{pkg.name}"] if pkg.python else [],
        "sha256": _hexdigest(fn, "sha"),
        "size": 1000 + 37 * len(files),
        "subdir": SUBDIR,
        "timestamp": 1700000000000 + len(files),
        "version": pkg.version,
        **pkg.extra,
    }
    if pkg.track_features:
        record["track_features"] = pkg.track_features
    record.update(
        {
            "fn": fn,
            "url": f"{CHANNEL}{SUBDIR}/{fn}",
            "channel": CHANNEL,
            "extracted_package_dir": f"{cache}/{fn[: -len('.conda')]}",
            "files": files,
            "paths_data": {"paths_version": 1, "paths": paths},
            "link": {"source": f"{cache}/{fn[: -len('.conda')]}", "type": 1},
        }
    )
    return record


_PY = ["python >=3.11,<3.12.0a0", "python_abi 3.11.* *_cp311"]


def _science_stack(blas: str, mpi: str | None) -> list[Package]:
    """The packages that carry variant facts, conda-forge-shaped (see tests/condaenv.py)."""
    blas_build = f"20_linux64_{blas}"
    impl = {"mkl": "mkl >=2023.2.0,<2024.0a0", "openblas": "libopenblas >=0.3.25,<1.0a0"}[blas]
    numpy_deps = [
        "libblas >=3.9.0,<4.0a0",
        "libcblas >=3.9.0,<4.0a0",
        "liblapack >=3.9.0,<4.0a0",
        "libgcc-ng >=12",
        "libstdcxx-ng >=12",
        *_PY,
    ]
    stack = [
        Package(
            "python",
            "3.11.9",
            "hb806964_0_cpython",
            0,
            ["bzip2 >=1.0.8,<2.0a0", "libgcc-ng >=12", "openssl >=3.3.0,<4.0a0"],
            extra={"python_site_packages_path": SITE},
        ),
        Package("python_abi", "3.11", "4_cp311", 4, [], ["python 3.11.* *_cpython"]),
        Package(
            "libgcc-ng",
            "13.2.0",
            "h77fa898_7",
            7,
            ["_libgcc_mutex 0.1 conda_forge", "_openmp_mutex >=4.5"],
        ),
        Package("libstdcxx-ng", "13.2.0", "hc0a3c3a_7", 7, ["libgcc-ng 13.2.0 h77fa898_7"]),
        Package("_libgcc_mutex", "0.1", "conda_forge", 0, []),
        Package("libgomp", "13.2.0", "h77fa898_7", 7, ["_libgcc_mutex 0.1 conda_forge"]),
        Package("llvm-openmp", "18.1.6", "ha31de31_0", 0, ["libzlib >=1.2.13,<2.0a0"]),
        Package(
            "_openmp_mutex",
            "4.5",
            "2_kmp_llvm" if blas == "mkl" else "2_gnu",
            2,
            ["llvm-openmp >=9.0.1"]
            if blas == "mkl"
            else ["_libgcc_mutex 0.1 conda_forge", "libgomp >=7.5.0"],
        ),
        Package(
            "mkl",
            "2023.2.0",
            "h84fe81f_50496",
            50496,
            ["_openmp_mutex * *_llvm", "llvm-openmp >=16.0.6", "tbb 2021.*"],
        ),
        Package(
            "libopenblas",
            "0.3.25",
            "pthreads_h413a1c8_0",
            0,
            ["libgcc-ng >=12", "libgfortran-ng", "libgfortran5 >=12.3.0"],
        ),
        *[
            Package(
                lib,
                "3.9.0",
                blas_build,
                20,
                [impl] if lib == "libblas" else [f"libblas 3.9.0 {blas_build}"],
                [f"blas * {blas}"] if lib == "libblas" else [],
                track_features="" if blas == "openblas" else f"blas_{blas}",
            )
            for lib in ("libblas", "libcblas", "liblapack")
        ],
        Package("numpy", "1.26.4", "py311h64a7726_0", 0, numpy_deps, python="numpy"),
        Package(
            "scipy",
            "1.11.4",
            "py311h64a7726_0",
            0,
            [*numpy_deps, "numpy >=1.23.5,<2.0a0"],
            python="scipy",
        ),
        Package(
            "pip",
            "24.0",
            "pyhd8ed1ab_0",
            0,
            ["python >=3.7", "setuptools", "wheel"],
            python="pip",
            extra={"noarch": "python"},
        ),
    ]
    if mpi:
        stack += [
            Package("mpi", "1.0", mpi, 0, []),
            Package(mpi, "4.1.6", "hc5af2df_101", 101, [f"mpi 1.0 {mpi}", "libgcc-ng >=12"]),
            Package(
                "hdf5",
                "1.14.3",
                f"mpi_{mpi}_h8367ee7_8",
                8,
                [f"{mpi} >=4.1.6,<5.0a0", "libgcc-ng >=12"],
            ),
            Package(
                "mpi4py",
                "3.1.5",
                "py311h8ff6a2b_1",
                1,
                [f"{mpi} >=4.1.6,<5.0a0", *_PY],
                python="mpi4py",
            ),
            Package(
                "h5py",
                "3.11.0",
                f"mpi_{mpi}_py311h4ab5c10_1",
                1,
                [f"hdf5 >=1.14.3,<1.14.4.0a0 mpi_{mpi}_*", "mpi4py >=3.0", "numpy >=1.23.5", *_PY],
                python="h5py",
            ),
        ]
    return stack


def _filler(
    rng: random.Random, count: int, taken: set[str], stack: Sequence[Package]
) -> Iterator[Package]:
    """Ordinary packages: Python libraries and shared libraries that say nothing special."""
    names: list[str] = []
    python_share = 0.45
    for i in range(count):
        python = rng.random() < python_share
        stems = _STEMS if python else _LIB_STEMS
        stem = stems[i % len(stems)]
        name = stem if stem not in taken else f"{stem}-{i}"
        taken.add(name)
        version = f"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}"
        deps: list[str] = []
        earlier = rng.sample(names, k=min(len(names), rng.randint(0, 6)))
        deps += [f"{d} >=0" for d in earlier]
        if python:
            build = f"py311h{_hexdigest(name)[:7]}_{rng.randint(0, 3)}"
            deps += _PY
            if rng.random() < 0.1:  # a compiled extension linking BLAS (scikit-learn, ...)
                deps += ["libblas >=3.9.0,<4.0a0", "libcblas >=3.9.0,<4.0a0", "numpy >=1.23.5"]
            if rng.random() < 0.3:
                deps += ["libgcc-ng >=12", "libstdcxx-ng >=12"]
        else:
            build = f"h{_hexdigest(name)[:7]}_{rng.randint(0, 3)}"
            deps += ["libgcc-ng >=12"]
        names.append(name)
        yield Package(
            name,
            version,
            build,
            int(build.rsplit("_", 1)[1]),
            deps,
            python=name.replace("-", "_") if python else None,
        )
    del stack


def _write_dist_info(site: Path, module: str, version: str, installer: str) -> None:
    dist = site / f"{module}-{version}.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    name = module.replace("_", "-")
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        f"Summary: {name}, as conda-forge ships it\nRequires-Python: >=3.8\n"
        "License: BSD-3-Clause\n\n"
    )
    (dist / "INSTALLER").write_text(installer)
    (dist / "WHEEL").write_text(
        "Wheel-Version: 1.0\nGenerator: bdist_wheel\nRoot-Is-Purelib: false\n"
        "Tag: cp311-cp311-linux_x86_64\n"
    )
    (dist / "RECORD").write_text(
        f"{module}/__init__.py,,\n{dist.name}/METADATA,,\n{dist.name}/INSTALLER,,\n{dist.name}/RECORD,,\n"
    )


def conda_prefix(
    prefix: Path,
    records: int = 600,
    seed: int = 0,
    blas: str = "mkl",
    mpi: str | None = "openmpi",
    pip_installs: int = 12,
    mixed_blas: bool = False,
) -> Path:
    """A conda prefix with ``records`` PrefixRecords and the site-packages they own.

    Record sizes follow the real records they are modelled on (``ncurses`` ~3,000 files,
    ``python`` ~2,100, ``numpy`` ~1,400, most libraries under 50), so the conda-meta
    directory weighs what a real one of that many packages weighs. Python packages get
    a real ``.dist-info`` (METADATA, INSTALLER, WHEEL, RECORD) in site-packages;
    ``pip_installs`` more distributions are pip-installed beside them, one of which
    replaced a conda-owned one (so the scan has a finding to report).
    """
    rng = random.Random(seed)
    templates = _templates()
    py_templates = [t for t in templates if _is_python_template(t)]
    lib_templates = [t for t in templates if not _is_python_template(t)]
    by_name = {str(t["name"]): t for t in templates}
    stack = _science_stack(blas, mpi)
    if mixed_blas:
        # conda-forge's mkl_fft links MKL itself: beside an OpenBLAS numpy, BLAS is mixed.
        stack.append(
            Package(
                "mkl_fft",
                "1.3.8",
                "py311h5eee18b_0",
                0,
                ["mkl >=2023.2.0,<2024.0a0", "numpy >=1.23.5", *_PY],
                python="mkl_fft",
            )
        )
    taken = {p.name for p in stack}
    packages = stack + list(_filler(rng, max(0, records - len(stack)), taken, stack))
    meta = prefix / "conda-meta"
    if prefix.exists():
        shutil.rmtree(prefix)
    meta.mkdir(parents=True)
    site = prefix / SITE
    site.mkdir(parents=True)
    cache = "/home/user/.cache/rattler/cache/pkgs"
    history = ["==> 2024-05-30 10:12:44 <==", "# cmd: pixi install", "# conda version: 24.5.0"]
    for i, pkg in enumerate(packages):
        if pkg.name in by_name:
            template = by_name[pkg.name]
        elif pkg.python:
            template = py_templates[i % len(py_templates)]
        else:
            template = lib_templates[i % len(lib_templates)]
        record = _record(template, pkg, cache)
        (meta / f"{pkg.name}-{pkg.version}-{pkg.build}.json").write_text(
            json.dumps(record, indent=2)
        )
        if pkg.python:
            _write_dist_info(site, pkg.python, pkg.version, "conda")
        history.append(f"+conda-forge/{SUBDIR}::{pkg.name}-{pkg.version}-{pkg.build}")
    (meta / "history").write_text("\n".join(history) + "\n")
    for j in range(pip_installs):
        _write_dist_info(site, f"pip_only_{j}", f"1.{j}.0", "pip")
    # pip upgraded one conda-owned distribution: the conda record still lists the old one.
    victim = next(p for p in packages[len(stack) :] if p.python)
    shutil.rmtree(site / f"{victim.python}-{victim.version}.dist-info")
    _write_dist_info(site, str(victim.python), "99.0.0", "pip")
    return prefix


def conda_environments(
    root: Path, count: int = 200, records: int = 120, seed: int = 0
) -> list[Path]:
    """``count`` conda prefixes of ``records`` packages each: BLAS and MPI vary by env.

    Every tenth environment mixes BLAS (its libblas is OpenBLAS while ``mkl_fft`` links
    ``mkl``), so an inventory has real findings to answer questions about.
    """
    envs = []
    for i in range(count):
        blas = "mkl" if i % 2 == 0 else "openblas"
        mpi = ("openmpi", "mpich", None)[i % 3]
        prefix = conda_prefix(
            root / f"env{i:03d}",
            records=records,
            seed=seed + i,
            blas=blas,
            mpi=mpi,
            pip_installs=3,
            mixed_blas=(i % 10 == 1),
        )
        envs.append(prefix)
    return envs


# --- Debian ------------------------------------------------------------------------------

DEBIAN = HERE.parent / "tests" / "fixtures" / "debian"
DIST_PACKAGES = "/usr/lib/python3/dist-packages"


def _stanzas(text: str) -> list[str]:
    return [block.strip("\n") for block in text.split("\n\n") if block.strip()]


def _field(stanza: str, name: str) -> str:
    for line in stanza.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    return ""


# python3-* packages that ship no distribution (metapackages, headers, the stdlib parts).
_NO_DIST_SUFFIXES = ("-all", "-dev", "-minimal", "-venv", "-distutils", "-lib2to3", "-doc")


def _list_lines(rng: random.Random, package: str, stanza: str) -> list[str]:
    """A file list the size dpkg would keep for a package of this Installed-Size."""
    size_kb = int(_field(stanza, "Installed-Size") or "40")
    count = max(3, min(3000, size_kb // 40 + rng.randint(0, 6)))
    arch = _field(stanza, "Architecture")
    doc = f"/usr/share/doc/{package}"
    lines = ["/.", "/usr", "/usr/share", "/usr/share/doc", doc, f"{doc}/copyright"]
    lines.append(f"{doc}/changelog.Debian.gz")
    cloned_from = re.sub(r"-b\d+$", "", package)
    if package.startswith("python3-") and not cloned_from.endswith(_NO_DIST_SUFFIXES):
        module = package[len("python3-") :].replace("-", "_")
        version = _field(stanza, "Version").split(":")[-1].split("-")[0].split("+")[0]
        egg = f"{DIST_PACKAGES}/{module}-{version}.egg-info"
        lines += ["/usr/lib", "/usr/lib/python3", DIST_PACKAGES, egg, f"{egg}/PKG-INFO"]
        lines += [f"{egg}/top_level.txt", f"{DIST_PACKAGES}/{module}"]
        lines += [f"{DIST_PACKAGES}/{module}/mod{i}.py" for i in range(count)]
    elif arch != "all":
        base = f"/usr/lib/x86_64-linux-gnu/{package}"
        lines += ["/usr/lib", "/usr/lib/x86_64-linux-gnu", base]
        lines += [f"{base}/part{i}.so" for i in range(count)]
    else:
        base = f"/usr/share/{package}"
        lines += [base] + [f"{base}/data{i}" for i in range(count)]
    return lines


def dpkg_root(root: Path, packages: int = 3000, seed: int = 0) -> Path:
    """A Debian root (``--root`` of dpkg) with ``packages`` installed packages.

    The 772 stanzas of the real Debian 12 status file come first, unchanged; more are
    cloned from them under new names (``-b<n>``) until there are ``packages``. Every
    package has an ``info/*.list`` (the real ones where the fixtures have them, else
    one as long as its Installed-Size suggests); every ``python3-*`` package has its
    ``.egg-info`` in ``/usr/lib/python3/dist-packages``. ``/etc/alternatives`` and
    ``/var/lib/dpkg/alternatives`` are the real ones (libblas.so.3 -> OpenBLAS).
    """
    rng = random.Random(seed)
    if root.exists():
        shutil.rmtree(root)
    dpkg = root / "var" / "lib" / "dpkg"
    info = dpkg / "info"
    info.mkdir(parents=True)
    (dpkg / "updates").mkdir()
    real = _stanzas((DEBIAN / "status").read_text(encoding="utf-8"))
    stanzas = list(real)
    n = 0
    while len(stanzas) < packages:
        template = real[n % len(real)]
        name = _field(template, "Package")
        clone = template.replace(f"Package: {name}\n", f"Package: {name}-b{n}\n", 1)
        if _field(template, "Status") == "install ok installed":
            stanzas.append(clone)
        n += 1
    (dpkg / "status").write_text("\n\n".join(stanzas) + "\n", encoding="utf-8")
    real_lists = {p.name: p for p in (DEBIAN / "info").glob("*.list")}
    for stanza in stanzas:
        if _field(stanza, "Status") != "install ok installed":
            continue
        package = _field(stanza, "Package")
        arch = _field(stanza, "Architecture")
        name = (
            f"{package}:{arch}.list"
            if _field(stanza, "Multi-Arch") == "same"
            else f"{package}.list"
        )
        if name in real_lists:
            text = real_lists[name].read_text(encoding="utf-8")
            lines = text.splitlines()
        else:
            lines = _list_lines(rng, package, stanza)
            text = "\n".join(lines) + "\n"
        (info / name).write_text(text, encoding="utf-8")
        for line in lines:
            if line.startswith(DIST_PACKAGES + "/") and line.endswith((".egg-info", ".dist-info")):
                meta = root / line.lstrip("/")
                meta.mkdir(parents=True, exist_ok=True)
                stem = meta.name.rsplit(".", 1)[0]
                dist, _, version = stem.partition("-")
                (meta / "PKG-INFO").write_text(
                    f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version.split('-')[0]}\n"
                )
    alternatives = dpkg / "alternatives"
    shutil.copytree(DEBIAN / "alternatives", alternatives, ignore=shutil.ignore_patterns("*.txt"))
    links = root / "etc" / "alternatives"
    links.mkdir(parents=True)
    for line in (DEBIAN / "alternatives" / "etc-alternatives-links.txt").read_text().splitlines():
        link, _, target = line.partition(" ")
        if not target:
            continue
        (links / link).symlink_to(target)
        in_root = root / target.lstrip("/")
        in_root.parent.mkdir(parents=True, exist_ok=True)
        in_root.touch()
    return root


# --- Spack -------------------------------------------------------------------------------

SPACK = HERE.parent / "tests" / "fixtures" / "spack"
_SPACK_STEMS = _words(
    """
    zlib-ng bzip2 xz zstd openssl curl libxml2 libiconv ncurses readline sqlite gdbm
    expat libffi gettext pcre2 libpng libjpeg-turbo libtiff freetype fontconfig hwloc
    libevent pmix libfabric ucx numactl libpciaccess cmake gmake pkgconf m4 autoconf
    automake libtool perl python tcl tk boost fftw hdf5 netcdf-c netcdf-fortran
    parmetis metis hypre petsc trilinos superlu suite-sparse arpack-ng scalapack
    """
)
_PY_STEMS = _words(
    """
    py-numpy py-scipy py-setuptools py-wheel py-pip py-cython py-six py-packaging
    py-pyparsing py-mpi4py py-h5py py-pandas py-matplotlib py-pillow py-cycler
    py-kiwisolver py-fonttools py-python-dateutil py-pytz py-tzdata py-scikit-learn
    py-joblib py-threadpoolctl py-sympy py-mpmath py-networkx py-pyyaml py-jinja2
    py-markupsafe py-petsc4py py-netcdf4 py-cftime py-tables py-numexpr
    """
)


def _spack_hash(*parts: object) -> str:
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).digest()
    return base64.b32encode(digest).decode().lower()[:32]


def spack_tree(root: Path, installs: int = 2000, seed: int = 0) -> Path:
    """A Spack install tree with a version-8 database of ``installs`` installs.

    The 8 real installs of Spack's own test database come first; the others copy their
    node shape (full ``arch.target`` with its feature list, build parameters with the
    compiler-flag lists, ``package_hash``, ``annotations``) with dependency edges to
    earlier nodes: link/run edges with ``virtuals: [blas, lapack]`` to OpenBLAS or MKL
    and ``[mpi]`` to Open MPI or MPICH, build edges to cmake/gmake. Every ``py-*``
    install has its prefix with ``.spack/spec.json`` (its whole DAG) and a
    ``.dist-info`` in ``lib/python3.11/site-packages``.
    """
    rng = random.Random(seed)
    if root.exists():
        shutil.rmtree(root)
    import gzip

    with gzip.open(SPACK / "index.json.v7_v8.json.gz", "rt", encoding="utf-8") as fh:
        real = json.load(fh)["database"]["installs"]
    template = next(rec for rec in real.values() if rec["spec"]["name"] == "hdf5")
    arch = template["spec"]["arch"]
    nodes: dict[str, dict[str, object]] = {}
    order: list[str] = []
    providers: dict[str, list[str]] = {"blas": [], "mpi": []}

    def add(name: str, version: str, deps: list[tuple[str, list[str], list[str]]]) -> str:
        parameters: dict[str, object] = {"build_system": "generic"}
        if name in ("hdf5", "py-h5py", "netcdf-c"):
            parameters["mpi"] = rng.random() < 0.5
        parameters.update(
            {f: [] for f in ("cflags", "cppflags", "cxxflags", "fflags", "ldflags", "ldlibs")}
        )
        dependencies = [
            {"name": nodes[h]["name"], "hash": h, "parameters": {"deptypes": t, "virtuals": v}}
            for h, t, v in sorted(deps, key=lambda d: str(nodes[d[0]]["name"]))
        ]
        key = _spack_hash(name, version, parameters, [d["hash"] for d in dependencies])
        spec: dict[str, object] = {
            "name": name,
            "version": version,
            "arch": arch,
            "namespace": "builtin",
            "parameters": parameters,
            "package_hash": _spack_hash("package", name, version) + "====",
        }
        if dependencies:
            spec["dependencies"] = dependencies
        spec["annotations"] = {"original_specfile_version": 5, "compiler": "gcc@=12.3.0"}
        spec["hash"] = key
        nodes[key] = spec
        order.append(key)
        return key

    cmake = add("cmake", "3.27.9", [])
    gmake = add("gmake", "4.4.1", [])
    build = [(cmake, ["build"], []), (gmake, ["build"], [])]
    providers["blas"].append(add("openblas", "0.3.26", build))
    providers["blas"].append(add("intel-oneapi-mkl", "2024.0.0", []))
    providers["mpi"].append(add("openmpi", "4.1.6", build))
    providers["mpi"].append(add("mpich", "4.1.2", build))
    python = add("python", "3.11.7", build)
    i = 0
    while len(order) + len(real) < installs:
        is_py = rng.random() < 0.2
        stems = _PY_STEMS if is_py else _SPACK_STEMS
        name = stems[i % len(stems)]
        version = f"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}"
        earlier = rng.sample(order, k=min(len(order), rng.randint(0, 5)))
        deps = [(h, ["build", "link"], []) for h in earlier if nodes[h]["name"] != name]
        deps += build
        if rng.random() < 0.3:
            deps.append((rng.choice(providers["blas"]), ["build", "link"], ["blas", "lapack"]))
        if rng.random() < 0.15:
            deps.append((rng.choice(providers["mpi"]), ["build", "link"], ["mpi"]))
        if is_py:
            deps.append((python, ["build", "link", "run"], []))
        unique = {h: (h, t, v) for h, t, v in deps}
        add(name, version, list(unique.values()))
        i += 1
    tree = root / "opt" / "spack"
    db: dict[str, object] = dict(real)

    def dag(key: str) -> list[dict[str, object]]:
        seen: dict[str, None] = {}
        stack = [key]
        while stack:
            h = stack.pop()
            if h in seen:
                continue
            seen[h] = None
            deps = nodes[h].get("dependencies") or []
            assert isinstance(deps, list)
            stack.extend(d["hash"] for d in deps)
        return [nodes[h] for h in seen]

    for key in order:
        spec = nodes[key]
        name, version = str(spec["name"]), str(spec["version"])
        prefix = tree / "linux-icelake" / f"{name}-{version}-{key}"
        if name.startswith("py-") or name == "python":
            (prefix / ".spack").mkdir(parents=True)
            (prefix / ".spack" / "spec.json").write_text(
                json.dumps({"spec": {"_meta": {"version": 5}, "nodes": dag(key)}})
            )
            if name.startswith("py-"):
                site = prefix / "lib" / "python3.11" / "site-packages"
                _write_dist_info(site, name[3:].replace("-", "_"), version, "pip")
        db[key] = {
            "spec": spec,
            "ref_count": 1,
            "path": str(prefix),
            "installed": True,
            "explicit": name.startswith("py-"),
            "installation_time": 1744963943.3 + len(db),
            "deprecated_for": None,
        }
    (tree / ".spack-db").mkdir(parents=True, exist_ok=True)
    (tree / ".spack-db" / "index.json").write_text(
        json.dumps({"database": {"version": "8", "installs": db}})
    )
    return tree


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=["conda", "envs", "dpkg", "spack"])
    parser.add_argument("target", type=Path)
    parser.add_argument("--records", type=int, default=600)
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args(argv)
    if args.kind == "conda":
        print(conda_prefix(args.target, records=args.records))
    elif args.kind == "dpkg":
        print(dpkg_root(args.target))
    elif args.kind == "spack":
        print(spack_tree(args.target))
    else:
        print(
            len(conda_environments(args.target, count=args.count)), "environments in", args.target
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The post-link hook reads only the records a package's properties can come from
(bridge/integrations/conda/_package_records.py), and writes what a scan of every
record of the prefix writes: the same files, byte for byte, whatever the order the
packages of a transaction are linked in.

Hand-written conda-meta records cover what a walk by name can miss (a metapackage that
pins the package, a second record claiming its dist-info, two records of one name, a
dependency spelt with another case or ``_``); real rattler prefixes cover the rest.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import condaenv
import prefixstate
import pytest
from vbridge.adapters import conda
from vbridge.destinations.annotate import annotate_environment
from vbridge.destinations.variant_json import read_variant_json
from vbridge.integrations.conda._package_records import package_records
from vbridge.integrations.conda.link_scripts import PostLinkRequest, run_post_link
from vbridge.scan import scan_environment

SITE = condaenv.SITE


@pytest.fixture(autouse=True)
def own_record_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test its own record cache (the hook reads records through it)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def write_record(
    prefix: Path,
    name: str,
    build: str = "0",
    depends: Sequence[str] = (),
    *,
    version: str = "1.0",
    owns: str | None = None,
) -> None:
    """A conda-meta record; ``owns`` a dist-info (``<name>-<version>``) it lists the
    files of, created in site-packages if not there yet."""
    files: list[str] = []
    if owns is not None:
        dist = prefix / SITE / f"{owns}.dist-info"
        if not dist.is_dir():
            dist.mkdir(parents=True)
            dist_name, _, dist_version = owns.rpartition("-")
            (dist / "METADATA").write_text(
                f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: {dist_version}\n"
            )
            (dist / "INSTALLER").write_text("conda")
            (dist / "RECORD").write_text(
                f"{owns}.dist-info/METADATA,,\n{owns}.dist-info/INSTALLER,,\n"
                f"{owns}.dist-info/RECORD,,\n"
            )
        files = [f"{SITE}/{owns}.dist-info/{f}" for f in ("INSTALLER", "METADATA", "RECORD")]
    record = {
        "name": name,
        "version": version,
        "build": build,
        "build_number": 0,
        "depends": list(depends),
        "channel": "https://conda.anaconda.org/conda-forge/linux-64",
        "subdir": "linux-64",
        "files": files,
        "paths_data": {"paths": [{"_path": f, "path_type": "hardlink"} for f in files]},
    }
    meta = prefix / "conda-meta"
    meta.mkdir(parents=True, exist_ok=True)
    (meta / f"{name}-{version}-{build}.json").write_text(json.dumps(record, indent=2))


def edge_case_prefix(prefix: Path) -> Path:
    """numpy-base pinned by Anaconda's numpy metapackage; a record sorted first that also
    claims scipy's dist-info; two libblas records; specs naming ``LibCBLAS`` and
    ``llvm-openmp`` (a record ``llvm_openmp``); mpi4py's openmpi; python and unrelated
    records."""
    write_record(prefix, "python", "h0_cpython", ["zlib >=1.2"], version="3.11.9")
    write_record(prefix, "zlib", "h1", [], version="1.3")
    write_record(prefix, "unrelated", "h2", ["zlib"])
    write_record(prefix, "numpy-base", "py311h_0", ["python >=3.11", "libblas >=3"],
                 version="1.26.4", owns="numpy-1.26.4")  # fmt: skip
    write_record(prefix, "numpy", "py311h_0", ["numpy-base 1.26.4 py311h_0", "blas 1.0 mkl"],
                 version="1.26.4")  # fmt: skip
    write_record(prefix, "blas", "mkl", ["mkl"])
    write_record(prefix, "mkl", "h_50496", ["llvm-openmp >=16"], version="2023.2.0")
    write_record(prefix, "llvm_openmp", "h_0", [], version="18.1.6")
    write_record(prefix, "libblas", "20_linux64_mkl", ["mkl"], version="3.9.0")
    write_record(prefix, "libblas", "20_linux64_openblas", [], version="3.9.1")
    write_record(prefix, "libcblas", "20_linux64_mkl", ["libblas 3.9.0"], version="3.9.0")
    write_record(prefix, "scipy", "py311h_0", ["numpy-base", "LibCBLAS >=3", "python"],
                 version="1.11.4", owns="scipy-1.11.4")  # fmt: skip
    write_record(prefix, "aaa-clobber", "0", ["libblas"], owns="scipy-1.11.4")
    write_record(prefix, "_openmp_mutex", "2_kmp_llvm", ["llvm-openmp"], version="4.5")
    write_record(prefix, "openmpi", "h_101", ["mpi 1.0 openmpi"], version="4.1.6")
    write_record(prefix, "mpi", "openmpi", [])
    write_record(prefix, "mpi4py", "py311h_1", ["openmpi >=4.1", "python"],
                 version="3.1.5", owns="mpi4py-3.1.5")  # fmt: skip
    return prefix


def python_records(prefix: Path) -> Iterator[tuple[str, str, int]]:
    """(name, version, build number) of every record that owns a distribution."""
    for path in sorted((prefix / "conda-meta").glob("*.json")):
        data = json.loads(path.read_bytes())
        if any(".dist-info/" in f for f in data.get("files", [])):
            yield data["name"], data["version"], data.get("build_number", 0)


def hook(prefix: Path, name: str, version: str, build_number: int, whole: bool) -> list[str]:
    variables = {"PREFIX": str(prefix), "PKG_NAME": name, "PKG_VERSION": version}
    if "CONDA_PKGS_DIRS" in os.environ:  # conda's order: the package cache
        variables["CONDA_PKGS_DIRS"] = os.environ["CONDA_PKGS_DIRS"]
    request = PostLinkRequest.from_environ({**variables, "PKG_BUILDNUM": str(build_number)})
    outcome = run_post_link(request, whole_prefix=whole)
    return [*outcome.messages, *map(str, outcome.annotated)]


def hooks_in_order(
    source: Path, work: Path, order: Sequence[tuple[str, str, int]], whole: bool
) -> tuple[dict[str, str], list[str]]:
    """The prefix after the hooks of ``order``, run in a copy of ``source`` (at one path
    for every run, so that nothing differs by the copy's name), and what they said."""
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(source, work, symlinks=True)
    said = [line for name, v, b in order for line in hook(work, name, v, b, whole)]
    return prefixstate.snapshot(work), said


def assert_same_as_whole_prefix(prefix: Path, work: Path) -> dict[str, str]:
    """The hooks of every Python package, in file order and reversed, write what the
    scan of every record writes; returns the prefix after them."""
    order = list(python_records(prefix))
    assert order
    whole, whole_said = hooks_in_order(prefix, work, order, whole=True)
    package, package_said = hooks_in_order(prefix, work, order, whole=False)
    assert package == whole
    assert package_said == whole_said
    reversed_state, _ = hooks_in_order(prefix, work, order[::-1], whole=False)
    reversed_whole, _ = hooks_in_order(prefix, work, order[::-1], whole=True)
    assert reversed_state == reversed_whole
    return package


def properties(prefix: Path, dist: str) -> set[str]:
    data = (prefix / SITE / f"{dist}.dist-info" / "variant.json").read_bytes()
    return {p.to_str() for p in read_variant_json(data).properties}


def dist_info_files(state: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in state.items() if ".dist-info/" in k and not k.endswith("/")}


def test_edge_cases_give_the_files_a_scan_of_every_record_gives(tmp_path: Path) -> None:
    prefix = edge_case_prefix(tmp_path / "src")
    state = assert_same_as_whole_prefix(prefix, tmp_path / "env")
    written = {k for k in state if k.endswith("/variant.json")}
    assert written == {
        f"{SITE}/{d}.dist-info/variant.json"
        for d in ("numpy-1.26.4", "mpi4py-3.1.5", "scipy-1.11.4")
    }
    # scipy's dist-info is aaa-clobber's, the first record claiming it.
    sbom = tmp_path / "env" / SITE / "scipy-1.11.4.dist-info" / "sboms" / "vbridge.cdx.json"
    assert "pkg:conda/aaa-clobber@1.0" in sbom.read_text()
    # Through the numpy metapackage's `blas 1.0 mkl`, and mpi4py's openmpi.
    assert "blas_lapack :: provider :: mkl" in properties(tmp_path / "env", "numpy-1.26.4")
    assert "mpi :: implementation :: openmpi" in properties(tmp_path / "env", "mpi4py-3.1.5")


def test_only_the_records_the_package_reaches_are_parsed(tmp_path: Path) -> None:
    prefix = edge_case_prefix(tmp_path / "env")
    meta = prefix / "conda-meta"
    kept = {
        Path(r.source).name
        for r in package_records(prefix, [meta / "numpy-base-1.26.4-py311h_0.json"], [])
        if r.source is not None
    }
    assert kept == {
        "numpy-base-1.26.4-py311h_0.json",
        "numpy-1.26.4-py311h_0.json",  # pins numpy-base
        "blas-1.0-mkl.json",
        "mkl-2023.2.0-h_50496.json",
        "llvm_openmp-18.1.6-h_0.json",  # llvm-openmp: its PEP 503 name
        "libblas-3.9.0-20_linux64_mkl.json",
        "libblas-3.9.1-20_linux64_openblas.json",  # every record of a name looked up
        "python-3.11.9-h0_cpython.json",  # looked up, not walked (stop_at)
    }
    kept = {
        Path(r.source).name
        for r in package_records(prefix, [meta / "scipy-1.11.4-py311h_0.json"], [])
        if r.source is not None
    }
    assert "aaa-clobber-1.0-0.json" in kept  # claims scipy's dist-info
    assert "libcblas-3.9.0-20_linux64_mkl.json" in kept  # LibCBLAS >=3
    assert "zlib-1.3-h1.json" not in kept and "unrelated-1.0-h2.json" not in kept


def test_the_records_parsed_are_the_ones_a_full_read_gives(tmp_path: Path) -> None:
    prefix = edge_case_prefix(tmp_path / "env")
    every = {r.source: r for r in conda.read_records(prefix, [])}
    for _ in range(2):  # first read, then from the record cache
        own = [prefix / "conda-meta" / "mpi4py-3.1.5-py311h_1.json"]
        for record in package_records(prefix, own, []):
            assert record == every[record.source]


@pytest.fixture(scope="module")
def science_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rattler-cache")


@pytest.fixture(scope="module")
def science_prefix(
    mkl_channel: Path, science_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    prefix = tmp_path_factory.mktemp("science") / "env"
    specs = ["numpy", "scipy", "h5py", "mpi4py", "six", "libblas=*=*mkl"]
    return condaenv.install(mkl_channel, specs, prefix, science_cache)


def test_a_rattler_prefix_in_any_order_as_a_full_annotate(
    science_prefix: Path, tmp_path: Path
) -> None:
    """The hooks of a transaction, in rattler's records-first order: numpy's before
    or after libblas's dependents, the same files, and the ones `vbridge annotate`
    writes into each dist-info."""
    work = tmp_path / "env"
    state = assert_same_as_whole_prefix(science_prefix, work)
    shutil.rmtree(work)
    shutil.copytree(science_prefix, work, symlinks=True)
    annotate_environment(scan_environment(work))
    annotated = dist_info_files(prefixstate.snapshot(work))
    hooked = dist_info_files(state)
    written = [k for k in hooked if k.endswith(("/variant.json", "/vbridge.cdx.json"))]
    assert len(written) == 8  # numpy, scipy, h5py, mpi4py: variant.json and the SBOM
    assert {k: annotated[k] for k in written} == {k: hooked[k] for k in written}
    assert "blas_lapack :: provider :: mkl" in properties(work, "numpy-1.26.4")


# The transaction of the conda-order test: its records are written after the scripts.
LINKED_TOGETHER = ("numpy", "scipy", "libblas", "libcblas", "liblapack", "mkl")


def test_conda_order_in_any_order_as_a_scan_of_every_record(
    science_prefix: Path, science_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """conda's order: the records of the transaction (numpy, scipy, their BLAS) come
    after the scripts, and are read from the package cache; numpy's hook before or
    after scipy's gives what the scan of every record gives."""
    monkeypatch.setenv("CONDA_PKGS_DIRS", str(science_cache))
    source = tmp_path / "source"
    shutil.copytree(science_prefix, source, symlinks=True)
    for record in list((source / "conda-meta").glob("*.json")):
        if record.name.rsplit("-", 2)[0] in LINKED_TOGETHER:
            record.unlink()
    for name in ("numpy", "scipy"):  # both can remove what they write: it is written
        (source / "bin" / f".{name}-pre-unlink.sh").write_text("#!/bin/bash\n")
    order = [("numpy", "1.26.4", 0), ("scipy", "1.11.4", 0)]
    for packages in (order, order[::-1]):
        whole, whole_said = hooks_in_order(source, tmp_path / "env", packages, whole=True)
        package, package_said = hooks_in_order(source, tmp_path / "env", packages, whole=False)
        assert package == whole and package_said == whole_said
        assert len(package_said) == 2, package_said  # one dist-info each, no message
    assert "blas_lapack :: provider :: mkl" in properties(tmp_path / "env", "numpy-1.26.4")


def test_the_hook_names_pip_conf_as_the_pip_constraints_module_does() -> None:
    from vbridge.destinations import pip_constraints
    from vbridge.integrations.conda import link_scripts

    assert link_scripts._PIP_CONF == pip_constraints.PIP_CONF


def test_a_hook_with_nothing_to_write_imports_no_scan(tmp_path: Path) -> None:
    """conda's order (no record yet) and no pre-unlink script: a message, and neither
    the scan nor annotate is imported."""
    (tmp_path / "conda-meta").mkdir()
    code = (
        "import sys\n"
        "from vbridge.entry_point import main\n"
        "sys.argv = ['vbridge', 'conda-post-link']\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
        "heavy = ('vbridge.scan', 'vbridge.destinations.annotate', 'vbridge.adapters.conda')\n"
        "print('EXIT', code, [m for m in heavy if m in sys.modules])\n"
    )
    variables = {"PREFIX": str(tmp_path), "PKG_NAME": "numpy", "PKG_VERSION": "1.26.4"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **variables},
    ).stdout
    assert out == "EXIT 0 []\n"
    assert "no pre-unlink script" in (tmp_path / ".messages.txt").read_text()


def test_pip_constraints_are_refreshed_where_the_ledger_keeps_pip_conf(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hook rewrites plain pip's constraints file only where vbridge keeps one: the
    ledger annotate leaves names pip.conf."""
    from vbridge.destinations.ledger import EnvironmentFileEntry, LedgerStore
    from vbridge.integrations.conda import link_scripts

    prefix = edge_case_prefix(tmp_path / "env")
    refreshed: list[Path] = []
    monkeypatch.setattr(
        link_scripts, "_refresh_pip_constraints", lambda p, dry_run: refreshed.append(p)
    )
    hook(prefix, "mpi4py", "3.1.5", 0, whole=False)
    assert refreshed == []
    store = LedgerStore.of(prefix)
    ledger = store.load()
    ledger.environment[link_scripts._PIP_CONF] = EnvironmentFileEntry(None, [])
    store.save(ledger)
    hook(prefix, "numpy-base", "1.26.4", 0, whole=False)
    assert refreshed == [prefix]

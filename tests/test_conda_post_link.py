"""``vbridge conda-post-link`` as package recipes use it: the shipped post-link.sh
template inside real conda packages, run by a real installer (py-rattler with link
scripts enabled), and the conda/mamba order (the script runs before the records are
written) reproduced on a real prefix by taking its records away, named as such below.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import condaenv
import pytest
from vbridge.destinations.variant_json import read_variant_json
from vbridge.integrations.conda.link_scripts import PostLinkRequest, run_post_link

SITE = condaenv.SITE
VBRIDGE = Path(sys.executable).with_name("vbridge")
TEMPLATE = resources.files("vbridge.data").joinpath("post-link.sh").read_bytes()
UNLINK_TEMPLATE = resources.files("vbridge.data").joinpath("pre-unlink.sh").read_bytes()
NUMPY_RECORD = "numpy-1.26.4-py311h64a7726_0.json"


def with_scripts(pkg: condaenv.CondaPackage) -> condaenv.CondaPackage:
    """The package with the templates installed where installers look for them:
    numpy ships the post-link script only, scipy both post-link and pre-unlink."""
    pkg.files = {**pkg.files, f"bin/.{pkg.name}-post-link.sh": TEMPLATE}
    if pkg.name == "scipy":
        pkg.files[f"bin/.{pkg.name}-pre-unlink.sh"] = UNLINK_TEMPLATE
    return pkg


@pytest.fixture(scope="module")
def channel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """numpy and scipy ship the link scripts; MKL and OpenBLAS libblas builds."""
    stack = [
        with_scripts(p) if p.name in {"numpy", "scipy"} else p
        for p in condaenv.science_packages("mkl")
    ]
    openblas = [
        p
        for p in condaenv.science_packages("openblas")
        if p.name in {"libblas", "libcblas", "liblapack"}
    ]
    return condaenv.build_channel(tmp_path_factory.mktemp("channels") / "pl", [*stack, *openblas])


@pytest.fixture
def vbridge_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The installer passes its environment to link scripts: vbridge is on PATH."""
    monkeypatch.setenv("PATH", f"{VBRIDGE.parent}{os.pathsep}{os.environ['PATH']}")


def properties(prefix: Path, dist: str) -> set[str]:
    path = prefix / SITE / dist / "variant.json"
    return {p.to_str() for p in read_variant_json(path.read_bytes()).properties}


def post_link(prefix: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the command as a post-link script would, with conda's variables."""
    drop = {"CONDA_PKGS_DIRS", "ROOT_PREFIX", "VBRIDGE_CONDA_PLUGIN_SYNCS"}
    base = {k: v for k, v in os.environ.items() if k not in drop}
    variables = {
        "PREFIX": str(prefix),
        "PKG_NAME": "numpy",
        "PKG_VERSION": "1.26.4",
        "PKG_BUILDNUM": "0",
        "HOME": str(prefix.parent / "home"),  # no ~/.conda/pkgs to find by accident
        **env,
    }
    return subprocess.run(
        [str(VBRIDGE), "conda-post-link", *args],
        env={**base, **variables},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_rattler_runs_the_template_and_numpy_is_annotated(
    channel: Path, tmp_path: Path, conda_cache: Path, vbridge_on_path: None
) -> None:
    prefix = tmp_path / "env"
    condaenv.install(
        channel,
        ["numpy", "scipy", "libblas=*=*mkl"],
        prefix,
        conda_cache,
        execute_link_scripts=True,
    )
    for dist in ("numpy-1.26.4.dist-info", "scipy-1.11.4.dist-info"):
        assert "blas_lapack :: provider :: mkl" in properties(prefix, dist)
    # rattler wrote the record before the script ran: the files are registered with it.
    record = json.loads((prefix / "conda-meta" / NUMPY_RECORD).read_text())
    assert f"{SITE}/numpy-1.26.4.dist-info/variant.json" in record["files"]


# Modules the hook's process is kept from importing: each costs milliseconds on every
# package a transaction links (bench/README.md, the post-link section).
NOT_IMPORTED_BY_THE_HOOK = (
    "typer",
    "click",
    "installer",
    "email",
    "packaging.tags",
    "tempfile",
    "importlib.resources",
    "subprocess",
    "rattler",
    "vbridge.decide.policy",
    "vbridge.adapters.wheel",
)


def test_the_hook_annotates_without_its_heavy_imports(
    channel: Path, tmp_path: Path, conda_cache: Path
) -> None:
    prefix = tmp_path / "env"
    condaenv.install(channel, ["numpy", "libblas=*=*mkl"], prefix, conda_cache)
    code = (
        "import sys\n"
        "from vbridge.entry_point import main\n"
        "sys.argv = ['vbridge', 'conda-post-link', '--strict']\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
        f"print(code, [m for m in {NOT_IMPORTED_BY_THE_HOOK!r} if m in sys.modules])\n"
    )
    variables = {"PREFIX": str(prefix), "PKG_NAME": "numpy", "PKG_VERSION": "1.26.4"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **variables},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout == "0 []\n", result.stderr
    assert "blas_lapack :: provider :: mkl" in properties(prefix, "numpy-1.26.4.dist-info")


def test_without_vbridge_the_template_does_nothing(
    channel: Path, tmp_path: Path, conda_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    prefix = tmp_path / "env"
    condaenv.install(channel, ["numpy"], prefix, conda_cache, execute_link_scripts=True)
    assert (prefix / "conda-meta" / NUMPY_RECORD).exists()  # the install went through
    assert not (prefix / SITE / "numpy-1.26.4.dist-info" / "variant.json").exists()


def take_records_away(prefix: Path, holding: Path) -> None:
    """SIMULATES conda's and mamba's order: post-link scripts run after the packages
    are linked but before any record of the transaction is written, so the prefix has
    the files and no ``conda-meta/*.json`` of this transaction yet."""
    holding.mkdir()
    for record in (prefix / "conda-meta").glob("*.json"):
        shutil.move(record, holding / record.name)


def put_records_back(prefix: Path, holding: Path) -> None:
    """...and the installer writes the records after the scripts."""
    for record in holding.iterdir():
        shutil.move(record, prefix / "conda-meta" / record.name)


SCIPY_RECORD = "scipy-1.11.4-py311h64a7726_0.json"
SCIPY = {"PKG_NAME": "scipy", "PKG_VERSION": "1.11.4"}  # ships post-link and pre-unlink


def altered_files(prefix: Path) -> list[str]:
    """What `conda doctor`'s altered-files check reports: files whose sha256 differs
    from the ``sha256_in_prefix`` their conda-meta record notes."""
    altered = []
    for meta in (prefix / "conda-meta").glob("*.json"):
        for entry in json.loads(meta.read_bytes()).get("paths_data", {}).get("paths", []):
            expected = entry.get("sha256_in_prefix")
            path = prefix / entry["_path"]
            actual = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
            if expected and actual is not None and actual != expected:
                altered.append(entry["_path"])
    return altered


def test_conda_order_reads_the_package_cache(
    channel: Path, tmp_path: Path, conda_cache: Path
) -> None:
    # Both libblas builds are in the cache; the prefix links the MKL one.
    condaenv.install(channel, ["scipy", "libblas=*=*openblas"], tmp_path / "other", conda_cache)
    prefix = condaenv.install(channel, ["scipy", "libblas=*=*mkl"], tmp_path / "env", conda_cache)
    holding = tmp_path / "not-yet-written"
    take_records_away(prefix, holding)
    record_before = (prefix / SITE / "scipy-1.11.4.dist-info" / "RECORD").read_bytes()

    result = post_link(prefix, CONDA_PKGS_DIRS=str(conda_cache), **SCIPY)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # a link script's output lands on conda's progress line
    props = properties(prefix, "scipy-1.11.4.dist-info")
    assert "blas_lapack :: provider :: mkl" in props
    assert "blas_lapack :: provider :: openblas" not in props
    # conda hashed RECORD for the record it writes after the script: RECORD stays.
    assert (prefix / SITE / "scipy-1.11.4.dist-info" / "RECORD").read_bytes() == record_before
    assert not (prefix / ".messages.txt").exists()  # the pre-unlink script has it covered

    put_records_back(prefix, holding)
    assert altered_files(prefix) == []  # conda doctor: clean
    record = json.loads((prefix / "conda-meta" / SCIPY_RECORD).read_text())
    assert f"{SITE}/scipy-1.11.4.dist-info/variant.json" not in record["files"]
    # The next annotate (the conda plugin runs one after the transaction) registers them.
    annotate = subprocess.run(
        [str(VBRIDGE), "annotate", str(prefix)], capture_output=True, text=True
    )
    assert annotate.returncode == 0, annotate.stderr
    record = json.loads((prefix / "conda-meta" / SCIPY_RECORD).read_text())
    assert f"{SITE}/scipy-1.11.4.dist-info/variant.json" in record["files"]
    assert altered_files(prefix) == []


def test_conda_order_without_pre_unlink_writes_nothing(
    channel: Path, tmp_path: Path, conda_cache: Path
) -> None:
    """numpy ships post-link only: what it wrote now, no record would list and no
    script would remove (a ghost dist-info after `conda remove`)."""
    prefix = condaenv.install(channel, ["numpy", "libblas=*=*mkl"], tmp_path / "env", conda_cache)
    take_records_away(prefix, tmp_path / "not-yet-written")
    result = post_link(prefix, CONDA_PKGS_DIRS=str(conda_cache))
    assert result.returncode == 0 and result.stderr == ""
    assert not (prefix / SITE / "numpy-1.26.4.dist-info" / "variant.json").exists()
    assert not (prefix / ".vbridge").exists()
    # conda prints the file on its open progress line: the message starts a line.
    blank, message = (prefix / ".messages.txt").read_text().splitlines()
    assert blank == ""
    assert f"run `vbridge annotate {prefix}` after the install" in message
    assert "$PREFIX" not in message
    # With the conda plugin in the installer, the plugin annotates: no word.
    (prefix / ".messages.txt").unlink()
    result = post_link(prefix, CONDA_PKGS_DIRS=str(conda_cache), VBRIDGE_CONDA_PLUGIN_SYNCS="1")
    assert result.returncode == 0 and not (prefix / ".messages.txt").exists()


def dist_info_files(prefix: Path, *dists: str) -> dict[str, str]:
    """Every file of the dist-infos, by path inside the prefix: its sha256."""
    found = {}
    for dist in dists:
        for path in sorted((prefix / SITE / dist).rglob("*")):
            if path.is_file():
                found[str(path.relative_to(prefix))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def test_conda_order_with_the_plugin_leaves_the_package_to_it(
    channel: Path, tmp_path: Path, conda_cache: Path
) -> None:
    """conda with the vbridge plugin: the plugin annotates once the records are
    written, so scipy's hook writes nothing and leaves before importing the scan; the
    annotate after the transaction (what the plugin's sync runs) then leaves the same
    files as the hook and that annotate do without the plugin."""
    results: dict[str, dict[str, str]] = {}
    for plugin in ("", "1"):
        prefix = condaenv.install(
            channel, ["scipy", "libblas=*=*mkl"], tmp_path / f"env{plugin}", conda_cache
        )
        holding = tmp_path / f"not-yet-written{plugin}"
        take_records_away(prefix, holding)
        environ = {
            "PREFIX": str(prefix),
            "PKG_NAME": "scipy",
            "PKG_VERSION": "1.11.4",
            "PKG_BUILDNUM": "0",
            "CONDA_PKGS_DIRS": str(conda_cache),
            "VBRIDGE_CONDA_PLUGIN_SYNCS": plugin,
            "HOME": str(tmp_path / "home"),
        }
        if plugin:  # the library's run_post_link (what the typer command calls) agrees
            request = PostLinkRequest.from_environ(environ)
            assert run_post_link(request).source == "plugin"
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "vbridge", "conda-post-link", "--strict"],
            env={
                **{k: v for k, v in os.environ.items() if k != "VBRIDGE_CONDA_PLUGIN_SYNCS"},
                **environ,
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr  # --strict: handing over is no failure
        imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
        written = (prefix / SITE / "scipy-1.11.4.dist-info" / "variant.json").exists()
        if plugin:
            assert not written and not (prefix / ".vbridge").exists()
            assert not (prefix / ".messages.txt").exists()
            assert "msgspec" not in imported and "vbridge.scan" not in imported
        else:
            assert written and "vbridge.scan" in imported
        put_records_back(prefix, holding)
        annotate = subprocess.run(
            [str(VBRIDGE), "annotate", str(prefix)], capture_output=True, text=True
        )
        assert annotate.returncode == 0, annotate.stderr
        assert "blas_lapack :: provider :: mkl" in properties(prefix, "scipy-1.11.4.dist-info")
        record = json.loads((prefix / "conda-meta" / SCIPY_RECORD).read_text())
        assert f"{SITE}/scipy-1.11.4.dist-info/variant.json" in record["files"]
        assert altered_files(prefix) == []
        results[plugin] = dist_info_files(
            prefix, "scipy-1.11.4.dist-info", "numpy-1.26.4.dist-info"
        )
    assert results["1"] == results[""]


def test_the_plugin_does_not_take_a_package_whose_record_is_written(
    channel: Path, tmp_path: Path, conda_cache: Path
) -> None:
    """The record is there (the package was linked in an earlier step): the hook reads
    it and writes, the plugin's word notwithstanding."""
    prefix = condaenv.install(channel, ["numpy", "libblas=*=*mkl"], tmp_path / "env", conda_cache)
    result = post_link(prefix, "--strict", VBRIDGE_CONDA_PLUGIN_SYNCS="1")
    assert result.returncode == 0, result.stderr
    assert "blas_lapack :: provider :: mkl" in properties(prefix, "numpy-1.26.4.dist-info")


def test_conda_order_found_through_root_prefix(
    channel: Path, tmp_path: Path, conda_cache: Path
) -> None:
    """conda sets ROOT_PREFIX for link scripts; its package cache is ROOT_PREFIX/pkgs.
    Here CONDA_PKGS_DIRS names the same cache again: one build, found twice."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "pkgs").symlink_to(conda_cache)
    prefix = condaenv.install(channel, ["scipy", "libblas=*=*mkl"], tmp_path / "env", conda_cache)
    take_records_away(prefix, tmp_path / "not-yet-written")
    result = post_link(prefix, ROOT_PREFIX=str(root), CONDA_PKGS_DIRS=str(conda_cache), **SCIPY)
    assert result.returncode == 0, result.stderr
    assert "blas_lapack :: provider :: mkl" in properties(prefix, "scipy-1.11.4.dist-info")


def test_conda_order_finds_the_cache_pkgs_dirs_of_condarc_names(
    channel: Path, tmp_path: Path, conda_cache: Path
) -> None:
    """conda passes ROOT_PREFIX, not pkgs_dirs: a cache set only in .condarc is found
    by reading the condarc files conda reads."""
    root = tmp_path / "root"
    root.mkdir()
    (root / ".condarc").write_text(f"channels:\n  - local\npkgs_dirs:\n  - {conda_cache}\n")
    prefix = condaenv.install(channel, ["scipy", "libblas=*=*mkl"], tmp_path / "env", conda_cache)
    take_records_away(prefix, tmp_path / "not-yet-written")
    result = post_link(prefix, ROOT_PREFIX=str(root), **SCIPY)
    assert result.returncode == 0, result.stderr
    assert "blas_lapack :: provider :: mkl" in properties(prefix, "scipy-1.11.4.dist-info")


def test_conda_order_keeps_file_less_packages_and_repodata_record(
    channel: Path, tmp_path: Path, conda_cache: Path
) -> None:
    """_openmp_mutex links no file; conda writes info/repodata_record.json (channel,
    url, md5) into every package it extracts: both reach the metadata."""
    prefix = condaenv.install(channel, ["scipy", "libblas=*=*mkl"], tmp_path / "env", conda_cache)
    cache = tmp_path / "pkgs"
    shutil.copytree(conda_cache, cache, symlinks=True)
    channel_url = channel.as_uri()
    for index in cache.glob("*/info/index.json"):
        data = json.loads(index.read_text())
        fn = f"{index.parent.parent.name}.conda"
        data.update(channel=f"{channel_url}/linux-64", url=f"{channel_url}/linux-64/{fn}",
                    fn=fn, md5="0" * 32)  # fmt: skip
        (index.parent / "repodata_record.json").write_text(json.dumps(data))
    assert (
        json.loads((cache / "_openmp_mutex-4.5-2_kmp_llvm/info/paths.json").read_text())["paths"]
        == []
    )
    take_records_away(prefix, tmp_path / "not-yet-written")
    result = post_link(prefix, CONDA_PKGS_DIRS=str(cache), **SCIPY)
    assert result.returncode == 0, result.stderr
    props = properties(prefix, "scipy-1.11.4.dist-info")
    assert "openmp :: provider :: llvm" in props
    sbom = json.loads((prefix / SITE / "scipy-1.11.4.dist-info/sboms/vbridge.cdx.json").read_text())
    purls = [c.get("purl", "") for c in sbom.get("components", [])]
    scipy = next(p for p in purls if p.startswith("pkg:conda/scipy@"))
    assert "channel=" in scipy


def test_no_record_and_no_cache_is_a_message_not_a_failure(
    channel: Path, tmp_path: Path, conda_cache: Path
) -> None:
    prefix = condaenv.install(channel, ["scipy"], tmp_path / "env", conda_cache)
    take_records_away(prefix, tmp_path / "not-yet-written")
    result = post_link(prefix, **SCIPY)
    assert result.returncode == 0
    message = (prefix / ".messages.txt").read_text()
    assert "in no package cache vbridge knows" in message
    assert f"vbridge annotate {prefix}" in message
    assert not (prefix / SITE / "scipy-1.11.4.dist-info" / "variant.json").exists()
    assert post_link(prefix, "--strict", **SCIPY).returncode == 1


def test_missing_variables_and_strict(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(VBRIDGE), "conda-post-link"],
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0
    assert "PREFIX, PKG_NAME, PKG_VERSION not set" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    strict = subprocess.run(
        [str(VBRIDGE), "conda-post-link", "--strict"],
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
    )
    assert strict.returncode == 2


def test_not_a_conda_prefix(tmp_path: Path) -> None:
    result = post_link(tmp_path)
    assert result.returncode == 0
    assert "not a conda prefix" in (tmp_path / ".messages.txt").read_text()


@pytest.mark.parametrize(
    ("command", "template"),
    [("conda-post-link", TEMPLATE), ("conda-pre-unlink", UNLINK_TEMPLATE)],
)
def test_templates_are_shipped_and_are_valid_shell(command: str, template: bytes) -> None:
    result = subprocess.run(
        [str(VBRIDGE), command, "--print-template"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert result.stdout.encode() == template
    assert subprocess.run(["bash", "-n"], input=result.stdout, text=True).returncode == 0
    assert f"vbridge {command}" in result.stdout


def site_names(prefix: Path) -> set[str]:
    return {p.name for p in (prefix / SITE).iterdir()}


def test_uninstall_with_rattler_leaves_nothing(
    channel: Path, tmp_path: Path, conda_cache: Path, vbridge_on_path: None
) -> None:
    prefix = tmp_path / "env"
    condaenv.install(
        channel,
        ["scipy", "six", "libblas=*=*mkl"],
        prefix,
        conda_cache,
        execute_link_scripts=True,
    )
    assert "blas_lapack :: provider :: mkl" in properties(prefix, "scipy-1.11.4.dist-info")
    condaenv.install(channel, ["six"], prefix, conda_cache, execute_link_scripts=True)
    assert not {"scipy-1.11.4.dist-info", "numpy-1.26.4.dist-info"} & site_names(prefix)
    ledger = prefix / ".vbridge" / "ledger.json"
    assert not ledger.exists() or "scipy" not in ledger.read_text()


def test_conda_order_then_uninstall_the_pre_unlink_script_cleans_up(
    channel: Path, tmp_path: Path, conda_cache: Path, vbridge_on_path: None
) -> None:
    """Files written under conda's order are not in the record conda writes after the
    script; scipy's pre-unlink script removes them before the package goes."""
    prefix = condaenv.install(
        channel, ["scipy", "six", "libblas=*=*mkl"], tmp_path / "env", conda_cache
    )
    holding = tmp_path / "not-yet-written"
    take_records_away(prefix, holding)
    result = post_link(
        prefix, PKG_NAME="scipy", PKG_VERSION="1.11.4", CONDA_PKGS_DIRS=str(conda_cache)
    )
    assert result.returncode == 0, result.stderr
    assert not (prefix / ".messages.txt").exists()  # the pre-unlink script has it covered
    put_records_back(prefix, holding)
    record = json.loads((prefix / "conda-meta" / "scipy-1.11.4-py311h64a7726_0.json").read_text())
    assert f"{SITE}/scipy-1.11.4.dist-info/variant.json" not in record["files"]
    assert (prefix / SITE / "scipy-1.11.4.dist-info" / "variant.json").exists()

    condaenv.install(channel, ["six"], prefix, conda_cache, execute_link_scripts=True)
    assert "scipy-1.11.4.dist-info" not in site_names(prefix)  # no ghost dist-info


def test_a_conda_transaction_through_the_stand_in_run_script(
    channel: Path, tmp_path: Path, conda_cache: Path, vbridge_on_path: None
) -> None:
    """conda's own way, second transaction into an existing environment: the records of
    packages already there stay, those of this transaction come after the scripts; the
    post-link script runs activated, the pre-unlink one with `bash -x`."""
    import conda_standin

    prefix = condaenv.install(channel, ["python", "six"], tmp_path / "env", conda_cache)
    before = {p.name for p in (prefix / "conda-meta").glob("*.json")}
    condaenv.install(channel, ["python", "six", "scipy", "libblas=*=*mkl"], prefix, conda_cache)
    holding = tmp_path / "not-yet-written"
    holding.mkdir()
    for record in (prefix / "conda-meta").glob("*.json"):
        if record.name not in before:
            shutil.move(record, holding / record.name)
    assert any((prefix / "conda-meta").glob("python-3*.json"))  # already there: stays
    data = json.loads((holding / SCIPY_RECORD).read_text())
    prec = conda_standin.PackageRecord(data["name"], data["version"], data["build"],
                                       data["build_number"])  # fmt: skip
    environ = {k: v for k, v in os.environ.items() if k != "VBRIDGE_CONDA_PLUGIN_SYNCS"}
    environ["CONDA_PKGS_DIRS"] = str(conda_cache)
    result = conda_standin.run_script(prefix, prec, "post-link", environ=environ)
    assert result is not None and result.stdout == "" and result.stderr == ""
    assert "blas_lapack :: provider :: mkl" in properties(prefix, "scipy-1.11.4.dist-info")
    put_records_back(prefix, holding)
    assert altered_files(prefix) == []

    result = conda_standin.run_script(prefix, prec, "pre-unlink", environ=environ)
    assert result is not None and "+ " in result.stderr  # bash -x traces the script
    assert not (prefix / SITE / "scipy-1.11.4.dist-info" / "variant.json").exists()
    assert altered_files(prefix) == []


# What a writing post-link hook does without, and what it would cost each package.
NOT_FOR_THE_HOOK = {
    "packageurl": "its dataclasses and enum: ~5 ms; sbom.package_url writes plain purls",
    "json": "~2 ms and 6 regex compiles: msgspec writes the SBOM and variant.json as json does",
    "dataclasses": "packageurl's",
    "threading": "~1 ms: the files of a batch are flushed in threads started with _thread",
    "_hashlib": "OpenSSL's library, ~3.4 ms: CPython's built-in SHA-256 hashes a hook's few "
    "contents (safefs.sha256_hex, RECORD rows)",
    "hashlib": "its import loads _hashlib",
    "tomllib": "~23 M instructions with three data files parsed: vbridge.parsed_toml keeps "
    "them parsed (the hook before this one parsed them)",
}


def test_a_writing_hook_imports_none_of_what_it_does_without(tmp_path: Path) -> None:
    """The hook of numpy in a copy of a real conda 26.7 prefix writes its variant.json
    and SBOM without importing :data:`NOT_FOR_THE_HOOK` (after scipy's hook)."""
    fixture = Path(__file__).parent / "fixtures" / "real-tools" / "conda" / "conda-26.7-create-p3"
    prefix = tmp_path / "env"
    shutil.copytree(fixture, prefix, symlinks=True)
    code = (
        "import sys\n"
        "from vbridge import entry_point\n"
        "sys.argv = ['vbridge', 'conda-post-link']\n"
        "try:\n    entry_point.main()\nexcept SystemExit:\n    pass\n"
        f"heavy = {sorted(NOT_FOR_THE_HOOK)!r}\n"
        "print([m for m in heavy if m in sys.modules], file=sys.stderr)\n"
    )
    env = {
        **os.environ,
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "PREFIX": str(prefix),
        "PKG_NAME": "numpy",
        "PKG_VERSION": "1.26.4",
        "PKG_BUILDNUM": "0",
    }
    before = {**env, "PKG_NAME": "scipy", "PKG_VERSION": "1.11.4"}
    subprocess.run([sys.executable, "-c", code], env=before, check=True, timeout=120)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.stderr.splitlines()[-1] == "[]", NOT_FOR_THE_HOOK
    dist_info = prefix / SITE / "numpy-1.26.4.dist-info"
    assert read_variant_json((dist_info / "variant.json").read_bytes()).properties
    assert json.loads((dist_info / "sboms" / "vbridge.cdx.json").read_bytes())["components"]

"""`vbridge annotate` / `vbridge clean` on real conda prefixes installed by py-rattler."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from importlib.metadata import Distribution as ImportlibDistribution
from pathlib import Path

import condaenv
import jsonschema
import pytest
import rattler
from conftest import CondaPrefixFactory, run_vbridge
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from installer.records import RecordEntry, parse_record_file
from prefixstate import changed, snapshot
from variantlib.models.variant import VariantDescription, VariantProperty
from variantlib.variant_dist_info import VariantDistInfo
from vbridge.decide.assess import assess_environment
from vbridge.destinations.annotate import annotate_environment, clean_environment
from vbridge.destinations.variant_json import SCHEMA_URL, STRICT_SCHEMA_URL, read_variant_json
from vbridge.scan import scan_environment

PROVIDERS_SCHEMA = json.loads(
    (Path(__file__).parent / "data" / "variant-schema-0.2.0.json").read_text()
)
SITE = condaenv.SITE
NUMPY = f"{SITE}/numpy-1.26.4.dist-info"


def _record_rows(path: Path) -> dict[str, RecordEntry]:
    lines = path.read_text().splitlines()
    return {row[0]: RecordEntry.from_elements(*row) for row in parse_record_file(lines)}


def _meta(prefix: Path, name: str) -> Path:
    (path,) = (prefix / "conda-meta").glob(f"{name}-[0-9]*.json")
    return path


def test_variant_json_is_read_by_variant_tools(
    mkl_channel: Path, conda_prefix: CondaPrefixFactory
) -> None:
    prefix = conda_prefix(mkl_channel, ["numpy", "six", "libblas=*=*mkl"])
    env = scan_environment(prefix)
    numpy = next(d for d in env.distributions if d.name == "numpy")
    expected = {p.to_str() for p in numpy.properties}
    assert "blas_lapack :: provider :: mkl" in expected

    annotate_environment(env)

    # Read the way a variant-aware tool reads an installed distribution.
    (dist,) = ImportlibDistribution.discover(name="numpy", path=[str(prefix / SITE)])
    text = dist.read_text("variant.json")
    assert text is not None
    document = json.loads(text)
    jsonschema.Draft202012Validator(PROVIDERS_SCHEMA).validate(document)
    assert document["$schema"] == SCHEMA_URL
    assert set(document) == {"$schema", "default-priorities", "providers", "variants"}
    (label,) = document["variants"]
    theirs = [VariantProperty.from_str(p.to_str()) for p in numpy.properties]
    assert label == VariantDescription(theirs).label  # variantlib's hash
    assert document["default-priorities"]["namespace"] == sorted(
        {p.namespace for p in numpy.properties}
    ) == sorted(document["providers"])
    desc = read_variant_json(text)
    assert {p.to_str() for p in desc.properties} == expected and desc.label == label
    parsed = VariantDistInfo(text)
    assert parsed.variant_label == label
    assert {p.to_str() for p in parsed.variant_desc.properties} == expected

    # six has no properties: nothing is written for it.
    six = prefix / SITE / "six-1.16.0.dist-info"
    assert not (six / "variant.json").exists() and not (six / "sboms").exists()


def test_added_files_are_registered_in_record_and_conda_meta(
    mkl_channel: Path, conda_prefix: CondaPrefixFactory
) -> None:
    prefix = conda_prefix(mkl_channel, ["numpy", "six", "libblas=*=*mkl"])
    before = snapshot(prefix)
    six_meta = _meta(prefix, "six").read_bytes()
    annotate_environment(scan_environment(prefix))

    added = [f"{NUMPY}/variant.json", f"{NUMPY}/sboms/vbridge.cdx.json"]
    numpy_meta = _meta(prefix, "numpy")
    assert changed(before, snapshot(prefix)) == sorted(
        [
            ".vbridge/",
            ".vbridge/backups/",
            *(f".vbridge/backups/{h}" for h in
              (before[f"{NUMPY}/RECORD"], before[numpy_meta.relative_to(prefix).as_posix()])),
            ".vbridge/ledger.json",
            numpy_meta.relative_to(prefix).as_posix(),
            f"{NUMPY}/RECORD",
            f"{NUMPY}/sboms/",
            *added,
        ]
    )
    assert _meta(prefix, "six").read_bytes() == six_meta

    rows = _record_rows(prefix / NUMPY / "RECORD")
    for rel in added:
        data = (prefix / rel).read_bytes()
        entry = rows[rel[len(SITE) + 1 :]]
        assert entry.size == len(data) and entry.hash_ is not None
        assert entry.hash_.name == "sha256" and entry.validate(data)
    assert list(rows)[-1] == "numpy-1.26.4.dist-info/RECORD"  # RECORD's own row stays last

    record = rattler.PrefixRecord.from_path(numpy_meta)  # conda's own model still reads it
    assert set(added) <= {str(f) for f in record.files}
    paths = {str(p.relative_path): p for p in record.paths_data.paths}
    for rel in added:
        data = (prefix / rel).read_bytes()
        path_entry = paths[rel]
        assert path_entry.path_type.hardlink
        assert path_entry.sha256 == hashlib.sha256(data).digest()
        assert path_entry.size_in_bytes == len(data)


def test_sbom_names_installer_and_providers_with_evidence(
    mkl_channel: Path, conda_prefix: CondaPrefixFactory
) -> None:
    prefix = conda_prefix(mkl_channel, ["numpy", "mpi4py", "libblas=*=*mkl"])
    annotate_environment(scan_environment(prefix))
    validator = JsonStrictValidator(SchemaVersion.V1_6)

    text = (prefix / NUMPY / "sboms" / "vbridge.cdx.json").read_text()
    assert validator.validate_str(text) is None
    bom = json.loads(text)
    assert bom["metadata"]["component"]["purl"] == "pkg:pypi/numpy@1.26.4"
    by_name = {c["name"]: c for c in bom["components"]}
    owner = by_name["numpy"]
    assert owner["purl"].startswith("pkg:conda/numpy@1.26.4?build=py311h64a7726_0&channel=")
    assert owner["purl"].endswith("&subdir=linux-64")
    assert {"name": "vbridge:role", "value": "installer"} in owner["properties"]
    libblas = {p["name"]: p["value"] for p in by_name["libblas"]["properties"]}
    assert libblas["vbridge:provides"] == "blas_lapack :: provider :: mkl"
    assert "build = 20_linux64_mkl" in libblas["vbridge:evidence"]
    assert by_name["libblas"]["evidence"]["occurrences"] == [
        {"location": "conda-meta/libblas-3.9.0-20_linux64_mkl.json"}
    ]
    main_deps = {d["ref"]: d["dependsOn"] for d in bom["dependencies"]}
    assert main_deps["pkg:pypi/numpy@1.26.4"] == [owner["purl"]]
    assert by_name["libblas"]["purl"] in main_deps[owner["purl"]]

    # mpi4py: its own dependency says Open MPI, and the openmpi package is named.
    bom = json.loads((prefix / SITE / "mpi4py-3.1.5.dist-info/sboms/vbridge.cdx.json").read_text())
    openmpi = next(c for c in bom["components"] if c["name"] == "openmpi")
    assert openmpi["purl"].startswith("pkg:conda/openmpi@4.1.6?build=hc5af2df_101")
    assert {"name": "vbridge:provides", "value": "mpi :: implementation :: openmpi"} in openmpi[
        "properties"
    ]
    # Provenance lives here, never in variant.json.
    assert "openmpi" not in json.dumps(
        json.loads((prefix / SITE / "mpi4py-3.1.5.dist-info/variant.json").read_text())[
            "default-priorities"
        ]
    )


def test_annotate_twice_changes_nothing_and_dry_run_writes_nothing(
    mkl_channel: Path, conda_prefix: CondaPrefixFactory
) -> None:
    prefix = conda_prefix(mkl_channel, ["scipy", "h5py", "libblas=*=*mkl"])
    before = snapshot(prefix)
    dry = annotate_environment(scan_environment(prefix), dry_run=True)
    assert snapshot(prefix) == before
    assert {c.action for c in dry.changed} == {"create", "update"}

    proc = run_vbridge("annotate", str(prefix), "--dry-run", "--json")
    assert proc.returncode == 0, proc.stderr
    assert snapshot(prefix) == before
    (document,) = json.loads(proc.stdout)["environments"]
    planned = {(c["path"], c["action"]) for c in document["changes"]}
    assert planned == {(str(c.path), c.action) for c in dry.changes}

    first = annotate_environment(scan_environment(prefix))
    assert {(str(c.path), c.action) for c in first.changes} == planned
    after = snapshot(prefix)
    second = annotate_environment(scan_environment(prefix))
    assert second.changed == [] and len(second.unchanged) == len(first.changes)
    assert snapshot(prefix) == after

    proc = run_vbridge("annotate", str(prefix))
    assert proc.returncode == 0, proc.stderr
    assert "0 file(s) changed" in proc.stdout
    assert snapshot(prefix) == after


def test_clean_restores_the_prefix_byte_for_byte(
    mkl_channel: Path, conda_prefix: CondaPrefixFactory
) -> None:
    prefix = conda_prefix(mkl_channel, ["scipy", "h5py", "mpi4py", "six", "libblas=*=*mkl"])
    before = snapshot(prefix)
    proc = run_vbridge("annotate", str(prefix))
    assert proc.returncode == 0, proc.stderr
    assert len(changed(before, snapshot(prefix))) > 20

    dry = run_vbridge("clean", str(prefix), "--dry-run", "--json")
    assert dry.returncode == 0 and json.loads(dry.stdout)["environments"][0]["changes"]
    proc = run_vbridge("clean", str(prefix))
    assert proc.returncode == 0, proc.stderr
    assert changed(before, snapshot(prefix)) == []
    # Nothing left to clean: a second clean is a no-op.
    assert run_vbridge("clean", str(prefix)).returncode == 0
    assert changed(before, snapshot(prefix)) == []


def test_removing_the_package_with_rattler_leaves_nothing(
    mkl_channel: Path, conda_prefix: CondaPrefixFactory, conda_cache: Path
) -> None:
    prefix = conda_prefix(mkl_channel, ["numpy", "mpi4py", "libblas=*=*mkl"])
    before = snapshot(prefix)
    annotate_environment(scan_environment(prefix))
    assert (prefix / NUMPY / "sboms" / "vbridge.cdx.json").is_file()

    condaenv.install(mkl_channel, ["mpi4py"], prefix, conda_cache)  # rattler unlinks numpy

    assert not (prefix / NUMPY).exists()  # no ghost dist-info
    assert not [p for p in (prefix / SITE).iterdir() if p.name.startswith("numpy")]
    assert not list((prefix / "conda-meta").glob("numpy-*.json"))
    assert not list(ImportlibDistribution.discover(name="numpy", path=[str(prefix / SITE)]))

    # The ledger forgets numpy; mpi4py's metadata is untouched and still current.
    again = annotate_environment(scan_environment(prefix))
    assert again.changed == []
    ledger = json.loads((prefix / ".vbridge" / "ledger.json").read_text())
    assert list(ledger["distributions"]) == [f"{SITE}/mpi4py-3.1.5.dist-info"]
    env = assess_environment(scan_environment(prefix))
    mpi4py = next(d for d in env.distributions if d.name == "mpi4py")
    assert mpi4py.facts["vbridge_metadata"] == "current"

    assert clean_environment(prefix).changed
    after = snapshot(prefix)
    mpi_meta = _meta(prefix, "mpi4py").relative_to(prefix).as_posix()
    for rel in (f"{SITE}/mpi4py-3.1.5.dist-info/RECORD", mpi_meta):
        assert after[rel] == before[rel]
    assert not [k for k in after if "vbridge" in k or k.endswith("variant.json")]


def test_stale_metadata_is_shown_and_refreshed(tmp_path: Path, conda_cache: Path) -> None:
    # One channel with both BLAS builds: the user switches libblas from MKL to OpenBLAS.
    packages = condaenv.science_packages(blas="mkl")
    packages += [p for p in condaenv.science_packages(blas="openblas") if
                 p.name in {"libblas", "libcblas", "liblapack"}]
    channel = condaenv.build_channel(tmp_path / "both", packages)
    prefix = condaenv.install(channel, ["numpy", "libblas=*=*mkl"], tmp_path / "env", conda_cache)
    before = snapshot(prefix)
    annotate_environment(scan_environment(prefix))
    old_variant = (prefix / NUMPY / "variant.json").read_text()

    condaenv.install(channel, ["numpy", "libblas=*=*openblas"], prefix, conda_cache)
    proc = run_vbridge("scan", str(prefix), "--json")
    dists = {d["name"]: d for d in json.loads(proc.stdout)["environments"][0]["distributions"]}
    assert dists["numpy"]["facts"]["vbridge_metadata"] == "stale"
    assert "[vbridge metadata: stale]" in run_vbridge("scan", str(prefix)).stdout

    result = annotate_environment(scan_environment(prefix))
    assert {c.path.name for c in result.changed} >= {"variant.json", "RECORD"}
    new_variant = read_variant_json((prefix / NUMPY / "variant.json").read_text())
    assert "blas_lapack :: provider :: openblas" in {p.to_str() for p in new_variant.properties}
    assert (prefix / NUMPY / "variant.json").read_text() != old_variant
    env = assess_environment(scan_environment(prefix))
    assert next(d for d in env.distributions if d.name == "numpy").facts == {
        "vbridge_metadata": "current"
    }
    rows = _record_rows(prefix / NUMPY / "RECORD")
    assert rows["numpy-1.26.4.dist-info/variant.json"].validate(
        (prefix / NUMPY / "variant.json").read_bytes()
    )

    clean_environment(prefix)
    after = snapshot(prefix)
    numpy_meta = _meta(prefix, "numpy").relative_to(prefix).as_posix()
    for rel in (f"{NUMPY}/RECORD", numpy_meta):
        assert after[rel] == before[rel]
    assert not [k for k in after if "vbridge" in k or k.endswith("variant.json")]


def test_only_and_a_package_that_owns_two_distributions(
    tmp_path: Path, conda_cache: Path
) -> None:
    # One conda package shipping two Python distributions: both share one conda-meta record.
    twin = condaenv.python_package("twin-a", "1.0", "h0_0", ["libblas >=3.9.0,<4.0a0"])
    other = condaenv.python_package("twin-b", "1.0", "h0_0", [])
    twin.files = {**twin.files, **other.files}
    packages = [*condaenv.science_packages(blas="mkl"), twin]
    channel = condaenv.build_channel(tmp_path / "twins", packages)
    prefix = condaenv.install(
        channel, ["twin-a", "numpy", "libblas=*=*mkl"], tmp_path / "env", conda_cache
    )
    before = snapshot(prefix)
    env = scan_environment(prefix)
    a, b = (prefix / SITE / f"twin_{x}-1.0.dist-info" for x in "ab")
    assert {d.name for d in env.distributions if d.owner and d.owner.name == "twin-a"} == {
        "twin-a", "twin-b"
    }

    first = annotate_environment(env, only=[a])
    assert {c.path.parent for c in first.changed if c.path.name == "variant.json"} == {a}
    assert not (prefix / NUMPY / "variant.json").exists()
    annotate_environment(scan_environment(prefix))
    meta = _meta(prefix, "twin-a")
    files = set(json.loads(meta.read_text())["files"])
    assert {f"{SITE}/twin_a-1.0.dist-info/variant.json",
            f"{SITE}/twin_b-1.0.dist-info/variant.json"} <= files

    clean_environment(prefix, only=[a])
    files = set(json.loads(meta.read_text())["files"])
    assert f"{SITE}/twin_a-1.0.dist-info/variant.json" not in files
    assert f"{SITE}/twin_b-1.0.dist-info/variant.json" in files
    assert (b / "variant.json").is_file() and not (a / "variant.json").exists()
    assert snapshot(prefix)[f"{SITE}/twin_a-1.0.dist-info/RECORD"] == before[
        f"{SITE}/twin_a-1.0.dist-info/RECORD"
    ]
    rattler.PrefixRecord.from_path(meta)

    clean_environment(prefix)
    assert changed(before, snapshot(prefix)) == []


def test_a_variant_json_vbridge_did_not_write_is_left_alone(
    tmp_path: Path, conda_cache: Path
) -> None:
    own = json.dumps({"$schema": STRICT_SCHEMA_URL, "default-priorities": {"namespace": ["x86_64"]},
                      "variants": {"x86_64_v3": {"x86_64": {"level": ["v3"]}}}}).encode()
    pkg = condaenv.python_package("fastlib", "2.0", "h1_0", ["libblas >=3.9.0,<4.0a0"])
    dist = "fastlib-2.0.dist-info"
    pkg.files = {**pkg.files, f"{SITE}/{dist}/variant.json": own}
    channel = condaenv.build_channel(
        tmp_path / "own", [*condaenv.science_packages(blas="mkl"), pkg]
    )
    prefix = condaenv.install(channel, ["fastlib", "libblas=*=*mkl"], tmp_path / "env", conda_cache)
    before = snapshot(prefix)
    result = annotate_environment(scan_environment(prefix))
    assert [f.code for f in result.findings] == ["annotate-skipped-own-metadata"]
    assert "not written by vbridge" in result.findings[0].message
    assert (prefix / SITE / dist / "variant.json").read_bytes() == own
    assert changed(before, snapshot(prefix)) == []  # nothing else to annotate: no state dir


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode().rstrip("=")


@pytest.mark.parametrize("layout", ["crlf", "no-final-newline"])
def test_record_layouts_are_kept(layout: str, tmp_path: Path, conda_cache: Path) -> None:
    pkg = condaenv.python_package("oddrec", "1.0", "h0_0", ["libblas >=3.9.0,<4.0a0"])
    rec = f"{SITE}/oddrec-1.0.dist-info/RECORD"
    text = pkg.files[rec]
    text = text.replace(b"\n", b"\r\n") if layout == "crlf" else text.rstrip(b"\n")
    pkg.files = {**pkg.files, rec: text}
    channel = condaenv.build_channel(
        tmp_path / "odd", [*condaenv.science_packages(blas="mkl"), pkg]
    )
    prefix = condaenv.install(channel, ["oddrec", "libblas=*=*mkl"], tmp_path / "env", conda_cache)
    before = snapshot(prefix)
    annotate_environment(scan_environment(prefix))
    data = (prefix / rec).read_bytes()
    variant = (prefix / SITE / "oddrec-1.0.dist-info/variant.json").read_bytes()
    row = f"oddrec-1.0.dist-info/variant.json,sha256={_b64(variant)},{len(variant)}"
    if layout == "crlf":
        assert (row + "\r\n").encode() in data and b"\n" not in data.replace(b"\r\n", b"")
    else:
        assert (row + "\n").encode() in data
    clean_environment(prefix)
    assert changed(before, snapshot(prefix)) == []


def test_a_record_rewritten_since_is_not_rolled_back(
    mkl_channel: Path, conda_prefix: CondaPrefixFactory, conda_cache: Path
) -> None:
    """rattler reinstalls numpy after annotate: clean must not bring back older bytes."""
    prefix = conda_prefix(mkl_channel, ["numpy", "mpi4py", "libblas=*=*mkl"])
    annotate_environment(scan_environment(prefix))
    # Remove numpy and install it again, with no vbridge run in between: the ledger
    # still describes the old files, the conda-meta record is a new one.
    condaenv.install(mkl_channel, ["mpi4py"], prefix, conda_cache)
    condaenv.install(mkl_channel, ["mpi4py", "numpy", "libblas=*=*mkl"], prefix, conda_cache)
    meta = _meta(prefix, "numpy")
    record = json.loads(meta.read_bytes())
    record["requested_specs"] = ["numpy >=1.26"]  # as written by the new install
    meta.write_text(json.dumps(record, indent=2))
    reinstalled = {"meta": meta.read_bytes(), "RECORD": (prefix / NUMPY / "RECORD").read_bytes()}
    assert not (prefix / NUMPY / "variant.json").exists()

    result = annotate_environment(scan_environment(prefix))
    assert (prefix / NUMPY / "variant.json").is_file()
    assert {c.path for c in result.changed} >= {meta, prefix / NUMPY / "RECORD"}
    rattler.PrefixRecord.from_path(meta)

    clean_environment(prefix)
    assert meta.read_bytes() == reinstalled["meta"]
    assert (prefix / NUMPY / "RECORD").read_bytes() == reinstalled["RECORD"]
    assert not (prefix / ".vbridge").exists()


def test_owner_removed_its_files_but_left_ours_no_ghost_remains(
    mkl_channel: Path, conda_prefix: CondaPrefixFactory
) -> None:
    """What a package manager that does not know vbridge's files leaves (dpkg does this:
    it removes what it installed and keeps a directory that is not empty). A stand-in
    for that removal: the files of numpy's original conda record are deleted by hand."""
    prefix = conda_prefix(mkl_channel, ["numpy", "libblas=*=*mkl"])
    meta = _meta(prefix, "numpy")
    original_files = json.loads(meta.read_bytes())["files"]
    annotate_environment(scan_environment(prefix))
    for rel in original_files:
        (prefix / rel).unlink()
    meta.unlink()
    assert sorted(p.name for p in (prefix / NUMPY).iterdir()) == ["sboms", "variant.json"]
    # A ghost: a dist-info with no METADATA. The next run removes what vbridge left.
    result = annotate_environment(scan_environment(prefix))
    assert {c.action for c in result.changed} == {"remove"}
    assert not (prefix / NUMPY).exists()
    assert not (prefix / ".vbridge").exists()


def test_a_lost_ledger_is_rebuilt_from_vbridge_own_sbom(
    mkl_channel: Path, conda_prefix: CondaPrefixFactory
) -> None:
    prefix = conda_prefix(mkl_channel, ["numpy", "scipy", "libblas=*=*mkl"])
    before = snapshot(prefix)
    annotate_environment(scan_environment(prefix))
    annotated = snapshot(prefix)
    shutil.rmtree(prefix / ".vbridge")  # the user deleted vbridge's state

    again = annotate_environment(scan_environment(prefix))
    assert again.findings == [] and again.changed == []
    assert changed(annotated, snapshot(prefix)) == []  # same files, same ledger, backups
    clean_environment(prefix)
    assert changed(before, snapshot(prefix)) == []


def _altered_files(prefix: Path) -> list[str]:
    """What `conda doctor`'s altered-files check reports: files whose sha256 differs
    from the ``sha256_in_prefix`` their conda-meta record notes."""
    altered = []
    for meta in (prefix / "conda-meta").glob("*.json"):
        for entry in json.loads(meta.read_bytes()).get("paths_data", {}).get("paths", []):
            expected = entry.get("sha256_in_prefix")
            path = prefix / entry["_path"]
            if (
                expected
                and path.is_file()
                and hashlib.sha256(path.read_bytes()).hexdigest() != expected
            ):
                altered.append(entry["_path"])
    return altered


def test_conda_style_records_stay_consistent_for_conda_doctor(
    mkl_channel: Path, conda_prefix: CondaPrefixFactory
) -> None:
    prefix = conda_prefix(mkl_channel, ["numpy", "libblas=*=*mkl"])
    # Stand-in for conda's own writer (conda is not installable here): the same record
    # as conda writes it, with `sha256_in_prefix` for every file, sorted keys, indent 2.
    meta = _meta(prefix, "numpy")
    record = json.loads(meta.read_bytes())
    for entry in record["paths_data"]["paths"]:
        data = (prefix / entry["_path"]).read_bytes()
        entry["sha256_in_prefix"] = hashlib.sha256(data).hexdigest()
    meta.write_text(json.dumps(record, indent=2, sort_keys=True, separators=(",", ": ")))
    before = snapshot(prefix)
    assert _altered_files(prefix) == []

    annotate_environment(scan_environment(prefix))
    assert _altered_files(prefix) == []  # RECORD changed, and the record says so
    entries = {e["_path"]: e for e in json.loads(meta.read_bytes())["paths_data"]["paths"]}
    assert entries[f"{NUMPY}/variant.json"]["sha256_in_prefix"] == entries[
        f"{NUMPY}/variant.json"]["sha256"]
    rattler.PrefixRecord.from_path(meta)
    assert annotate_environment(scan_environment(prefix)).changed == []

    clean_environment(prefix)
    assert changed(before, snapshot(prefix)) == []
    assert _altered_files(prefix) == []

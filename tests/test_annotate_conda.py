"""`vbridge annotate` / `vbridge clean` on real conda prefixes installed by py-rattler."""

from __future__ import annotations

import base64
import hashlib
import json
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
from variantlib.errors import ValidationError
from variantlib.models.variant import VariantDescription
from variantlib.variant_dist_info import VariantDistInfo
from vbridge.annotate import annotate_environment, clean_environment
from vbridge.scan import scan_environment
from vbridge.variantjson import SCHEMA_URL, read_variant_json

SCHEMA = json.loads((Path(__file__).parent / "data" / "variant-schema-0.1.1.json").read_text())
SITE = condaenv.SITE
NUMPY = f"{SITE}/numpy-1.26.4.dist-info"


def _record_rows(path: Path) -> dict[str, RecordEntry]:
    lines = path.read_text().splitlines()
    return {row[0]: RecordEntry.from_elements(*row) for row in parse_record_file(lines)}


def _meta(prefix: Path, name: str) -> Path:
    (path,) = (prefix / "conda-meta").glob(f"{name}-[0-9]*.json")
    return path


def test_variant_json_is_pep825_and_read_by_variant_tools(
    mkl_channel: Path, conda_prefix: CondaPrefixFactory
) -> None:
    prefix = conda_prefix(mkl_channel, ["numpy", "six", "libblas=*=*mkl"])
    env = scan_environment(prefix)
    numpy = next(d for d in env.distributions if d.name == "numpy")
    expected = {p.to_str() for p in numpy.properties}
    assert "blas_lapack :: provider :: mkl" in expected

    annotate_environment(env)

    # Read the way a PEP 825 tool reads an installed distribution.
    (dist,) = ImportlibDistribution.discover(name="numpy", path=[str(prefix / SITE)])
    text = dist.read_text("variant.json")
    assert text is not None
    document = json.loads(text)
    jsonschema.Draft202012Validator(SCHEMA).validate(document)
    assert document["$schema"] == SCHEMA_URL
    assert set(document) == {"$schema", "default-priorities", "variants"}
    (label,) = document["variants"]
    assert label == VariantDescription(sorted(numpy.properties)).label  # variantlib's hash
    assert document["default-priorities"]["namespace"] == sorted(
        {p.namespace for p in numpy.properties}
    )
    desc = read_variant_json(text)
    assert {p.to_str() for p in desc.properties} == expected and desc.label == label

    # variantlib 0.2.2's VariantDistInfo implements the providers draft (schema 0.2.0),
    # which demands a `providers` table that the 0.1.1 schema forbids. Given that table
    # (static properties: what is installed), it reads exactly our variant.
    try:
        parsed = VariantDistInfo(text)
    except ValidationError as exc:
        assert "providers" in str(exc)
        with_providers = dict(document)
        with_providers["providers"] = {
            ns: {"static-properties": features}
            for ns, features in document["variants"][label].items()
        }
        parsed = VariantDistInfo(json.dumps(with_providers))
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
            ".vbridge/lock",
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
        entry = paths[rel]
        assert entry.path_type.hardlink
        assert entry.sha256 == hashlib.sha256(data).digest()
        assert entry.size_in_bytes == len(data)


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
    planned = {(c["path"], c["action"]) for c in json.loads(proc.stdout)["changes"]}
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
    assert dry.returncode == 0 and json.loads(dry.stdout)["changes"]
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
    env = scan_environment(prefix)
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
    env = scan_environment(prefix)
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
    own = json.dumps({"$schema": SCHEMA_URL, "default-priorities": {"namespace": ["x86_64"]},
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

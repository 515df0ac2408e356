"""``variant.json`` as the tools that parse it read it: every file vbridge writes.

A real conda prefix (py-rattler) with the science stack (numpy, scipy, h5py built for
Open MPI, mpi4py) is annotated; each ``variant.json`` written there is then

- read through ``importlib.metadata`` (how an installer reads an installed dist),
- parsed by variantlib's ``VariantDistInfo`` (variantlib 0.2.2, the release on the
  package index; the wheelnext pip fork names no release, see docs/installed-variants.md),
- read as the wheelnext pip fork's ``pip check`` path reads every installed dist
  (``VariantsJson(json.loads(dist.read_text("variant.json")))``, one variant) through
  pip's own metadata API, and by real ``pip check``,
- validated against the providers draft's schema 0.2.0 (default layout) or PEP 825's
  0.1.1 (the strict layout), both in tests/data.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import distributions
from pathlib import Path

import condaenv
import jsonschema
import pytest
from conftest import CondaPrefixFactory, run_vbridge
from variantlib.variant_dist_info import VariantDistInfo
from variantlib.variants_json import VariantsJson
from vbridge.destinations.annotate import annotate_environment
from vbridge.destinations.variant_json import (
    SCHEMA_URL,
    STRICT_SCHEMA_URL,
    layout_of,
    provider_entries,
    read_variant_json,
    variant_description,
    variant_json_text,
)
from vbridge.model import Property
from vbridge.scan import scan_environment

DATA = Path(__file__).parent / "data"
SCHEMA_0_2_0 = json.loads((DATA / "variant-schema-0.2.0.json").read_text())
SCHEMA_0_1_1 = json.loads((DATA / "variant-schema-0.1.1.json").read_text())
SITE = condaenv.SITE
STACK = ["numpy", "scipy", "h5py", "mpi4py", "six", "libblas=*=*mkl"]


def written_files(prefix: Path) -> dict[str, str]:
    """Every variant.json in the prefix, by distribution name, read via importlib.metadata."""
    out: dict[str, str] = {}
    for dist in distributions(path=[str(prefix / SITE)]):
        text = dist.read_text("variant.json")
        if text is not None:
            out[dist.metadata["Name"].lower()] = text
    return out


@pytest.fixture
def annotated(mkl_channel: Path, conda_prefix: CondaPrefixFactory) -> Path:
    prefix = conda_prefix(mkl_channel, STACK)
    annotate_environment(scan_environment(prefix))
    return prefix


def test_every_file_written_is_parsed_by_variantlib_and_valid(annotated: Path) -> None:
    env = scan_environment(annotated)
    carriers = {d.name: d for d in env.distributions if d.properties}
    files = written_files(annotated)
    assert set(files) == set(carriers) >= {"numpy", "scipy", "h5py", "mpi4py"}
    for name, text in files.items():
        expected = {p.to_str() for p in carriers[name].properties}
        document = json.loads(text)
        jsonschema.Draft202012Validator(SCHEMA_0_2_0).validate(document)
        assert document["$schema"] == SCHEMA_URL
        info = VariantDistInfo(text)  # raises on anything variantlib rejects
        assert {p.to_str() for p in info.variant_desc.properties} == expected
        assert info.variant_label == variant_description(carriers[name].properties).label
        assert set(info.namespace_priorities) == set(info.providers)
        assert info.to_str() + "\n" == text  # variantlib's own writer gave these bytes
    # Providers: vbridge's plugins for the namespaces they serve, named by the stable
    # plugin-api path.
    h5py = VariantDistInfo(files["h5py"])
    assert h5py.providers["mpi"].requires == ["vbridge"]
    assert h5py.providers["mpi"].plugin_api == "vbridge.variant_plugin:mpi"
    assert json.loads(files["h5py"])["variants"][h5py.variant_label]["hdf5"] == {
        "parallel": ["on"]
    }
    assert h5py.providers["hdf5"].plugin_api == "vbridge.variant_plugin:hdf5"


def test_pip_check_style_reading_of_every_installed_dist(annotated: Path) -> None:
    """The wheelnext pip fork's check path, through pip's own metadata API: it catches
    only FileNotFoundError/ImportError, so any file variantlib rejects aborts it."""
    from pip._internal.metadata import get_environment

    seen = {}
    for dist in get_environment([str(annotated / SITE)]).iter_installed_distributions(
        local_only=False, skip=()
    ):
        try:
            text = dist.read_text("variant.json")
        except FileNotFoundError:
            continue
        ((label, desc),) = VariantsJson(json.loads(text)).variants.items()
        seen[str(dist.canonical_name)] = label
        assert desc.label == label
    assert {"numpy", "scipy", "h5py", "mpi4py"} <= set(seen)
    # Real pip check with the prefix's site-packages first on sys.path (pip reads the
    # default environment from sys.path): it reads every dist-info vbridge touched
    # (RECORD rows added) and reports on requirements only.
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from pip._internal.cli.main import main; sys.exit(main(['check']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(annotated / SITE)], capture_output=True, text=True
    )
    assert result.returncode in (0, 1), result.stderr  # 1: a requirement is not met
    lines = [line for line in result.stdout.splitlines() if line]
    assert lines and all(
        line.startswith("No broken requirements") or " requires " in line or " has " in line
        for line in lines
    ), result.stdout
    assert "variant.json" not in result.stdout + result.stderr


def test_strict_layout_is_pep825_0_1_1_and_kept(annotated: Path) -> None:
    result = run_vbridge("annotate", "--variant-json", "pep825-0.1.1", str(annotated))
    assert result.returncode == 0, result.stderr
    files = written_files(annotated)
    for text in files.values():
        document = json.loads(text)
        jsonschema.Draft202012Validator(SCHEMA_0_1_1).validate(document)
        assert document["$schema"] == STRICT_SCHEMA_URL
        assert set(document) == {"$schema", "default-priorities", "variants"}
        assert layout_of(text) == "pep825-0.1.1"
        read_variant_json(text)  # vbridge's own reader takes both layouts
    # A later run without the option (a hook, conda's plugin) keeps the chosen layout...
    again = run_vbridge("annotate", str(annotated))
    assert again.returncode == 0 and written_files(annotated) == files
    scan = run_vbridge("scan", str(annotated))
    assert "[vbridge metadata: stale]" not in scan.stdout
    # ...and the option turns it back.
    run_vbridge("annotate", "--variant-json", "providers", str(annotated), check=True)
    assert all(layout_of(t) == "providers" for t in written_files(annotated).values())


def test_unknown_layout_is_a_usage_error(annotated: Path) -> None:
    result = run_vbridge("annotate", "--variant-json", "0.3", str(annotated))
    assert result.returncode == 2
    assert "unknown layout" in result.stderr and "pep825-0.1.1" in result.stderr


def test_providers_named_per_namespace() -> None:
    props = [
        Property.from_str(s)
        for s in (
            "x86_64 :: level :: v3",
            "blas_lapack :: provider :: mkl",
            "openmp :: provider :: llvm",
            "mpi :: implementation :: mpich",
            "hdf5 :: parallel :: off",
            "nvidia :: cuda_version_lower_bound :: 12.0",
        )
    ]
    text = variant_json_text(props)
    info = VariantDistInfo(text)
    # The published provider package where the index has one...
    assert info.providers["x86_64"].requires == ["provider-variant-x86-64>=0.0.1"]
    assert info.providers["x86_64"].plugin_api == "provider_variant_x86_64.plugin:X8664Plugin"
    # ...vbridge's plugins for what they serve...
    for ns in ("blas_lapack", "openmp", "mpi", "hdf5"):
        assert info.providers[ns].plugin_api == f"vbridge.variant_plugin:{ns}"
    # ...and the installed values, declared, where there is neither.
    assert info.providers["nvidia"].static_properties == {"cuda_version_lower_bound": ["12.0"]}
    jsonschema.Draft202012Validator(SCHEMA_0_2_0).validate(json.loads(text))
    assert provider_entries(variant_description(props)).keys() == info.providers.keys()


def test_plugin_api_paths_resolve_to_vbridge_plugins() -> None:
    import importlib

    for ns in ("blas_lapack", "openmp", "mpi", "hdf5"):
        module, _, attr = f"vbridge.variant_plugin:{ns}".partition(":")
        plugin = getattr(importlib.import_module(module), attr)
        assert plugin.namespace == ns

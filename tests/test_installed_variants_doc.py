"""docs/installed-variants.md: every example in it is what vbridge produces.

Each fenced block preceded by ``<!-- vbridge example: NAME -->`` is generated here from
a real conda prefix (py-rattler, the conda-forge-shaped MKL channel of the tests) or
from vbridge's writers, and compared with the document. ``VBRIDGE_WRITE_DOC_EXAMPLES=1``
rewrites the blocks instead (then review the diff).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import condaenv
import condapython
import pytest
from variantlib.api import get_variants_by_priority
from variantlib.plugins.loader import VARIANT_PROVIDER_CACHE_TABLE
from vbridge.decide.assess import assess_environment
from vbridge.destinations.annotate import annotate_environment
from vbridge.destinations.variant_json import variant_json_text
from vbridge.integrations.variants_toml import write_variants_toml
from vbridge.model import Property
from vbridge.scan import scan_environment

DOC = Path(__file__).resolve().parent.parent / "docs" / "installed-variants.md"
MARKER = re.compile(
    r"<!-- vbridge example: (?P<name>[a-z0-9-]+) -->\n```(?P<lang>\w*)\n(?P<body>.*?)```", re.S
)
SITE = condaenv.SITE


class Examples:
    """Builds the environment once and answers each example by name."""

    def __init__(self, root: Path) -> None:
        channel = condaenv.build_channel(root / "mkl", condaenv.science_packages(blas="mkl"))
        self.channel = channel
        self.prefix = condaenv.install(
            channel, ["numpy", "scipy", "h5py", "mpi4py"], root / "env", root / "cache"
        )
        env = assess_environment(scan_environment(self.prefix))
        annotate_environment(env)
        self.env = env
        home = root / "home"
        os.environ.update(
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / ".config"),
            XDG_CONFIG_DIRS=str(root / "etc-xdg"),
        )
        write_variants_toml(env)

    def _dist_file(self, dist: str, name: str) -> str:
        return (self.prefix / SITE / dist / name).read_text()

    def _anonymous(self, text: str) -> str:
        return text.replace(self.channel.as_uri(), "https://conda.anaconda.org/conda-forge")

    def conda_numpy_variant_json(self) -> str:
        return self._dist_file("numpy-1.26.4.dist-info", "variant.json")

    def conda_h5py_variant_json(self) -> str:
        return self._dist_file("h5py-3.11.0.dist-info", "variant.json")

    def conda_numpy_sbom_libblas(self) -> str:
        bom = json.loads(self._dist_file("numpy-1.26.4.dist-info", "sboms/vbridge.cdx.json"))
        (libblas,) = [c for c in bom["components"] if c["name"] == "libblas"]
        return self._anonymous(json.dumps(libblas, indent=2)) + "\n"

    def conda_numpy_registration(self) -> str:
        (meta,) = (self.prefix / "conda-meta").glob("numpy-1.26.4-*.json")
        record = json.loads(meta.read_text())
        ours = [p for p in record["files"] if p.endswith(("variant.json", "vbridge.cdx.json"))]
        return json.dumps({"files": ours}, indent=2) + "\n"

    def conda_variants_toml(self) -> str:
        return (self.prefix / "variants.toml").read_text()

    def scipy_ranking(self) -> str:
        index = {
            "$schema": "https://variants-schema.wheelnext.dev/v0.2.0.json",
            "default-priorities": {"namespace": ["blas_lapack"]},
            "providers": {
                "blas_lapack": {
                    "requires": ["vbridge"],
                    "plugin-api": "vbridge.variant_plugin:blas_lapack",
                }
            },
            "variants": {
                "openblas": {"blas_lapack": {"provider": ["openblas"]}},
                "mkl": {"blas_lapack": {"provider": ["mkl"]}},
                "null": {},
            },
        }
        python = condapython.make_python_environment(self.prefix)
        VARIANT_PROVIDER_CACHE_TABLE.clear()
        ranked = get_variants_by_priority(variants_json=index, venv_python_executable=python)
        return f"get_variants_by_priority(scipy's variants.json): {[v.label for v in ranked]}\n"

    def mpi_mismatch(self) -> str:
        python = condapython.make_python_environment(self.prefix)
        index = {
            "$schema": "https://variants-schema.wheelnext.dev/v0.2.0.json",
            "default-priorities": {"namespace": ["mpi"]},
            "providers": {
                "mpi": {"requires": ["vbridge"], "plugin-api": "vbridge.variant_plugin:mpi"}
            },
            "variants": {
                "mpich": {"mpi": {"implementation": ["mpich"]}},
                "openmpi": {"mpi": {"implementation": ["openmpi"]}},
                "null": {},
            },
        }
        VARIANT_PROVIDER_CACHE_TABLE.clear()
        ranked = get_variants_by_priority(variants_json=index, venv_python_executable=python)
        labels = [v.label for v in ranked]
        return f"get_variants_by_priority(variants.json with mpich, openmpi): {labels}\n"

    def x86_64_variant_json(self) -> str:
        return variant_json_text([Property.from_str("x86_64 :: level :: v3")])

    def debian_h5py_serial_variant_json(self) -> str:
        return variant_json_text(
            [Property.from_str("hdf5 :: parallel :: off"),
             Property.from_str("blas_lapack :: provider :: openblas")]
        )

    def strict_numpy_variant_json(self) -> str:
        numpy = next(d for d in self.env.distributions if d.name == "numpy")
        return variant_json_text(numpy.properties, "pep825-0.1.1")


def _examples() -> dict[str, Callable[[Examples], str]]:
    return {
        name.replace("_", "-"): getattr(Examples, name)
        for name in vars(Examples)
        if not name.startswith("_")
    }


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Examples]:
    saved = {k: os.environ.get(k) for k in ("HOME", "XDG_CONFIG_HOME", "XDG_CONFIG_DIRS")}
    try:
        yield Examples(tmp_path_factory.mktemp("doc"))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_every_example_in_the_document_is_what_vbridge_produces(examples: Examples) -> None:
    text = DOC.read_text()
    found = {m.group("name"): m for m in MARKER.finditer(text)}
    known = _examples()
    assert set(found) <= set(known), set(found) - set(known)
    missing = set(known) - set(found)
    assert not missing, f"examples not shown in the document: {missing}"
    generated = {name: known[name](examples) for name in found}
    if os.environ.get("VBRIDGE_WRITE_DOC_EXAMPLES") == "1":
        out = MARKER.sub(
            lambda m: f"<!-- vbridge example: {m.group('name')} -->\n```{m.group('lang')}\n"
            f"{generated[m.group('name')]}```",
            text,
        )
        DOC.write_text(out)
        text = out
        found = {m.group("name"): m for m in MARKER.finditer(text)}
    for name, match in found.items():
        assert match.group("body") == generated[name], f"docs/installed-variants.md: {name}"


def test_the_document_cites_what_a_reader_can_open() -> None:
    text = DOC.read_text()
    assert "PEP 850" not in text
    assert "wheelnext/peps" in text and "#40" in text
    assert "blas_lapack_variant_provider" in text

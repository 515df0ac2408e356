"""``clean`` is byte-exact for any valid JSON layout of the conda-meta record it edits.

conda, micromamba, rattler and hand edits write records in many layouts; vbridge re-
serialises a record only to register its files, and the first annotate backs up the
record's own bytes, so clean gives back exactly the file that was there. Eleven layouts
json.dumps never writes, each annotated then cleaned in a real rattler prefix.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from prefixstate import changed, snapshot
from vbridge.destinations.annotate import annotate_environment, clean_environment
from vbridge.scan import scan_environment

NUMPY = "lib/python3.11/site-packages/numpy-1.26.4.dist-info"


LAYOUTS: dict[str, Callable[[dict[str, object]], bytes]] = {
    "bom": lambda r: b"\xef\xbb\xbf" + json.dumps(r, indent=2).encode(),
    "crlf": lambda r: json.dumps(r, indent=2).replace("\n", "\r\n").encode() + b"\r\n",
    "tabs": lambda r: json.dumps(r, indent="\t").encode() + b"\n",
    "compact": lambda r: json.dumps(r, separators=(",", ":")).encode(),
    "escaped-slash": lambda r: json.dumps(r, indent=1).replace("/", "\\/").encode() + b"\n",
    "mixed-escapes": lambda r: json.dumps(r, indent=2, ensure_ascii=False)
    .replace('"name": "numpy"', '"name": "n\\u0075mpy", "note": "\\u00e9t\\u00E9 \u00e9 \\n"')
    .encode(),
    "duplicate-key": lambda r: json.dumps(r, indent=2)
    .replace("{", '{\n  "name": "not-numpy",', 1)
    .encode(),
    "exponent-zero": lambda r: json.dumps(r, indent=2)
    .replace("{", '{\n  "x_score": 0.0e0, "x_big": 1E+2, "x_neg": -0.0,', 1)
    .encode(),
    "space-before-colon": lambda r: json.dumps(r, indent=4, separators=(" ,", " : ")).encode(),
    "trailing-spaces": lambda r: json.dumps(r, indent=2).replace("\n", "  \n").encode() + b"  ",
    "unsorted-one-line-per-key": lambda r: (
        "{\n" + ",\n".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in reversed(r.items()))
        + "\n}\n"
    ).encode(),
}


@pytest.fixture(scope="module")
def pristine(
    tmp_path_factory: pytest.TempPathFactory, mkl_channel: Path, conda_cache: Path
) -> Path:
    import condaenv

    base = tmp_path_factory.mktemp("layouts")
    return condaenv.install(mkl_channel, ["numpy", "libblas=*=*mkl"], base / "env", conda_cache)


def test_there_are_eleven_layouts() -> None:
    assert len(LAYOUTS) == 11


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_clean_gives_back_the_exact_bytes(pristine: Path, tmp_path: Path, layout: str) -> None:
    prefix = tmp_path / "env"
    shutil.copytree(pristine, prefix, symlinks=True)
    (record,) = (prefix / "conda-meta").glob("numpy-*.json")
    data = LAYOUTS[layout](json.loads(record.read_bytes()))
    json.loads(data.decode("utf-8-sig"))  # a valid JSON document, as conda reads it
    record.write_bytes(data)
    before = snapshot(prefix)

    result = annotate_environment(scan_environment(prefix))
    assert (prefix / NUMPY / "variant.json").is_file()
    assert record.read_bytes() != data  # vbridge's files are registered in it
    assert any(c.path == record and c.action == "update" for c in result.changed)

    clean_environment(prefix)
    assert record.read_bytes() == data
    assert changed(before, snapshot(prefix)) == []

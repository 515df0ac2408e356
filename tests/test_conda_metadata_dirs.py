"""Which ``*.dist-info``/``*.egg-info`` directories a conda record's ``files`` name:
:func:`vbridge.adapters.conda.metadata_dir_names` against the rule spelt out directly
(each file's first path component with a metadata suffix, ``\\`` read as ``/``, in the
order first named), on the records of the conda fixtures and on generated lists with
the awkward cases (a metadata directory named again after others, nested ones, an
``.egg-info`` file, ``-info`` elsewhere in a name, Windows separators)."""

from __future__ import annotations

import json
import random
from pathlib import Path

from vbridge.adapters.conda import metadata_dir_names

FIXTURES = Path(__file__).parent / "fixtures"


def spelt_out(files: list[str]) -> list[str]:
    found: list[str] = []
    for entry in files:
        parts = entry.replace("\\", "/").split("/")
        for i, part in enumerate(parts):
            if part.endswith((".dist-info", ".egg-info")):
                if ".dist-info/" in "/".join(parts) or ".egg-info" in "/".join(parts):
                    directory = "/".join(parts[: i + 1])
                    if directory not in found:
                        found.append(directory)
                break
    return found


def test_the_fixture_records() -> None:
    checked = 0
    for path in sorted(FIXTURES.rglob("conda-meta/*.json")):
        try:
            files = json.loads(path.read_text(encoding="utf-8")).get("files") or []
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(files, list) and all(isinstance(f, str) for f in files):
            assert metadata_dir_names(files) == spelt_out(files), path
            checked += 1
    assert checked > 50


def test_generated_lists() -> None:
    rng = random.Random(18)
    pieces = [
        "lib/python3.11/site-packages/a-1.dist-info/RECORD",
        "lib/python3.11/site-packages/a-1.dist-info/METADATA",
        "lib/python3.11/site-packages/a/__init__.py",
        "lib/python3.11/site-packages/b-2.egg-info",
        "lib/python3.11/site-packages/c-3.egg-info/PKG-INFO",
        "lib/python3.11/site-packages/a-1.dist-info/sub.dist-info/x",
        "Lib\\site-packages\\d-4.dist-info\\RECORD",
        "Lib/site-packages/d-4.dist-info/WHEEL",
        "share/doc/x-info/readme",
        "bin/tool-info",
        "lib/python3.11/site-packages/e-5.dist-info",
        "lib/python3.11/site-packages/f-6.dist-info.bak/RECORD",
        "include/g.egg-info.h",
        "lib/python3.11/site-packages/a-1.dist-info-2.dist-info/RECORD",
    ]
    for _ in range(2000):
        files = [rng.choice(pieces) for _ in range(rng.randint(0, 12))]
        assert metadata_dir_names(files) == spelt_out(files), files

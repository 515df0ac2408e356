"""Baseline (the floor): a typed partial decode of every conda-meta record with msgspec.

Decodes into a Struct of exactly the fields a conda-meta reader needs (name, version,
build, channel, subdir, depends, constrains, features, flags, files...) and nothing
else: ``paths_data`` is skipped by msgspec's parser, no Python object is built for it.
This is the least any Python reader of conda-meta can do; vbridge's first scan is
measured against it (target: within 1.5x). Defined here, not imported from vbridge.

python bench/load_msgspec.py PREFIX/conda-meta
"""

from __future__ import annotations

import os
import sys
from typing import Any

import msgspec


class Record(msgspec.Struct):
    name: str
    version: str
    build: str | None = None
    build_string: str | None = None
    subdir: str | None = None
    channel: str | None = None
    depends: list[str] | None = None
    constrains: list[str] | None = None
    requested_spec: str | None = None
    noarch: str | bool | dict[str, Any] | None = None
    python_site_packages_path: str | None = None
    purls: list[str] | None = None
    sha256: str | None = None
    flags: str | list[str] | None = None
    track_features: str | list[str] | None = None
    features: str | list[str] | None = None
    files: list[str] | None = None


def load(directory: str) -> list[Record]:
    decoder = msgspec.json.Decoder(Record)
    records = []
    for name in os.listdir(directory):
        if name.endswith(".json"):
            with open(os.path.join(directory, name), "rb") as fh:
                records.append(decoder.decode(fh.read()))
    return records


if __name__ == "__main__":
    load(sys.argv[1])

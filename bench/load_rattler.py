"""Baseline: py-rattler loads every ``conda-meta/*.json`` as a ``PrefixRecord``.

python bench/load_rattler.py PREFIX/conda-meta
"""

import os
import sys

import rattler

directory = sys.argv[1]
for name in os.listdir(directory):
    if name.endswith(".json"):
        rattler.PrefixRecord.from_path(os.path.join(directory, name))

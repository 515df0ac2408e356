"""Baseline: ``json.load`` every ``*.json`` in a directory, or one file. Nothing else.

python bench/load_json.py PREFIX/conda-meta
python bench/load_json.py TREE/.spack-db/index.json
"""

import json
import os
import sys

target = sys.argv[1]
if os.path.isdir(target):
    for name in os.listdir(target):
        if name.endswith(".json"):
            with open(os.path.join(target, name), "rb") as fh:
                json.load(fh)
else:
    with open(target, "rb") as fh:
        json.load(fh)

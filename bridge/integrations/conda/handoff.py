"""The post-link hook hands its package to the vbridge conda plugin.

conda runs post-link scripts before it writes the records of the transaction. The
vbridge conda plugin, loaded by that conda, annotates every distribution the transaction
linked once the records are written: ``conda_post_transaction_actions`` on conda 25.5+,
after the command on older conda. It says so in the environment conda gives the link
scripts (``VBRIDGE_CONDA_PLUGIN_SYNCS=1``).

A post-link hook that sees this and finds no record of its package yet
(:func:`plugin_annotates_after`) has nothing to do. Whatever it would write from the
package cache, the plugin writes a moment later and registers in the record. So the
hook leaves at once, before msgspec and the scan are imported. That is an interpreter's
start-up per package instead of the whole hook (bench/bench_post_link.py, the row
"under conda with the vbridge plugin").

Every other case runs the hook as before:

- no plugin (plain conda, mamba);
- rattler and pixi, which write the records first;
- a record of the package already there.

This module imports nothing but :mod:`os`: the console script calls it before anything
else.

>>> plugin_annotates_after({"PREFIX": "/nonexistent", "PKG_NAME": "numpy",
...                         "PKG_VERSION": "1.26.4"})  # no plugin in this installer
False
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:  # annotations only
    from collections.abc import Mapping

__all__ = ["PLUGIN_SYNCS_VARIABLE", "plugin_annotates_after", "record_names"]

# Set to "1" by the vbridge conda plugin in the conda process (and so in the link
# scripts' environment) when it will annotate after the transaction.
PLUGIN_SYNCS_VARIABLE = "VBRIDGE_CONDA_PLUGIN_SYNCS"


def plugin_annotates_after(environ: Mapping[str, str]) -> bool:
    """Whether the vbridge conda plugin annotates this post-link script's package after
    the transaction: it says so in ``environ``, and ``$PREFIX/conda-meta`` holds no
    ``<PKG_NAME>-<PKG_VERSION>-*.json`` yet.

    False when a conda variable is missing or ``conda-meta`` cannot be listed. The hook
    then runs and reports the problem itself.
    """
    if environ.get(PLUGIN_SYNCS_VARIABLE) != "1":
        return False
    prefix, name, version = (environ.get(v) for v in ("PREFIX", "PKG_NAME", "PKG_VERSION"))
    if not (prefix and name and version):
        return False
    try:
        return not record_names(os.path.join(prefix, "conda-meta"), name, version)
    except OSError:
        return False


def record_names(conda_meta: str, name: str, version: str) -> list[str]:
    """The names of the records of ``name`` ``version`` in the directory ``conda_meta``
    (``<name>-<version>-*.json``, as conda names them), sorted. Raises ``OSError`` when
    the directory cannot be listed.

    What ``Path.glob`` gives, without compiling a pattern and making a path per record
    of the prefix. (A name shorter than ``<head>.json`` cannot match both ends: the
    head ends with ``-``, which ``.json`` does not hold.)
    """
    head = f"{name}-{version}-"
    with os.scandir(conda_meta) as entries:
        return sorted(
            e.name for e in entries if e.name.startswith(head) and e.name.endswith(".json")
        )

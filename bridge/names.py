"""Distribution names compared as PEP 503 says: runs of ``-``, ``_`` and ``.`` become
one ``-``, and case is folded with ``str.lower``.

This is ``packaging.utils.canonicalize_name`` (without its opt-in validation), kept
here for the modules every conda post-link script imports: importing
``packaging.utils`` imports ``packaging.tags``, which imports ``platform`` and
``sysconfig`` (~15 ms a run). ``tests/test_names.py`` checks both agree on every
distribution name of the fixtures and on generated ones.

>>> canonical_name("Zope.Interface")
'zope-interface'
>>> canonical_name("h5py._debian_h5py_serial")
'h5py-debian-h5py-serial'
"""

from __future__ import annotations

import re

__all__ = ["canonical_name"]

_SEPARATOR_RUNS = re.compile(r"[-_.]+")


def canonical_name(name: str) -> str:
    """The PEP 503 normalised form of a distribution (or conda package) name."""
    return _SEPARATOR_RUNS.sub("-", name).lower()

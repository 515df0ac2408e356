"""vbridge: cross-ecosystem metadata bridge for Python packaging.

Adapters (``vbridge.adapters``) read conda, apt/dpkg, Spack and pip install records;
the bridge translates them into standard wheel-variant properties (PEP 825) and writes
them into installed distributions' ``.dist-info`` directories.

The public API is the names in ``__all__``, imported on first use so that
``import vbridge`` stays cheap (the conda post-link hook imports it). A scan reads an
environment into the model; an assessment adds findings and the status of written
metadata (``assess_environment(scan_environment(prefix))``)::

    >>> import vbridge
    >>> sorted(vbridge.__all__)[:3]
    ['Distribution', 'Environment', 'Evidence']
"""

from __future__ import annotations

# typing.TYPE_CHECKING without importing typing: `vbridge --version` and the link
# scripts import this package first (~5 ms).
TYPE_CHECKING = False

__version__ = "0.1.0"

_PUBLIC = {
    "scan_environment": "vbridge.scan",
    "scan_python": "vbridge.scan",
    "assess_environment": "vbridge.decide.assess",
    "annotate_environment": "vbridge.destinations.annotate",
    "clean_environment": "vbridge.destinations.annotate",
    "Distribution": "vbridge.model",
    "Environment": "vbridge.model",
    "Evidence": "vbridge.model",
    "Finding": "vbridge.model",
    "InstallRecord": "vbridge.model",
    "Owner": "vbridge.model",
    "Property": "vbridge.model",
    "VbridgeError": "vbridge.errors",
}
__all__ = [
    "Distribution",
    "Environment",
    "Evidence",
    "Finding",
    "InstallRecord",
    "Owner",
    "Property",
    "VbridgeError",
    "annotate_environment",
    "assess_environment",
    "clean_environment",
    "scan_environment",
    "scan_python",
]

if TYPE_CHECKING:
    from typing import Any

    from vbridge.decide.assess import assess_environment
    from vbridge.destinations.annotate import annotate_environment, clean_environment
    from vbridge.errors import VbridgeError
    from vbridge.model import (
        Distribution,
        Environment,
        Evidence,
        Finding,
        InstallRecord,
        Owner,
        Property,
    )
    from vbridge.scan import scan_environment, scan_python


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'vbridge' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)

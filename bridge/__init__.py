"""vbridge: cross-ecosystem metadata bridge for Python packaging.

Adapters (``vbridge.adapters``) read conda, apt/dpkg, Spack and pip install records;
the bridge translates them into standard wheel-variant properties (PEP 825) and writes
them into installed distributions' ``.dist-info`` directories.
"""

__version__ = "0.1.0"

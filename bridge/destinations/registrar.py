"""Registrars: the files a package manager uninstalls from, and how vbridge lists the
files it adds to a ``.dist-info`` in them, so that removing the package removes ours.

One registrar per kind of file: the dist-info's own ``RECORD``
(:data:`vbridge.destinations.record.REGISTRAR`, read by pip and every installer) and,
where another package manager owns the distribution, the registrar of its adapter
(:meth:`vbridge.adapters.Adapter.registrar`; conda:
:data:`vbridge.destinations.conda_meta.REGISTRAR`, its ``conda-meta/<pkg>.json``).
``vbridge annotate`` edits and ``vbridge clean`` restores them without knowing which
kinds there are.

>>> from vbridge.destinations.record import REGISTRAR as RECORD
>>> RECORD.claims("lib/python3.12/site-packages/six-1.17.0.dist-info/RECORD")
True
>>> RECORD.claims("conda-meta/six-1.17.0-pyhd8ed1ab_0.json")
False
"""

from __future__ import annotations

import abc
from collections.abc import Collection, Mapping
from typing import ClassVar

__all__ = ["Registrar"]


class Registrar(abc.ABC):
    """One kind of file that lists an installed package's files."""

    #: Files of a lower order are edited first: a file of a higher order may record
    #: their content (a conda-meta record notes the sha256 of the RECORD it lists).
    ORDER: ClassVar[int] = 1

    @abc.abstractmethod
    def claims(self, path: str) -> bool:
        """Whether ``path`` (from the environment root, ``/``-separated) is a file of
        this kind."""

    @abc.abstractmethod
    def edited(
        self,
        path: str,
        current: bytes,
        added: Mapping[str, bytes],
        dropped: Collection[str],
        earlier: Mapping[str, bytes],
    ) -> bytes:
        """``current`` (the bytes of ``path``) with the rows of the ``dropped`` paths
        removed and rows for the ``added`` files (path from the root -> content) put in.

        ``earlier`` holds the content of the files of lower :attr:`ORDER` edited in the
        same run, as they will be on disk. Raises ``ValueError`` (or
        ``UnicodeDecodeError``) when ``current`` cannot be parsed.
        """

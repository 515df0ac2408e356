"""The documented ``plugin-api`` path of vbridge's variant provider plugins
(``vbridge.variant_plugin:blas_lapack``, ``:mpi``, ``:openmp``, ``:hdf5``), kept stable
for the ``variant.json`` files and configurations that name it; the code lives in
:mod:`vbridge.integrations.variant_plugin`."""

from vbridge.integrations.variant_plugin import blas_lapack, hdf5, mpi, openmp

__all__ = ["blas_lapack", "hdf5", "mpi", "openmp"]

"""Variant provider plugins: the builds already installed, as supported variant configs.

variantlib (0.2.x) runs a provider plugin in a subprocess of the target environment's
interpreter and asks it ``get_supported_configs()``: the values of each feature that
fit this machine, most preferred first. vbridge's plugins answer with what the
environment already holds, so an installer that implements PEP 825/850 picks the wheel
variant that matches the conda/apt/Spack build installed here:

- ``blas_lapack :: provider`` (and its alias ``library``): the installed BLAS first,
  every other value after it (mixing BLAS runtimes is a warning, not a crash);
- ``mpi :: implementation``: only the installed MPI (mixing MPI is refused);
- ``openmp :: provider``: the installed OpenMP runtime first.

A plugin serves one namespace, so there are three objects, registered under the entry
point group ``variant_plugins`` as ``vbridge_blas_lapack``, ``vbridge_mpi`` and
``vbridge_openmp`` (names distinct from wheelnext's ``blas_lapack`` provider, so both
can be installed). A ``variants.json`` names one as its provider's ``plugin-api``::

    "providers": {"blas_lapack": {"requires": ["vbridge"],
                                  "plugin-api": "vbridge.variant_plugin:blas_lapack"}}

>>> [c.name for c in blas_lapack.get_all_configs()]
['provider', 'library']
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

from variantlib.models.provider import VariantFeatureConfig
from vbridge.integrations.preferences import FeaturePreference, installed_preferences
from vbridge.model import Environment

__all__ = ["InstalledBuildProvider", "blas_lapack", "mpi", "openmp", "running_environment"]


@functools.cache
def running_environment() -> Environment:
    """The environment of the interpreter running this code, every site layer scanned.

    variantlib starts its plugin subprocess with the target environment's interpreter,
    so ``sys.prefix`` and ``sys.path`` here are that environment's.
    """
    from vbridge.decide.assess import assess_environment
    from vbridge.scan import scan_environment

    layers: dict[Path, None] = {}
    for entry in sys.path:
        if entry.endswith(("site-packages", "dist-packages")) and os.path.isdir(entry):
            layers[Path(entry)] = None
    return assess_environment(scan_environment(Path(sys.prefix), layers=list(layers)))


class InstalledBuildProvider:
    """A variantlib provider plugin for one namespace, answering from installed builds.

    Implements variantlib's ``PluginType`` protocol (``all_properties_compatible``,
    ``get_all_configs``, ``get_supported_configs``).

    >>> mpi.namespace
    'mpi'
    >>> mpi.all_properties_compatible  # depends on what is installed: install-time only
    False
    """

    all_properties_compatible = False

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace

    def _preferences(self, env: Environment) -> list[FeaturePreference]:
        return installed_preferences(env, [self.namespace])

    def get_all_configs(self) -> list[VariantFeatureConfig]:
        """Every value each feature of this namespace can take."""
        empty = Environment(path=Path(sys.prefix))
        return [
            VariantFeatureConfig(name=p.feature, values=list(p.known), multi_value=False)
            for p in self._preferences(empty)
        ]

    def get_supported_configs(self) -> list[VariantFeatureConfig]:
        """Values that fit the running environment, its installed builds first.

        If the environment cannot be read, every value is supported in the default
        order (no preference) and the reason goes to stderr: a plugin must never stop
        an installer.
        """
        try:
            env = running_environment()
        except Exception as exc:  # the installer must go on: no preference then
            print(f"vbridge variant plugin: cannot read {sys.prefix}: {exc}", file=sys.stderr)
            return self.get_all_configs()
        return [
            VariantFeatureConfig(name=p.feature, values=list(p.supported), multi_value=False)
            for p in self._preferences(env)
        ]

    def __repr__(self) -> str:
        return f"InstalledBuildProvider({self.namespace!r})"


blas_lapack = InstalledBuildProvider("blas_lapack")
mpi = InstalledBuildProvider("mpi")
openmp = InstalledBuildProvider("openmp")

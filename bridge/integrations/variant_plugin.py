"""Variant provider plugins: the builds already installed, as supported variant configs.

variantlib (0.2.x) runs a provider plugin in a subprocess of the target environment's
interpreter and asks it ``get_supported_configs()``: the values of each feature that
fit this machine, most preferred first. vbridge's plugins answer with what the
environment already holds, so an installer that implements PEP 825 and the providers
draft (wheelnext/peps pull request #40) picks the wheel
variant that matches the conda/apt/Spack build installed here:

- ``blas_lapack :: provider`` (and its alias ``library``): the installed BLAS first,
  every other value after it (mixing BLAS runtimes is a warning, not a crash);
- ``mpi :: implementation``: only the installed MPI (mixing MPI is refused);
- ``openmp :: provider``: the installed OpenMP runtime first;
- ``hdf5 :: parallel``: the installed HDF5 build (``on`` for MPI-parallel) first.

Which features refuse mixing is the environment's coupling policy, its override
(``$VBRIDGE_POLICY``, ``<prefix>/.vbridge/policy.toml``) included, as for ``vbridge
scan``; an override that cannot be read is said on stderr and the shipped policy used.

The environment asked about is the installer's target, found from the interpreter
running the plugin (its prefix and site directories) or ``$VBRIDGE_VARIANT_TARGET``,
never from ``sys.path`` (:func:`target_environment`), so the answer holds inside an
isolated build environment.

A plugin serves one namespace, so there is one object per namespace, registered under
the entry point group ``variant_plugins`` as ``vbridge_blas_lapack``, ``vbridge_mpi``,
``vbridge_openmp`` and ``vbridge_hdf5`` (names distinct from wheelnext's providers'
``blas_lapack_variant_provider`` and ``openmp_variant_provider``, so both can be
installed). A ``variants.json`` names one as its provider's ``plugin-api``
(the stable path :mod:`vbridge.variant_plugin`)::

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
from vbridge.decide.policy import CouplingPolicy
from vbridge.errors import VbridgeError
from vbridge.integrations.preferences import FeaturePreference, installed_preferences
from vbridge.model import Environment

__all__ = [
    "TARGET_ENV_VAR",
    "InstalledBuildProvider",
    "blas_lapack",
    "hdf5",
    "mpi",
    "openmp",
    "running_environment",
    "target_environment",
]


TARGET_ENV_VAR = "VBRIDGE_VARIANT_TARGET"


def target_environment() -> tuple[Path, list[Path] | None]:
    """The environment the installer installs into: its prefix and site layers.

    ``$VBRIDGE_VARIANT_TARGET`` names it explicitly (an environment prefix, or its
    interpreter), for installers that run providers under another interpreter.
    Otherwise it is the interpreter running this plugin, read from what that
    interpreter is (its ``sys.prefix``, ``pyvenv.cfg`` and site directories, asked in an
    isolated subprocess), never from ``sys.path``: an installer that runs providers in
    an isolated build environment (pip's ``BuildEnvironment``) puts only the build
    environment on ``sys.path``, and the installed builds would be invisible.
    ``None`` layers: those found under the prefix.
    """
    from vbridge.scan import interpreter_layers

    explicit = os.environ.get(TARGET_ENV_VAR, "")
    if explicit:
        target = Path(explicit)
        if target.is_dir():
            return target, None
        return interpreter_layers(str(target))
    return interpreter_layers(sys.executable)


@functools.cache
def running_environment() -> Environment:
    """The target environment (:func:`target_environment`), every site layer scanned."""
    from vbridge.decide.assess import assess_environment
    from vbridge.scan import scan_environment

    prefix, layers = target_environment()
    return assess_environment(scan_environment(prefix, layers=layers))


def _policy(env: Environment) -> CouplingPolicy:
    """The environment's policy; the shipped one if its override cannot be read (a
    plugin must never stop an installer)."""
    try:
        return CouplingPolicy.load(env.path)
    except VbridgeError as exc:
        print(f"vbridge variant plugin: {exc}; using the shipped policy", file=sys.stderr)
        return CouplingPolicy.shipped()


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
        return installed_preferences(env, [self.namespace], _policy(env))

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
hdf5 = InstalledBuildProvider("hdf5")

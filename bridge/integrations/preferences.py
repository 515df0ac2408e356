"""What the installed builds ask of an installer: per coupled feature, which values fit
this environment and in which order (installed builds first).

The variant provider plugins (:mod:`vbridge.integrations.variant_plugin`) report these as supported
configs and ``vbridge annotate --variants-toml`` writes them as variantlib's
``property_priorities``. The features and their values come from
``data/variant_plugins.toml``; whether a feature admits other values beside the
installed one comes from the environment's coupling policy
(:class:`~vbridge.decide.policy.CouplingPolicy`: ``data/policy.toml`` with
``$VBRIDGE_POLICY`` or ``<prefix>/.vbridge/policy.toml`` over it; ``mixed =
"refuse"``: it does not).

>>> pref = FeaturePreference("mpi", "implementation", ("openmpi",), ("mpich", "openmpi"), True)
>>> pref.supported
('openmpi',)
>>> FeaturePreference("openmp", "provider", ("llvm",), ("gnu", "llvm"), False).supported
('llvm', 'gnu')
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

from vbridge.decide.policy import CouplingPolicy
from vbridge.model import Distribution, Environment
from vbridge.rules import load_data

__all__ = ["FeaturePreference", "PluginNamespace", "installed_preferences", "plugin_namespaces"]


@dataclass(frozen=True)
class FeaturePreference:
    """One feature: the values installed builds carry, and every value it can take."""

    namespace: str
    feature: str
    installed: tuple[str, ...]  # carried by installed distributions, best first
    known: tuple[str, ...]  # every value the feature can take (get_all_configs)
    exclusive: bool  # the policy refuses mixing: only installed values fit

    @property
    def supported(self) -> tuple[str, ...]:
        """Values an installer may pick here, most preferred first."""
        if self.installed and self.exclusive:
            return self.installed
        return self.installed + tuple(v for v in self.known if v not in self.installed)

    @property
    def key(self) -> str:
        return f"{self.namespace} :: {self.feature}"


@dataclass(frozen=True)
class PluginNamespace:
    """A namespace one of vbridge's variant plugins serves (``data/variant_plugins.toml``)."""

    namespace: str
    entry_point: str
    features: dict[str, tuple[str, ...]]  # canonical feature name -> every value


def plugin_namespaces() -> dict[str, PluginNamespace]:
    """The namespaces served, keyed by namespace name.

    >>> plugin_namespaces()["mpi"].features["implementation"][:2]
    ('openmpi', 'mpich')
    """
    tables = cast("dict[str, dict[str, object]]", load_data("variant_plugins")["namespaces"])
    out: dict[str, PluginNamespace] = {}
    for namespace, table in tables.items():
        features = cast("dict[str, list[str]]", table.get("features", {}))
        out[namespace] = PluginNamespace(
            namespace=namespace,
            entry_point=str(table["entry_point"]),
            features={name: tuple(values) for name, values in features.items()},
        )
    return out


def installed_preferences(
    env: Environment,
    namespaces: Iterable[str] | None = None,
    policy: CouplingPolicy | None = None,
) -> list[FeaturePreference]:
    """Every served feature (and its policy aliases) with what ``env`` has installed.

    Installed values are ordered: carried by a distribution another package manager
    owns (the shared library conda/apt/Spack linked) first, then by how many
    distributions carry them, then by name. ``policy`` defaults to the environment's
    (:meth:`CouplingPolicy.load`).
    """
    policy = CouplingPolicy.load(env.path) if policy is None else policy
    served = plugin_namespaces()
    wanted = list(namespaces) if namespaces is not None else list(served)
    out: list[FeaturePreference] = []
    for namespace in wanted:
        plugin = served.get(namespace)
        if plugin is None:
            continue
        for feature, known in plugin.features.items():
            key = f"{namespace} :: {feature}"
            carriers: dict[str, list[Distribution]] = {}
            for carrier in policy.carriers(env.distributions, key):
                for value in carrier.values:
                    carriers.setdefault(value, []).append(carrier.dist)
            ranked = sorted(
                carriers.items(),
                key=lambda item: (
                    not any(d.owner is not None for d in item[1]),
                    -len(item[1]),
                    item[0],
                ),
            )
            installed = tuple(value for value, _ in ranked)
            rule = policy.features.get(key)
            exclusive = rule is not None and rule.mixed == "refuse"
            out.append(FeaturePreference(namespace, feature, installed, known, exclusive))
            for alias in rule.aliases if rule is not None else ():
                alias_ns, _, alias_feature = (part.strip() for part in alias.partition("::"))
                if alias_ns == namespace:
                    out.append(
                        FeaturePreference(namespace, alias_feature, installed, known, exclusive)
                    )
    return out

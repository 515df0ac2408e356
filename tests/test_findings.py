"""What a scan reports about what this machine cannot run (vbridge.decide.findings):
the same findings whether the caller hands over the carriers or not, each distribution
judged by its own levels."""

from __future__ import annotations

from pathlib import Path

from vbridge.decide.findings import host_findings
from vbridge.decide.host import Host
from vbridge.decide.policy import CouplingPolicy
from vbridge.model import Distribution, Evidence, Property


def _dist(name: str, *values: str) -> Distribution:
    dist = Distribution(name, "1.0", Path(f"/site-packages/{name}-1.0.dist-info"))
    for value in values:
        dist.add(
            Property.from_str(value),
            Evidence(f"spack:{name}-1.0-abcdefg", "arch.target", "icelake", "spack-target-level"),
        )
    return dist


def test_the_carriers_handed_over_give_the_same_findings() -> None:
    policy = CouplingPolicy.load(None)
    dists = [
        _dist("v4-only", "x86_64 :: level :: v4"),
        _dist("either", "x86_64 :: level :: v2", "x86_64 :: level :: v4"),
        _dist("v3", "x86_64 :: level :: v3"),
        _dist("also-v4", "x86_64 :: level :: v4", "blas_lapack :: provider :: openblas"),
        _dist("cuda", "nvidia :: cuda_version_lower_bound :: 12.0"),
        _dist("plain"),
    ]
    host = Host(x86_64_level=3, cuda_version=None)
    asked = host_findings(dists, policy, host, installed=True)
    carried = {
        f: policy.carriers(dists, f) for f, rule in policy.features.items() if rule.host is not None
    }
    assert host_findings(dists, policy, host, installed=True, carried=carried) == asked
    assert [(f.code, f.distributions) for f in asked] == [
        ("host-x86-64", ("v4-only",)),
        ("host-x86-64", ("also-v4",)),
        ("host-nvidia", ("cuda",)),
    ]
    assert "cannot run here" in asked[0].message and "x86-64-v3" in asked[0].message

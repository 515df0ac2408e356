"""The checker (vbridge/decide/checker.py): verdicts on candidates pip would install,
on removals and on the environment, judged by the coupling policy and this host.

Environments here are built from the model directly: the checker reads nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from vbridge.decide.checker import (
    Candidate,
    Verdict,
    check_candidates,
    check_environment,
    check_removals,
    host_findings,
)
from vbridge.decide.host import Host
from vbridge.decide.policy import CouplingPolicy, _merge
from vbridge.model import (
    Distribution,
    Environment,
    Evidence,
    Finding,
    InstallRecord,
    Owner,
    Property,
)
from vbridge.rules import load_data

V3_HOST = Host(x86_64_level=3, cuda_version=None)


def _policy(**override: Any) -> CouplingPolicy:
    """The shipped policy with ``override`` merged over it, as a user's file would be."""
    return CouplingPolicy.from_data(_merge(load_data("policy"), override))


def _conda_numpy(tmp_path: Path, *dependents: str) -> Environment:
    """A prefix whose numpy 1.26.4 conda owns, with conda packages depending on it."""
    layer = tmp_path / "lib/python3.12/site-packages"
    numpy = InstallRecord("conda", "numpy", "1.26.4", "py312h_0", subdir="linux-64",
                          python_dists=(layer / "numpy-1.26.4.dist-info",))
    env = Environment(path=tmp_path, site_packages=[layer], ecosystems=["conda"])
    env.records.append(numpy)
    for i, spec in enumerate(dependents):
        env.records.append(InstallRecord("conda", f"dependent{i}", "1.0", "py_0",
                                         depends=(spec,)))
    dist = Distribution("numpy", "1.26.4", layer / "numpy-1.26.4.dist-info",
                        installer="conda", layer=str(layer))
    dist.owner, dist.owner_record = Owner.of(numpy), numpy
    env.distributions.append(dist)
    return env


def _candidate(name: str, version: str, *props: str) -> Candidate:
    dist = Distribution(name, version, Path(f"/wheels/{name}-{version}-py3-none-any.whl"),
                        installer="pip")
    for text in props:
        value = text.rsplit(" :: ", 1)[-1]
        dist.add(Property.from_str(text), Evidence(f"wheel:{name}", "extra.variant", value, "t"))
    return Candidate(dist, dist.dist_info, "https://files.pythonhosted.org/x.whl")


def _replace(env: Environment, policy: CouplingPolicy) -> list[Finding]:
    verdict = check_candidates(env, [_candidate("numpy", "2.4.6")], policy=policy, host=V3_HOST)
    return [f for f in verdict.findings if f.code == "replaced-foreign"]


# --- ownership and broken dependents: the escalation -----------------------------------


def test_replacing_a_foreign_distribution_is_refused_by_default(tmp_path: Path) -> None:
    (finding,) = _replace(_conda_numpy(tmp_path), _policy())
    assert finding.severity == "refuse"
    assert "conda would still list numpy 1.26.4" in finding.message


def test_broken_dependents_escalate_a_warning_to_a_refusal(tmp_path: Path) -> None:
    env = _conda_numpy(tmp_path, "numpy >=1.23.5,<2.0a0")
    lenient = _policy(ownership={"replace": "warn"})
    (finding,) = _replace(env, lenient)
    assert finding.severity == "refuse"  # dependents.broken = refuse wins over the warning
    assert "dependent0 1.0 (conda, py_0) needs numpy >=1.23.5,<2.0a0" in finding.message
    # A spec the new version satisfies breaks nothing: the warning stands.
    (kept,) = _replace(_conda_numpy(tmp_path, "numpy >=1.23.5"), lenient)
    assert kept.severity == "warn" and "would break" not in kept.message


def test_broken_dependents_alone_give_their_own_severity(tmp_path: Path) -> None:
    env = _conda_numpy(tmp_path, "numpy >=1.23.5,<2.0a0")
    quiet = _policy(ownership={"replace": "ignore"}, dependents={"broken": "warn"})
    (finding,) = _replace(env, quiet)
    assert finding.severity == "warn"
    assert _replace(_conda_numpy(tmp_path), quiet) == []  # nothing broken, nothing said


# --- what this host can run ---------------------------------------------------------------


def test_a_wheel_needs_only_one_of_the_levels_it_lists(tmp_path: Path) -> None:
    policy = _policy()
    both = _candidate("fast", "1.0", "x86_64 :: level :: v2", "x86_64 :: level :: v4")
    assert host_findings([both.dist], policy, V3_HOST) == []
    only_v4 = _candidate("faster", "1.0", "x86_64 :: level :: v4")
    (finding,) = host_findings([only_v4.dist], policy, V3_HOST)
    assert (finding.severity, finding.code) == ("refuse", "host-x86-64")
    assert "this machine has x86-64-v3" in finding.message


def test_cuda_needs_a_driver(tmp_path: Path) -> None:
    cand = _candidate("torch", "2.5", "nvidia :: cuda_version_lower_bound :: 12.0")
    (finding,) = host_findings([cand.dist], _policy(), V3_HOST)
    assert finding.code == "host-nvidia" and "no NVIDIA driver" in finding.message
    from packaging.version import Version

    assert host_findings([cand.dist], _policy(), Host(3, Version("12.4"))) == []


def test_check_environment_adds_host_findings_worst_first(tmp_path: Path) -> None:
    env = _conda_numpy(tmp_path)
    env.findings.append(Finding("warn", "mixed-openmp", "two OpenMP runtimes", ("a",)))
    env.distributions[0].add(Property.from_str("x86_64 :: level :: v4"),
                             Evidence("conda:numpy", "build", "v4", "t"))
    verdict = check_environment(env, _policy(), V3_HOST)
    assert [f.code for f in verdict.findings] == ["host-x86-64", "mixed-openmp"]
    assert (verdict.decision, verdict.exit_code) == ("refuse", 1)


# --- removals --------------------------------------------------------------------------------


def test_removing_what_conda_owns_names_its_dependents(tmp_path: Path) -> None:
    env = _conda_numpy(tmp_path, "numpy >=1.23")
    (finding,) = check_removals(env, ["NumPy"], policy=_policy()).findings
    assert finding.code == "removed-foreign" and finding.severity == "refuse"
    assert "conda packages that need it: dependent0 1.0" in finding.message
    # pip removes nothing outside the environment it installs into.
    assert check_removals(env, ["numpy"], tmp_path / "other", _policy()).findings == ()


# --- the verdict -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("severities", "decision"),
    [((), "ok"), (("info",), "ok"), (("info", "warn"), "warn"), (("warn", "refuse"), "refuse")],
)
def test_verdict_decision(severities: tuple[str, ...], decision: str) -> None:
    findings = tuple(Finding(s, "c", "m") for s in severities)  # type: ignore[arg-type]
    verdict = Verdict(findings)
    assert verdict.decision == decision
    assert verdict.exit_code == (1 if decision == "refuse" else 0)


def test_softened_verdict_and_its_lines() -> None:
    verdict = Verdict((Finding("refuse", "c", "no"), Finding("info", "d", "fyi")))
    assert verdict.lines() == ["refusing: no", "note: fyi"]
    assert verdict.lines(forced=True)[0] == "forced past a refusal: no"
    soft = verdict.softened()
    assert soft.decision == "warn" and soft.lines() == ["warning: no", "note: fyi"]


def test_candidate_source() -> None:
    cand = _candidate("six", "1.17.0")
    assert cand.source == "from PyPI"
    local = Candidate(cand.dist, cand.wheel, "file:///srv/wheels/six-1.17.0-py3-none-any.whl")
    assert local.source == "from /srv/wheels"
    assert Candidate(cand.dist, cand.wheel).source == f"from {cand.wheel}"

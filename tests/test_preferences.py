"""Installed preferences (what variant plugins and variants.toml report) follow the
environment's coupling policy, its override included, as findings do."""

from __future__ import annotations

from pathlib import Path

import pytest
from vbridge.decide.findings import environment_findings
from vbridge.integrations import variant_plugin
from vbridge.integrations.preferences import installed_preferences
from vbridge.model import Distribution, Environment, Evidence, InstallRecord, Owner, Property

MPI_MAY_MIX = '[features."mpi :: implementation"]\nmixed = "warn"\n'


def _env(prefix: Path) -> Environment:
    """mpi4py on Open MPI (conda) beside h5py on MPICH (pip)."""
    env = Environment(path=prefix)
    for name, value, owned in (("mpi4py", "openmpi", True), ("h5py", "mpich", False)):
        dist = Distribution(name, "1.0", prefix / f"site/{name}-1.0.dist-info")
        if owned:
            dist.owner = Owner.of(InstallRecord("conda", name, "1.0", "py_0"))
        dist.add(Property.from_str(f"mpi :: implementation :: {value}"),
                 Evidence(f"conda:{value}", "name", value, "test"))
        env.distributions.append(dist)
    return env


def _mpi(env: Environment) -> tuple[str, ...]:
    (mpi,) = installed_preferences(env, ["mpi"])
    return mpi.supported


@pytest.fixture(autouse=True)
def _no_policy_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VBRIDGE_POLICY", raising=False)


def test_the_shipped_policy_refuses_mixing_mpi(tmp_path: Path) -> None:
    env = _env(tmp_path)
    # The owned build first; mixing MPI is refused, so only installed values fit.
    assert _mpi(env) == ("openmpi", "mpich")
    assert [f.severity for f in environment_findings(env) if f.code == "mixed-mpi"] == ["refuse"]


def test_the_environment_override_is_honoured(tmp_path: Path) -> None:
    env = _env(tmp_path)
    (tmp_path / ".vbridge").mkdir()
    (tmp_path / ".vbridge" / "policy.toml").write_text(MPI_MAY_MIX)
    supported = _mpi(env)
    assert supported[:2] == ("openmpi", "mpich") and len(supported) > 2  # others fit too
    assert [f.severity for f in environment_findings(env) if f.code == "mixed-mpi"] == ["warn"]


def test_vbridge_policy_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(tmp_path / "env")
    policy = tmp_path / "policy.toml"
    policy.write_text(MPI_MAY_MIX)
    monkeypatch.setenv("VBRIDGE_POLICY", str(policy))
    assert len(_mpi(env)) > 2
    (pref,) = variant_plugin.mpi._preferences(env)
    assert not pref.exclusive


def test_the_plugin_says_a_broken_override_and_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = _env(tmp_path)
    (tmp_path / ".vbridge").mkdir()
    (tmp_path / ".vbridge" / "policy.toml").write_text("[features\n")
    (pref,) = variant_plugin.mpi._preferences(env)
    assert pref.exclusive  # the shipped policy
    assert "policy.toml" in capsys.readouterr().err

"""The scan's JSON document is json.dumps(indent=2) of to_document, byte for byte,
whatever a distribution's facts hold (floats, big and odd numbers, subclasses, nested
containers): render_json only skips looking through the model's own typed fields."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from vbridge.decide.assess import assess_environment
from vbridge.destinations.report import render_json, to_document
from vbridge.model import Environment
from vbridge.scan import scan_environment

FIXTURES = Path(__file__).parent / "fixtures"


class _Text(str):
    pass


def _scanned() -> Environment:
    env = assess_environment(scan_environment(FIXTURES / "conda" / "py36-osx-whl"))
    assert env.distributions
    return env


def test_a_real_scan_is_json_dumps() -> None:
    env = _scanned()
    assert render_json([env]) == json.dumps(to_document([env]), indent=2) + "\n"


@pytest.mark.parametrize(
    "fact",
    [
        1e16,
        [1, {"a": [0.5]}],
        {"nested": {"deeper": (1, 2.0)}},
        float("nan"),
        _Text("a str subclass"),
        {"ok": ["text", 3, True, None, ()]},
        2**70,
    ],
)
def test_facts_of_any_kind_give_json_dumps_bytes(fact: object) -> None:
    env = _scanned()
    env.distributions[-1].facts["odd"] = fact
    assert render_json([env]) == json.dumps(to_document([env]), indent=2) + "\n"


def test_a_fact_json_dumps_refuses_is_refused() -> None:
    env = _scanned()
    env.distributions[0].facts["odd"] = {1, 2}
    with pytest.raises(TypeError):
        json.dumps(to_document([env]), indent=2)
    with pytest.raises(TypeError):
        render_json([env])

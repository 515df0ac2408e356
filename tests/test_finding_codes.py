"""Every finding code vbridge emits is in the README's table of finding codes, and the
same code names one event in scan, check and the gates."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from vbridge.decide.findings import FINDING_CODES
from vbridge.decide.policy import CouplingPolicy

ROOT = Path(__file__).resolve().parents[1]


def readme_codes() -> set[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### Finding codes", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z0-9-]+)` \|", section, flags=re.M))


def test_the_readme_table_lists_exactly_the_codes() -> None:
    assert readme_codes() == set(FINDING_CODES)


def test_codes_derived_from_the_policy_are_listed() -> None:
    """mixed-/duplicate-/several-/host- codes are built from the policy's features."""
    policy = CouplingPolicy.load(None)
    derived: set[str] = set()
    for feature, rule in policy.features.items():
        stem = feature.split(" :: ")[0].replace("_", "-")
        if rule.mixed or rule.mixed_install:
            derived.add(f"mixed-{stem}")
        if rule.duplicate and rule.couple == "shared":
            derived.add(f"duplicate-{stem}")
        if rule.several:
            derived.add(f"several-{stem}")
        if rule.host:
            derived.add(f"host-{stem}")
    assert derived <= set(FINDING_CODES)


def _literal_codes() -> set[str]:
    """The code of every ``Finding(severity, "code", ...)`` written as a literal, and
    every literal a code table maps to (``_CODES``)."""
    found: set[str] = set()
    for path in (ROOT / "bridge").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) == "Finding"
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
            ):
                found.add(str(node.args[1].value))
            if (  # annotate's helper: _finding("annotate-...", message, name)
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) == "_finding"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                found.add(str(node.args[0].value))
            if isinstance(node, ast.Assign) and any(
                getattr(t, "id", None) == "_CODES" for t in node.targets
            ):
                assert isinstance(node.value, ast.Dict)
                found |= {str(v.value) for v in node.value.values if isinstance(v, ast.Constant)}
    return found


def test_every_literal_code_in_the_source_is_listed() -> None:
    literal = _literal_codes()
    assert {"broken-dependent", "replaced-foreign", "removed-foreign"} <= literal
    assert "annotate-skipped-owner" in literal
    assert literal <= set(FINDING_CODES)

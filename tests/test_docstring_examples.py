"""The examples in vbridge's docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest
import vbridge
import vbridge.adapters

MODULES = sorted(
    {
        info.name
        for package in (vbridge, vbridge.adapters)
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")
        if not info.name.endswith("__main__")  # running it is the command line
        and not info.name.startswith("vbridge.data")
    }
    | {"vbridge", "vbridge.adapters"}
)


def test_every_module_is_listed() -> None:
    expected = {"vbridge.scan", "vbridge.adapters.conda", "vbridge.destinations.json_text"}
    assert expected <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed"

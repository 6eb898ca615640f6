"""Every example in a docstring runs: an example that no longer holds misleads its reader."""

from __future__ import annotations

import doctest
import importlib

import pytest

from tests.support.packages import PACKAGES, ROOT


def _modules_with_examples() -> list[str]:
    names = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if ">>> " in path.read_text(encoding="utf-8"):
                parts = path.relative_to(ROOT).with_suffix("").parts
                module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
                names.append(module if package == "homecare" else f"homecare.{module}")
    return names


MODULES = _modules_with_examples()


def _run(name: str) -> doctest.TestResults:
    return doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)


def test_the_examples_are_found_and_run() -> None:
    # A class re-exported by its package (``catalogue.BadUnit``) is tested under the package's
    # name, so count over all modules rather than per module.
    attempted = sum(_run(name).attempted for name in MODULES)
    assert attempted >= 60, f"only {attempted} examples ran in {MODULES}"


@pytest.mark.parametrize("name", MODULES)
def test_the_examples_hold(name: str) -> None:
    result = _run(name)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"

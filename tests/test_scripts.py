"""The set-up scripts tell a newcomer how to reach the ``homecare`` command they installed.

The venv is not activated in the caller's shell (a script cannot do that), so ``homecare`` is
not on PATH after ``scripts/demo`` or ``scripts/test``; each says once where it is.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HINT = ".venv/bin/homecare"


def test_scripts_demo_says_once_where_the_command_is() -> None:
    result = subprocess.run(
        [str(ROOT / "scripts" / "demo"), "--help"],
        env={k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
        | {"PATH": "/usr/local/bin:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(HINT) == 1 and "source .venv/bin/activate" in result.stdout
    assert "usage: homecare demo" in result.stdout


def test_scripts_test_says_where_the_command_is_before_the_checks() -> None:
    """scripts/test ends in pytest, so it cannot run here; its set-up section is read instead."""
    text = (ROOT / "scripts" / "test").read_text()
    setup, checks = text.split('section "ruff"')
    assert setup.count(HINT) == 1 and "source .venv/bin/activate" in setup
    assert HINT not in checks

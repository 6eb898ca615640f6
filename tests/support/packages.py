"""The project's top-level code directories. The wheel ships them all under one import name,
``homecare``: ``homecare/rules`` links to ``rules/``, and so on (pyproject.toml)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "catalogue",
    "store",
    "ingest",
    "rules",
    "alerts",
    "api",
    "devices",
    "broker",
    "analytics",
    "demo",
    "evaluation",
    "homecare",
)

"""The project's importable packages, as the wheel ships them (pyproject.toml lists the same)."""

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

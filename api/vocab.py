"""Vocab: the closed sets the API's schemas validate against (programs, types, roles, …)."""

from __future__ import annotations

from typing import Literal

from homecare import catalogue
from homecare.api.errors import BadRequest
from homecare.catalogue import Program

__all__ = ["Bucket", "Locale", "Program", "check_type"]

Locale = Literal["fr-CA", "en"]
Bucket = Literal["hour", "day"]


def check_type(name: str | None) -> str | None:
    """check_type returns a catalogue measurement type name, or raises 400 unknown_type."""
    if name is None:
        return None
    if name not in catalogue.CATALOGUE:
        raise BadRequest(f"unknown measurement type {name!r}", code="unknown_type")
    return name

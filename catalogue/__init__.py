"""catalogue: the measurement catalogue every pipeline stage shares.

Why a package of its own: ingest converts and range-checks readings with it, rules refer to
types by its names, storage keeps its canonical units, and the FHIR export takes its codes.
Putting the single source of truth (docs/contracts.md) in one dependency-free package keeps those
stages from drifting apart.  Only the names below are public; the modules behind them are
private and may be reorganised freely.

>>> from homecare.catalogue import lookup
>>> round(lookup("body_weight").to_canonical(220, "[lb_av]"), 2)
99.79
>>> lookup("blood_glucose").coding_for_unit("mmol/L")
('http://loinc.org', '15074-8')
"""

from __future__ import annotations

from ._catalogue import CATALOGUE, ESAS_ITEMS, lookup
from ._errors import BadUnit, CatalogueError, UnknownType
from ._types import MeasurementType
from ._vocab import ACVPU, PROGRAMS, Program

__all__ = [
    "ACVPU",
    "CATALOGUE",
    "ESAS_ITEMS",
    "PROGRAMS",
    "BadUnit",
    "CatalogueError",
    "MeasurementType",
    "Program",
    "UnknownType",
    "lookup",
]

"""The measurement catalogue itself: the fixed table of docs/contracts.md.

Why: the table is data, so it is written once here as plain constructor calls and then frozen
behind a read-only mapping.  Stages look types up by name (the wire format carries names, not
objects); ``lookup`` turns a missing name into ``UnknownType`` rather than a bare ``KeyError``
so callers can quarantine the reading with a precise reason.  LOINC codes are from loinc.org;
types with no suitable LOINC code use the local code system with the type name as code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType

from ._errors import UnknownType
from ._types import LOCAL_SYSTEM, LOINC_SYSTEM, MeasurementType

__all__ = ["CATALOGUE", "ESAS_ITEMS", "lookup"]

ESAS_ITEMS: tuple[str, ...] = (
    "esas_pain",
    "esas_tiredness",
    "esas_drowsiness",
    "esas_nausea",
    "esas_appetite",
    "esas_shortness_of_breath",
    "esas_depression",
    "esas_anxiety",
    "esas_wellbeing",
)


def _vital(
    name: str,
    units: tuple[str, ...],
    low: float,
    high: float,
    code: str,
    display: str,
) -> MeasurementType:
    """_vital: a LOINC-coded vital sign whose canonical unit is the first of ``units``."""
    return MeasurementType(
        name=name,
        canonical_unit=units[0],
        accepted_units=units,
        plausible_min=low,
        plausible_max=high,
        code_system=LOINC_SYSTEM,
        code=code,
        display=display,
        category="vital-signs",
    )


def _local(
    name: str, units: tuple[str, ...], low: float, high: float, display: str, category: str
) -> MeasurementType:
    """_local: a type in the local code system, coded by its own name."""
    return MeasurementType(
        name=name,
        canonical_unit=units[0],
        accepted_units=units,
        plausible_min=low,
        plausible_max=high,
        code_system=LOCAL_SYSTEM,
        code=name,
        display=display,
        category=category,
    )


def _esas_display(name: str) -> str:
    """_esas_display: "esas_shortness_of_breath" -> "ESAS-r shortness of breath"."""
    return "ESAS-r " + name.removeprefix("esas_").replace("_", " ")


_TYPES: tuple[MeasurementType, ...] = (
    _vital("heart_rate", ("/min", "bpm", "{beats}/min"), 20, 300, "8867-4", "Heart rate"),
    _vital("systolic_bp", ("mm[Hg]", "mmHg", "kPa"), 40, 300, "8480-6", "Systolic blood pressure"),
    _vital(
        "diastolic_bp", ("mm[Hg]", "mmHg", "kPa"), 20, 200, "8462-4", "Diastolic blood pressure"
    ),
    _vital("spo2", ("%",), 50, 100, "59408-5", "Oxygen saturation by pulse oximetry"),
    _vital("respiratory_rate", ("/min", "{breaths}/min"), 2, 80, "9279-1", "Respiratory rate"),
    _vital("body_temperature", ("Cel", "[degF]"), 25, 45, "8310-5", "Body temperature"),
    _vital("body_weight", ("kg", "[lb_av]", "g"), 2, 400, "29463-7", "Body weight"),
    MeasurementType(
        name="blood_glucose",
        canonical_unit="mmol/L",
        accepted_units=("mmol/L", "mg/dL"),
        plausible_min=0.5,
        plausible_max=50,
        code_system=LOINC_SYSTEM,
        code="15074-8",
        display="Blood glucose",
        category="laboratory",
        unit_codes=(("mg/dL", "2339-0"),),
    ),
    MeasurementType(
        name="pain_score",
        canonical_unit="{score}",
        accepted_units=("{score}",),
        plausible_min=0,
        plausible_max=10,
        code_system=LOINC_SYSTEM,
        code="72514-3",
        display="Pain severity (0-10 numeric rating)",
        category="survey",
    ),
    *(_local(item, ("{score}",), 0, 10, _esas_display(item), "survey") for item in ESAS_ITEMS),
    _local("wound_area", ("cm2", "mm2"), 0, 2000, "Wound area", "exam"),
    _local("range_of_motion", ("deg",), -90, 360, "Range of motion", "exam"),
)

# Shorter labels where the display is a code system's long name; the rest use the display.
_LABELS = {
    "spo2": "SpO2",
    "systolic_bp": "Systolic BP",
    "diastolic_bp": "Diastolic BP",
    "body_temperature": "Temperature",
    "body_weight": "Weight",
    "pain_score": "Pain",
}

CATALOGUE: Mapping[str, MeasurementType] = MappingProxyType(
    {t.name: replace(t, label=_LABELS.get(t.name, "")) for t in _TYPES}
)


def lookup(name: str) -> MeasurementType:
    """lookup: the catalogue entry called ``name``; raises ``UnknownType`` if there is none.

    >>> lookup("heart_rate").code
    '8867-4'
    >>> lookup("Heart_Rate")
    Traceback (most recent call last):
    ...
    homecare.catalogue.UnknownType: unknown measurement type 'Heart_Rate'
    """
    try:
        return CATALOGUE[name]
    except (KeyError, TypeError):  # TypeError: an unhashable name is still just unknown
        raise UnknownType(name) from None

"""The ``MeasurementType`` record: one row of the measurement catalogue.

Why: every stage (ingest validation, rule evaluation, storage, FHIR export) needs the same four
facts about a reading type: its canonical unit, how to get there from the units devices send,
what range is physically plausible, and how to code it.  Keeping them together in one immutable,
hashable record means no stage can disagree with another, and a type can be passed around or
used as a dict key freely.  The record checks its own consistency when it is built, so a typo in
the catalogue table fails at import time instead of quarantining real readings in production.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from ._errors import BadUnit, CatalogueError
from ._units import Conversion, conversion_to

__all__ = ["CATEGORIES", "CODE_SYSTEMS", "LOCAL_SYSTEM", "LOINC_SYSTEM", "MeasurementType"]

LOINC_SYSTEM = "http://loinc.org"
LOCAL_SYSTEM = "urn:homecare:measurement"
CODE_SYSTEMS = (LOINC_SYSTEM, LOCAL_SYSTEM)
# FHIR observation-category codes (http://terminology.hl7.org/CodeSystem/observation-category).
CATEGORIES = ("vital-signs", "laboratory", "survey", "exam")


def _as_number(value: object) -> float:
    """_as_number: ``value`` as a float, refusing bools and non-real objects.

    ``bool`` is a subclass of ``int`` in Python, so ``True`` would silently become 1.0; a flag
    that reaches a numeric field is a bug upstream and must not turn into a reading.
    """
    if type(value) is float or type(value) is int:  # the common case, without ABC checks
        return float(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"expected a real number, got {type(value).__name__} {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class MeasurementType:
    """MeasurementType: a kind of reading, its canonical unit, plausible range and coding.

    ``accepted_units`` lists the canonical unit first.  ``unit_codes`` holds the rare per-unit
    code overrides (same ``code_system``), e.g. LOINC codes blood glucose in mg/dL separately.

    >>> from homecare.catalogue import lookup
    >>> weight = lookup("body_weight")
    >>> round(weight.to_canonical(220, "[lb_av]"), 4)
    99.7903
    >>> weight.is_plausible(weight.to_canonical(220, "[lb_av]"))
    True
    """

    name: str
    canonical_unit: str
    accepted_units: tuple[str, ...]
    plausible_min: float
    plausible_max: float
    code_system: str
    code: str
    display: str
    category: str
    unit_codes: tuple[tuple[str, str], ...] = ()
    # What a person reads in an alert ("SpO2", "Weight"): ``display`` is the code system's
    # wording, which the FHIR export must keep and which is too long for a one-line summary.
    # Empty: the display.
    label: str = ""

    def __post_init__(self) -> None:
        where = f"measurement type {self.name!r}"
        if not self.label:
            object.__setattr__(self, "label", self.display)
        # Store the bounds as floats even when the table spells them as integers.
        object.__setattr__(self, "plausible_min", _as_number(self.plausible_min))
        object.__setattr__(self, "plausible_max", _as_number(self.plausible_max))
        if not self.accepted_units or self.accepted_units[0] != self.canonical_unit:
            raise CatalogueError(
                f"{where}: accepted_units {self.accepted_units!r} must start with the "
                f"canonical unit {self.canonical_unit!r}"
            )
        if len(set(self.accepted_units)) != len(self.accepted_units):
            raise CatalogueError(f"{where}: duplicate accepted unit in {self.accepted_units!r}")
        for unit in self.accepted_units:
            if conversion_to(self.canonical_unit, unit) is None:
                raise CatalogueError(
                    f"{where}: no conversion from {unit!r} to {self.canonical_unit!r}"
                )
        if not (
            math.isfinite(self.plausible_min)
            and math.isfinite(self.plausible_max)
            and self.plausible_min <= self.plausible_max
        ):
            raise CatalogueError(
                f"{where}: bad plausible range [{self.plausible_min!r}, {self.plausible_max!r}]"
            )
        if self.code_system not in CODE_SYSTEMS:
            raise CatalogueError(f"{where}: unknown code system {self.code_system!r}")
        if self.category not in CATEGORIES:
            raise CatalogueError(f"{where}: unknown category {self.category!r}")
        for unit, _code in self.unit_codes:
            if unit not in self.accepted_units:
                raise CatalogueError(f"{where}: code override for unaccepted unit {unit!r}")

    def _conversion(self, unit: str) -> Conversion:
        conversion = conversion_to(self.canonical_unit, unit)
        if unit not in self.accepted_units or conversion is None:
            raise BadUnit(unit, self.name, self.accepted_units)
        return conversion

    def to_canonical(self, value: float, unit: str) -> float:
        """MeasurementType.to_canonical: ``value`` in ``unit`` expressed in the canonical unit.

        Raises ``BadUnit`` if ``unit`` is not accepted for this type (matched exactly, UCUM is
        case-sensitive) and ``TypeError`` if ``value`` is a bool or not a real number.
        Non-finite values pass through unchanged in kind; ``is_plausible`` rejects them.

        >>> from homecare.catalogue import lookup
        >>> round(lookup("body_temperature").to_canonical(100, "[degF]"), 4)
        37.7778
        >>> lookup("spo2").to_canonical(97, "percent")
        Traceback (most recent call last):
        ...
        homecare.catalogue.BadUnit: unit 'percent' is not accepted for spo2; accepted units: '%'
        """
        number = _as_number(value)
        return self._conversion(unit).apply(number)

    def is_plausible(self, canonical_value: float) -> bool:
        """MeasurementType.is_plausible: whether a canonical value lies in the plausible range.

        Both ends are inclusive; NaN and infinities are never plausible.

        >>> from homecare.catalogue import lookup
        >>> hr = lookup("heart_rate")
        >>> hr.is_plausible(20), hr.is_plausible(300), hr.is_plausible(300.01)
        (True, True, False)
        """
        number = _as_number(canonical_value)
        return math.isfinite(number) and self.plausible_min <= number <= self.plausible_max

    def coding_for_unit(self, unit: str) -> tuple[str, str]:
        """MeasurementType.coding_for_unit: ``(code_system, code)`` for a reading in ``unit``.

        The same as ``(code_system, code)`` except where the code depends on the unit reported
        (LOINC codes glucose in mg/dL as 2339-0).  Raises ``BadUnit`` for an unaccepted unit.

        >>> from homecare.catalogue import lookup
        >>> lookup("blood_glucose").coding_for_unit("mg/dL")
        ('http://loinc.org', '2339-0')
        """
        self._conversion(unit)
        for override_unit, code in self.unit_codes:
            if override_unit == unit:
                return (self.code_system, code)
        return (self.code_system, self.code)

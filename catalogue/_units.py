"""Unit conversions into canonical UCUM units.

Why: a conversion factor is a fact about two units (a kilopascal is the same number of mm[Hg]
whichever blood pressure it measures), whereas *which* units a measurement type accepts is a
policy of that type.  So the factors live here, keyed by ``(unit, canonical_unit)``, and
``MeasurementType`` only lists the units it accepts.  Each factor is written the way its
definition is stated (numerator / denominator plus an offset applied first) instead of as a
pre-rounded decimal, so the source of every number is visible and no precision is lost to
rounding a quotient by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["Conversion", "conversion_to"]


@dataclass(frozen=True, slots=True)
class Conversion:
    """Conversion: ``canonical = (value + offset) * numerator / denominator``."""

    numerator: float = 1.0
    denominator: float = 1.0
    offset: float = 0.0

    def apply(self, value: float) -> float:
        """Conversion.apply: convert ``value`` into the canonical unit.

        >>> Conversion(numerator=5.0, denominator=9.0, offset=-32.0).apply(212.0)
        100.0
        """
        return (value + self.offset) * self.numerator / self.denominator


_IDENTITY = Conversion()

# Conventional millimetre of mercury: 1 mmHg = 133.322387415 Pa (BS 350 / NIST SP 811).
_PA_PER_MMHG = 133.322387415
# International avoirdupois pound, exact by definition (1959 agreement).
_KG_PER_LB = 0.45359237
# Molar mass of glucose, C6H12O6: 180.156 g/mol, so 1 mmol/L = 18.0156 mg/dL.
_GLUCOSE_MG_PER_DL_PER_MMOL_PER_L = 18.0156

_CONVERSIONS: Mapping[tuple[str, str], Conversion] = MappingProxyType(
    {
        # Rates per minute: device spellings of the same unit.
        ("bpm", "/min"): _IDENTITY,
        ("{beats}/min", "/min"): _IDENTITY,
        ("{breaths}/min", "/min"): _IDENTITY,
        # Pressure.
        ("mmHg", "mm[Hg]"): _IDENTITY,
        ("kPa", "mm[Hg]"): Conversion(numerator=1000.0, denominator=_PA_PER_MMHG),
        # Temperature (affine: subtract 32 first, then scale).
        ("[degF]", "Cel"): Conversion(numerator=5.0, denominator=9.0, offset=-32.0),
        # Mass.
        ("[lb_av]", "kg"): Conversion(numerator=_KG_PER_LB),
        ("g", "kg"): Conversion(denominator=1000.0),
        # Glucose concentration.
        ("mg/dL", "mmol/L"): Conversion(denominator=_GLUCOSE_MG_PER_DL_PER_MMOL_PER_L),
        # Area.
        ("mm2", "cm2"): Conversion(denominator=100.0),
    }
)


def conversion_to(canonical_unit: str, unit: str) -> Conversion | None:
    """conversion_to: the conversion from ``unit`` into ``canonical_unit``, or ``None``.

    A unit always converts to itself; otherwise the pair must be registered above.
    Matching is exact because UCUM codes are case-sensitive (``mm`` is not ``Mm``).

    >>> conversion_to("kg", "g")
    Conversion(numerator=1.0, denominator=1000.0, offset=0.0)
    >>> conversion_to("kg", "G") is None
    True
    """
    if unit == canonical_unit:
        return _IDENTITY
    return _CONVERSIONS.get((unit, canonical_unit))

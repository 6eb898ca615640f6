"""news2: the National Early Warning Score 2, as pure functions over one set of observations.

Source: Royal College of Physicians, *National Early Warning Score (NEWS) 2: Standardising the
assessment of acute-illness severity in the NHS*, updated report of a working party, London:
RCP, 2017 — chart 1 (the NEWS2 scoring system, encoded in the band tables below) and chart 2
(thresholds and triggers, encoded in :func:`clinical_risk`).

Decisions, and why:

- **Rounding before banding.** Chart 1 bands integers (respiration, SpO2, systolic BP, pulse)
  and tenths of a degree (temperature), because charted observations are written that way.
  Devices send floats (20.6 breaths/min from a wearable, 38.05 °C), so a value is first rounded
  as a nurse would chart it — half up, to the integer or to 0.1 °C — and then banded: RR 20.4 →
  20 → 0, RR 20.5 → 21 → 2; 38.04 °C → 38.0 → 0, 38.05 °C → 38.1 → 1. The rounding is decimal
  half-up on the value *as written* (its shortest ``repr``), not Python's banker's ``round``
  and not the binary approximation (the float 38.05 is 38.04999…, which would chart as 38.0).
- **Nothing is assumed.** NEWS2 needs all seven parameters. Home readings rarely say whether
  the patient is on oxygen or alert, but "absent" is not "air" or "Alert": an absent
  ``on_oxygen`` or ``consciousness`` is reported in ``missing`` like any absent vital, and
  ``total`` and ``risk`` are None. The default policy (e.g. assume air and Alert unless the
  patient app says otherwise) belongs to the rule that calls this, where it is configured and
  visible; ``partial_total`` is the sum of what was present, for rules that accept it.
- **SpO2 Scale 2** is used only when ``hypercapnic`` is set (a clinician's decision for a
  patient with confirmed hypercapnic respiratory failure). Above 92 % it depends on air or
  oxygen, so with ``on_oxygen`` unknown such a reading cannot be scored and ``spo2`` is missing
  too; at or below 92 % the scale does not depend on it.
- **Consciousness** is the ACVPU letter (``catalogue.ACVPU``); "C" means *new* confusion.
- Invalid input (a non-finite number, an unknown ACVPU letter) raises ``ValueError``; range
  checks on plausibility belong to ingest, so any finite value is banded.

>>> result = score_news2(Observations(
...     respiratory_rate=22, spo2=95, on_oxygen=False, systolic_bp=108,
...     heart_rate=96, consciousness="A", temperature=38.2))
>>> result.total, result.risk
(6, 'medium')
>>> dict(result.components)
{'respiratory_rate': 2, 'spo2': 1, 'air_or_oxygen': 0, 'systolic_bp': 1, 'heart_rate': 1, \
'consciousness': 0, 'temperature': 1}
>>> partial = score_news2(Observations(respiratory_rate=26, spo2=97, heart_rate=80))
>>> partial.total, partial.partial_total, partial.any_three, partial.missing
(None, 3, True, ('air_or_oxygen', 'systolic_bp', 'consciousness', 'temperature'))
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal
from types import MappingProxyType
from typing import Literal

from homecare.catalogue import ACVPU

__all__ = [
    "PARAMETERS",
    "News2Result",
    "Observations",
    "Risk",
    "clinical_risk",
    "score_air_or_oxygen",
    "score_consciousness",
    "score_news2",
    "score_pulse",
    "score_respiration",
    "score_spo2_scale1",
    "score_spo2_scale2",
    "score_systolic_bp",
    "score_temperature",
]

Risk = Literal["low", "low-medium", "medium", "high"]

# The seven parameters in chart 1's order; the keys of ``components`` and entries of ``missing``.
PARAMETERS: tuple[str, ...] = (
    "respiratory_rate",
    "spo2",
    "air_or_oxygen",
    "systolic_bp",
    "heart_rate",
    "consciousness",
    "temperature",
)

_Bands = tuple[tuple[Decimal, int], ...]


def _bands(*rows: tuple[str, int]) -> _Bands:
    return tuple((Decimal(upper), score) for upper, score in rows)


# Chart 1, as (highest charted value in the band, score); above the last row: the `_ABOVE` score.
_RESPIRATION = _bands(("8", 3), ("11", 1), ("20", 0), ("24", 2))
_RESPIRATION_ABOVE = 3
_SPO2_SCALE1 = _bands(("91", 3), ("93", 2), ("95", 1))
_SPO2_SCALE1_ABOVE = 0
_SPO2_SCALE2 = _bands(("83", 3), ("85", 2), ("87", 1), ("92", 0))
_SPO2_SCALE2_ON_OXYGEN = _bands(("94", 1), ("96", 2))  # from 93 %; ≥93 on air scores 0
_SPO2_SCALE2_ON_OXYGEN_ABOVE = 3
_SYSTOLIC_BP = _bands(("90", 3), ("100", 2), ("110", 1), ("219", 0))
_SYSTOLIC_BP_ABOVE = 3
_PULSE = _bands(("40", 3), ("50", 1), ("90", 0), ("110", 1), ("130", 2))
_PULSE_ABOVE = 3
_TEMPERATURE = _bands(("35.0", 3), ("36.0", 1), ("38.0", 0), ("39.0", 1))
_TEMPERATURE_ABOVE = 2

_INTEGER = Decimal("1")
_TENTH = Decimal("0.1")
# Enough digits for any finite float, so quantize never overflows the context.
_ROUNDING = Context(prec=400, rounding=ROUND_HALF_UP)


def _charted(value: float, step: Decimal) -> Decimal:
    """_charted rounds ``value`` half up to ``step``, as the observation would be charted."""
    if not math.isfinite(value):
        raise ValueError(f"NEWS2 needs a finite value, got {value!r}")
    return Decimal(repr(value)).quantize(step, context=_ROUNDING)


def _band(value: Decimal, bands: _Bands, above: int) -> int:
    for upper, score in bands:
        if value <= upper:
            return score
    return above


def score_respiration(rr: float) -> int:
    """score_respiration scores a respiration rate (per minute).

    ≤8 → 3, 9–11 → 1, 12–20 → 0, 21–24 → 2, ≥25 → 3.
    """
    return _band(_charted(rr, _INTEGER), _RESPIRATION, _RESPIRATION_ABOVE)


def score_spo2_scale1(spo2: float) -> int:
    """score_spo2_scale1 scores SpO2 (%) on Scale 1: ≤91 → 3, 92–93 → 2, 94–95 → 1, ≥96 → 0."""
    return _band(_charted(spo2, _INTEGER), _SPO2_SCALE1, _SPO2_SCALE1_ABOVE)


def score_spo2_scale2(spo2: float, on_oxygen: bool) -> int:
    """score_spo2_scale2 scores SpO2 (%) on Scale 2 (confirmed hypercapnic respiratory failure).

    ≤83 → 3, 84–85 → 2, 86–87 → 1, 88–92 → 0; from 93 on air → 0; on oxygen 93–94 → 1,
    95–96 → 2, ≥97 → 3.
    """
    charted = _charted(spo2, _INTEGER)
    if charted <= _SPO2_SCALE2[-1][0]:
        return _band(charted, _SPO2_SCALE2, 0)
    if not on_oxygen:
        return 0
    return _band(charted, _SPO2_SCALE2_ON_OXYGEN, _SPO2_SCALE2_ON_OXYGEN_ABOVE)


def score_air_or_oxygen(on_oxygen: bool) -> int:
    """score_air_or_oxygen scores supplemental oxygen → 2, air → 0."""
    return 2 if on_oxygen else 0


def score_systolic_bp(sbp: float) -> int:
    """score_systolic_bp scores a systolic blood pressure (mmHg).

    ≤90 → 3, 91–100 → 2, 101–110 → 1, 111–219 → 0, ≥220 → 3.
    """
    return _band(_charted(sbp, _INTEGER), _SYSTOLIC_BP, _SYSTOLIC_BP_ABOVE)


def score_pulse(hr: float) -> int:
    """score_pulse scores a pulse rate (per minute).

    ≤40 → 3, 41–50 → 1, 51–90 → 0, 91–110 → 1, 111–130 → 2, ≥131 → 3.
    """
    return _band(_charted(hr, _INTEGER), _PULSE, _PULSE_ABOVE)


def score_consciousness(acvpu: str) -> int:
    """score_consciousness scores Alert → 0; new Confusion, Voice, Pain, Unresponsive → 3."""
    if acvpu not in ACVPU:
        raise ValueError(f"consciousness must be one of {', '.join(ACVPU)}, got {acvpu!r}")
    return 0 if acvpu == "A" else 3


def score_temperature(t: float) -> int:
    """score_temperature scores a body temperature (°C).

    ≤35.0 → 3, 35.1–36.0 → 1, 36.1–38.0 → 0, 38.1–39.0 → 1, ≥39.1 → 2.
    """
    return _band(_charted(t, _TENTH), _TEMPERATURE, _TEMPERATURE_ABOVE)


def clinical_risk(total: int, any_three: bool) -> Risk:
    """clinical_risk is chart 2's risk for an aggregate ``total`` of all seven parameters.

    0–4 low, or low-medium (RCP: "low–medium", urgent ward-based response) when a single
    parameter scores 3; 5–6 medium; 7 or more high. An aggregate of 5+ outranks a single 3.
    """
    if total >= 7:
        return "high"
    if total >= 5:
        return "medium"
    return "low-medium" if any_three else "low"


@dataclass(frozen=True, kw_only=True)
class Observations:
    """Observations: one set of NEWS2 inputs in canonical units; None means not observed.

    Vitals as in the catalogue (respiratory_rate /min, spo2 %, systolic_bp mm[Hg],
    heart_rate /min, temperature Cel); ``consciousness`` an ACVPU letter; ``hypercapnic``
    selects SpO2 Scale 2.
    """

    respiratory_rate: float | None = None
    spo2: float | None = None
    systolic_bp: float | None = None
    heart_rate: float | None = None
    temperature: float | None = None
    on_oxygen: bool | None = None
    consciousness: str | None = None
    hypercapnic: bool = False


@dataclass(frozen=True)
class News2Result:
    """News2Result: the per-parameter scores of one set of observations, and what they add to.

    ``components`` holds the score of each parameter present (keys from ``PARAMETERS``, in
    chart order), ``missing`` the parameters that were not. ``total`` and ``risk`` need all
    seven and are None otherwise; ``partial_total`` and ``any_three`` are over what is present.
    """

    components: Mapping[str, int]
    missing: tuple[str, ...]
    spo2_scale: Literal[1, 2]

    @property
    def complete(self) -> bool:
        """complete is true when all seven parameters were scored."""
        return not self.missing

    @property
    def partial_total(self) -> int:
        """partial_total is the sum of the present components (the total, when complete)."""
        return sum(self.components.values())

    @property
    def total(self) -> int | None:
        """total is the NEWS2 aggregate score, or None when a parameter is missing."""
        return self.partial_total if self.complete else None

    @property
    def any_three(self) -> bool:
        """any_three is true when a present parameter scores 3 (chart 2's "red score")."""
        return 3 in self.components.values()

    @property
    def risk(self) -> Risk | None:
        """risk is chart 2's clinical risk, or None when a parameter is missing."""
        total = self.total
        return None if total is None else clinical_risk(total, self.any_three)


def score_news2(obs: Observations) -> News2Result:
    """score_news2 scores each observed parameter; see the module docstring for the rules."""
    scores: dict[str, int | None] = dict.fromkeys(PARAMETERS)
    if obs.respiratory_rate is not None:
        scores["respiratory_rate"] = score_respiration(obs.respiratory_rate)
    if obs.spo2 is not None:
        if not obs.hypercapnic:
            scores["spo2"] = score_spo2_scale1(obs.spo2)
        elif obs.on_oxygen is not None:
            scores["spo2"] = score_spo2_scale2(obs.spo2, obs.on_oxygen)
        elif _charted(obs.spo2, _INTEGER) <= _SPO2_SCALE2[-1][0]:
            scores["spo2"] = score_spo2_scale2(obs.spo2, on_oxygen=False)  # same either way
    if obs.on_oxygen is not None:
        scores["air_or_oxygen"] = score_air_or_oxygen(obs.on_oxygen)
    if obs.systolic_bp is not None:
        scores["systolic_bp"] = score_systolic_bp(obs.systolic_bp)
    if obs.heart_rate is not None:
        scores["heart_rate"] = score_pulse(obs.heart_rate)
    if obs.consciousness is not None:
        scores["consciousness"] = score_consciousness(obs.consciousness)
    if obs.temperature is not None:
        scores["temperature"] = score_temperature(obs.temperature)
    return News2Result(
        components=MappingProxyType({k: v for k, v in scores.items() if v is not None}),
        missing=tuple(k for k, v in scores.items() if v is None),
        spo2_scale=2 if obs.hypercapnic else 1,
    )

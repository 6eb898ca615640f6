"""Tests for the NEWS2 scoring core (rules/news2.py).

Source of every expected value: Royal College of Physicians, "National Early Warning Score
(NEWS) 2: Standardising the assessment of acute-illness severity in the NHS", updated report of
a working party, London: RCP, 2017 — chart 1 (the NEWS2 scoring system) for the bands, chart 2
(thresholds and triggers) for the clinical risk. Expected scores are written out literally, both
sides of every band edge, so a changed band shows up as a failing test.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import pytest

from homecare.rules import news2
from homecare.rules.news2 import (
    PARAMETERS,
    Observations,
    clinical_risk,
    score_air_or_oxygen,
    score_consciousness,
    score_news2,
    score_pulse,
    score_respiration,
    score_spo2_scale1,
    score_spo2_scale2,
    score_systolic_bp,
    score_temperature,
)

# --- chart 1, parameter by parameter --------------------------------------------------------


@pytest.mark.parametrize(
    ("rr", "expected"),
    [(0, 3), (8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3), (60, 3)],
)
def test_respiration_bands(rr: float, expected: int) -> None:
    assert score_respiration(rr) == expected


@pytest.mark.parametrize(
    ("spo2", "expected"),
    [(70, 3), (91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0)],
)
def test_spo2_scale1_bands(spo2: float, expected: int) -> None:
    assert score_spo2_scale1(spo2) == expected


@pytest.mark.parametrize(
    ("spo2", "expected"),
    [(70, 3), (83, 3), (84, 2), (85, 2), (86, 1), (87, 1), (88, 0), (92, 0)],
)
@pytest.mark.parametrize("on_oxygen", [False, True])
def test_spo2_scale2_up_to_92_ignores_oxygen(spo2: float, on_oxygen: bool, expected: int) -> None:
    assert score_spo2_scale2(spo2, on_oxygen) == expected


@pytest.mark.parametrize(
    ("spo2", "on_air", "on_oxygen"),
    [(93, 0, 1), (94, 0, 1), (95, 0, 2), (96, 0, 2), (97, 0, 3), (100, 0, 3)],
)
def test_spo2_scale2_from_93_depends_on_oxygen(spo2: float, on_air: int, on_oxygen: int) -> None:
    assert score_spo2_scale2(spo2, on_oxygen=False) == on_air
    assert score_spo2_scale2(spo2, on_oxygen=True) == on_oxygen


def test_air_or_oxygen() -> None:
    assert score_air_or_oxygen(True) == 2
    assert score_air_or_oxygen(False) == 0


@pytest.mark.parametrize(
    ("sbp", "expected"),
    [
        (60, 3),
        (90, 3),
        (91, 2),
        (100, 2),
        (101, 1),
        (110, 1),
        (111, 0),
        (219, 0),
        (220, 3),
        (260, 3),
    ],
)
def test_systolic_bp_bands(sbp: float, expected: int) -> None:
    assert score_systolic_bp(sbp) == expected


@pytest.mark.parametrize(
    ("hr", "expected"),
    [
        (30, 3),
        (40, 3),
        (41, 1),
        (50, 1),
        (51, 0),
        (90, 0),
        (91, 1),
        (110, 1),
        (111, 2),
        (130, 2),
        (131, 3),
        (180, 3),
    ],
)
def test_pulse_bands(hr: float, expected: int) -> None:
    assert score_pulse(hr) == expected


@pytest.mark.parametrize(("letter", "expected"), [("A", 0), ("C", 3), ("V", 3), ("P", 3), ("U", 3)])
def test_consciousness_acvpu(letter: str, expected: int) -> None:
    assert score_consciousness(letter) == expected


@pytest.mark.parametrize("bad", ["", "a", "Alert", "X", "CV"])
def test_consciousness_rejects_anything_but_an_acvpu_letter(bad: str) -> None:
    with pytest.raises(ValueError, match="consciousness"):
        score_consciousness(bad)


@pytest.mark.parametrize(
    ("temperature", "expected"),
    [
        (33.0, 3),
        (35.0, 3),
        (35.1, 1),
        (36.0, 1),
        (36.1, 0),
        (38.0, 0),
        (38.1, 1),
        (39.0, 1),
        (39.1, 2),
        (41.0, 2),
    ],
)
def test_temperature_bands(temperature: float, expected: int) -> None:
    assert score_temperature(temperature) == expected


# --- rounding between the chart's integers / tenths ----------------------------------------


@pytest.mark.parametrize(
    ("function", "value", "expected"),
    [
        (score_respiration, 20.4, 0),  # → 20
        (score_respiration, 20.5, 2),  # → 21 (half up; banker's round would give 20)
        (score_respiration, 20.6, 2),
        (score_respiration, 8.49, 3),  # → 8
        (score_respiration, 8.5, 1),  # → 9
        (score_respiration, 11.5, 0),  # → 12 (banker's round would give 12 too; see 12.5)
        (score_respiration, 12.5, 0),  # → 13, not 12
        (score_respiration, 24.5, 3),  # → 25
        (score_spo2_scale1, 91.49, 3),  # → 91
        (score_spo2_scale1, 91.5, 2),  # → 92
        (score_spo2_scale1, 95.5, 0),  # → 96
        (score_systolic_bp, 90.4, 3),  # → 90
        (score_systolic_bp, 90.5, 2),  # → 91
        (score_systolic_bp, 110.5, 0),  # → 111
        (score_systolic_bp, 219.49, 0),  # → 219
        (score_systolic_bp, 219.5, 3),  # → 220
        (score_pulse, 40.5, 1),  # → 41
        (score_pulse, 90.49, 0),  # → 90
        (score_pulse, 90.5, 1),  # → 91
        (score_pulse, 130.5, 3),  # → 131
        (score_temperature, 38.04, 0),  # → 38.0
        (score_temperature, 38.05, 1),  # → 38.1 (the float 38.05 is 38.0499…; charted as 38.1)
        (score_temperature, 35.04, 3),  # → 35.0
        (score_temperature, 35.05, 1),  # → 35.1
        (score_temperature, 36.05, 0),  # → 36.1
        (score_temperature, 39.05, 2),  # → 39.1
        (score_temperature, 38.96, 1),  # → 39.0
    ],
)
def test_values_are_rounded_half_up_as_charted_before_banding(
    function: Callable[[float], int], value: float, expected: int
) -> None:
    assert function(value) == expected


@pytest.mark.parametrize(
    ("spo2", "on_air", "on_oxygen"), [(92.4, 0, 0), (92.5, 0, 1), (94.5, 0, 2), (96.5, 0, 3)]
)
def test_spo2_scale2_rounds_before_banding(spo2: float, on_air: int, on_oxygen: int) -> None:
    assert score_spo2_scale2(spo2, on_oxygen=False) == on_air
    assert score_spo2_scale2(spo2, on_oxygen=True) == on_oxygen


def test_integers_are_accepted_like_floats() -> None:
    assert score_respiration(21) == score_respiration(21.0) == 2
    assert score_temperature(39) == 1


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(
    "function",
    [score_respiration, score_spo2_scale1, score_systolic_bp, score_pulse, score_temperature],
)
def test_non_finite_values_are_rejected(function: Callable[[float], int], bad: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        function(bad)


def test_extreme_finite_values_band_without_overflowing_the_rounding() -> None:
    assert score_respiration(1e300) == 3
    assert score_temperature(-1e300) == 3


# --- chart 2, clinical risk ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "any_three", "expected"),
    [
        (0, False, "low"),
        (4, False, "low"),
        (3, True, "low-medium"),
        (4, True, "low-medium"),
        (5, False, "medium"),
        (5, True, "medium"),  # aggregate 5+ outranks the single-3 rule
        (6, False, "medium"),
        (6, True, "medium"),
        (7, False, "high"),
        (7, True, "high"),
        (20, True, "high"),
    ],
)
def test_clinical_risk(total: int, any_three: bool, expected: str) -> None:
    assert clinical_risk(total, any_three) == expected


# --- the whole score ----------------------------------------------------------------------

# All seven parameters present and each scoring 0.
NORMAL = Observations(
    respiratory_rate=16,
    spo2=97,
    on_oxygen=False,
    systolic_bp=120,
    heart_rate=70,
    consciousness="A",
    temperature=37.0,
)


def test_all_normal_scores_zero_and_low_risk() -> None:
    result = score_news2(NORMAL)
    assert result.complete is True
    assert result.missing == ()
    assert dict(result.components) == dict.fromkeys(PARAMETERS, 0)
    assert list(result.components) == list(PARAMETERS)
    assert result.total == 0
    assert result.partial_total == 0
    assert result.any_three is False
    assert result.risk == "low"
    assert result.spo2_scale == 1


@pytest.mark.parametrize(
    ("changes", "total", "any_three", "risk"),
    [
        # RR 21 (2) + SpO2 95 (1) + pulse 91 (1) = 4
        ({"respiratory_rate": 21, "spo2": 95, "heart_rate": 91}, 4, False, "low"),
        # a single 3 (new confusion), aggregate 3
        ({"consciousness": "C"}, 3, True, "low-medium"),
        # RR 8 (3) + temperature 38.1 (1) = 4, still low-medium
        ({"respiratory_rate": 8, "temperature": 38.1}, 4, True, "low-medium"),
        # oxygen (2) + SBP 100 (2) + temperature 35.1 (1) = 5
        ({"on_oxygen": True, "systolic_bp": 100, "temperature": 35.1}, 5, False, "medium"),
        # SBP 90 (3) + oxygen (2) = 5, with a 3: medium outranks low-medium
        ({"systolic_bp": 90, "on_oxygen": True}, 5, True, "medium"),
        # RR 24 (2) + SpO2 93 (2) + pulse 111 (2) = 6
        ({"respiratory_rate": 24, "spo2": 93, "heart_rate": 111}, 6, False, "medium"),
        # RR 24 (2) + SpO2 93 (2) + pulse 111 (2) + temperature 39.0 (1) = 7
        (
            {"respiratory_rate": 24, "spo2": 93, "heart_rate": 111, "temperature": 39.0},
            7,
            False,
            "high",
        ),
        # every parameter at its worst: 3 + 3 + 2 + 3 + 3 + 3 + 3 = 20 (the maximum)
        (
            {
                "respiratory_rate": 30,
                "spo2": 85,
                "on_oxygen": True,
                "systolic_bp": 80,
                "heart_rate": 140,
                "consciousness": "U",
                "temperature": 34.0,
            },
            20,
            True,
            "high",
        ),
    ],
)
def test_aggregate_and_risk(
    changes: dict[str, Any], total: int, any_three: bool, risk: str
) -> None:
    result = score_news2(dataclasses.replace(NORMAL, **changes))
    assert result.total == total
    assert result.partial_total == total
    assert result.any_three is any_three
    assert result.risk == risk


def test_temperature_two_is_not_a_red_score() -> None:
    # Temperature tops out at 2, so ≥39.1 alone is low risk, not low-medium.
    result = score_news2(dataclasses.replace(NORMAL, temperature=39.5))
    assert result.total == 2
    assert result.any_three is False
    assert result.risk == "low"


# --- incomplete observations --------------------------------------------------------------


def test_nothing_observed() -> None:
    result = score_news2(Observations())
    assert result.complete is False
    assert result.missing == PARAMETERS
    assert dict(result.components) == {}
    assert result.total is None
    assert result.partial_total == 0
    assert result.risk is None
    assert result.any_three is False


def test_home_readings_without_oxygen_or_consciousness_are_incomplete() -> None:
    # Not assumed to be air and Alert: that default is the calling rule's policy.
    result = score_news2(
        Observations(respiratory_rate=22, spo2=95, systolic_bp=108, heart_rate=96, temperature=38.2)
    )
    assert result.missing == ("air_or_oxygen", "consciousness")
    assert dict(result.components) == {
        "respiratory_rate": 2,
        "spo2": 1,
        "systolic_bp": 1,
        "heart_rate": 1,
        "temperature": 1,
    }
    assert result.partial_total == 6
    assert result.total is None
    assert result.risk is None


@pytest.mark.parametrize("absent", ["respiratory_rate", "spo2", "systolic_bp", "heart_rate"])
def test_each_missing_vital_is_named(absent: str) -> None:
    changes: dict[str, Any] = {absent: None}
    result = score_news2(dataclasses.replace(NORMAL, **changes))
    assert result.missing == (absent,)
    assert absent not in result.components
    assert result.total is None
    assert result.risk is None


def test_missing_temperature_consciousness_and_oxygen_are_named() -> None:
    assert score_news2(dataclasses.replace(NORMAL, temperature=None)).missing == ("temperature",)
    assert score_news2(dataclasses.replace(NORMAL, consciousness=None)).missing == (
        "consciousness",
    )
    assert score_news2(dataclasses.replace(NORMAL, on_oxygen=None)).missing == ("air_or_oxygen",)


def test_a_three_is_reported_even_when_incomplete() -> None:
    result = score_news2(Observations(systolic_bp=85, heart_rate=70))
    assert result.any_three is True
    assert result.partial_total == 3
    assert result.risk is None


# --- Scale 2 in the whole score -----------------------------------------------------------


def test_scale1_unless_hypercapnic() -> None:
    # SpO2 88 on air: 3 on Scale 1, 0 on Scale 2.
    observations = dataclasses.replace(NORMAL, spo2=88)
    scale1 = score_news2(observations)
    scale2 = score_news2(dataclasses.replace(observations, hypercapnic=True))
    assert (scale1.spo2_scale, scale1.components["spo2"], scale1.risk) == (1, 3, "low-medium")
    assert (scale2.spo2_scale, scale2.components["spo2"], scale2.risk) == (2, 0, "low")


def test_scale2_on_oxygen_scores_high_saturation_and_the_oxygen() -> None:
    result = score_news2(dataclasses.replace(NORMAL, spo2=97, on_oxygen=True, hypercapnic=True))
    assert result.components["spo2"] == 3
    assert result.components["air_or_oxygen"] == 2
    assert result.total == 5


def test_scale2_above_92_without_oxygen_status_cannot_be_scored() -> None:
    result = score_news2(dataclasses.replace(NORMAL, spo2=95, on_oxygen=None, hypercapnic=True))
    assert result.missing == ("spo2", "air_or_oxygen")
    assert "spo2" not in result.components


@pytest.mark.parametrize(("spo2", "expected"), [(83, 3), (86, 1), (92, 0), (92.4, 0)])
def test_scale2_up_to_92_is_scored_without_oxygen_status(spo2: float, expected: int) -> None:
    result = score_news2(dataclasses.replace(NORMAL, spo2=spo2, on_oxygen=None, hypercapnic=True))
    assert result.components["spo2"] == expected
    assert result.missing == ("air_or_oxygen",)


def test_scale2_rounding_to_93_without_oxygen_status_cannot_be_scored() -> None:
    result = score_news2(dataclasses.replace(NORMAL, spo2=92.5, on_oxygen=None, hypercapnic=True))
    assert "spo2" in result.missing


# --- values -------------------------------------------------------------------------------


def test_values_are_frozen() -> None:
    result = score_news2(NORMAL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        NORMAL.spo2 = 80  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.missing = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        result.components["spo2"] = 3  # type: ignore[index]


def test_observations_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        Observations(16, 97)  # type: ignore[call-arg]


def test_invalid_consciousness_in_observations_raises() -> None:
    with pytest.raises(ValueError, match="consciousness"):
        score_news2(dataclasses.replace(NORMAL, consciousness="confused"))


def test_public_surface() -> None:
    assert sorted(news2.__all__) == [
        "News2Result",
        "Observations",
        "PARAMETERS",
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
    assert PARAMETERS == (
        "respiratory_rate",
        "spo2",
        "air_or_oxygen",
        "systolic_bp",
        "heart_rate",
        "consciousness",
        "temperature",
    )

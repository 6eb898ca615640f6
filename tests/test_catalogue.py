"""Tests for the measurement catalogue (catalogue/).

Expected values are written out literally here (not derived from the package) so that a change
to the catalogue table or to a conversion factor shows up as a failing test.
"""

from __future__ import annotations

import dataclasses
import math
import pickle
from fractions import Fraction

import pytest

from homecare import catalogue
from homecare.catalogue import (
    ACVPU,
    CATALOGUE,
    ESAS_ITEMS,
    PROGRAMS,
    BadUnit,
    CatalogueError,
    MeasurementType,
    UnknownType,
    lookup,
)

LOINC = "http://loinc.org"
LOCAL = "urn:homecare:measurement"

ESAS_NAMES = (
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

# The measurement catalogue of docs/contracts.md; LOINC codes from loinc.org.
# name: (accepted units, canonical first), plausible min, plausible max, code system, code,
# FHIR observation category.
EXPECTED: dict[str, tuple[tuple[str, ...], float, float, str, str, str]] = {
    "heart_rate": (("/min", "bpm", "{beats}/min"), 20, 300, LOINC, "8867-4", "vital-signs"),
    "systolic_bp": (("mm[Hg]", "mmHg", "kPa"), 40, 300, LOINC, "8480-6", "vital-signs"),
    "diastolic_bp": (("mm[Hg]", "mmHg", "kPa"), 20, 200, LOINC, "8462-4", "vital-signs"),
    "spo2": (("%",), 50, 100, LOINC, "59408-5", "vital-signs"),
    "respiratory_rate": (("/min", "{breaths}/min"), 2, 80, LOINC, "9279-1", "vital-signs"),
    "body_temperature": (("Cel", "[degF]"), 25, 45, LOINC, "8310-5", "vital-signs"),
    "body_weight": (("kg", "[lb_av]", "g"), 2, 400, LOINC, "29463-7", "vital-signs"),
    "blood_glucose": (("mmol/L", "mg/dL"), 0.5, 50, LOINC, "15074-8", "laboratory"),
    "pain_score": (("{score}",), 0, 10, LOINC, "72514-3", "survey"),
    **{name: (("{score}",), 0, 10, LOCAL, name, "survey") for name in ESAS_NAMES},
    "wound_area": (("cm2", "mm2"), 0, 2000, LOCAL, "wound_area", "exam"),
    "range_of_motion": (("deg",), -90, 360, LOCAL, "range_of_motion", "exam"),
}

ALL_NAMES = tuple(EXPECTED)


# --- public surface -------------------------------------------------------------------------


def test_public_names_are_exactly_the_documented_api() -> None:
    assert sorted(catalogue.__all__) == sorted(
        [
            "MeasurementType",
            "CATALOGUE",
            "lookup",
            "CatalogueError",
            "UnknownType",
            "BadUnit",
            "PROGRAMS",
            "Program",
            "ACVPU",
            "ESAS_ITEMS",
        ]
    )
    for name in catalogue.__all__:
        assert hasattr(catalogue, name), name


def test_exception_hierarchy() -> None:
    assert issubclass(CatalogueError, ValueError)
    assert issubclass(UnknownType, CatalogueError)
    assert issubclass(BadUnit, CatalogueError)
    assert not issubclass(UnknownType, BadUnit)
    assert not issubclass(BadUnit, UnknownType)


def test_programs_acvpu_and_esas_vocabularies() -> None:
    assert PROGRAMS == (
        "heart_failure",
        "copd",
        "hypertension",
        "diabetes",
        "post_surgical_rehab",
        "wound_care",
        "oncology",
    )
    assert ACVPU == ("A", "C", "V", "P", "U")
    assert ESAS_ITEMS == ESAS_NAMES
    assert len(ESAS_ITEMS) == 9


# --- the table ------------------------------------------------------------------------------


def test_catalogue_holds_exactly_the_twenty_types_in_table_order() -> None:
    assert len(ALL_NAMES) == 20
    assert tuple(CATALOGUE) == ALL_NAMES


@pytest.mark.parametrize("name", ALL_NAMES)
def test_type_matches_design_table(name: str) -> None:
    units, low, high, system, code, category = EXPECTED[name]
    mtype = lookup(name)
    assert isinstance(mtype, MeasurementType)
    assert mtype is CATALOGUE[name]
    assert mtype.name == name
    assert mtype.canonical_unit == units[0]
    assert mtype.accepted_units == units
    assert mtype.plausible_min == low
    assert mtype.plausible_max == high
    assert mtype.code_system == system
    assert mtype.code == code
    assert mtype.category == category
    assert isinstance(mtype.display, str)
    assert mtype.display.strip() != ""


def test_display_names_are_english_labels() -> None:
    assert lookup("heart_rate").display == "Heart rate"
    assert lookup("body_weight").display == "Body weight"
    # Every type has its own label, so exports never show two types under one name.
    displays = [t.display for t in CATALOGUE.values()]
    assert len(set(displays)) == len(displays)


def test_labels_are_short_and_default_to_the_display() -> None:
    # Alert summaries name vitals by label: what a nurse says, not the LOINC wording.
    assert lookup("spo2").label == "SpO2"
    assert lookup("spo2").display == "Oxygen saturation by pulse oximetry"  # FHIR keeps it
    assert lookup("body_weight").label == "Weight"
    assert lookup("heart_rate").label == lookup("heart_rate").display == "Heart rate"
    labels = [t.label for t in CATALOGUE.values()]
    assert len(set(labels)) == len(labels) and all(label.strip() for label in labels)


def test_esas_items_are_local_survey_scores() -> None:
    for item in ESAS_ITEMS:
        mtype = CATALOGUE[item]
        assert (mtype.code_system, mtype.code) == (LOCAL, item)
        assert mtype.category == "survey"
        assert mtype.accepted_units == ("{score}",)


# --- conversions ----------------------------------------------------------------------------

# Expected values computed independently (decimal arithmetic by hand from the definitions:
# 1 mmHg = 133.322387415 Pa; F -> C is (F - 32) * 5 / 9; 1 lb = 0.45359237 kg exactly;
# glucose 180.156 g/mol so 1 mmol/L = 18.0156 mg/dL; 1 cm2 = 100 mm2).
CONVERSIONS = [
    ("heart_rate", 72, "bpm", 72.0, 0.0),
    ("heart_rate", 72, "{beats}/min", 72.0, 0.0),
    ("heart_rate", 72, "/min", 72.0, 0.0),
    ("respiratory_rate", 16, "{breaths}/min", 16.0, 0.0),
    ("systolic_bp", 120, "mmHg", 120.0, 0.0),
    ("systolic_bp", 13.3322, "kPa", 100.0, 1e-3),
    ("systolic_bp", 13.3322387415, "kPa", 100.0, 1e-9),
    ("systolic_bp", 16, "kPa", 120.009852135, 1e-8),
    ("diastolic_bp", 10.6657909932, "kPa", 80.0, 1e-8),
    ("diastolic_bp", 80, "mmHg", 80.0, 0.0),
    ("body_temperature", 100, "[degF]", 37.7778, 1e-4),
    ("body_temperature", 98.6, "[degF]", 37.0, 1e-9),
    ("body_temperature", 32, "[degF]", 0.0, 1e-12),
    ("body_temperature", 212, "[degF]", 100.0, 1e-9),
    ("body_temperature", -40, "[degF]", -40.0, 1e-9),
    ("body_weight", 220, "[lb_av]", 99.7903214, 1e-9),
    ("body_weight", 220, "[lb_av]", 99.79, 5e-3),
    ("body_weight", 1, "[lb_av]", 0.45359237, 1e-12),
    ("body_weight", 2500, "g", 2.5, 1e-12),
    ("blood_glucose", 180, "mg/dL", 9.99134, 1e-5),
    ("blood_glucose", 18.0156, "mg/dL", 1.0, 1e-12),
    ("blood_glucose", 90.078, "mg/dL", 5.0, 1e-12),
    ("wound_area", 250, "mm2", 2.5, 1e-12),
    ("wound_area", 1, "mm2", 0.01, 1e-15),
]


@pytest.mark.parametrize(("name", "value", "unit", "expected", "tol"), CONVERSIONS)
def test_conversion_to_canonical(
    name: str, value: float, unit: str, expected: float, tol: float
) -> None:
    result = lookup(name).to_canonical(value, unit)
    assert type(result) is float
    assert result == pytest.approx(expected, rel=0, abs=tol)


def test_kpa_factor_is_the_mmhg_definition() -> None:
    # 1 kPa = 1000 / 133.322387415 mmHg = 7.5006157585 mmHg.  (The rounded figure 7.50061683
    # quoted in the design brief is the torr factor, 1000 / (101325 / 760); the two agree to
    # 1.4e-7 relative, far below any clinical resolution.)
    per_kpa = lookup("systolic_bp").to_canonical(1, "kPa")
    assert per_kpa == pytest.approx(7.5006157585, rel=1e-10)
    assert per_kpa == pytest.approx(7.50061683, rel=1e-6)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_canonical_unit_is_identity(name: str) -> None:
    mtype = lookup(name)
    for value in (0, 1.5, -3.25, 123.456):
        assert mtype.to_canonical(value, mtype.canonical_unit) == value
    assert type(mtype.to_canonical(7, mtype.canonical_unit)) is float


def test_to_canonical_accepts_other_real_numbers() -> None:
    assert lookup("body_weight").to_canonical(Fraction(5, 2), "kg") == 2.5  # type: ignore[arg-type]
    np = pytest.importorskip("numpy")
    assert lookup("heart_rate").to_canonical(np.int64(72), "bpm") == 72.0
    assert lookup("body_weight").to_canonical(np.float64(2500.0), "g") == 2.5


def test_non_finite_values_convert_but_are_never_plausible() -> None:
    temp = lookup("body_temperature")
    assert math.isnan(temp.to_canonical(math.nan, "[degF]"))
    converted = temp.to_canonical(math.inf, "[degF]")
    assert converted == math.inf
    assert not temp.is_plausible(converted)


@pytest.mark.parametrize("flag", [True, False])
def test_bool_is_not_a_number(flag: bool) -> None:
    with pytest.raises(TypeError):
        lookup("heart_rate").to_canonical(flag, "/min")
    with pytest.raises(TypeError):
        lookup("pain_score").to_canonical(flag, "{score}")
    with pytest.raises(TypeError):
        lookup("pain_score").is_plausible(flag)


@pytest.mark.parametrize("value", ["72", None, b"72", [72]])
def test_non_numeric_values_are_rejected(value: object) -> None:
    with pytest.raises(TypeError):
        lookup("heart_rate").to_canonical(value, "/min")  # type: ignore[arg-type]


# --- bad units ------------------------------------------------------------------------------

BAD_UNITS = [
    ("systolic_bp", "MMHG"),  # UCUM is case-sensitive
    ("systolic_bp", "mmhg"),
    ("systolic_bp", "KPA"),
    ("systolic_bp", "mm[hg]"),
    ("body_temperature", "cel"),
    ("body_temperature", "[degf]"),
    ("body_temperature", "F"),
    ("body_weight", "KG"),
    ("body_weight", "lb"),
    ("blood_glucose", "mg/dl"),
    ("blood_glucose", "mmol/l"),
    ("heart_rate", "{breaths}/min"),  # accepted for respiratory_rate, not for heart_rate
    ("respiratory_rate", "bpm"),
    ("heart_rate", "kg"),
    ("spo2", "percent"),
    ("wound_area", "m2"),
    ("range_of_motion", "rad"),
    ("pain_score", ""),
    ("heart_rate", " /min"),
]


@pytest.mark.parametrize(("name", "unit"), BAD_UNITS)
def test_unaccepted_unit_raises_bad_unit(name: str, unit: str) -> None:
    mtype = lookup(name)
    with pytest.raises(BadUnit) as info:
        mtype.to_canonical(1.0, unit)
    err = info.value
    assert err.unit == unit
    assert err.type_name == name
    assert err.accepted == EXPECTED[name][0]
    message = str(err)
    assert repr(unit) in message
    assert name in message
    for accepted in EXPECTED[name][0]:
        assert repr(accepted) in message
    with pytest.raises(BadUnit):
        mtype.coding_for_unit(unit)


def test_bad_unit_hint_for_case_mistakes() -> None:
    with pytest.raises(BadUnit, match=r"did you mean 'mmHg'\?"):
        lookup("systolic_bp").to_canonical(120, "MMHG")
    with pytest.raises(BadUnit) as info:
        lookup("systolic_bp").to_canonical(120, "psi")
    assert "did you mean" not in str(info.value)


def test_bad_unit_is_catchable_as_value_error() -> None:
    with pytest.raises(ValueError, match="'Hz'"):
        lookup("heart_rate").to_canonical(1.2, "Hz")


# --- plausible ranges -----------------------------------------------------------------------


def test_heart_rate_range_edges() -> None:
    hr = lookup("heart_rate")
    assert hr.is_plausible(20)
    assert hr.is_plausible(300)
    assert hr.is_plausible(72.5)
    assert not hr.is_plausible(19.99)
    assert not hr.is_plausible(300.01)
    assert not hr.is_plausible(math.nan)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_range_edges_are_inclusive(name: str) -> None:
    _units, low, high, *_rest = EXPECTED[name]
    mtype = lookup(name)
    assert mtype.is_plausible(low)
    assert mtype.is_plausible(high)
    assert mtype.is_plausible((low + high) / 2)
    assert not mtype.is_plausible(low - 0.01)
    assert not mtype.is_plausible(high + 0.01)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_non_finite_never_plausible(name: str) -> None:
    mtype = lookup(name)
    assert not mtype.is_plausible(math.nan)
    assert not mtype.is_plausible(math.inf)
    assert not mtype.is_plausible(-math.inf)


def test_plausibility_is_judged_in_canonical_units() -> None:
    # 104 degF is a high fever (40 Cel) and plausible once converted; the raw 104 is not.
    temp = lookup("body_temperature")
    assert not temp.is_plausible(104)
    assert temp.is_plausible(temp.to_canonical(104, "[degF]"))
    # 500 lb is 226.8 kg: plausible, even though 500 is outside 2-400 as a raw number.
    weight = lookup("body_weight")
    assert not weight.is_plausible(500)
    assert weight.is_plausible(weight.to_canonical(500, "[lb_av]"))
    # 5 mg/dL is a meaningless glucose (0.28 mmol/L) and must be caught after conversion.
    glucose = lookup("blood_glucose")
    assert not glucose.is_plausible(glucose.to_canonical(5, "mg/dL"))


# --- coding ---------------------------------------------------------------------------------


def test_glucose_coding_depends_on_unit() -> None:
    glucose = lookup("blood_glucose")
    assert glucose.coding_for_unit("mmol/L") == (LOINC, "15074-8")
    assert glucose.coding_for_unit("mg/dL") == (LOINC, "2339-0")


@pytest.mark.parametrize("name", [n for n in ALL_NAMES if n != "blood_glucose"])
def test_coding_is_the_type_code_for_every_other_unit(name: str) -> None:
    units, _low, _high, system, code, _category = EXPECTED[name]
    mtype = lookup(name)
    for unit in units:
        assert mtype.coding_for_unit(unit) == (system, code)


# --- lookup ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["glucose", "", "Heart_Rate", "heart rate", "esas_", "esas_sleep"])
def test_unknown_type(name: str) -> None:
    with pytest.raises(UnknownType) as info:
        lookup(name)
    assert info.value.name == name
    assert repr(name) in str(info.value)


def test_unknown_type_for_unhashable_name() -> None:
    with pytest.raises(UnknownType):
        lookup(["heart_rate"])  # type: ignore[arg-type]


def test_unknown_type_is_catchable_as_value_error() -> None:
    with pytest.raises(ValueError, match="'pulse'"):
        lookup("pulse")


def test_exceptions_survive_pickling() -> None:
    bad = pickle.loads(pickle.dumps(BadUnit("MMHG", "systolic_bp", ("mm[Hg]", "mmHg", "kPa"))))
    assert isinstance(bad, BadUnit)
    assert (bad.unit, bad.type_name, bad.accepted) == (
        "MMHG",
        "systolic_bp",
        ("mm[Hg]", "mmHg", "kPa"),
    )
    unknown = pickle.loads(pickle.dumps(UnknownType("pulse")))
    assert isinstance(unknown, UnknownType)
    assert unknown.name == "pulse"
    assert str(unknown) == str(UnknownType("pulse"))


# --- immutability ---------------------------------------------------------------------------


def test_catalogue_mapping_is_read_only() -> None:
    with pytest.raises(TypeError):
        CATALOGUE["pulse"] = lookup("heart_rate")  # type: ignore[index]
    with pytest.raises(TypeError):
        del CATALOGUE["heart_rate"]  # type: ignore[attr-defined]
    assert not hasattr(CATALOGUE, "clear")
    assert not hasattr(CATALOGUE, "pop")
    assert "pulse" not in CATALOGUE
    assert len(CATALOGUE) == 20


def test_measurement_type_is_frozen_and_hashable() -> None:
    hr = lookup("heart_rate")
    with pytest.raises(dataclasses.FrozenInstanceError):
        hr.plausible_max = 1000  # type: ignore[misc]
    assert hr.plausible_max == 300
    assert {hr: "x"}[lookup("heart_rate")] == "x"
    assert pickle.loads(pickle.dumps(hr)) == hr


# --- construction checks --------------------------------------------------------------------


def _make(**overrides: object) -> MeasurementType:
    fields: dict[str, object] = {
        "name": "test_type",
        "canonical_unit": "kg",
        "accepted_units": ("kg", "g"),
        "plausible_min": 0.0,
        "plausible_max": 1.0,
        "code_system": LOCAL,
        "code": "test_type",
        "display": "Test type",
        "category": "exam",
    }
    fields.update(overrides)
    return MeasurementType(**fields)  # type: ignore[arg-type]


def test_valid_definition_builds() -> None:
    assert _make().to_canonical(500, "g") == 0.5


@pytest.mark.parametrize(
    "overrides",
    [
        {"accepted_units": ("g", "kg")},  # canonical unit not first
        {"accepted_units": ()},
        {"accepted_units": ("kg", "g", "g")},
        {"accepted_units": ("kg", "[degF]")},  # no conversion from degF to kg
        {"plausible_min": 2.0, "plausible_max": 1.0},
        {"plausible_max": math.inf},
        {"code_system": "http://snomed.info/sct"},
        {"category": "vital_signs"},
        {"unit_codes": (("[lb_av]", "X"),)},  # override for a unit the type does not accept
    ],
)
def test_inconsistent_definitions_are_rejected(overrides: dict[str, object]) -> None:
    with pytest.raises(CatalogueError):
        _make(**overrides)

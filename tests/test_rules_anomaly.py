"""The anomaly rule kind with models in force: replay exactness, which model judged, what moved,
and the rules that yield to a model.

The contract every kind meets is in tests/test_rules_kinds.py (the anomaly kind has its row
there); these are the checks particular to a rule judged by a learned model chosen by event
time.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from homecare.rules.anomaly import DirectedDetector, build_features, fit_cohort
from homecare.rules.evaluate import PatientContext, evaluate_patient
from homecare.rules.kinds.base import ModelVersion
from homecare.rules.model import Finding
from homecare.rules.packs import Pack, PackSet
from tests.anomaly_support import PATIENT, T0, USUAL, synthetic_patient

VITALS = tuple(USUAL)
HANDOVER = T0 + timedelta(days=30)
END = T0 + timedelta(days=44)
LATE = timedelta(hours=6)


def _models() -> dict[str, tuple[ModelVersion, ...]]:
    """A cohort model from long before T0 (other synthetic patients), the patient's personal
    model from HANDOVER on (fitted on their first 28 days)."""
    detector = DirectedDetector()
    others = [build_features(synthetic_patient(28, seed=s), VITALS) for s in (31, 32, 33)]
    cohort = fit_cohort(detector, others)
    own = [r for r in _readings() if r.time < T0 + timedelta(days=28)]
    personal = detector.fit(build_features(own, VITALS))
    return {
        "directed": (
            ModelVersion(T0 - timedelta(days=365), cohort.info, cohort),
            ModelVersion(HANDOVER, personal.info, personal),
        )
    }


def _readings() -> list:  # type: ignore[type-arg]
    """44 days; SpO2 down 4 and heart rate up 14 over days 22-26, again over days 40-44."""
    first = synthetic_patient(26, seed=5, moves={"spo2": -4, "heart_rate": 14}, over_days=4)
    second = synthetic_patient(
        18, seed=6, moves={"spo2": -4, "heart_rate": 14}, over_days=4,
        start=T0 + timedelta(days=26),
    )  # fmt: skip
    return first + second


RULE = {
    "id": "t.unusual", "kind": "anomaly", "detector": "directed", "threshold": 3.0,
    "vitals": ["spo2", "heart_rate", "respiratory_rate"], "min_vitals": 2,
    "persistence": {"count": 2, "of": 3, "within": "2d"}, "severity": "high",
    "summary": "Unusual ({scope} model {model_id} v{model_version}): {explanation}, since {since}",
}  # fmt: skip


def _packs(*rules: dict) -> PackSet:  # type: ignore[type-arg]
    return PackSet({"common": Pack.model_validate({"pack": "common", "version": 1,
                                                   "rules": list(rules)})})  # fmt: skip


def _evaluate(packs: PackSet, context: PatientContext, readings: list) -> list[Finding]:  # type: ignore[type-arg]
    return evaluate_patient(packs, context, readings, T0 + timedelta(days=12), END, {}, LATE)


@pytest.fixture(scope="module")
def models() -> dict[str, tuple[ModelVersion, ...]]:
    return _models()


def test_same_readings_and_model_versions_give_the_same_findings(
    models: dict[str, tuple[ModelVersion, ...]],
) -> None:
    readings = _readings()
    context = PatientContext(PATIENT, (), models=models)
    expected = _evaluate(_packs(RULE), context, readings)
    assert any(f.state == "active" for f in expected)
    shuffled = readings[:]
    random.Random(3).shuffle(shuffled)
    # Models rebuilt from their stored bytes, as the registry hands them over.
    again = {
        kind: tuple(
            v._replace(detector=type(v.detector).from_bytes(v.detector.to_bytes()))
            for v in versions
        )
        for kind, versions in models.items()
    }
    assert _evaluate(_packs(RULE), PatientContext(PATIENT, (), models=again), shuffled) == expected
    assert _evaluate(_packs(RULE), context, readings[::-1]) == expected


def test_no_model_in_force_means_the_rule_cannot_tell() -> None:
    assert _evaluate(_packs(RULE), PatientContext(PATIENT, ()), _readings()) == []


def test_the_finding_names_the_cohort_model_before_the_handover_and_the_personal_after(
    models: dict[str, tuple[ModelVersion, ...]],
) -> None:
    findings = [
        f for f in _evaluate(_packs(RULE), PatientContext(PATIENT, (), models=models), _readings())
        if f.state == "active"
    ]  # fmt: skip
    cohort, personal = models["directed"]
    before = [f for f in findings if f.evidence_time < HANDOVER]
    after = [f for f in findings if f.evidence_time >= HANDOVER]
    assert before and after
    for finding in before:
        assert finding.evidence["scope"] == "cohort"
        assert finding.evidence["model_id"] == cohort.info.model_id
        assert f"cohort model {cohort.info.model_id} v1" in finding.summary
    for finding in after:
        assert finding.evidence["scope"] == "personal"
        assert finding.evidence["model_id"] == personal.info.model_id
        assert finding.evidence["model_version"] == DirectedDetector.version


def test_each_explanation_names_the_vitals_that_drove_the_score(
    models: dict[str, tuple[ModelVersion, ...]],
) -> None:
    findings = [
        f for f in _evaluate(_packs(RULE), PatientContext(PATIENT, (), models=models), _readings())
        if f.state == "active"
    ]  # fmt: skip
    assert findings
    for finding in findings:
        vitals = finding.evidence["vitals"]
        moved = {m["type"] for m in vitals if m["score"] >= 1}
        assert len(moved) >= 2  # min_vitals
        # The vitals that drove the score most are the two that moved, and are named.
        top = sorted(vitals, key=lambda m: -m["share"])[0]
        assert top["type"] in ("spo2", "heart_rate")
        assert ("SpO2" if top["type"] == "spo2" else "Heart rate") in finding.summary
        assert "(usual " in finding.summary and "since " in finding.summary
        # A vital the score did not count is not named.
        assert "systolic" not in finding.summary.lower()
        spo2 = [m for m in finding.evidence["vitals"] if m["type"] == "spo2"]
        assert not spo2 or spo2[0]["change"] < 0


def test_a_rule_that_yields_to_a_model_stands_down_only_while_one_judges(
    models: dict[str, tuple[ModelVersion, ...]],
) -> None:
    deviation = {
        "id": "t.deviation", "kind": "deviation", "min_score": 2.5, "min_vitals": 2,
        "yields_to": "directed", "severity": "high", "summary": "{explanation}",
        "vitals": [{"type": "heart_rate", "direction": "up", "floor": 3},
                   {"type": "spo2", "direction": "down", "floor": 1}],
    }  # fmt: skip
    readings = _readings()
    alone = _evaluate(_packs(deviation), PatientContext(PATIENT, ()), readings)
    assert any(f.state == "active" for f in alone)
    judged = _evaluate(_packs(deviation), PatientContext(PATIENT, (), models=models), readings)
    assert not any(f.state == "active" for f in judged)

"""Evaluation of the anomaly rules: the in-process training schedule, the three rule sets side
by side on two sets of cohorts, and the operating-point plot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from homecare.evaluation.anomaly import (
    ANOMALY_ONLY,
    BOTH,
    RULES_ONLY,
    TrainingSchedule,
    flagged_periods,
    split_packs,
    training_rows,
)
from homecare.evaluation.cohorts import EvaluationResult
from homecare.evaluation.plot import plot_operating_points
from homecare.evaluation.report import format_comparison
from homecare.rules import load_packs
from homecare.rules.anomaly import build_features, vitals_for
from homecare.rules.harness import Alert, Group, Labels
from tests.anomaly_support import T0, synthetic_patient

PROGRAMS = ("heart_failure",)


def test_the_schedule_leaves_out_the_periods_the_rules_flagged() -> None:
    # Days 14-21: heart rate up 25 and SpO2 down 5, a deterioration the rules alerted on.
    readings = synthetic_patient(21, seed=2, moves={"heart_rate": 25, "spo2": -5}, over_days=7)
    readings += synthetic_patient(21, seed=3, start=T0 + timedelta(days=21))
    alert = Alert("p", "hf.deviation", "high", T0 + timedelta(days=18))
    flagged = flagged_periods([alert], timedelta(days=4), timedelta(days=3))
    schedule = TrainingSchedule(every=timedelta(days=7), history=timedelta(days=28))
    versions = schedule.personal(readings, PROGRAMS, flagged, T0 + timedelta(days=42))
    assert versions[0].in_force_from >= T0 + timedelta(days=14)
    refit = next(v for v in versions if v.in_force_from == T0 + timedelta(days=28))
    features = build_features(readings, vitals_for(PROGRAMS))
    start, end = T0, T0 + timedelta(days=28)
    kept = training_rows(features, start, end, flagged)
    everything = training_rows(features, start, end, [])
    assert len(kept) < len(everything)
    assert all(
        not (flagged[0][0].timestamp() <= t <= flagged[0][1].timestamp()) for t in kept.times
    )
    # The model in force is the one fitted without the flagged instants, and it differs from
    # one fitted on them: the deterioration did not become the patient's usual.
    assert refit.detector.to_bytes() == schedule.make().fit(kept).to_bytes()
    assert refit.detector.to_bytes() != schedule.make().fit(everything).to_bytes()
    assert refit.info.trained_until < end


def test_flagged_periods_merge_and_cover_each_alert() -> None:
    at = datetime(2026, 5, 1, tzinfo=UTC)
    alerts = [Alert("p", "r", "high", at + timedelta(days=d)) for d in (0, 1, 9)]
    periods = flagged_periods(alerts, timedelta(days=1), timedelta(days=2))
    assert periods == [
        (at - timedelta(days=1), at + timedelta(days=3)),
        (at + timedelta(days=8), at + timedelta(days=11)),
    ]


def test_the_packs_split_into_rules_only_anomaly_only_and_both() -> None:
    packs = load_packs()
    sets = split_packs(packs)
    kinds = {label: {r.kind for _, r in s.rules_for(s.packs)} for label, s in sets.items()}
    assert "anomaly" not in kinds[RULES_ONLY] and "deviation" in kinds[RULES_ONLY]
    assert kinds[ANOMALY_ONLY] <= {"anomaly", "artefact"} and "anomaly" in kinds[ANOMALY_ONLY]
    assert sets[BOTH] is packs
    for program in ("heart_failure", "copd", "hypertension", "diabetes"):
        assert any(r.kind == "anomaly" for r in packs.packs[program].rules), program


def _result(caught: int, false: int) -> EvaluationResult:
    labels = Labels(T0, T0 + timedelta(days=30), {"p": PROGRAMS}, (), ())
    results: dict[str, tuple[Group, dict[str, Group], dict[str, Group]]] = {}
    for n, label in enumerate((RULES_ONLY, ANOMALY_ONLY, BOTH)):
        group = Group(episodes=10, caught=caught + n, false_alerts=false - n, patient_days=300)
        group.lead_days.extend([2.0] * (caught + n))
        results[label] = (group, {}, {})
    return EvaluationResult(labels, results, 0, {})


def test_the_report_shows_three_rule_sets_on_two_sets_of_cohorts() -> None:
    table = format_comparison(
        {"tuning": {("default", 1): _result(6, 5)}, "held-out": {("abrupt", 101): _result(4, 7)}}
    )
    lines = table.splitlines()
    assert lines[1].split() == ["tuning", "held-out"]
    rows = {line[:26].strip(): line[26:].split() for line in lines[3:6]}
    assert list(rows) == [RULES_ONLY, ANOMALY_ONLY, BOTH]
    # caught ≥ 24 h (count, share), before ER (count, share), lead, false/pm; tuning then held-out
    assert rows[RULES_ONLY][:2] == ["6/10", "60%"] and rows[RULES_ONLY][6:8] == ["4/10", "40%"]
    assert rows[BOTH][5] == "0.30" and rows[BOTH][11] == "0.50"
    assert "default (tuning)" in table and "abrupt (held-out)" in table


def test_the_operating_point_plot_is_written(tmp_path: Path) -> None:
    def point(caught: int, false: int) -> Group:
        return Group(episodes=10, caught=caught, false_alerts=false, patient_days=300)

    curves = {
        name: {label: {s: point(3 + int(4 * s), int(10 * s)) for s in (0.5, 1.0, 2.0)}
               for label in (ANOMALY_ONLY, BOTH)}
        for name in ("tuning", "held-out")
    }  # fmt: skip
    fixed = {name: {RULES_ONLY: point(6, 9)} for name in curves}
    path = plot_operating_points(curves, fixed, 1.0, tmp_path / "sweep" / "points.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000


def test_rules_and_anomaly_alerts_are_those_of_the_packs_with_the_models() -> None:
    """The union the evaluation takes for rules + anomaly is what the packs give, evaluated
    whole with the scheduled models."""
    import uuid

    from homecare.evaluation.anomaly import AnomalyEvaluation, CohortPool
    from homecare.evaluation.cohorts import StoredPatient
    from homecare.rules import PatientContext, evaluate_patient

    readings = synthetic_patient(21, seed=8) + synthetic_patient(
        21, seed=9, moves={"heart_rate": 20, "spo2": -4, "body_weight": 2}, over_days=6,
        start=T0 + timedelta(days=21),
    )  # fmt: skip
    patient = StoredPatient("p", PatientContext(uuid.UUID(int=7), PROGRAMS), tuple(readings))
    labels = Labels(T0 + timedelta(days=7), T0 + timedelta(days=42), {"p": PROGRAMS}, (), ())
    pool = CohortPool.build([(PROGRAMS, synthetic_patient(28, seed=s)) for s in (11, 12)])
    packs = load_packs()
    evaluation = AnomalyEvaluation(packs, pool)
    union = evaluation.alerts(patient, labels, BOTH)
    findings = evaluate_patient(
        packs, evaluation.context(patient, labels), readings, labels.start, labels.end, {},
        timedelta(hours=6),
    )  # fmt: skip
    whole = sorted(
        ((f.evidence_time, f.rule_id) for f in findings if f.state == "active"),
    )
    assert sorted((a.time, a.rule_id) for a in union) == whole
    assert any(rule.startswith("hf.anomaly") for _, rule in whole)

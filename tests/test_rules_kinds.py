"""The rule-kind contract, checked the same way on every registered kind.

Each kind in ``rules.kinds.KINDS`` has one row in ``EXAMPLES`` below: a small pack using it
(placeholders for every evidence key it declares) that fires on a seeded synthetic patient.
Every check then runs over every row: the kind declares its inputs and lookback, evaluation is
deterministic and independent of the order readings come in, readings older than the declared
lookback or of undeclared types change nothing, and its summaries render with no placeholder
left. A kind a pack may name without a registry row, or a registry row without an example,
fails here.
"""

from __future__ import annotations

import itertools
import random
import string
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import pytest
import yaml

from homecare import catalogue
from homecare.ingest import Reading
from homecare.rules.anomaly import DirectedDetector, build_features, fit_cohort
from homecare.rules.evaluate import PatientContext, evaluate_patient, history_needed, verdicts
from homecare.rules.kinds import KINDS
from homecare.rules.kinds.base import ModelVersion
from homecare.rules.model import Finding
from homecare.rules.packs import Pack, PackSet, Rule, load_packs

T0 = datetime(2026, 11, 1, tzinfo=UTC)
BEGIN, END = T0 - timedelta(days=40), T0 + timedelta(days=20)
PATIENT_ID = uuid.UUID(int=7)
# Every vital moves its worse way for two days from each of these.
EPISODES = (T0 - timedelta(days=12), T0 + timedelta(days=3), T0 + timedelta(days=12))
LATE = timedelta(hours=6)

# type -> (usual value, spread, direction a deterioration moves it)
VITALS = {
    "heart_rate": (76.0, 6.0, 1),
    "spo2": (95.0, 1.2, -1),
    "systolic_bp": (128.0, 8.0, -1),
    "respiratory_rate": (16.0, 1.5, 1),
    "body_temperature": (36.8, 0.25, 1),
    "body_weight": (82.0, 0.4, 1),
}


def _summary(kind: str) -> str:
    """_summary: a summary naming every evidence key the kind declares."""
    return " ".join(f"{key}={{{key}}}" for key in sorted(KINDS[kind].evidence_keys)) or kind


# One row per registered kind: the rules of a small common pack that uses it.
EXAMPLES: dict[str, list[dict[str, Any]]] = {
    "threshold": [
        {"id": "t.hr_high", "kind": "threshold", "type": "heart_rate", "op": ">", "value": 95,
         "persistence": {"count": 2, "of": 3, "within": "1d"}},
        {"id": "t.sbp_low", "kind": "threshold", "type": "systolic_bp", "op": "<", "value": 115,
         "persistence": {"for": "8h", "within": "1d"}},
    ],
    "baseline_change": [
        {"id": "t.weight_gain", "kind": "baseline_change", "type": "body_weight", "change": 1.2,
         "over": "2d", "baseline": "7d", "persistence": {"count": 2, "of": 2, "within": "2d"}},
    ],
    "deviation": [
        {"id": "t.deviation", "kind": "deviation", "min_score": 2.5, "min_vitals": 2,
         "recent": "12h", "baseline": "10d", "persistence": {"count": 2, "of": 2, "within": "1d"},
         "vitals": [{"type": "heart_rate", "direction": "up", "floor": 4},
                    {"type": "spo2", "direction": "down", "floor": 1},
                    {"type": "body_temperature", "direction": "up", "floor": 0.2}]},
    ],
    "news2": [
        {"id": "t.news2", "kind": "news2", "min_score": 3, "min_parameters": 4,
         "personal": {"rise": 2, "baseline": "7d", "min_scores": 3}},
    ],
    "missing": [
        {"id": "t.no_weight", "kind": "missing", "type": "body_weight", "hours": 30},
    ],
    "adherence": [
        {"id": "t.weight_days", "kind": "adherence", "type": "body_weight", "days": 7,
         "min_days": 6, "clear_days": 7},
    ],
    "combination": [
        {"id": "t.hr_part", "kind": "threshold", "type": "heart_rate", "op": ">", "value": 90,
         "alert": False},
        {"id": "t.spo2_part", "kind": "threshold", "type": "spo2", "op": "<", "value": 93,
         "alert": False},
        {"id": "t.both", "kind": "combination", "mode": "all", "within": "1d",
         "rules": ["t.hr_part", "t.spo2_part"]},
    ],
    "anomaly": [
        {"id": "t.anomaly", "kind": "anomaly", "detector": "directed", "threshold": 3,
         "min_vitals": 1, "persistence": {"count": 2, "of": 2, "within": "1d"},
         "vitals": ["heart_rate", "spo2", "body_temperature"]},
    ],
    "artefact": [
        {"id": "t.artefact", "kind": "artefact", "confirm_within": "3h",
         "bounds": [{"type": "spo2", "below": 86}, {"type": "heart_rate", "above": 140}]},
        {"id": "t.spo2_low", "kind": "threshold", "type": "spo2", "op": "<", "value": 88},
    ],
}  # fmt: skip


def _pack(kind: str) -> PackSet:
    rules = [
        {"severity": "medium", "summary": _summary(rule["kind"]), **rule} for rule in EXAMPLES[kind]
    ]
    return PackSet(
        {"common": Pack.model_validate({"pack": "common", "version": 1, "rules": rules})}
    )


def _reading(type_: str, at: datetime, value: float, delay: timedelta) -> Reading:
    return Reading(PATIENT_ID, "dev", f"{type_}-{at.isoformat()}", type_, at,
                   round(value, 1), "u", value, "u", at + delay)  # fmt: skip


def _readings(
    types: set[str], seed: int, begin: datetime = BEGIN, end: datetime = END
) -> list[Reading]:
    """_readings: a few readings a day of each type, with gaps of days, the EPISODES and rare
    extreme values (device glitches), some measured again within the hour."""
    rng = random.Random(seed)
    readings = []
    for type_ in sorted(types):
        usual, spread, worse = VITALS.get(type_, (5.0, 1.0, 1))
        at = begin + timedelta(minutes=rng.randrange(600))
        while at < end:
            moved = any(e <= at < e + timedelta(days=2) for e in EPISODES)
            value = usual + rng.gauss(0, spread) + (4 * spread * worse if moved else 0.0)
            glitch = rng.random() < 0.04  # an extreme value, half the time measured again soon
            if glitch:
                value = usual + 12 * spread * worse
            delay = timedelta(seconds=30) if rng.random() < 0.9 else timedelta(hours=9)
            readings.append(_reading(type_, at, value, delay))
            step = rng.choice([1, 2, 5, 7, 8]) if rng.random() < 0.97 else rng.choice([40, 60, 80])
            if glitch and rng.random() < 0.5:
                step = 0
            at += timedelta(hours=step, minutes=rng.randrange(20, 90))
    return readings


def _models() -> dict[str, tuple[ModelVersion, ...]]:
    """_models: a directed cohort model in force from long before BEGIN, and a personal one
    from T0 on (both fitted on ordinary weeks of other synthetic patients), for the anomaly
    kind; the other kinds read none."""
    detector = DirectedDetector()
    vitals = tuple(VITALS)
    weeks = [_readings(set(VITALS), seed, BEGIN - timedelta(days=60), BEGIN) for seed in (90, 91)]
    cohort = fit_cohort(detector, [build_features(w, vitals) for w in weeks])
    personal = detector.fit(build_features(weeks[0], vitals))
    return {
        "directed": (
            ModelVersion(BEGIN - timedelta(days=90), cohort.info, cohort),
            ModelVersion(T0, personal.info, personal),
        )
    }


PATIENT = PatientContext(PATIENT_ID, (), models=_models())


def _reads(packs: PackSet) -> set[str]:
    return {type_ for _, rule in packs.rules_for(()) for type_ in rule.reads()}


def _evaluate(
    packs: PackSet,
    readings: list[Reading],
    start: datetime = BEGIN,
    initial: dict[str, bool] | None = None,
) -> list[Finding]:
    return evaluate_patient(packs, PATIENT, readings, start, END, initial or {}, LATE)


def _kind_findings(kind: str, findings: list[Finding]) -> list[Finding]:
    ids = {rule["id"] for rule in EXAMPLES[kind] if rule["kind"] == kind}
    return [f for f in findings if f.rule_id in ids]


KIND_NAMES = sorted(KINDS)


def test_every_kind_a_pack_may_name_is_registered() -> None:
    union = get_args(get_args(Rule)[0])
    named = {get_args(model.model_fields["kind"].annotation)[0]: model for model in union}
    assert named == dict(KINDS)


def test_every_registered_kind_has_a_contract_example() -> None:
    assert set(EXAMPLES) == set(KINDS)


def test_shipped_summaries_use_only_the_evidence_their_kind_declares() -> None:
    for pack in load_packs().packs.values():
        for rule in pack.rules:
            names = {name for _, name, _, _ in string.Formatter().parse(rule.summary) if name}
            assert names <= type(rule).evidence_keys, (rule.id, names - rule.evidence_keys)


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_kind_declares_its_name_inputs_and_lookback(kind: str) -> None:
    model = KINDS[kind]
    assert get_args(model.model_fields["kind"].annotation) == (kind,)
    rules = [rule for _, rule in _pack(kind).rules_for(()) if rule.kind == kind]
    assert rules
    for rule in rules:
        assert isinstance(rule.lookback(), timedelta) and rule.lookback() > timedelta(0)
        assert set(rule.reads()) <= set(catalogue.CATALOGUE)
        # A kind reads readings, or other rules' verdicts.
        assert bool(rule.reads()) != bool(rule.refers_to())


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_kind_fires_and_explains_with_every_declared_key(kind: str) -> None:
    packs = _pack(kind)
    findings = _kind_findings(kind, _evaluate(packs, _readings(_reads(packs), seed=1)))
    active = [f for f in findings if f.state == "active"]
    assert len(active) >= 2, "the example must fire for the other checks to mean anything"
    assert any(f.state == "cleared" for f in findings)
    for finding in active:
        assert KINDS[kind].evidence_keys <= set(finding.evidence), finding.evidence
        left = [key for key in KINDS[kind].evidence_keys if f"{{{key}}}" in finding.summary]
        assert not left, (finding.rule_id, finding.summary)


@pytest.mark.parametrize("kind", KIND_NAMES)
@pytest.mark.parametrize("seed", [1, 2])
def test_kind_is_deterministic_and_independent_of_reading_order(kind: str, seed: int) -> None:
    packs = _pack(kind)
    readings = _readings(_reads(packs), seed)
    # Some instants measured twice (a second device), so ties in event time must be ordered too.
    readings += [r._replace(device_id="dev-2", value=r.value * 1.05) for r in readings[::7]]
    expected = _evaluate(packs, readings)
    assert _evaluate(packs, readings) == expected
    shuffled = readings[:]
    random.Random(seed).shuffle(shuffled)
    assert _evaluate(packs, shuffled) == expected
    assert _evaluate(packs, readings[::-1]) == expected


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_kind_reads_only_the_types_it_declares(kind: str) -> None:
    packs = _pack(kind)
    read = _reads(packs)
    readings = _readings(read, seed=3)
    # Every vital a kind here might read in secret, and a few it never would.
    others = ({"diastolic_bp", "blood_glucose", "esas_pain"} | set(VITALS)) - read
    noise = _readings(others, seed=4)
    assert _evaluate(packs, readings + noise) == _evaluate(packs, readings)


def _needs(packs: PackSet, rule: Any) -> timedelta:
    """_needs: the history one rule needs by the contract — its own lookback, its parts' if it
    refers to other rules, and the screening rules' (history_needed of just those)."""
    (pack,) = packs.packs.values()
    used = [
        other
        for other in pack.rules
        if other is rule or other.id in rule.refers_to() or other.screens
    ]
    return history_needed(PackSet({"common": pack.model_copy(update={"rules": tuple(used)})}), ())


def _dense(types: set[str], end: datetime, span: timedelta, by: float) -> list[Reading]:
    """_dense: a reading every 20 minutes over ``span`` before ``end``, ``by`` spreads from
    usual the worse way: so many, so far off, that a median looking into them would move."""
    readings = []
    at = end - span
    while at < end:
        for type_ in sorted(types):
            usual, spread, worse = VITALS.get(type_, (5.0, 1.0, 1))
            readings.append(_reading(type_, at, usual + by * spread * worse, timedelta(0)))
        at += timedelta(minutes=20)
    return readings


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_kind_never_looks_beyond_its_lookback(kind: str) -> None:
    """From any start, with only the declared lookback of readings before it — or with very
    different readings older than that —, each rule's verdicts from the start on are the ones
    an evaluation over everything gives."""
    packs = _pack(kind)
    read = _reads(packs)
    readings = _readings(read, seed=5)
    full = verdicts(packs, PATIENT, readings, BEGIN, END)
    older = _readings(read, seed=6)
    rng = random.Random(kind)
    compared = 0
    for _, rule in packs.rules_for(()):
        need = _needs(packs, rule)
        span = int((END - BEGIN - need).total_seconds() // 60)
        # Random starts, and starts just before a reading that follows a long gap: there the
        # verdicts before the start that persistence remembers looked furthest back.
        types = set(rule.reads()) or read
        ends = sorted(r.time for r in readings if r.type in types and BEGIN + need < r.time)
        gaps = sorted(itertools.pairwise(ends), key=lambda g: g[0] - g[1])[:10]
        starts = [late - timedelta(minutes=1) for _, late in gaps]
        # and through the deteriorations, where persistence remembers verdicts that held.
        starts += [e + k * timedelta(hours=7) for e in EPISODES for k in range(7)]
        starts += [BEGIN + need + timedelta(minutes=rng.randrange(span)) for _ in range(20)]
        for start in starts:
            until = min(END, start + need + timedelta(days=1))
            horizon = start - need
            kept = [r for r in readings if r.time >= horizon]
            expected = [c for c in full[rule.id] if start <= c.time <= until]
            for before in (
                [],
                [r for r in older if r.time < horizon],
                _dense(read, horizon, need, 6),
                _dense(read, horizon, need, -6),
            ):
                got = verdicts(packs, PATIENT, before + kept, start, until)[rule.id]
                assert [c for c in got if c.time >= start] == expected, (rule.id, start)
            compared += len(expected)
    assert compared > 100


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_kind_replays_from_any_start_as_one_evaluation(kind: str) -> None:
    """From a start just before each of several of its findings, with only history_needed of
    readings before it (and different ones older than that) and the state the findings before
    it left, the findings are those of one evaluation over everything: live equals replay."""
    packs = _pack(kind)
    read = _reads(packs)
    readings = _readings(read, seed=5)
    older = _readings(read, seed=6)
    need = history_needed(packs, ())
    full = _evaluate(packs, readings)
    found = [f for f in _kind_findings(kind, full) if f.evidence_time > BEGIN + need]
    assert len(found) >= 4
    for finding in found[:: len(found) // 4][:4]:
        start = finding.evidence_time - timedelta(minutes=1)
        initial = {f.rule_id: f.state == "active" for f in full if f.evidence_time < start}
        horizon = start - need
        kept = [r for r in readings if r.time >= horizon]
        expected = [f for f in full if f.evidence_time >= start]
        assert _evaluate(packs, kept, start, initial) == expected
        before = [r for r in older if r.time < horizon]
        assert _evaluate(packs, before + kept, start, initial) == expected


def test_the_examples_are_valid_yaml_packs(tmp_path: Any) -> None:
    """The examples load through the same path a pack file does (strict schema, cross-rule
    checks), so a kind's example is one a clinician could write."""
    for kind in KIND_NAMES:
        directory = tmp_path / kind
        directory.mkdir()
        rules = [
            {"severity": "medium", "summary": _summary(rule["kind"]), **rule}
            for rule in EXAMPLES[kind]
        ]
        document = {"pack": "common", "version": 1, "rules": rules}
        (directory / "common.yaml").write_text(yaml.safe_dump(document, allow_unicode=True))
        assert load_packs(directory).packs["common"].rules

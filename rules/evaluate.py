"""Evaluate: a patient's readings and the rule packs in, findings out — a pure function.

Every rule is a condition evaluated at *instants* in event time: at each of its readings (and,
for missing-data and adherence rules, at every whole hour). Walking the instants in order from
a known state gives the rule's transitions, which are the findings. Nothing here looks at the
clock or the arrival order: the same readings always give the same findings, which is what
makes replay equal live evaluation, and several workers agree with one.

A screening rule (the artefact kind) first sets aside the extreme readings no earlier reading
confirmed: every other rule but those that read unconfirmed readings (missing data, adherence:
the patient did measure) evaluates the readings less those, so a single device glitch is a
note to re-measure rather than a NEWS2 of 3 points or a deviation.

What each kind reads, how far back it looks and how it judges an instant live in
``rules.kinds`` (one module per kind; the contract: docs/rules.md); this module only
orchestrates: the series, the screening pre-pass, the order of evaluation and the transitions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from homecare.ingest import Reading
from homecare.rules.kinds.base import Condition, Inputs, PatientContext
from homecare.rules.kinds.series import Series
from homecare.rules.model import Finding
from homecare.rules.packs import Pack, PackSet

__all__ = ["Condition", "PatientContext", "evaluate_patient", "history_needed", "verdicts"]

ZERO = timedelta(0)


def history_needed(packs: PackSet, programs: Iterable[str]) -> timedelta:
    """history_needed is how far before the first instant a patient's readings must go.

    Each rule looks back a bounded, explicit span (and never further, whatever was loaded), so
    evaluating from any starting point gives the same verdicts: that is what lets live
    evaluation start at the newest data while replays start anywhere. A rule that reads other
    rules' verdicts needs theirs that much earlier; and whether a reading any rule looks at was
    set aside depends on the readings a screening rule's lookback before it.
    """
    rules = [rule for _, rule in packs.rules_for(programs)]
    readings = max((r.lookback() for r in rules if not r.refers_to()), default=ZERO)
    combined = max((r.lookback() for r in rules if r.refers_to()), default=ZERO)
    screened = max((r.lookback() for r in rules if r.screens), default=ZERO)
    return readings + combined + screened


def evaluate_patient(
    packs: PackSet,
    patient: PatientContext,
    readings: Sequence[Reading],
    start: datetime,
    until: datetime,
    initial: Mapping[str, bool],
    late_after: timedelta,
) -> list[Finding]:
    """evaluate_patient returns the findings of instants in [start, until], in time order.

    ``readings`` must cover ``history_needed`` before ``start``; ``initial`` is each rule's
    state just before ``start`` (active or not), from the findings stored earlier.
    """
    rules = packs.rules_for(patient.programs)
    timelines = verdicts(packs, patient, readings, start, until)
    findings: list[Finding] = []
    for pack, rule in rules:
        if not rule.alert:
            continue  # a building block of combinations: evaluated, never a finding itself
        findings.extend(
            _transitions(pack, rule, patient, timelines[rule.id], start, initial, late_after)
        )
    findings.sort(key=lambda f: (f.evidence_time, f.rule_id, f.state))
    return findings


def verdicts(
    packs: PackSet,
    patient: PatientContext,
    readings: Sequence[Reading],
    start: datetime,
    until: datetime,
) -> dict[str, list[Condition]]:
    """verdicts: each rule's verdicts (by rule id) at its instants from ``start`` to ``until``
    — and, for a rule a combination names, as far before ``start`` as that combination looks.
    """
    raw = Series(readings)
    rules = packs.rules_for(patient.programs)
    # Readings a screening rule set aside are left out of every rule but those that read
    # unconfirmed readings (the patient did measure) and the screening rules themselves.
    set_aside = {rule.id: rule.set_aside(raw) for _, rule in rules if rule.screens}
    series = raw.without(set_aside.values())
    # A rule's verdicts before ``start`` matter only to the combinations that name it, and only
    # as far back as their window: computing them for every rule made each live pass of a
    # patient sending every few seconds evaluate a whole day.
    lookback: dict[str, timedelta] = {}
    for _, rule in rules:
        for ref in rule.refers_to():
            lookback[ref] = max(lookback.get(ref, ZERO), rule.lookback())
    timelines: dict[str, list[Condition]] = {}
    for _, rule in rules:
        if rule.refers_to():
            continue
        inputs = Inputs(
            patient,
            raw if rule.reads_unconfirmed else series,
            set_aside.get(rule.id, {}),
        )
        timelines[rule.id] = _yield(
            rule, patient, rule.timeline(inputs, start - lookback.get(rule.id, ZERO), until)
        )
    # Then the rules that read others' verdicts, in pack order.
    for _, rule in rules:
        if rule.refers_to():
            inputs = Inputs(patient, series, timelines=timelines)
            timelines[rule.id] = _yield(rule, patient, rule.timeline(inputs, start, until))
    return timelines


def _yield(rule: Any, patient: PatientContext, timeline: list[Condition]) -> list[Condition]:
    """_yield: a rule that ``yields_to`` a detector kind does not hold while a model of that
    kind judges the patient (by event time, so replay still equals live)."""
    kind = rule.yields_to
    if kind is None:
        return timeline
    return [
        c._replace(holds=False) if c.holds and patient.model(kind, c.time) is not None else c
        for c in timeline
    ]


def _transitions(
    pack: Pack,
    rule: Any,
    patient: PatientContext,
    timeline: Sequence[Condition],
    start: datetime,
    initial: Mapping[str, bool],
    late_after: timedelta,
) -> Iterable[Finding]:
    active = initial.get(rule.id, False)
    for condition in timeline:
        if condition.time < start or condition.holds is None or condition.holds == active:
            continue
        active = condition.holds
        evidence = dict(condition.evidence)
        yield Finding(
            patient_id=patient.patient_id,
            rule_id=rule.id,
            state="active" if active else "cleared",
            severity=rule.severity,
            evidence_time=condition.time,
            received_at=condition.received_at,
            late=condition.received_at - condition.time > late_after,
            summary=rule.explain(evidence) if active else f"Cleared: {rule.id}",
            evidence=_jsonable(evidence),
            pack=pack.pack,
            pack_version=pack.version,
        )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value

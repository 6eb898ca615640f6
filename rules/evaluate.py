"""Evaluate: a patient's readings and the rule packs in, findings out — a pure function.

Every rule is a condition evaluated at *instants* in event time: at each of its readings (and,
for missing-data rules, at every whole hour). Walking the instants in order from a known state
gives the rule's transitions, which are the findings. Nothing here looks at the clock or the
arrival order: the same readings always give the same findings, which is what makes replay
equal live evaluation, and several workers agree with one.

An artefact rule (``_unconfirmed``) first sets aside the extreme readings no earlier reading
confirmed: every other rule but missing data evaluates the readings less those, so a single
device glitch is a note to re-measure rather than a NEWS2 of 3 points or a deviation.
"""

from __future__ import annotations

import bisect
import operator
import statistics
import string
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import catalogue
from ingest import Reading
from rules.model import Finding
from rules.news2 import Observations, score_news2
from rules.packs import (
    AdherenceRule,
    ArtefactRule,
    BaselineChangeRule,
    CombinationRule,
    DeviationRule,
    MissingRule,
    News2Rule,
    Pack,
    PackSet,
    ThresholdRule,
)

__all__ = ["Condition", "PatientContext", "evaluate_patient", "history_needed"]

ZERO = timedelta(0)
DAY = timedelta(days=1)
NEWS2_TYPES = ("respiratory_rate", "spo2", "systolic_bp", "heart_rate", "body_temperature")
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


@dataclass(frozen=True)
class PatientContext:
    """PatientContext is what rules need to know about the patient besides readings."""

    patient_id: uuid.UUID
    programs: tuple[str, ...]
    hypercapnic: bool = False
    # rule id -> [(in force from, threshold or None for the pack's own)], in time order
    overrides: Mapping[str, Sequence[tuple[datetime, float | None]]] = field(default_factory=dict)

    def threshold(self, rule_id: str, default: float, at: datetime) -> float:
        """threshold is the value in force for ``rule_id`` at event time ``at``."""
        value = default
        for since, override in self.overrides.get(rule_id, ()):
            if since > at:
                break
            value = default if override is None else override
        return value


# series.between excludes its end; readings at the instant itself belong to "recent".
_INSTANT = timedelta(microseconds=1)


class Condition(NamedTuple):
    """Condition is a rule's verdict at one instant: True, False, or None (cannot tell).

    A NamedTuple, not a frozen dataclass: a live pass builds thousands of them and the
    dataclass's ``__init__`` was 7 % of a saturated rules worker's time (py-spy).
    """

    time: datetime
    holds: bool | None
    received_at: datetime
    evidence: Mapping[str, Any]


def history_needed(packs: PackSet, programs: Iterable[str]) -> timedelta:
    """history_needed is how far before the first instant a patient's readings must go.

    Each rule looks back a bounded, explicit span (and never further, whatever was loaded), so
    evaluating from any starting point gives the same verdicts: that is what lets live
    evaluation start at the newest data while replays start anywhere.
    """
    rules = packs.rules_for(programs)
    combined = max((r.within for _, r in rules if isinstance(r, CombinationRule)), default=ZERO)
    # Whether a reading a rule looks at was confirmed depends on the readings confirm_within
    # before it (an artefact rule's own lookback is its confirm_within: see _artefact).
    confirm = max((r.confirm_within for _, r in rules if isinstance(r, ArtefactRule)), default=ZERO)
    return max((_lookback(rule) for _, rule in rules), default=ZERO) + combined + confirm


def _lookback(rule: Any) -> timedelta:
    if isinstance(rule, ThresholdRule):
        if rule.persistence.sustained is not None:
            return rule.persistence.sustained + rule.persistence.within
        return rule.persistence.within
    if isinstance(rule, BaselineChangeRule):
        return rule.over + rule.baseline + rule.persistence.within
    if isinstance(rule, DeviationRule):  # + 1 day: baselines end at the day's start
        return max(rule.recent, rule.over + rule.baseline + DAY) + rule.persistence.within
    if isinstance(rule, News2Rule):
        if rule.personal is not None:
            return rule.within + rule.personal.over + rule.personal.baseline + DAY
        return rule.within
    if isinstance(rule, MissingRule):
        return 2 * timedelta(hours=rule.hours)
    if isinstance(rule, AdherenceRule):
        return 2 * rule.days * DAY
    if isinstance(rule, ArtefactRule):
        return rule.confirm_within
    return ZERO


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
    raw = _Series(readings)
    rules = packs.rules_for(patient.programs)
    # Readings no earlier reading confirmed (artefact rules) are left out of every rule but the
    # missing-data ones (the patient did measure) and the artefact rules themselves.
    suspects = {
        rule.id: _unconfirmed(rule, raw) for _, rule in rules if isinstance(rule, ArtefactRule)
    }
    series = raw.without(suspects.values())
    # A rule's verdicts before ``start`` matter only to the combinations that name it, and only
    # as far back as their window: computing them for every rule made each live pass of a
    # patient sending every few seconds evaluate a whole day.
    lookback: dict[str, timedelta] = {}
    for _, rule in rules:
        if isinstance(rule, CombinationRule):
            for ref in rule.rules:
                lookback[ref] = max(lookback.get(ref, ZERO), rule.within)
    timelines: dict[str, list[Condition]] = {}
    for _, rule in rules:
        if isinstance(rule, ArtefactRule):
            first = start - lookback.get(rule.id, ZERO)
            timelines[rule.id] = _artefact(rule, raw, suspects[rule.id], first, until)
        elif isinstance(rule, MissingRule):
            first = start - lookback.get(rule.id, ZERO)
            timelines[rule.id] = _missing(rule, raw, first, until)
        elif isinstance(rule, AdherenceRule):
            first = start - lookback.get(rule.id, ZERO)
            timelines[rule.id] = _adherence(rule, raw, first, until)
        elif not isinstance(rule, CombinationRule):
            first = start - lookback.get(rule.id, ZERO)
            timelines[rule.id] = _timeline(rule, patient, series, first, until)
    for _, rule in rules:
        if isinstance(rule, CombinationRule):
            timelines[rule.id] = _combination(rule, timelines, start, until)
    findings: list[Finding] = []
    for pack, rule in rules:
        if not rule.alert:
            continue  # a building block of combinations: evaluated, never a finding itself
        findings.extend(
            _transitions(pack, rule, patient, timelines[rule.id], start, initial, late_after)
        )
    findings.sort(key=lambda f: (f.evidence_time, f.rule_id, f.state))
    return findings


class _Series:
    """_Series indexes readings by type, in event-time order, for bisecting by time."""

    def __init__(self, readings: Sequence[Reading]) -> None:
        by_type: dict[str, list[Reading]] = defaultdict(list)
        for reading in sorted(readings, key=lambda r: (r.time, r.type, r.value)):
            by_type[reading.type].append(reading)
        self.by_type = dict(by_type)
        self.times = {t: [r.time for r in rs] for t, rs in self.by_type.items()}
        self.context = sorted(
            (r for r in readings if r.on_oxygen is not None or r.consciousness is not None),
            key=lambda r: r.time,
        )
        # NEWS2 scores by (within, assumptions, minimum parameters, instant): the medium and
        # high bands score the same vitals at the same instants.
        self.news2: dict[tuple[Any, ...], tuple[int | None, dict[str, Any]]] = {}
        # Personal baselines by (kind, type or rule, end of window, span), shared by instants.
        self.memo: dict[tuple[Any, ...], Any] = {}

    def without(self, suspects: Iterable[Mapping[str, set[int]]]) -> _Series:
        """without: these readings less the ones at the given (type, index) positions."""
        left_out: dict[str, set[int]] = defaultdict(set)
        for positions in suspects:
            for type_name, indexes in positions.items():
                left_out[type_name] |= indexes
        if not any(left_out.values()):
            return self
        return _Series(
            [
                reading
                for type_name, readings in self.by_type.items()
                for k, reading in enumerate(readings)
                if k not in left_out.get(type_name, ())
            ]
        )

    def of(self, type_name: str) -> list[Reading]:
        return self.by_type.get(type_name, [])

    def latest(self, type_name: str, at: datetime, within: timedelta) -> Reading | None:
        times = self.times.get(type_name)
        if not times:
            return None
        index = bisect.bisect_right(times, at) - 1
        if index < 0:
            return None
        reading = self.by_type[type_name][index]
        return reading if at - reading.time <= within else None

    def between(self, type_name: str, start: datetime, end: datetime) -> list[Reading]:
        """between returns readings with start <= time < end."""
        times = self.times.get(type_name, [])
        low, high = bisect.bisect_left(times, start), bisect.bisect_left(times, end)
        return self.by_type.get(type_name, [])[low:high]


def _timeline(
    rule: Any, patient: PatientContext, series: _Series, start: datetime, until: datetime
) -> list[Condition]:
    if isinstance(rule, ThresholdRule):
        return _threshold(rule, patient, series, start, until)
    if isinstance(rule, BaselineChangeRule):
        return _baseline_change(rule, series, start, until)
    if isinstance(rule, DeviationRule):
        return _deviation(rule, series, start, until)
    if isinstance(rule, News2Rule):
        return _news2(rule, patient, series, start, until)
    raise TypeError(f"no evaluator for {type(rule).__name__}")


def _threshold(
    rule: ThresholdRule, patient: PatientContext, series: _Series, start: datetime, until: datetime
) -> list[Condition]:
    compare = _OPS[rule.op]
    # Only readings that can count for an instant from ``start`` (see _lookback).
    persistence = rule.persistence
    reach = (persistence.sustained or ZERO) + persistence.within
    readings = series.between(rule.type, start - reach, until + _INSTANT)
    thresholds = [
        patient.threshold(rule.id, rule.value, r.time) if rule.overridable else rule.value
        for r in readings
    ]
    meets = [compare(r.value, t) for r, t in zip(readings, thresholds, strict=True)]
    timeline = []
    for k, reading in enumerate(readings):
        if reading.time < start or reading.time > until:
            continue
        if persistence.sustained is not None:
            # Walk back through the run of readings that meet the condition, until one is old
            # enough to prove it lasted; never further than sustained + within (see _lookback).
            first = k
            oldest = reading.time - persistence.sustained - persistence.within
            while (
                first > 0
                and meets[first - 1]
                and reading.time - readings[first].time < persistence.sustained
                and readings[first - 1].time >= oldest
            ):
                first -= 1
            holds = meets[k] and reading.time - readings[first].time >= persistence.sustained
            count, of = k - first + 1, k - first + 1
        else:
            first = max(0, k - persistence.of + 1)
            while readings[first].time < reading.time - persistence.within:
                first += 1
            count, of = sum(meets[first : k + 1]), persistence.of
            holds = meets[k] and count >= persistence.count
        timeline.append(
            Condition(
                reading.time,
                holds,
                reading.received_at,
                {
                    "type": rule.type,
                    "value": reading.value,
                    "threshold": thresholds[k],
                    "overridden": thresholds[k] != rule.value,
                    "count": count,
                    "of": of,
                },
            )
        )
    return timeline


def _baseline_change(
    rule: BaselineChangeRule, series: _Series, start: datetime, until: datetime
) -> list[Condition]:
    # Verdicts older than the persistence window never count for an instant from ``start``.
    readings = series.between(rule.type, start - rule.persistence.within, until + _INSTANT)
    verdicts: list[tuple[datetime, bool]] = []
    timeline = []
    for reading in readings:
        window_end = reading.time - rule.over
        history = series.between(rule.type, window_end - rule.baseline, window_end)
        if (clock := rule.same_time_of_day) is not None:
            history = [r for r in history if _clock_gap(r.time, reading.time) <= clock]
        if len(history) < rule.min_baseline_readings:
            if reading.time >= start:
                timeline.append(Condition(reading.time, None, reading.received_at, {}))
            continue
        baseline = statistics.median(r.value for r in history)
        delta = reading.value - baseline
        if rule.relative:
            delta = delta / baseline if baseline else 0.0
        # Rounded: 37.3 - 36.2 is 1.0999999999999943 in binary floating point, and a rise the
        # thermometer shows as 1.1 must meet a change of 1.1.
        moved = round(delta, 6)
        meets = moved >= rule.change if rule.change > 0 else moved <= rule.change
        verdicts.append((reading.time, meets))
        # The last `of` verdicts, but none older than `within`: what any start can recompute.
        oldest = reading.time - rule.persistence.within
        recent = [m for t, m in verdicts[-rule.persistence.of :] if t >= oldest]
        holds = meets and sum(recent) >= rule.persistence.count
        if reading.time >= start:
            timeline.append(
                Condition(
                    reading.time,
                    holds,
                    reading.received_at,
                    {
                        "type": rule.type,
                        "value": reading.value,
                        "baseline": baseline,
                        "delta": delta,
                        "change": rule.change,
                        "baseline_readings": len(history),
                    },
                )
            )
    return timeline


def _clock_gap(a: datetime, b: datetime) -> timedelta:
    """_clock_gap: how far apart two instants' UTC times of day are, across midnight."""
    a, b = a.astimezone(UTC), b.astimezone(UTC)
    seconds = abs(
        (a.hour * 3600 + a.minute * 60 + a.second + a.microsecond / 1e6)
        - (b.hour * 3600 + b.minute * 60 + b.second + b.microsecond / 1e6)
    )
    return timedelta(seconds=min(seconds, 86400 - seconds))


def _deviation(
    rule: DeviationRule, series: _Series, start: datetime, until: datetime
) -> list[Condition]:
    # Earlier verdicts matter only to a persistence over several instants.
    first = start - rule.persistence.within if rule.persistence.of > 1 else start
    instants = dict(_instants(series, [vital.type for vital in rule.vitals], first, until))
    required = {vital.type for vital in rule.vitals if vital.required}
    verdicts: list[tuple[datetime, bool]] = []
    timeline = []
    for at in sorted(instants):
        baseline_end = _day_start(at - rule.over)
        moves = [_vital_move(rule, vital, series, at, baseline_end) for vital in rule.vitals]
        known = [move for move in moves if move is not None]
        if not known:
            if at >= start:
                timeline.append(Condition(at, None, instants[at], {}))
            continue
        score = sum(move["score"] for move in known)
        moved = [move for move in known if move["score"] >= 1.0]
        meets = (
            score >= rule.min_score
            and len(moved) >= rule.min_vitals
            and required <= {move["type"] for move in moved}
        )
        verdicts.append((at, meets))
        oldest = at - rule.persistence.within
        recent = [m for t, m in verdicts[-rule.persistence.of :] if t >= oldest]
        holds = meets and sum(recent) >= rule.persistence.count
        if at < start:
            continue
        explanation = ", ".join(
            f"{catalogue.lookup(move['type']).label} {move['change']:+.3g}"
            f" (usual {move['usual']:.3g})"
            for move in sorted(moved, key=lambda m: -m["score"])
        )
        timeline.append(
            Condition(
                at,
                holds,
                instants[at],
                {
                    "score": round(score, 2),
                    "min_score": rule.min_score,
                    "explanation": explanation,
                    "vitals": known,
                },
            )
        )
    return timeline


def _vital_move(
    rule: DeviationRule, vital: Any, series: _Series, at: datetime, baseline_end: datetime
) -> dict[str, Any] | None:
    """_vital_move: how far one vital's recent median moved from usual, in spreads (or None)."""
    usual_spread = _usual(series, vital.type, baseline_end, rule.baseline)
    if usual_spread is None or usual_spread[2] < rule.min_baseline_readings:
        return None
    recent = series.between(vital.type, at - rule.recent, at + _INSTANT)
    if not recent:
        return None
    usual, mad, _ = usual_spread
    spread = max(1.4826 * mad, vital.floor)
    now = statistics.median(r.value for r in recent)
    change = now - usual
    worse = change if vital.direction == "up" else -change
    return {
        "type": vital.type,
        "usual": usual,
        "recent": now,
        "change": change,
        "spread": spread,
        "score": min(max(worse / spread, 0.0), rule.cap),
    }


def _day_start(at: datetime) -> datetime:
    """_day_start: midnight UTC of ``at``'s day.

    Personal baselines end at a day boundary, so every instant of a day shares one baseline:
    a patient sending every few minutes costs one median a day, not one per reading.
    """
    return datetime.fromtimestamp(at.timestamp() // 86400 * 86400, UTC)


def _usual(
    series: _Series, type_name: str, end: datetime, span: timedelta
) -> tuple[float, float, int] | None:
    """_usual: (median, median absolute deviation, count) of the readings in [end - span, end)."""
    key = ("usual", type_name, end, span)
    if key not in series.memo:
        values = [r.value for r in series.between(type_name, end - span, end)]
        if values:
            median = statistics.median(values)
            series.memo[key] = (
                median,
                statistics.median(abs(v - median) for v in values),
                len(values),
            )
        else:
            series.memo[key] = None
    return series.memo[key]  # type: ignore[no-any-return]


def _news2(
    rule: News2Rule, patient: PatientContext, series: _Series, start: datetime, until: datetime
) -> list[Condition]:
    personal = rule.personal
    timeline = []
    for at, received in _news2_instants(series, start, until):
        score, evidence = _news2_at(rule, patient, series, at)
        if not evidence:  # too few vitals measured to score
            timeline.append(Condition(at, None, received, {}))
            continue
        holds = score is not None and score >= rule.min_score
        evidence = {**evidence, "min_score": rule.min_score}
        if personal is not None and score is not None:
            usual = _usual_news2(rule, patient, series, _day_start(at - personal.over))
            if len(usual) >= personal.min_scores:
                baseline = statistics.median(usual)
                holds = holds and score - baseline >= personal.rise
                evidence = {**evidence, "usual_score": baseline, "rise": personal.rise}
        timeline.append(Condition(at, holds, received, evidence))
    return timeline


_USUAL_NEWS2_BUCKET = timedelta(hours=6)


def _usual_news2(
    rule: News2Rule, patient: PatientContext, series: _Series, end: datetime
) -> list[int]:
    """_usual_news2: the patient's scores over the baseline ending at ``end``, one per 6 hours
    (the last instant of each): home patients measure a few times a day, so this is every score
    they have, while a wearable's minute data costs 4 scores a day instead of 1,440."""
    assert rule.personal is not None
    key = ("news2-usual", rule.within, rule.assume_air_and_alert, rule.min_parameters, end,
           rule.personal.baseline)  # fmt: skip
    if key not in series.memo:
        last: dict[int, datetime] = {}
        for at, _ in _news2_instants(series, end - rule.personal.baseline, end - _INSTANT):
            last[(at - end) // _USUAL_NEWS2_BUCKET] = at
        scores = [_news2_at(rule, patient, series, at)[0] for _, at in sorted(last.items())]
        series.memo[key] = [score for score in scores if score is not None]
    return series.memo[key]  # type: ignore[no-any-return]


def _news2_instants(
    series: _Series, start: datetime, until: datetime
) -> list[tuple[datetime, datetime]]:
    """_news2_instants: every time a NEWS2 vital was measured, with when it was received."""
    return _instants(series, NEWS2_TYPES, start, until)


def _instants(
    series: _Series, types: Iterable[str], start: datetime, until: datetime
) -> list[tuple[datetime, datetime]]:
    """_instants: the times in [start, until] at which any of ``types`` was measured, in order,
    each with the latest time one of its readings was received (what a finding there awaited)."""
    instants: dict[datetime, datetime] = {}
    for type_name in types:
        for reading in series.between(type_name, start, until + _INSTANT):
            received = instants.get(reading.time)
            instants[reading.time] = max(received or reading.received_at, reading.received_at)
    return sorted(instants.items())


def _news2_at(
    rule: News2Rule, patient: PatientContext, series: _Series, at: datetime
) -> tuple[int | None, dict[str, Any]]:
    """_news2_at scores the latest vitals within ``rule.within`` of ``at`` (None: too few)."""
    key = (rule.within, rule.assume_air_and_alert, rule.min_parameters, at)
    known = series.news2.get(key)
    if known is None:
        known = series.news2[key] = _score_news2_at(rule, patient, series, at)
    return known


def _score_news2_at(
    rule: News2Rule, patient: PatientContext, series: _Series, at: datetime
) -> tuple[int | None, dict[str, Any]]:
    latest = {t: series.latest(t, at, rule.within) for t in NEWS2_TYPES}
    on_oxygen, consciousness = _context(series, at, rule.within)
    if rule.assume_air_and_alert:
        on_oxygen = False if on_oxygen is None else on_oxygen
        consciousness = consciousness or "A"
    observations = Observations(
        respiratory_rate=_value(latest["respiratory_rate"]),
        spo2=_value(latest["spo2"]),
        systolic_bp=_value(latest["systolic_bp"]),
        heart_rate=_value(latest["heart_rate"]),
        temperature=_value(latest["body_temperature"]),
        on_oxygen=on_oxygen,
        consciousness=consciousness,
        hypercapnic=patient.hypercapnic,
    )
    result = score_news2(observations)
    present = 7 - len(result.missing)
    if present < rule.min_parameters:
        return None, {}
    score = result.total if result.complete else result.partial_total
    evidence = {
        "score": score,
        "parameters": present,
        "components": dict(result.components),
        "missing": list(result.missing),
    }
    return score, evidence


def _context(series: _Series, at: datetime, within: timedelta) -> tuple[bool | None, str | None]:
    on_oxygen: bool | None = None
    consciousness: str | None = None
    for reading in reversed(series.context):
        if reading.time > at:
            continue
        if at - reading.time > within:
            break
        if on_oxygen is None and reading.on_oxygen is not None:
            on_oxygen = reading.on_oxygen
        if consciousness is None and reading.consciousness is not None:
            consciousness = reading.consciousness
        if on_oxygen is not None and consciousness is not None:
            break
    return on_oxygen, consciousness


def _missing(
    rule: MissingRule, series: _Series, start: datetime, until: datetime
) -> list[Condition]:
    limit = timedelta(hours=rule.hours)
    instants = _hourly(series, rule.type, start, until)
    timeline = []
    for at in sorted(instants):
        # No reading for twice the limit: undecidable here (dormant or never started), so the
        # state stays as it was — it fired, if it was going to, at the limit.
        last = series.latest(rule.type, at, 2 * limit)
        if last is None:
            timeline.append(Condition(at, None, instants[at], {}))
            continue
        timeline.append(
            Condition(
                at,
                at - last.time >= limit,
                instants[at],
                {"type": rule.type, "hours": rule.hours, "last_time": last.time.isoformat()},
            )
        )
    return timeline


def _hourly(
    series: _Series, type_name: str, start: datetime, until: datetime
) -> dict[datetime, datetime]:
    """_hourly: the instants of a data-completeness rule — each reading of the type and each
    whole hour in [start, until] — with the time each was received (a whole hour: itself)."""
    instants = {r.time: r.received_at for r in series.between(type_name, start, until + _INSTANT)}
    hour = start.replace(minute=0, second=0, microsecond=0)
    if hour < start:
        hour += timedelta(hours=1)
    while hour <= until:
        instants.setdefault(hour, hour)
        hour += timedelta(hours=1)
    return instants


def _adherence(
    rule: AdherenceRule, series: _Series, start: datetime, until: datetime
) -> list[Condition]:
    window = rule.days * DAY
    instants = _hourly(series, rule.type, start, until)
    timeline = []
    # Each day is the 24 h period (at - (k + 1) d, at - k d]: a reading at the instant counts,
    # one exactly a week old does not.
    for at in sorted(instants):
        end = at + _INSTANT
        # Nothing in the days before the window: not started, or quiet for long (undecidable).
        if not series.between(rule.type, end - 2 * window, end - window):
            timeline.append(Condition(at, None, instants[at], {}))
            continue
        measured = sum(
            1
            for k in range(rule.days)
            if series.between(rule.type, end - (k + 1) * DAY, end - k * DAY)
        )
        # Between the two levels the state stays as it was (None), so the note neither flaps
        # nor clears on one better day.
        holds = True if measured < rule.min_days else False if measured >= rule.clear_at else None
        timeline.append(
            Condition(
                at,
                holds,
                instants[at],
                {
                    "type": rule.type,
                    "measured_days": measured,
                    "days": rule.days,
                    "min_days": rule.min_days,
                },
            )
        )
    return timeline


def _unconfirmed(rule: ArtefactRule, series: _Series) -> dict[str, set[int]]:
    """_unconfirmed: the positions (type -> indexes in ``series.by_type``) of readings past one
    of the rule's bounds with no earlier reading past the same bound within ``confirm_within``.

    Only earlier readings are looked at (the series' order: event time, then value), never
    later ones: a reading's fate is known when it arrives and the same from any start."""
    found: dict[str, set[int]] = defaultdict(set)
    for bound in rule.bounds:
        readings = series.of(bound.type)
        # A wearable sends a pulse a minute: one comprehension, not a method call per reading.
        if bound.above is not None:
            above = bound.above
            past = [k for k, r in enumerate(readings) if r.value > above]
        else:
            below = bound.below
            assert below is not None  # ArtefactBound: exactly one side
            past = [k for k, r in enumerate(readings) if r.value < below]
        last: datetime | None = None  # the latest earlier reading past this bound
        for k in past:
            time = readings[k].time
            if last is None or time - last > rule.confirm_within:
                found[bound.type].add(k)
            last = time
    return dict(found)


def _artefact(
    rule: ArtefactRule,
    series: _Series,
    suspects: Mapping[str, set[int]],
    start: datetime,
    until: datetime,
) -> list[Condition]:
    """_artefact: holds while an unconfirmed reading is the latest of its type and less than
    ``confirm_within`` old; decided at each reading of a bounded type and when an unconfirmed
    reading's time to be confirmed runs out."""
    types = sorted({bound.type for bound in rule.bounds})
    instants = dict(_instants(series, types, start, until))
    for type_name in types:
        for k in suspects.get(type_name, ()):
            expiry = series.of(type_name)[k].time + rule.confirm_within
            if start <= expiry <= until:
                instants.setdefault(expiry, expiry)
    timeline = []
    for at in sorted(instants):
        pending = []
        for type_name in types:
            index = bisect.bisect_right(series.times.get(type_name, []), at) - 1
            if index < 0 or index not in suspects.get(type_name, ()):
                continue
            reading = series.of(type_name)[index]
            if at - reading.time < rule.confirm_within:
                pending.append(reading)
        evidence: dict[str, Any] = {}
        if pending:
            newest = max(pending, key=lambda r: (r.time, r.type))
            evidence = {
                "type": newest.type,
                "value": newest.value,
                "time": newest.time,
                "confirm_within": _hours(rule.confirm_within),
                "readings": ", ".join(
                    _shown(r) for r in sorted(pending, key=lambda r: (r.time, r.type))
                ),
            }
        timeline.append(Condition(at, bool(pending), instants[at], evidence))
    return timeline


def _shown(reading: Reading) -> str:
    """_shown: ``SpO2 70 %``, ``Temperature 33.1 °C`` (the catalogue's label and canonical unit)."""
    kind = catalogue.lookup(reading.type)
    unit = kind.canonical_unit
    return f"{kind.label} {reading.value:g} {'°C' if unit == 'Cel' else unit}"


def _hours(span: timedelta) -> str:
    """_hours: a duration as a pack writes it (``24h``, ``90m``)."""
    minutes = round(span.total_seconds() / 60)
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


def _any_within(times: list[datetime], low: datetime, high: datetime) -> bool:
    """_any_within: whether the sorted ``times`` has one in [low, high]."""
    index = bisect.bisect_left(times, low)
    return index < len(times) and times[index] <= high


def _combination(
    rule: CombinationRule,
    timelines: Mapping[str, list[Condition]],
    start: datetime,
    until: datetime,
) -> list[Condition]:
    parts = {ref: timelines.get(ref, []) for ref in rule.rules}
    instants: dict[datetime, datetime] = {}
    for timeline in parts.values():
        for condition in timeline:
            if start <= condition.time <= until:
                instants[condition.time] = max(
                    instants.get(condition.time, condition.received_at), condition.received_at
                )
    needed = {"all": len(rule.rules), "any": 1, "at_least": rule.at_least or 1}[rule.mode]
    # When each part held, in time order (timelines are): "held within the window" is then one
    # bisection instead of a scan of the whole timeline at every instant.
    holding = {ref: sorted(c.time for c in timeline if c.holds) for ref, timeline in parts.items()}
    result = []
    for at in sorted(instants):
        held = [ref for ref, times in holding.items() if _any_within(times, at - rule.within, at)]
        result.append(
            Condition(
                at,
                len(held) >= needed,
                instants[at],
                {"rules": ", ".join(held), "held": held, "within": str(rule.within)},
            )
        )
    return result


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
            summary=_render(rule.summary, evidence) if active else f"Cleared: {rule.id}",
            evidence=_jsonable(evidence),
            pack=pack.pack,
            pack_version=pack.version,
        )


def _value(reading: Reading | None) -> float | None:
    return None if reading is None else reading.value


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _render(template: str, evidence: Mapping[str, Any]) -> str:
    try:
        return string.Formatter().vformat(template, (), _Blank(evidence))
    except (ValueError, TypeError):
        return template


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

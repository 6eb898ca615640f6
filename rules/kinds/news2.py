"""NEWS2: the National Early Warning Score 2 from each vital's latest reading, optionally also
required to rise above the patient's own usual score (the scoring itself: ``rules.news2``)."""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from homecare.ingest import Reading
from homecare.rules.kinds.base import (
    DAY,
    Condition,
    Inputs,
    PatientContext,
    RuleBase,
    Strict,
    parse_duration,
)
from homecare.rules.kinds.series import INSTANT, Series, day_start, instants
from homecare.rules.news2 import Observations, score_news2

__all__ = ["NEWS2_TYPES", "News2Personal", "News2Rule"]

NEWS2_TYPES = ("respiratory_rate", "spo2", "systolic_bp", "heart_rate", "body_temperature")
_USUAL_NEWS2_BUCKET = timedelta(hours=6)


class News2Personal(Strict):
    """News2Personal: also require the score to be ``rise`` above the patient's usual score.

    Home patients with chronic lung or heart disease often live at NEWS2 5-6 (SpO2 88-92 % on
    scale 1, respiratory rate 21-24): the absolute band then pages every day about a state the
    team knows, and nurses learn to ignore it. The usual score is the median of the patient's
    scores over ``baseline`` ending at the start (UTC) of the day ``over`` before (so a
    deterioration does not raise its own baseline), one score per 6 hours; with fewer than
    ``min_scores`` of them (a new patient) the absolute band applies.
    """

    rise: int = Field(ge=1, le=20)
    over: timedelta = timedelta(days=1)
    baseline: timedelta = timedelta(days=14)
    min_scores: int = Field(default=5, ge=1)

    _durations = field_validator("over", "baseline", mode="before")(
        lambda cls, v: parse_duration(v)
    )


class News2Rule(RuleBase):
    """News2Rule: the NEWS2 score from each vital's latest reading within ``within``."""

    kind: Literal["news2"]
    min_score: int = Field(ge=1, le=20)
    within: timedelta = timedelta(hours=12)
    # Home readings rarely say whether the patient is on oxygen or alert; unless the message
    # context says otherwise, assume air and Alert (both score 0, so nothing is invented).
    assume_air_and_alert: bool = True
    min_parameters: int = Field(default=4, ge=1, le=7)
    personal: News2Personal | None = None

    # With ``personal``, a verdict also carries ``usual_score`` and ``rise`` once the patient
    # has enough usual scores.
    evidence_keys: ClassVar[frozenset[str]] = frozenset(
        {"score", "parameters", "components", "missing", "min_score"}
    )

    _within = field_validator("within", mode="before")(lambda cls, v: parse_duration(v))

    def reads(self) -> tuple[str, ...]:
        """reads: the scored vitals (and, from any reading, its oxygen and consciousness)."""
        return NEWS2_TYPES

    def lookback(self) -> timedelta:
        if self.personal is not None:
            return self.within + self.personal.over + self.personal.baseline + DAY
        return self.within

    def timeline(self, inputs: Inputs, start: datetime, until: datetime) -> list[Condition]:
        """timeline: a verdict whenever a NEWS2 vital was measured (None: too few to score)."""
        patient, series = inputs.patient, inputs.series
        personal = self.personal
        timeline = []
        for at, received in instants(series, NEWS2_TYPES, start, until):
            score, evidence = self._score_at(patient, series, at)
            if not evidence:  # too few vitals measured to score
                timeline.append(Condition(at, None, received, {}))
                continue
            holds = score is not None and score >= self.min_score
            evidence = {**evidence, "min_score": self.min_score}
            if personal is not None and score is not None:
                usual = self._usual(patient, series, day_start(at - personal.over))
                if len(usual) >= personal.min_scores:
                    baseline = statistics.median(usual)
                    holds = holds and score - baseline >= personal.rise
                    evidence = {**evidence, "usual_score": baseline, "rise": personal.rise}
            timeline.append(Condition(at, holds, received, evidence))
        return timeline

    def _usual(self, patient: PatientContext, series: Series, end: datetime) -> list[int]:
        """_usual: the patient's scores over the baseline ending at ``end``, one per 6 hours
        (the last instant of each): home patients measure a few times a day, so this is every
        score they have, while a wearable's minute data costs 4 scores a day instead of 1,440."""
        assert self.personal is not None
        key = ("news2-usual", self.within, self.assume_air_and_alert, self.min_parameters, end,
               self.personal.baseline)  # fmt: skip
        if key not in series.memo:
            last: dict[int, datetime] = {}
            for at, _ in instants(series, NEWS2_TYPES, end - self.personal.baseline, end - INSTANT):
                last[(at - end) // _USUAL_NEWS2_BUCKET] = at
            scores = [self._score_at(patient, series, at)[0] for _, at in sorted(last.items())]
            series.memo[key] = [score for score in scores if score is not None]
        return series.memo[key]  # type: ignore[no-any-return]

    def _score_at(
        self, patient: PatientContext, series: Series, at: datetime
    ) -> tuple[int | None, dict[str, Any]]:
        """_score_at scores the latest vitals within ``within`` of ``at`` (None: too few)."""
        key = (self.within, self.assume_air_and_alert, self.min_parameters, at)
        known = series.news2.get(key)
        if known is None:
            known = series.news2[key] = self._score(patient, series, at)
        return known

    def _score(
        self, patient: PatientContext, series: Series, at: datetime
    ) -> tuple[int | None, dict[str, Any]]:
        latest = {t: series.latest(t, at, self.within) for t in NEWS2_TYPES}
        on_oxygen, consciousness = _context(series, at, self.within)
        if self.assume_air_and_alert:
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
        if present < self.min_parameters:
            return None, {}
        score = result.total if result.complete else result.partial_total
        evidence = {
            "score": score,
            "parameters": present,
            "components": dict(result.components),
            "missing": list(result.missing),
        }
        return score, evidence


def _context(series: Series, at: datetime, within: timedelta) -> tuple[bool | None, str | None]:
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


def _value(reading: Reading | None) -> float | None:
    return None if reading is None else reading.value

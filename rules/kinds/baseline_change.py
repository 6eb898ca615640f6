"""Baseline change: the latest reading moved a set amount from the patient's own median
(e.g. +2 kg over 3 days), with persistence."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from homecare.rules.kinds.base import (
    Condition,
    Inputs,
    Persistence,
    RuleBase,
    known_type,
    parse_duration,
)
from homecare.rules.kinds.series import INSTANT

__all__ = ["BaselineChangeRule"]


class BaselineChangeRule(RuleBase):
    """BaselineChangeRule: the latest reading moved ``change`` from the patient's own median
    over ``baseline``, measured ``over`` a recent period (e.g. +2 kg over 3 days)."""

    kind: Literal["baseline_change"]
    type: str
    change: float
    over: timedelta
    baseline: timedelta
    min_baseline_readings: int = Field(default=3, ge=1)
    # relative: ``change`` is a fraction of the baseline (0.2 = +20 %), e.g. for wound area.
    relative: bool = False
    # The baseline holds only readings taken within this of the reading's time of day (UTC,
    # across midnight), for a value that follows the day: a glucose before dinner is compared
    # with the patient's usual before dinner, not with a median of fasting and after-meal ones.
    # UTC, so no time zone decides it: a patient's 07:00 stays one UTC clock time, and the hour
    # a daylight-saving change moves it stays inside a window of a few hours.
    same_time_of_day: timedelta | None = None
    persistence: Persistence = Persistence()

    evidence_keys: ClassVar[frozenset[str]] = frozenset(
        {"type", "value", "baseline", "delta", "change", "baseline_readings"}
    )

    _type = field_validator("type")(lambda cls, v: known_type(v))
    _durations = field_validator("over", "baseline", mode="before")(
        lambda cls, v: parse_duration(v)
    )

    @field_validator("same_time_of_day", mode="before")
    @classmethod
    def _clock_window(cls, value: Any) -> timedelta | None:
        if value is None:
            return None
        window = parse_duration(value)
        if not timedelta(0) < window < timedelta(hours=12):
            raise ValueError("same_time_of_day must be more than 0 and less than 12h")
        return window

    @field_validator("change")
    @classmethod
    def _non_zero(cls, value: float) -> float:
        if value == 0:
            raise ValueError("change must not be 0 (positive: rise, negative: fall)")
        return value

    def reads(self) -> tuple[str, ...]:
        return (self.type,)

    def lookback(self) -> timedelta:
        return self.over + self.baseline + self.persistence.within

    def timeline(self, inputs: Inputs, start: datetime, until: datetime) -> list[Condition]:
        """timeline: a verdict at each reading of the type (None while the baseline is short)."""
        series = inputs.series
        # Verdicts older than the persistence window never count for an instant from ``start``.
        readings = series.between(self.type, start - self.persistence.within, until + INSTANT)
        verdicts: list[tuple[datetime, bool]] = []
        timeline = []
        for reading in readings:
            window_end = reading.time - self.over
            history = series.between(self.type, window_end - self.baseline, window_end)
            if (clock := self.same_time_of_day) is not None:
                history = [r for r in history if _clock_gap(r.time, reading.time) <= clock]
            if len(history) < self.min_baseline_readings:
                if reading.time >= start:
                    timeline.append(Condition(reading.time, None, reading.received_at, {}))
                continue
            baseline = statistics.median(r.value for r in history)
            delta = reading.value - baseline
            if self.relative:
                delta = delta / baseline if baseline else 0.0
            # Rounded: 37.3 - 36.2 is 1.0999999999999943 in binary floating point, and a rise
            # the thermometer shows as 1.1 must meet a change of 1.1.
            moved = round(delta, 6)
            meets = moved >= self.change if self.change > 0 else moved <= self.change
            verdicts.append((reading.time, meets))
            # The last `of` verdicts, but none older than `within`: what any start can recompute.
            oldest = reading.time - self.persistence.within
            recent = [m for t, m in verdicts[-self.persistence.of :] if t >= oldest]
            holds = meets and sum(recent) >= self.persistence.count
            if reading.time >= start:
                timeline.append(
                    Condition(
                        reading.time,
                        holds,
                        reading.received_at,
                        {
                            "type": self.type,
                            "value": reading.value,
                            "baseline": baseline,
                            "delta": delta,
                            "change": self.change,
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

"""Threshold: a reading above or below a value, with persistence; the value is overridable per
patient (a clinician's threshold, in force from a given event time)."""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import ClassVar, Literal

from pydantic import field_validator

from homecare.rules.kinds.base import ZERO, Condition, Inputs, Persistence, RuleBase, known_type
from homecare.rules.kinds.series import INSTANT

__all__ = ["ThresholdRule"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


class ThresholdRule(RuleBase):
    """ThresholdRule: a reading above or below a value, with persistence; overridable."""

    kind: Literal["threshold"]
    type: str
    op: Literal[">", ">=", "<", "<="]
    value: float
    persistence: Persistence = Persistence()
    overridable: bool = True

    evidence_keys: ClassVar[frozenset[str]] = frozenset(
        {"type", "value", "threshold", "overridden", "count", "of"}
    )

    _type = field_validator("type")(lambda cls, v: known_type(v))

    def reads(self) -> tuple[str, ...]:
        return (self.type,)

    def lookback(self) -> timedelta:
        if self.persistence.sustained is not None:
            return self.persistence.sustained + self.persistence.within
        return self.persistence.within

    def timeline(self, inputs: Inputs, start: datetime, until: datetime) -> list[Condition]:
        """timeline: a verdict at each reading of the type."""
        compare = _OPS[self.op]
        # Only readings that can count for an instant from ``start`` (see lookback).
        persistence = self.persistence
        reach = (persistence.sustained or ZERO) + persistence.within
        readings = inputs.series.between(self.type, start - reach, until + INSTANT)
        patient = inputs.patient
        thresholds = [
            patient.threshold(self.id, self.value, r.time) if self.overridable else self.value
            for r in readings
        ]
        meets = [compare(r.value, t) for r, t in zip(readings, thresholds, strict=True)]
        timeline = []
        for k, reading in enumerate(readings):
            if reading.time < start or reading.time > until:
                continue
            if persistence.sustained is not None:
                # Walk back through the run of readings that meet the condition, until one is
                # old enough to prove it lasted; never further than sustained + within.
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
                        "type": self.type,
                        "value": reading.value,
                        "threshold": thresholds[k],
                        "overridden": thresholds[k] != self.value,
                        "count": count,
                        "of": of,
                    },
                )
            )
        return timeline

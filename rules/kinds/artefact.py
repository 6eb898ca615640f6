"""Artefact: an extreme reading no earlier reading confirmed is set aside as a suspect device
glitch — a note to re-measure rather than a NEWS2 of 3 points or a deviation.

Its ``set_aside`` runs before any other rule (it ``screens``): every rule but missing data and
adherence (the patient did measure) then sees the readings less the suspects.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from homecare import catalogue
from homecare.ingest import Reading
from homecare.rules.kinds.base import (
    Condition,
    Inputs,
    RuleBase,
    Strict,
    known_type,
    parse_duration,
)
from homecare.rules.kinds.series import Series, instants

__all__ = ["ArtefactBound", "ArtefactRule"]


class ArtefactBound(Strict):
    """ArtefactBound: a reading of ``type`` above ``above`` (or below ``below``) is suspect."""

    type: str
    above: float | None = None
    below: float | None = None

    _type = field_validator("type")(lambda cls, v: known_type(v))

    @model_validator(mode="after")
    def _one_side(self) -> ArtefactBound:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of above or below")
        return self

    @property
    def side(self) -> str:
        return "above" if self.above is not None else "below"

    def beyond(self, value: float) -> bool:
        """beyond: whether ``value`` is past the bound (strictly)."""
        if self.above is not None:
            return value > self.above
        assert self.below is not None
        return value < self.below


class ArtefactRule(RuleBase):
    """ArtefactRule: a reading beyond one of ``bounds`` counts only once confirmed.

    A reading past a bound is *unconfirmed* unless an earlier reading of the same type (earlier
    in event time, or at the same time and earlier in the evaluator's order) within
    ``confirm_within`` before it was past the same bound. Unconfirmed readings are left out of
    every other rule except missing data (the patient did measure); the rule itself is active
    while an unconfirmed reading is the latest of its type and younger than ``confirm_within``
    (a note to ask for a re-measure), and clears at the next reading of that type or when the
    time to confirm it has passed. Only earlier readings confirm: evaluation stays causal, so a
    replay from any start gives the live verdicts. At most in the common pack.
    """

    kind: Literal["artefact"]
    bounds: tuple[ArtefactBound, ...] = Field(min_length=1)
    confirm_within: timedelta

    evidence_keys: ClassVar[frozenset[str]] = frozenset(
        {"type", "value", "time", "confirm_within", "readings"}
    )
    reads_unconfirmed: ClassVar[bool] = True
    screens: ClassVar[bool] = True

    _within = field_validator("confirm_within", mode="before")(lambda cls, v: parse_duration(v))

    @field_validator("confirm_within")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("confirm_within must be more than 0")
        return value

    @field_validator("bounds")
    @classmethod
    def _distinct(cls, bounds: tuple[ArtefactBound, ...]) -> tuple[ArtefactBound, ...]:
        sides = [(bound.type, bound.side) for bound in bounds]
        for type_name, side in sides:
            if sides.count((type_name, side)) > 1:
                raise ValueError(f"{type_name} has two bounds {side}")
        return bounds

    def reads(self) -> tuple[str, ...]:
        return tuple(sorted({bound.type for bound in self.bounds}))

    def lookback(self) -> timedelta:
        # Whether a reading is confirmed depends on the readings confirm_within before it; the
        # evaluator adds this again for the readings every other rule looks at.
        return self.confirm_within

    def set_aside(self, series: Series) -> dict[str, set[int]]:
        """set_aside: the positions (type -> indexes in ``series.by_type``) of readings past one
        of the bounds with no earlier reading past the same bound within ``confirm_within``.

        Only earlier readings are looked at (the series' order: event time, then value), never
        later ones: a reading's fate is known when it arrives and the same from any start."""
        found: dict[str, set[int]] = defaultdict(set)
        for bound in self.bounds:
            readings = series.of(bound.type)
            # A wearable sends a pulse a minute: one comprehension, not a method call a reading.
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
                if last is None or time - last > self.confirm_within:
                    found[bound.type].add(k)
                last = time
        return dict(found)

    def timeline(self, inputs: Inputs, start: datetime, until: datetime) -> list[Condition]:
        """timeline: holds while an unconfirmed reading is the latest of its type and less than
        ``confirm_within`` old; decided at each reading of a bounded type and when an
        unconfirmed reading's time to be confirmed runs out."""
        series, suspects = inputs.series, inputs.set_aside
        types = self.reads()
        found = dict(instants(series, types, start, until))
        for type_name in types:
            for k in suspects.get(type_name, ()):
                expiry = series.of(type_name)[k].time + self.confirm_within
                if start <= expiry <= until:
                    found.setdefault(expiry, expiry)
        timeline = []
        for at in sorted(found):
            pending = []
            for type_name in types:
                index = bisect.bisect_right(series.times.get(type_name, []), at) - 1
                if index < 0 or index not in suspects.get(type_name, ()):
                    continue
                reading = series.of(type_name)[index]
                if at - reading.time < self.confirm_within:
                    pending.append(reading)
            evidence: dict[str, Any] = {}
            if pending:
                newest = max(pending, key=lambda r: (r.time, r.type))
                evidence = {
                    "type": newest.type,
                    "value": newest.value,
                    "time": newest.time,
                    "confirm_within": _hours(self.confirm_within),
                    "readings": ", ".join(
                        _shown(r) for r in sorted(pending, key=lambda r: (r.time, r.type))
                    ),
                }
            timeline.append(Condition(at, bool(pending), found[at], evidence))
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

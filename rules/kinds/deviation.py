"""Deviation: several vitals moved, together, away from the patient's own usual values."""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from homecare import catalogue
from homecare.rules.kinds.base import (
    DAY,
    Condition,
    Inputs,
    Persistence,
    RuleBase,
    Strict,
    known_type,
    parse_duration,
)
from homecare.rules.kinds.series import INSTANT, Series, day_start, instants

__all__ = ["DeviationRule", "DeviationVital"]


class DeviationVital(Strict):
    """DeviationVital: one vital of a deviation rule and the way it worsens."""

    type: str
    direction: Literal["up", "down"]
    # The smallest spread used, in the type's canonical unit: a patient whose readings barely
    # vary must still move a clinically meaningful amount (e.g. 1 SpO2 point) to count.
    floor: float = Field(gt=0)
    # true: the rule holds only if this vital moved (e.g. temperature, for signs of infection).
    required: bool = False

    _type = field_validator("type")(lambda cls, v: known_type(v))


class DeviationRule(RuleBase):
    """DeviationRule: several vitals moved, together, away from the patient's own usual values.

    For each vital: the median of its readings over the last ``recent`` against its usual value
    (median over ``baseline`` ending at the start (UTC) of the day ``over`` before, so a
    deterioration does not feed its own baseline and every instant of a day shares one), in
    units of the patient's usual spread
    (1.4826 × median absolute deviation, at least ``floor``), counted only in the worsening
    direction and capped at ``cap``. It holds when the sum reaches ``min_score`` and at least
    ``min_vitals`` vitals moved one spread or more, the ``required`` ones among them. This is
    the explainable core of personalised multi-parameter monitoring (LINK-HF, Stehlik et al.,
    Circ Heart Fail 2020: 76-88 % of heart-failure admissions flagged, median 6.5 days ahead,
    from a patient's own baseline across several signals): each alert names the vitals, how far
    they moved and from what.
    """

    kind: Literal["deviation"]
    vitals: tuple[DeviationVital, ...] = Field(min_length=1)
    recent: timedelta = timedelta(hours=24)
    over: timedelta = timedelta(days=1)
    baseline: timedelta = timedelta(days=14)
    min_baseline_readings: int = Field(default=4, ge=2)
    min_score: float = Field(gt=0)
    min_vitals: int = Field(default=2, ge=1)
    cap: float = Field(default=3.0, gt=0)
    persistence: Persistence = Persistence()

    evidence_keys: ClassVar[frozenset[str]] = frozenset(
        {"score", "min_score", "explanation", "vitals"}
    )

    _durations = field_validator("recent", "over", "baseline", mode="before")(
        lambda cls, v: parse_duration(v)
    )

    @model_validator(mode="after")
    def _consistent(self) -> DeviationRule:
        if self.min_vitals > len(self.vitals):
            raise ValueError(
                f"min_vitals {self.min_vitals} is more than the {len(self.vitals)} vitals"
            )
        if len({v.type for v in self.vitals}) != len(self.vitals):
            raise ValueError("a vital is listed twice")
        return self

    def reads(self) -> tuple[str, ...]:
        return tuple(vital.type for vital in self.vitals)

    def lookback(self) -> timedelta:
        # + 1 day: baselines end at the day's start.
        return max(self.recent, self.over + self.baseline + DAY) + self.persistence.within

    def timeline(self, inputs: Inputs, start: datetime, until: datetime) -> list[Condition]:
        """timeline: a verdict whenever one of the vitals was measured."""
        series = inputs.series
        # Earlier verdicts matter only to a persistence over several instants.
        first = start - self.persistence.within if self.persistence.of > 1 else start
        found = dict(instants(series, self.reads(), first, until))
        required = {vital.type for vital in self.vitals if vital.required}
        verdicts: list[tuple[datetime, bool]] = []
        timeline = []
        for at in sorted(found):
            baseline_end = day_start(at - self.over)
            moves = [self._move(vital, series, at, baseline_end) for vital in self.vitals]
            known = [move for move in moves if move is not None]
            if not known:
                if at >= start:
                    timeline.append(Condition(at, None, found[at], {}))
                continue
            score = sum(move["score"] for move in known)
            moved = [move for move in known if move["score"] >= 1.0]
            meets = (
                score >= self.min_score
                and len(moved) >= self.min_vitals
                and required <= {move["type"] for move in moved}
            )
            verdicts.append((at, meets))
            oldest = at - self.persistence.within
            recent = [m for t, m in verdicts[-self.persistence.of :] if t >= oldest]
            holds = meets and sum(recent) >= self.persistence.count
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
                    found[at],
                    {
                        "score": round(score, 2),
                        "min_score": self.min_score,
                        "explanation": explanation,
                        "vitals": known,
                    },
                )
            )
        return timeline

    def _move(
        self, vital: DeviationVital, series: Series, at: datetime, baseline_end: datetime
    ) -> dict[str, Any] | None:
        """_move: how far one vital's recent median moved from usual, in spreads (or None)."""
        usual_spread = _usual(series, vital.type, baseline_end, self.baseline)
        if usual_spread is None or usual_spread[2] < self.min_baseline_readings:
            return None
        recent = series.between(vital.type, at - self.recent, at + INSTANT)
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
            "score": min(max(worse / spread, 0.0), self.cap),
        }


def _usual(
    series: Series, type_name: str, end: datetime, span: timedelta
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

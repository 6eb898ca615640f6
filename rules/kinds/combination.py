"""Combination: all, any or at least some of other rules' conditions held within a window —
evaluated after the rules it names, from their verdicts rather than from readings."""

from __future__ import annotations

import bisect
from datetime import datetime, timedelta
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from homecare.rules.kinds.base import Condition, Inputs, RuleBase, parse_duration

__all__ = ["CombinationRule"]


class CombinationRule(RuleBase):
    """CombinationRule: all (or any) of other rules' conditions held within ``within``."""

    kind: Literal["combination"]
    mode: Literal["all", "any", "at_least"]
    rules: tuple[str, ...] = Field(min_length=2)
    within: timedelta
    at_least: int | None = Field(default=None, ge=1)

    evidence_keys: ClassVar[frozenset[str]] = frozenset({"rules", "held", "within"})

    @model_validator(mode="after")
    def _at_least(self) -> CombinationRule:
        if (self.mode == "at_least") != (self.at_least is not None):
            raise ValueError("at_least is required with mode at_least, and only then")
        if self.at_least is not None and self.at_least > len(self.rules):
            raise ValueError(f"at_least {self.at_least} is more than the {len(self.rules)} rules")
        return self

    _within = field_validator("within", mode="before")(lambda cls, v: parse_duration(v))

    def reads(self) -> tuple[str, ...]:
        """reads: no readings of its own — the verdicts of the rules it ``refers_to``."""
        return ()

    def lookback(self) -> timedelta:
        """lookback: how far back its parts' verdicts count (the evaluator computes the parts'
        verdicts that far before the first instant)."""
        return self.within

    def refers_to(self) -> tuple[str, ...]:
        return self.rules

    def timeline(self, inputs: Inputs, start: datetime, until: datetime) -> list[Condition]:
        """timeline: a verdict at each instant of any part in [start, until]."""
        parts = {ref: inputs.timelines.get(ref, []) for ref in self.rules}
        found: dict[datetime, datetime] = {}
        for timeline in parts.values():
            for condition in timeline:
                if start <= condition.time <= until:
                    found[condition.time] = max(
                        found.get(condition.time, condition.received_at), condition.received_at
                    )
        needed = {"all": len(self.rules), "any": 1, "at_least": self.at_least or 1}[self.mode]
        # When each part held, in time order (timelines are): "held within the window" is then
        # one bisection instead of a scan of the whole timeline at every instant.
        holding = {ref: sorted(c.time for c in part if c.holds) for ref, part in parts.items()}
        result = []
        for at in sorted(found):
            held = [
                ref for ref, times in holding.items() if _any_within(times, at - self.within, at)
            ]
            result.append(
                Condition(
                    at,
                    len(held) >= needed,
                    found[at],
                    {"rules": ", ".join(held), "held": held, "within": str(self.within)},
                )
            )
        return result


def _any_within(times: list[datetime], low: datetime, high: datetime) -> bool:
    """_any_within: whether the sorted ``times`` has one in [low, high]."""
    index = bisect.bisect_left(times, low)
    return index < len(times) and times[index] <= high

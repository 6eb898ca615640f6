"""Missing data: no reading of a type for a number of hours after the patient started sending
it — decided at each reading of the type and at every whole hour, since silence has no
reading to be decided at."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from homecare.rules.kinds.base import Condition, Inputs, RuleBase, known_type
from homecare.rules.kinds.series import hourly

__all__ = ["MissingRule"]


class MissingRule(RuleBase):
    """MissingRule: no reading of ``type`` for ``hours`` after the patient started sending it."""

    kind: Literal["missing"]
    type: str
    hours: float = Field(gt=0)

    evidence_keys: ClassVar[frozenset[str]] = frozenset({"type", "hours", "last_time"})
    # An unconfirmed reading still shows the patient measured.
    reads_unconfirmed: ClassVar[bool] = True

    _type = field_validator("type")(lambda cls, v: known_type(v))

    def reads(self) -> tuple[str, ...]:
        return (self.type,)

    def lookback(self) -> timedelta:
        return 2 * timedelta(hours=self.hours)

    def timeline(self, inputs: Inputs, start: datetime, until: datetime) -> list[Condition]:
        series = inputs.series
        limit = timedelta(hours=self.hours)
        found = hourly(series, self.type, start, until)
        timeline = []
        for at in sorted(found):
            # No reading for twice the limit: undecidable here (dormant or never started), so
            # the state stays as it was — it fired, if it was going to, at the limit.
            last = series.latest(self.type, at, 2 * limit)
            if last is None:
                timeline.append(Condition(at, None, found[at], {}))
                continue
            timeline.append(
                Condition(
                    at,
                    at - last.time >= limit,
                    found[at],
                    {"type": self.type, "hours": self.hours, "last_time": last.time.isoformat()},
                )
            )
        return timeline

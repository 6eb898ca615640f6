"""Adherence: the patient measured a type on too few of the last days — a low-severity note
about the monitoring plan rather than about the patient's state."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from homecare.rules.kinds.base import DAY, Condition, Inputs, RuleBase, known_type
from homecare.rules.kinds.series import INSTANT, hourly

__all__ = ["AdherenceRule"]


class AdherenceRule(RuleBase):
    """AdherenceRule: the patient measured ``type`` on fewer than ``min_days`` of the last
    ``days`` days, each day a 24-hour period counted back from the instant; it clears once they
    measured on ``clear_days`` of them.

    Days counted back from the instant rather than calendar days: no time zone decides it, and
    the verdict is the same from any evaluation start. A patient who sent no reading of the type
    in the ``days`` before those is undecidable (not started yet, or gone quiet long ago, which
    the missing-data rule reported at the time), so the state stays as it was.
    """

    kind: Literal["adherence"]
    type: str
    days: int = Field(ge=2, le=90)
    min_days: int = Field(ge=1)
    # Clears only once the patient measured on this many of the days (default: every one); in
    # between, the state stays. A window sliding hour by hour past a patient who measures on 4 or
    # 5 days a week would otherwise open and clear the note every day.
    clear_days: int | None = None

    evidence_keys: ClassVar[frozenset[str]] = frozenset(
        {"type", "measured_days", "days", "min_days"}
    )
    # An unconfirmed reading still shows the patient measured.
    reads_unconfirmed: ClassVar[bool] = True

    _type = field_validator("type")(lambda cls, v: known_type(v))

    @model_validator(mode="after")
    def _fewer_than_days(self) -> AdherenceRule:
        if self.min_days > self.days:
            raise ValueError(f"min_days {self.min_days} is more than days {self.days}")
        clear = self.days if self.clear_days is None else self.clear_days
        if not self.min_days <= clear <= self.days:
            raise ValueError(
                f"clear_days {clear} must be from min_days {self.min_days} to days {self.days}"
            )
        return self

    @property
    def clear_at(self) -> int:
        return self.days if self.clear_days is None else self.clear_days

    def reads(self) -> tuple[str, ...]:
        return (self.type,)

    def lookback(self) -> timedelta:
        return 2 * self.days * DAY

    def timeline(self, inputs: Inputs, start: datetime, until: datetime) -> list[Condition]:
        series = inputs.series
        window = self.days * DAY
        found = hourly(series, self.type, start, until)
        timeline = []
        # Each day is the 24 h period (at - (k + 1) d, at - k d]: a reading at the instant
        # counts, one exactly a week old does not.
        for at in sorted(found):
            end = at + INSTANT
            # Nothing in the days before the window: not started, or quiet for long
            # (undecidable).
            if not series.between(self.type, end - 2 * window, end - window):
                timeline.append(Condition(at, None, found[at], {}))
                continue
            measured = sum(
                1
                for k in range(self.days)
                if series.between(self.type, end - (k + 1) * DAY, end - k * DAY)
            )
            # Between the two levels the state stays as it was (None), so the note neither
            # flaps nor clears on one better day.
            holds = (
                True if measured < self.min_days else False if measured >= self.clear_at else None
            )
            timeline.append(
                Condition(
                    at,
                    holds,
                    found[at],
                    {
                        "type": self.type,
                        "measured_days": measured,
                        "days": self.days,
                        "min_days": self.min_days,
                    },
                )
            )
        return timeline

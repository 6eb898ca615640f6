"""Nurse model: simulated care-team responses to alerts, for seeded demo and CI databases.

Nobody's real work can be shown, so a seeded database (``demo.seed``) gets its nurses from
here: for each alert the moment it opens, when someone acknowledges it, when they resolve it
and with which outcome. The seeder carries these out through ``AlertService`` at those
simulated times, so ``alert_events``, escalations and auto-resolutions are the real stage's.
Every number below is **judgement**, chosen to look like a small virtual-ward team, not
measured; they exist so the alert-burden notebook has realistic shapes to show (night alerts
wait and escalate, true alerts lead to calls and treatment changes, glitches to device checks).

- **Shifts** (local time of the cohort): nurses work the queue 08:00–20:00 every day; at night
  an on-call nurse answers pages of critical and high alerts only; everything else waits for
  the morning.
- **Time to acknowledge** (log-normal, median; spread σ 0.7): paged in the day: critical 6 min,
  high 15 min, medium 50 min; paged at night: critical 18 min, high 40 min (on call); medium at
  night: the morning's start plus the day delay; low severity (housekeeping, e.g. missing
  data) and alerts that did not page (inhibited, late, flapping): the next queue round
  (09:00, 13:00, 16:00) plus 20 min. One alert in 25 is overlooked for 4× as long.
- **Outcome**, by the simulator's ground truth at the alert's evidence time: inside a labelled
  episode (onset − 12 h to ER visit + 2 d): called the patient 30 %, adjusted treatment 30 %,
  home visit 15 %, sent to the ER 25 %; inside a look-alike: called 55 %, no action 45 %;
  within 2 h of a stored device glitch of the patient: device problem 85 %, false alarm 15 %;
  low severity: called (a reminder) 60 %, device problem 25 %, no action 15 %; otherwise:
  false alarm 45 %, no action 35 %, called 20 %.
- **Time to resolve** after the acknowledgement (log-normal, median by outcome): called 20 min,
  treatment adjusted 45 min, home visit 4 h, sent to the ER 30 min, false alarm 4 min, device
  problem 25 min, no action 8 min.

The model does not close the loop: a nurse's "sent to the ER" does not change the simulated
patient (the simulator's episodes run their course regardless).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from homecare.rules.harness import AFTER_ER, AFTER_LOOKALIKE, BEFORE_ONSET, Labels

__all__ = ["NurseAction", "NurseModel", "Truth"]

DAY_START = time(8, 0)
DAY_END = time(20, 0)
ROUNDS = (time(9, 0), time(13, 0), time(16, 0))
_SPREAD = 0.7
_OVERLOOKED = 1 / 25
_DAY_ACK_MIN = {"critical": 6.0, "high": 15.0, "medium": 50.0}
_NIGHT_ACK_MIN = {"critical": 18.0, "high": 40.0}
_ROUND_DELAY_MIN = 20.0
_HANDLING_MIN = {
    "called_patient": 20.0,
    "adjusted_treatment": 45.0,
    "home_visit": 240.0,
    "sent_to_er": 30.0,
    "false_alarm": 4.0,
    "device_problem": 25.0,
    "no_action_needed": 8.0,
}
Truth = Literal["episode", "lookalike", "glitch", "housekeeping", "none"]
_OUTCOMES: dict[str, tuple[tuple[str, float], ...]] = {
    "episode": (
        ("called_patient", 0.30),
        ("adjusted_treatment", 0.30),
        ("home_visit", 0.15),
        ("sent_to_er", 0.25),
    ),
    "lookalike": (("called_patient", 0.55), ("no_action_needed", 0.45)),
    "glitch": (("device_problem", 0.85), ("false_alarm", 0.15)),
    "housekeeping": (
        ("called_patient", 0.60),
        ("device_problem", 0.25),
        ("no_action_needed", 0.15),
    ),
    "none": (("false_alarm", 0.45), ("no_action_needed", 0.35), ("called_patient", 0.20)),
}
_DAY_NURSES = ("nurse-01", "nurse-02", "nurse-03", "nurse-04")
_ON_CALL = "nurse-oncall"
_GLITCH_WINDOW = timedelta(hours=2)


@dataclass(frozen=True)
class NurseAction:
    """NurseAction: ``actor`` acknowledges (``outcome`` None) or resolves an alert at ``at``."""

    at: datetime
    alert_id: int
    actor: str
    outcome: str | None = None


class NurseModel:
    """NurseModel decides, from a seeded random stream, how the team answers each alert."""

    def __init__(
        self,
        seed: int,
        timezone: str,
        labels: Labels,
        glitches: dict[str, list[datetime]] | None = None,
    ) -> None:
        self.random = random.Random(f"homecare-nurses/{seed}")
        self.zone = ZoneInfo(timezone)
        self.labels = labels
        self.glitches = glitches or {}

    def respond(
        self,
        alert_id: int,
        patient_key: str | None,
        severity: str,
        paged: bool,
        opened_at: datetime,
        evidence_time: datetime,
    ) -> tuple[NurseAction, NurseAction]:
        """respond: the acknowledgement and the resolution of one newly opened alert."""
        acked_at, actor = self._acknowledgement(severity, paged, opened_at)
        truth = self.truth(patient_key, severity, evidence_time)
        outcome = self._pick(_OUTCOMES[truth])
        resolved_at = acked_at + self._lognormal(_HANDLING_MIN[outcome])
        return (
            NurseAction(acked_at, alert_id, actor),
            NurseAction(resolved_at, alert_id, actor, outcome),
        )

    def reacknowledge(self, alert_id: int, severity: str, at: datetime) -> NurseAction:
        """reacknowledge: an acknowledged alert fired again and pages anew."""
        acked_at, actor = self._acknowledgement(severity, True, at)
        return NurseAction(acked_at, alert_id, actor)

    def truth(self, patient_key: str | None, severity: str, at: datetime) -> Truth:
        """truth says what, by the labels, was going on with the patient at ``at``."""
        if severity == "low":
            return "housekeeping"
        if patient_key is not None:
            for e in self.labels.episodes:
                if (
                    e.patient == patient_key
                    and e.onset - BEFORE_ONSET <= at <= e.er_visit + AFTER_ER
                ):
                    return "episode"
            for x in self.labels.lookalikes:
                if x.patient == patient_key and x.start <= at <= x.end + AFTER_LOOKALIKE:
                    return "lookalike"
            if any(abs(g - at) <= _GLITCH_WINDOW for g in self.glitches.get(patient_key, ())):
                return "glitch"
        return "none"

    def _acknowledgement(self, severity: str, paged: bool, at: datetime) -> tuple[datetime, str]:
        local = at.astimezone(self.zone)
        day = DAY_START <= local.time() < DAY_END
        if not paged or severity == "low":
            start = self._next_round(at)
            return start + self._lognormal(_ROUND_DELAY_MIN), self.random.choice(_DAY_NURSES)
        if day:
            return at + self._lognormal(_DAY_ACK_MIN[severity]), self.random.choice(_DAY_NURSES)
        if severity in _NIGHT_ACK_MIN:
            return at + self._lognormal(_NIGHT_ACK_MIN[severity]), _ON_CALL
        start = self._next_day_start(at)
        return start + self._lognormal(_DAY_ACK_MIN[severity]), self.random.choice(_DAY_NURSES)

    def _lognormal(self, median_min: float) -> timedelta:
        minutes = self.random.lognormvariate(0.0, _SPREAD) * median_min
        if self.random.random() < _OVERLOOKED:
            minutes *= 4
        return timedelta(minutes=minutes)

    def _pick(self, choices: tuple[tuple[str, float], ...]) -> str:
        names = [name for name, _ in choices]
        weights = [weight for _, weight in choices]
        return self.random.choices(names, weights)[0]

    def _next_day_start(self, at: datetime) -> datetime:
        return self._next_local(at, (DAY_START,))

    def _next_round(self, at: datetime) -> datetime:
        return self._next_local(at, ROUNDS)

    def _next_local(self, at: datetime, times: tuple[time, ...]) -> datetime:
        """_next_local: the first of ``times`` (local wall clock) at or after ``at``."""
        local = at.astimezone(self.zone)
        for days in range(3):
            date = (local + timedelta(days=days)).date()
            for moment in times:
                candidate = datetime.combine(date, moment, self.zone)
                if candidate >= local:
                    return candidate.astimezone(at.tzinfo)
        raise AssertionError("unreachable: a round within three days")

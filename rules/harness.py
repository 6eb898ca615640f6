"""Harness: how well a set of rules catches labelled deterioration, and at what cost.

Pure scoring of findings against the simulator's ground truth (``devices/sim`` labels): an
*alert* here is an ``active`` finding of severity medium or above (low-severity findings, such
as missing data, are housekeeping for the nurse, not a page). For each labelled episode:

- **caught in time** if an alert of that patient falls in [onset − 12 h, ER visit − 24 h]: early
  enough that a nurse's call can still prevent the emergency visit;
- **lead time**: ER visit − first alert in [onset − 12 h, ER visit];

and every alert outside all episode windows ([onset − 12 h, ER visit + 2 d]) is **false**;
those inside a look-alike's window (its start to its end + 1 d) are counted apart, because they
are the false alerts a good system must avoid. *Notes* (missing data, fading adherence: an
alert marked ``note``) are counted apart whatever their severity: they ask a patient to
measure, they are not a clinical page, and a cohort with worse adherence has more of them.
Rates are per patient-month (30 days) of monitoring, and the burden is alerts per day for 100
patients, i.e. one nurse's day.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

__all__ = [
    "Alert",
    "Episode",
    "Group",
    "Labels",
    "Lookalike",
    "parse_labels",
    "score",
    "score_kinds",
]

SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}
BEFORE_ONSET = timedelta(hours=12)
IN_TIME = timedelta(hours=24)
AFTER_ER = timedelta(days=2)
AFTER_LOOKALIKE = timedelta(days=1)


@dataclass(frozen=True)
class Episode:
    """Episode is a labelled deterioration: from onset to the ER visit nobody prevented."""

    id: str
    kind: str
    patient: str
    onset: datetime
    er_visit: datetime
    # The measurement types the episode moves (the labels' expected_signals): a reading of
    # another type carries no news of it.
    signals: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Lookalike:
    """Lookalike is a labelled harmless change that a good system does not alert on."""

    id: str
    kind: str
    patient: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Labels:
    """Labels is the part of the simulator's labels document the harness scores against."""

    start: datetime
    end: datetime
    programs: Mapping[str, tuple[str, ...]]  # patient -> programs
    episodes: tuple[Episode, ...]
    lookalikes: tuple[Lookalike, ...]
    variant: str = "default"  # the simulator variant that made the cohort

    @property
    def patient_days(self) -> float:
        return len(self.programs) * (self.end - self.start).total_seconds() / 86400


@dataclass(frozen=True)
class Alert:
    """Alert is what the harness needs of an active finding."""

    patient: str
    rule_id: str
    severity: str
    time: datetime
    note: bool = False  # a missing-data or adherence note, not a clinical alert


def parse_labels(document: Mapping[str, Any]) -> Labels:
    """parse_labels reads the simulator's labels document (schema homecare-sim-labels/1)."""
    when = datetime.fromisoformat
    generator = document["generator"]
    return Labels(
        start=when(generator["start"]),
        end=when(generator["end"]),
        programs={p["id"]: tuple(p["programs"]) for p in document["patients"]},
        episodes=tuple(
            Episode(
                e["id"],
                e["kind"],
                e["patient_id"],
                when(e["onset"]),
                when(e["er_visit"]),
                frozenset(signal["type"] for signal in e["expected_signals"]),
            )
            for e in document["episodes"]
        ),
        lookalikes=tuple(
            Lookalike(x["id"], x["kind"], x["patient_id"], when(x["start"]), when(x["end"]))
            for x in document["lookalikes"]
        ),
        variant=generator.get("variant", "default"),
    )


@dataclass
class Group:
    """Group holds the figures of one program, one rule, or everything."""

    episodes: int = 0
    caught: int = 0
    # For a rule: episodes no other rule of its set alerted on in time, i.e. what removing it
    # would lose. ``caught`` alone flatters rules that fire beside others on the same episodes.
    caught_only: int = 0
    lead_days: list[float] = field(default_factory=list)
    false_alerts: int = 0
    lookalike_alerts: int = 0
    alerts: int = 0
    patient_days: float = 0.0
    notes: int = 0  # missing-data and adherence notes, apart from the alerts

    def add(self, other: Group) -> None:
        """add counts ``other``'s figures in, e.g. the same rule set on another seed's cohort."""
        self.episodes += other.episodes
        self.caught += other.caught
        self.caught_only += other.caught_only
        self.lead_days.extend(other.lead_days)
        self.false_alerts += other.false_alerts
        self.lookalike_alerts += other.lookalike_alerts
        self.alerts += other.alerts
        self.patient_days += other.patient_days
        self.notes += other.notes

    @property
    def caught_share(self) -> float | None:
        return self.caught / self.episodes if self.episodes else None

    @property
    def median_lead_days(self) -> float | None:
        return statistics.median(self.lead_days) if self.lead_days else None

    @property
    def false_per_patient_month(self) -> float | None:
        return self.false_alerts / self.patient_days * 30 if self.patient_days else None

    @property
    def caught_before_er(self) -> int:
        """caught_before_er: episodes with an alert at any time before the ER visit."""
        return len(self.lead_days)

    @property
    def notes_per_patient_month(self) -> float | None:
        return self.notes / self.patient_days * 30 if self.patient_days else None

    @property
    def burden_per_nurse_day(self) -> float | None:
        """burden_per_nurse_day: alerts a day for 100 patients."""
        return self.alerts / self.patient_days * 100 if self.patient_days else None


def score(
    alerts: Iterable[Alert], labels: Labels, min_severity: str = "medium"
) -> tuple[Group, dict[str, Group], dict[str, Group]]:
    """score returns (overall, by program, by rule) for the alerts of at least ``min_severity``.

    A patient in two programs counts toward both programs' figures. Notes count apart
    (``Group.notes``), whatever their severity.
    """
    floor = SEVERITY_RANK[min_severity]
    alerts = list(alerts)
    chosen = sorted(
        (a for a in alerts if not a.note and SEVERITY_RANK[a.severity] >= floor),
        key=lambda a: a.time,
    )
    by_patient: dict[str, list[Alert]] = defaultdict(list)
    for alert in chosen:
        by_patient[alert.patient].append(alert)

    overall = Group(patient_days=labels.patient_days)
    programs: dict[str, Group] = defaultdict(Group)
    rules: dict[str, Group] = defaultdict(Group)
    days_each = (labels.end - labels.start).total_seconds() / 86400
    for patient_programs in labels.programs.values():
        for program in patient_programs:
            programs[program].patient_days += days_each
    for alert in chosen:
        rules[alert.rule_id].patient_days = labels.patient_days
    for note in alerts:
        if note.note:
            for group in (overall, *(programs[p] for p in labels.programs.get(note.patient, ()))):
                group.notes += 1

    for episode in labels.episodes:
        groups = [overall, *(programs[p] for p in labels.programs.get(episode.patient, ()))]
        window, in_time = _episode_alerts(episode, by_patient)
        for group in groups:
            group.episodes += 1
            if in_time:
                group.caught += 1
            if window:
                group.lead_days.append((episode.er_visit - window[0].time).total_seconds() / 86400)
        catching = {a.rule_id for a in in_time}
        for rule_id in catching:
            rules[rule_id].caught += 1
        if len(catching) == 1:
            rules[catching.pop()].caught_only += 1

    for patient, patient_alerts in by_patient.items():
        episodes = [e for e in labels.episodes if e.patient == patient]
        lookalikes = [x for x in labels.lookalikes if x.patient == patient]
        groups_of = [programs[p] for p in labels.programs.get(patient, ())]
        for alert in patient_alerts:
            for group in (overall, rules[alert.rule_id], *groups_of):
                group.alerts += 1
            if any(e.onset - BEFORE_ONSET <= alert.time <= e.er_visit + AFTER_ER for e in episodes):
                continue
            lookalike = any(x.start <= alert.time <= x.end + AFTER_LOOKALIKE for x in lookalikes)
            for group in (overall, rules[alert.rule_id], *groups_of):
                if lookalike:
                    group.lookalike_alerts += 1
                else:
                    group.false_alerts += 1
    return overall, dict(programs), dict(rules)


def score_kinds(
    alerts: Iterable[Alert], labels: Labels, min_severity: str = "medium"
) -> dict[str, Group]:
    """score_kinds returns the episode figures (caught in time, lead) per episode kind.

    Kinds differ in how much warning the body gives (days of weight gain before a heart-failure
    admission, hours of a hypoglycaemia), so the overall share hides where a rule set falls
    short; false alerts belong to no kind and are left at zero here.
    """
    floor = SEVERITY_RANK[min_severity]
    by_patient: dict[str, list[Alert]] = defaultdict(list)
    for alert in sorted(alerts, key=lambda a: a.time):
        if not alert.note and SEVERITY_RANK[alert.severity] >= floor:
            by_patient[alert.patient].append(alert)
    kinds: dict[str, Group] = defaultdict(Group)
    for episode in labels.episodes:
        group = kinds[episode.kind]
        window, in_time = _episode_alerts(episode, by_patient)
        group.episodes += 1
        if in_time:
            group.caught += 1
        if window:
            group.lead_days.append((episode.er_visit - window[0].time).total_seconds() / 86400)
    return dict(kinds)


def _episode_alerts(
    episode: Episode, by_patient: Mapping[str, list[Alert]]
) -> tuple[list[Alert], list[Alert]]:
    """_episode_alerts: the patient's alerts from onset - 12 h to the ER visit, and those of
    them at least 24 h before it (caught in time)."""
    window = [
        a
        for a in by_patient.get(episode.patient, [])
        if episode.onset - BEFORE_ONSET <= a.time <= episode.er_visit
    ]
    return window, [a for a in window if a.time <= episode.er_visit - IN_TIME]

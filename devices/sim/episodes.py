"""Episodes: labelled deteriorations with an onset and an ER-visit time, and their look-alikes.

Why a table of kinds with explicit deltas: the ground truth is only as good as its definition.
Each kind states which vitals move, how far (drawn per episode from published ranges, see
MODEL.md), how fast (``days_to_er``) and with what shape (``severity = progress ** shape``: 1 is
linear, 1.5 accelerates towards the ER visit; the kind's ``early`` vitals move first, with
``progress ** 0.5``, as fever and tachycardia come before the blood pressure falls in sepsis).
The ER-visit time is when the patient would reach the emergency department if nobody acted; a
hospital stay with no home data follows.

Deltas are absolute in canonical units, except ``RELATIVE_TYPES`` (glucose, wound area) where
they are fractions of the current value. Heart and respiratory rate also rise with the
episode's temperature through the patient's fever coupling (physiology), on top of the deltas
here; ``expected_signals`` reports the total.

Look-alikes are changes a good system should *not* alarm on: they revert by their ``end``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from homecare import catalogue
from homecare.devices.sim.clock import DAY_MS, HOUR_MS, LocalCalendar, LocalDay
from homecare.devices.sim.population import PatientProfile
from homecare.devices.sim.programs import PROGRAM_PROFILES

__all__ = [
    "EPISODE_KINDS",
    "LOOKALIKE_KINDS",
    "RELATIVE_TYPES",
    "RR_FEVER_GAIN",
    "Episode",
    "EpisodeKind",
    "EpisodeVariation",
    "Extra",
    "HospitalStay",
    "LookAlike",
    "expected_signals",
    "plan_events",
]

RELATIVE_TYPES = frozenset({"blood_glucose", "wound_area"})
RR_FEVER_GAIN = 2.0  # breaths/min per °C above baseline (judgement, see MODEL.md)

Deltas = Callable[[random.Random, PatientProfile], dict[str, float]]


@dataclass(frozen=True)
class EpisodeKind:
    """EpisodeKind: one kind of deterioration and how it unfolds."""

    name: str
    rate_per_90_days: float  # expected episodes per eligible patient per 90 days
    days_to_er: tuple[float, float]
    stay_days: tuple[float, float]
    shape: float
    requires: tuple[str, ...]  # device kinds without which it could not be seen
    deltas: Deltas
    insulin_only: bool = False
    early: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Extra:
    """Extra: a measurement outside the plan (a symptomatic check, a night re-measurement).

    Extras are taken whatever the patient's adherence; ``tag`` tells physiology to apply a
    session-only change (``exercise``: just after exertion; ``noisy``: poor perfusion/motion).
    """

    time_ms: int
    kind: str
    slot: str
    tag: str = ""
    deltas: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Episode:
    """Episode: one labelled deterioration of one patient."""

    id: str
    kind: str
    onset_ms: int
    er_ms: int
    discharge_ms: int
    shape: float
    deltas: Mapping[str, float]
    extras: tuple[Extra, ...] = ()
    early: frozenset[str] = frozenset()

    def scale(self, type_name: str, ms: int) -> float:
        """Episode.scale: how much of its delta ``type_name`` shows at ``ms``.

        0 before onset, rising to 1 at the ER visit, 0 once in hospital.
        """
        if ms <= self.onset_ms or ms >= self.er_ms:
            return 0.0
        progress = (ms - self.onset_ms) / (self.er_ms - self.onset_ms)
        return float(progress ** (0.5 if type_name in self.early else self.shape))


@dataclass(frozen=True)
class LookAlike:
    """LookAlike: a harmless change that reverts by ``end_ms``; ``deltas`` at its peak."""

    id: str
    kind: str
    start_ms: int
    end_ms: int
    deltas: Mapping[str, float]
    rise_ms: int = 0
    decay_ms: int = 0
    extras: tuple[Extra, ...] = ()

    def scale(self, type_name: str, ms: int) -> float:
        """LookAlike.scale: continuous effect (salty meal): rise, then exponential decay."""
        if not self.decay_ms or ms <= self.start_ms or ms >= self.end_ms:
            return 0.0
        elapsed = ms - self.start_ms
        if elapsed < self.rise_ms:
            return elapsed / self.rise_ms
        return math.exp(-(elapsed - self.rise_ms) / self.decay_ms)


@dataclass(frozen=True)
class HospitalStay:
    """HospitalStay: the patient is away; no home readings between start and end."""

    start_ms: int
    end_ms: int
    reason: str  # an episode id, or "unrelated"


def _hf(rng: random.Random, p: PatientProfile) -> dict[str, float]:
    blunt = 0.7 if p.beta_blocker else 1.0
    return {
        "body_weight": rng.uniform(1.2, 3.0),
        "heart_rate": rng.uniform(8.0, 16.0) * blunt,
        "respiratory_rate": rng.uniform(3.0, 6.0),
        "spo2": -rng.uniform(2.0, 4.0),
    }


def _copd(rng: random.Random, p: PatientProfile) -> dict[str, float]:
    blunt = 0.7 if p.beta_blocker else 1.0
    return {
        "spo2": -rng.uniform(3.0, 5.0),
        "heart_rate": rng.uniform(8.0, 15.0) * blunt,
        "respiratory_rate": rng.uniform(4.0, 8.0),
        "body_temperature": rng.uniform(0.0, 0.5),
    }


def _infection(rng: random.Random, p: PatientProfile) -> dict[str, float]:
    return {
        "body_temperature": rng.uniform(38.4, 39.6) - p.baseline["body_temperature"],
        "heart_rate": rng.uniform(6.0, 15.0),
        "systolic_bp": -rng.uniform(20.0, 40.0),
        "diastolic_bp": -rng.uniform(10.0, 20.0),
        "respiratory_rate": rng.uniform(4.0, 8.0),
        "spo2": -rng.uniform(1.0, 3.0),
    }


def _crisis(rng: random.Random, p: PatientProfile) -> dict[str, float]:
    return {
        "systolic_bp": max(35.0, rng.uniform(185.0, 215.0) - p.baseline["systolic_bp"]),
        "diastolic_bp": max(20.0, rng.uniform(112.0, 128.0) - p.baseline["diastolic_bp"]),
        "heart_rate": rng.uniform(0.0, 8.0),
    }


def _hypo(rng: random.Random, p: PatientProfile) -> dict[str, float]:
    fasting = p.baseline["blood_glucose"]
    return {"blood_glucose": -(1.0 - rng.uniform(1.9, 2.7) / fasting)}


def _wound(rng: random.Random, p: PatientProfile) -> dict[str, float]:
    return {
        "wound_area": rng.uniform(0.25, 0.6),
        "pain_score": rng.uniform(2.0, 4.0),
        "body_temperature": rng.uniform(0.4, 1.0),
    }


_FLARE_ITEMS = (
    "esas_pain",
    "esas_tiredness",
    "esas_nausea",
    "esas_appetite",
    "esas_wellbeing",
    "esas_drowsiness",
    "esas_shortness_of_breath",
    "esas_anxiety",
    "esas_depression",
)


def _flare(rng: random.Random, p: PatientProfile) -> dict[str, float]:
    items = rng.sample(_FLARE_ITEMS[:6], rng.randint(3, 5))
    return {item: rng.uniform(3.0, 5.0) for item in sorted(items)}


def _postop(rng: random.Random, p: PatientProfile) -> dict[str, float]:
    return {
        "pain_score": rng.uniform(3.0, 5.0),
        "range_of_motion": -rng.uniform(15.0, 30.0),
        "body_temperature": rng.uniform(0.3, 1.0),
    }


EPISODE_KINDS: Mapping[str, EpisodeKind] = MappingProxyType(
    {
        kind.name: kind
        for kind in (
            EpisodeKind("hf_decompensation", 0.30, (5, 10), (4, 10), 1.5, ("scale",), _hf),
            EpisodeKind("copd_exacerbation", 0.35, (2, 4), (3, 8), 1.2, ("oxi",), _copd),
            EpisodeKind(
                "infection",
                0.10,
                (1, 2),
                (5, 14),
                1.3,
                ("thermo", "cuff"),
                _infection,
                early=frozenset({"body_temperature", "heart_rate"}),
            ),
            EpisodeKind("hypertensive_crisis", 0.05, (1, 3), (0.5, 3), 1.0, ("cuff",), _crisis),
            EpisodeKind(
                "hypoglycaemia", 0.20, (1, 3), (0.3, 2), 0.7, ("gluco",), _hypo, insulin_only=True
            ),
            EpisodeKind("wound_infection", 0.20, (5, 12), (2, 7), 1.0, ("app",), _wound),
            EpisodeKind("symptom_flare", 0.35, (3, 7), (2, 6), 1.0, ("app",), _flare),
            EpisodeKind("postop_complication", 0.15, (3, 7), (2, 7), 1.0, ("app",), _postop),
        )
    }
)

# Look-alike kind -> (rate per 90 days, device kind needed, needs a daily reading of it).
LOOKALIKE_KINDS: Mapping[str, tuple[float, str, bool]] = MappingProxyType(
    {
        "salty_meal": (1.5, "scale", True),
        "post_exercise_bp": (1.5, "cuff", False),
        "noisy_oximetry_night": (0.8, "oxi", False),
    }
)


@dataclass(frozen=True)
class EpisodeVariation:
    """EpisodeVariation: a variant's episode kinds (courses, rates), the kinds it adds per
    program, and ``draw``, which gives each episode its (shape, size multiplier) from the
    variant's own random stream."""

    kinds: Mapping[str, EpisodeKind]
    more: Mapping[str, tuple[str, ...]]
    draw: Callable[[EpisodeKind], tuple[float, float]]


_UNRELATED_STAYS_PER_90_DAYS = 0.15
_BASELINE_DAYS = 7  # clean days kept before an episode or look-alike, to measure from


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


class _Timeline:
    """_Timeline: intervals already taken by events, so that events do not overlap."""

    def __init__(self) -> None:
        self.taken: list[tuple[int, int]] = []

    def free(self, start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in self.taken)

    def take(self, start: int, end: int) -> None:
        self.taken.append((start, end))


def plan_events(
    profile: PatientProfile,
    rng: random.Random,
    calendar: LocalCalendar,
    start_ms: int,
    end_ms: int,
    scale: float,
    varied: EpisodeVariation | None = None,
) -> tuple[list[Episode], list[HospitalStay], list[LookAlike]]:
    """plan_events: this patient's episodes (with their stays), other stays and look-alikes.

    ``end_ms`` is the end of the patient's monitoring (the window's end, or earlier if the
    patient leaves the program). Events are placed at random without overlapping, each with
    ``_BASELINE_DAYS`` of its own clean data before it. ``varied`` is a variant's change to the
    kinds and to each episode (``devices.sim.vary``); without it, the default simulator.
    """
    days = (end_ms - start_ms) / DAY_MS
    kinds = profile.kinds()
    busy = _Timeline()
    episodes: list[Episode] = []
    stays: list[HospitalStay] = []
    table = EPISODE_KINDS if varied is None else varied.kinds
    more: Mapping[str, tuple[str, ...]] = {} if varied is None else varied.more
    eligible = [
        kind
        for kind in table.values()
        if any(kind.name in (*_program_episodes(p), *more.get(p, ())) for p in profile.programs)
        and all(k in kinds for k in kind.requires)
        and (profile.insulin or not kind.insulin_only)
    ]
    for kind in eligible:
        for _ in range(_poisson(rng, kind.rate_per_90_days * days / 90 * scale)):
            duration = round(rng.uniform(*kind.days_to_er) * DAY_MS)
            stay = round(rng.uniform(*kind.stay_days) * DAY_MS)
            deltas = kind.deltas(rng, profile)
            shape = kind.shape
            if varied is not None:
                shape, size = varied.draw(kind)
                deltas = {name: delta * size for name, delta in deltas.items()}
            for _try in range(30):
                earliest = start_ms + _BASELINE_DAYS * DAY_MS
                latest = end_ms - duration - HOUR_MS
                if latest <= earliest:
                    break
                onset = rng.randrange(earliest, latest)
                er = onset + duration
                taken = (onset - _BASELINE_DAYS * DAY_MS, er + stay + 3 * DAY_MS)
                if busy.free(*taken):
                    busy.take(*taken)
                    episode_id = f"{profile.key}-e{len(episodes) + 1}"
                    extras = _episode_extras(rng, kind.name, profile, onset, er)
                    episodes.append(
                        Episode(
                            episode_id,
                            kind.name,
                            onset,
                            er,
                            er + stay,
                            shape,
                            deltas,
                            extras,
                            kind.early,
                        )
                    )
                    stays.append(HospitalStay(er, er + stay, episode_id))
                    break
    for _ in range(_poisson(rng, _UNRELATED_STAYS_PER_90_DAYS * days / 90 * scale)):
        length = round(rng.uniform(1.0, 4.0) * DAY_MS)
        if end_ms - length <= start_ms:
            break
        begin = rng.randrange(start_ms, end_ms - length)
        if busy.free(begin - DAY_MS, begin + length + DAY_MS):
            busy.take(begin - DAY_MS, begin + length + DAY_MS)
            stays.append(HospitalStay(begin, begin + length, "unrelated"))
    lookalikes = _plan_lookalikes(profile, rng, calendar, busy, start_ms, end_ms, days, scale)
    episodes.sort(key=lambda e: e.onset_ms)
    stays.sort(key=lambda s: s.start_ms)
    return episodes, stays, lookalikes


def _program_episodes(program: str) -> tuple[str, ...]:
    return PROGRAM_PROFILES[program].episodes


def _episode_extras(
    rng: random.Random, kind: str, profile: PatientProfile, onset: int, er: int
) -> tuple[Extra, ...]:
    """_episode_extras: the checks a patient makes because they feel unwell."""
    span = er - onset
    if kind == "hypoglycaemia":
        return tuple(
            Extra(er - rng.randrange(HOUR_MS // 2, 8 * HOUR_MS), "gluco", "symptomatic")
            for _ in range(rng.randint(2, 3))
        )
    if kind == "wound_infection" and rng.random() < 0.5:
        return (Extra(onset + round(span * rng.uniform(0.6, 0.9)), "app", "wound"),)
    if kind == "symptom_flare" and not profile.esas_daily and rng.random() < 0.6:
        return (Extra(onset + round(span * rng.uniform(0.6, 0.95)), "app", "esas"),)
    return ()


def _plan_lookalikes(
    profile: PatientProfile,
    rng: random.Random,
    calendar: LocalCalendar,
    busy: _Timeline,
    start_ms: int,
    end_ms: int,
    days: float,
    scale: float,
) -> list[LookAlike]:
    found: list[LookAlike] = []
    for name, (rate, kind, daily) in LOOKALIKE_KINDS.items():
        if kind not in profile.kinds() or (daily and not profile.measures_daily(kind)):
            continue
        for _ in range(_poisson(rng, rate * days / 90 * scale)):
            earliest = start_ms + _BASELINE_DAYS * DAY_MS
            latest = end_ms - 5 * DAY_MS
            if latest <= earliest:
                break
            day = calendar.day_of(rng.randrange(earliest, latest))
            made = _lookalike(name, rng, calendar, day, f"{profile.key}-l{len(found) + 1}")
            margin = (made.start_ms - 4 * DAY_MS, made.end_ms + DAY_MS)
            if busy.free(*margin):
                busy.take(*margin)
                found.append(made)
    found.sort(key=lambda x: x.start_ms)
    return found


def _lookalike(
    name: str, rng: random.Random, calendar: LocalCalendar, day: LocalDay, lookalike_id: str
) -> LookAlike:
    if name == "salty_meal":
        meal = calendar.at(day, rng.uniform(18.0, 20.0))
        return LookAlike(
            lookalike_id,
            name,
            meal,
            meal + 4 * DAY_MS,
            {"body_weight": rng.uniform(0.7, 1.5)},
            rise_ms=12 * HOUR_MS,
            decay_ms=round(rng.uniform(0.5, 0.8) * DAY_MS),
        )
    if name == "post_exercise_bp":
        moment = calendar.at(day, rng.uniform(15.0, 18.5))
        deltas = {
            "systolic_bp": rng.uniform(25.0, 45.0),
            "diastolic_bp": rng.uniform(8.0, 15.0),
            "heart_rate": rng.uniform(15.0, 30.0),
        }
        extra = Extra(moment, "cuff", "exercise", "exercise", deltas)
        return LookAlike(lookalike_id, name, moment, moment + HOUR_MS, deltas, extras=(extra,))
    night = calendar.at(day, 23.0 + rng.uniform(0.0, 0.5))
    times = sorted(night + rng.randrange(0, 6 * HOUR_MS) for _ in range(rng.randint(4, 8)))
    extras = tuple(Extra(t, "oxi", "night", "noisy") for t in times)
    return LookAlike(lookalike_id, name, night, night + 7 * HOUR_MS, {"spo2": -4.0}, extras=extras)


def expected_signals(
    deltas: Mapping[str, float], profile: PatientProfile, measured: frozenset[str]
) -> list[dict[str, object]]:
    """expected_signals: the change each measured vital should show at full severity."""
    total = dict(deltas)
    fever = max(0.0, total.get("body_temperature", 0.0))
    if fever:
        total["heart_rate"] = total.get("heart_rate", 0.0) + profile.fever_hr_gain * fever
        total["respiratory_rate"] = total.get("respiratory_rate", 0.0) + RR_FEVER_GAIN * fever
    signals: list[dict[str, object]] = []
    for name in sorted(total):
        change = total[name]
        if name not in measured or abs(change) < 0.05:
            continue
        relative = name in RELATIVE_TYPES
        unit = "%" if relative else catalogue.lookup(name).canonical_unit
        shown = change * 100 if relative else change
        signals.append(
            {
                "type": name,
                "direction": "up" if change > 0 else "down",
                "change": round(shown, 2),
                "unit": unit,
            }
        )
    return signals

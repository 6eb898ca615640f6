"""Variants: named families of simulated cohorts, beyond the one the rules were tuned on.

Why: a detector tuned on one simulator learns that simulator — its episode durations and
shapes, its patients' spread, its schedules, its devices. Scored on the same family it looks
better than it is. A variant changes *how* the simulated world works (not only its seed), so a
figure measured on a variant nobody tuned on shows how much of a tuned figure carries over.

Each variant is data: ranges from which a value is drawn per patient or per episode, and
multipliers of the configured fault rates. Its draws come from a random stream of its own,
keyed by (seed, variant, patient), so ``default`` draws nothing more than the simulator always
did and stays byte-for-byte what it was. Every variant is deterministic: same config, same
bytes. Which variants tune and which are held out is declared in ``evaluation.sets``.

>>> sorted(VARIANTS)
['abrupt', 'default', 'devices-and-habits', 'other-physiology', 'slow-burn', 'varied']
>>> VARIANTS["default"].neutral
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from homecare.devices.sim.programs import Session

__all__ = ["VARIANTS", "Course", "Range", "Variant"]

Range = tuple[float, float]  # a value drawn uniformly in [low, high]
_ONE: Range = (1.0, 1.0)
_ZERO: Range = (0.0, 0.0)


def _ranges(**items: Range) -> Mapping[str, Range]:
    return MappingProxyType(dict(items))


@dataclass(frozen=True)
class Course:
    """Course: how one episode kind unfolds in a variant, where it departs from the default.

    ``days_to_er`` replaces the kind's onset-to-ER range; ``shape`` is drawn per episode
    (``severity = progress ** shape``: below 1 an abrupt start, above 1 a late acceleration);
    ``early`` replaces the vitals that move first (``progress ** 0.5``), an empty set meaning
    none does; ``rate_scale`` multiplies the kind's rate.
    """

    days_to_er: Range | None = None
    shape: Range | None = None
    early: frozenset[str] | None = None
    rate_scale: float = 1.0


@dataclass(frozen=True)
class Variant:
    """Variant: one family of simulated cohorts; every field neutral is today's simulator.

    Physiology, drawn per patient: ``variability`` multiplies the day-to-day drift's SD,
    ``noise`` the measurement noise, ``circadian`` the 24-hour amplitudes, ``circadian_shift_h``
    moves every peak; ``baseline_shift`` adds to the drawn baselines (canonical units).
    Episodes: ``courses`` per kind, ``delta_scale`` per episode (how far vitals move),
    ``more_episodes`` adds kinds a program can have (when its devices can show them).
    Schedules and adherence: ``session_shift_h`` (per patient) and ``session_sd`` move and
    spread the planned times, ``drop_slots`` removes planned sessions (``evening``: once a day),
    ``more_sessions`` adds sessions for every patient (a device mix), ``adherence_shift`` moves
    the initial share of readings taken, ``adherence_half_life`` replaces its fading.
    Devices: ``fault_scale`` multiplies the configured ``FaultRates`` by name (capped at 1), so
    a fault-free config stays fault-free.
    """

    name: str
    summary: str
    variability: Range = _ONE
    noise: Range = _ONE
    circadian: Range = _ONE
    circadian_shift_h: Range = _ZERO
    baseline_shift: Mapping[str, Range] = field(default_factory=dict)
    courses: Mapping[str, Course] = field(default_factory=dict)
    delta_scale: Range = _ONE
    more_episodes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    session_shift_h: Range = _ZERO
    session_sd: float = 1.0
    drop_slots: frozenset[str] = frozenset()
    more_sessions: tuple[Session, ...] = ()
    adherence_shift: float = 0.0
    adherence_half_life: Range | None = None
    fault_scale: Mapping[str, float] = field(default_factory=dict)

    @property
    def neutral(self) -> bool:
        """Variant.neutral: true when it changes nothing (the default simulator)."""
        return self == Variant(self.name, self.summary)


_THERMOMETER = (
    Session("thermo", "morning", 8.0, 40),
    Session("thermo", "evening", 20.0, 45),
)
# Programs that cannot have a sepsis in the default simulator (they have no thermometer there).
_INFECTION_FOR_ALL = MappingProxyType(
    {p: ("infection",) for p in ("heart_failure", "hypertension", "diabetes")}
)

VARIANTS: Mapping[str, Variant] = MappingProxyType(
    {
        variant.name: variant
        for variant in (
            Variant("default", "the simulator as MODEL.md describes it"),
            Variant(
                "varied",
                "the default world with each patient's and each episode's parameters drawn"
                " around the defaults: variability, noise, circadian rhythm, baselines, episode"
                " shapes and sizes, schedule spread",
                variability=(0.75, 1.35),
                noise=(0.85, 1.25),
                circadian=(0.6, 1.5),
                circadian_shift_h=(-1.5, 1.5),
                baseline_shift=_ranges(
                    heart_rate=(-4.0, 4.0), systolic_bp=(-6.0, 6.0), spo2=(-0.7, 0.7)
                ),
                courses=MappingProxyType(
                    {
                        kind: Course(shape=(0.8, 1.7))
                        for kind in (
                            "hf_decompensation",
                            "copd_exacerbation",
                            "infection",
                            "hypertensive_crisis",
                            "hypoglycaemia",
                        )
                    }
                ),
                delta_scale=(0.85, 1.15),
                session_shift_h=(-0.5, 0.5),
                session_sd=1.3,
                adherence_shift=-0.03,
            ),
            Variant(
                "slow-burn",
                "long courses that accelerate late, with smaller moves: heart-failure"
                " decompensation over 7-12 days, COPD exacerbations over 4-8, sepsis over 36-60 h"
                " in every program (each patient also takes a temperature twice a day)",
                courses=MappingProxyType(
                    {
                        "hf_decompensation": Course(days_to_er=(7.0, 12.0), shape=(2.0, 3.0)),
                        "copd_exacerbation": Course(days_to_er=(4.0, 8.0), shape=(1.8, 2.8)),
                        "infection": Course(
                            days_to_er=(1.5, 2.5), shape=(1.8, 2.6), early=frozenset()
                        ),
                        "hypertensive_crisis": Course(days_to_er=(2.0, 4.0), shape=(2.0, 3.0)),
                        "hypoglycaemia": Course(days_to_er=(2.0, 4.0), shape=(1.5, 2.5)),
                    }
                ),
                delta_scale=(0.7, 0.95),
                more_episodes=_INFECTION_FOR_ALL,
                more_sessions=_THERMOMETER,
            ),
            Variant(
                "abrupt",
                "episodes that arrive as a step and reach the ER sooner: most of the change in"
                " the first hours, COPD exacerbations over 1-2.5 days, hypertensive urgency over"
                " 12-36 h, sepsis over 36-60 h in every program (with a thermometer each)",
                courses=MappingProxyType(
                    {
                        "hf_decompensation": Course(days_to_er=(3.0, 6.0), shape=(0.25, 0.5)),
                        "copd_exacerbation": Course(days_to_er=(1.0, 2.5), shape=(0.25, 0.5)),
                        "infection": Course(days_to_er=(1.5, 2.5), shape=(0.25, 0.5)),
                        "hypertensive_crisis": Course(days_to_er=(0.5, 1.5), shape=(0.2, 0.4)),
                        "hypoglycaemia": Course(days_to_er=(0.5, 1.5), shape=(0.2, 0.4)),
                    }
                ),
                more_episodes=_INFECTION_FOR_ALL,
                more_sessions=_THERMOMETER,
            ),
            Variant(
                "other-physiology",
                "other patients: twice the day-to-day wandering, noisier readings, a stronger"
                " 24-hour rhythm peaking 4-8 h later (evening and night workers), baselines"
                " moved (faster heart, lower SpO2, higher pressure), four times the artefacts",
                variability=(1.6, 2.4),
                noise=(1.3, 1.8),
                circadian=(1.6, 2.6),
                circadian_shift_h=(4.0, 8.0),
                baseline_shift=_ranges(
                    heart_rate=(3.0, 10.0),
                    spo2=(-2.0, -0.5),
                    systolic_bp=(4.0, 14.0),
                    respiratory_rate=(0.0, 2.0),
                    body_temperature=(-0.3, 0.1),
                ),
                fault_scale=MappingProxyType({"glitch": 4.0}),
            ),
            Variant(
                "devices-and-habits",
                "other devices and habits: most scales, thermometers and glucometers in lb, °F"
                " and mg/dL, five times the resends, three times the offline backlogs, no"
                " evening, midday or bedtime sessions, the rest 1-3 h later and more spread,"
                " adherence 15 points lower and fading within weeks",
                session_shift_h=(1.0, 3.0),
                session_sd=2.0,
                drop_slots=frozenset({"evening", "midday", "after_dinner", "bedtime"}),
                adherence_shift=-0.15,
                adherence_half_life=(20.0, 60.0),
                fault_scale=MappingProxyType(
                    {"wrong_unit": 8.0, "resend": 5.0, "offline_per_day": 3.0}
                ),
            ),
        )
    }
)

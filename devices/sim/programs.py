"""Programs: each care program's population, baseline vitals, measurement plan and risks.

Why data, not code: the numbers are the model's claims about real patients, so they sit in one
table a clinician can read and challenge (MODEL.md names the source of each, or says it is
judgement). ``population`` draws a patient from these distributions; ``schedule`` turns the
sessions into measurement times; ``episodes`` uses ``episodes`` to know what can go wrong.

Baselines are drawn *before* medication and age effects (a beta-blocker lowers the drawn heart
rate, see ``population``), so ``heart_rate`` here is the untreated value for the program.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["PROGRAM_PROFILES", "Normal", "ProgramProfile", "Session"]


@dataclass(frozen=True)
class Normal:
    """Normal: a normal distribution clipped to ``[lo, hi]`` (clipping, not truncation)."""

    mean: float
    sd: float
    lo: float
    hi: float

    def draw(self, rng: random.Random) -> float:
        return min(self.hi, max(self.lo, rng.gauss(self.mean, self.sd)))


@dataclass(frozen=True)
class Session:
    """Session: one planned measurement: device kind, slot name and local time of day.

    ``weekly`` sessions happen on one weekday the patient keeps; ``probability`` below 1 makes
    a session optional (the third SpO2 of the day); ``insulin_only`` sessions are the extra
    glucose checks of insulin-treated patients.
    """

    kind: str
    slot: str
    hour: float
    sd_minutes: float = 30.0
    probability: float = 1.0
    weekly: bool = False
    insulin_only: bool = False


@dataclass(frozen=True)
class ProgramProfile:
    """ProgramProfile: the population, baselines, plan and risks of one care program."""

    name: str
    age: Normal
    female: float
    adherence: float  # mean share of planned readings taken in the first weeks
    beta_blocker: float  # share of patients on a beta-blocker
    baseline: Mapping[str, Normal]
    sessions: tuple[Session, ...]
    episodes: tuple[str, ...]
    comorbid: tuple[tuple[str, float], ...]  # (other program, probability)


def _baseline(**items: Normal) -> Mapping[str, Normal]:
    return MappingProxyType(dict(items))


# Shared adult vital-sign distributions (home readings of older adults; judgement anchored on
# the NEWS2 "normal" bands and published home-monitoring cohorts, see MODEL.md).
_TEMP = Normal(36.7, 0.2, 36.2, 37.2)
_RR = Normal(17.0, 2.0, 12.0, 22.0)
_SPO2 = Normal(96.0, 1.3, 93.0, 99.0)

PROGRAM_PROFILES: Mapping[str, ProgramProfile] = MappingProxyType(
    {
        profile.name: profile
        for profile in (
            ProgramProfile(
                name="heart_failure",
                age=Normal(75, 10, 45, 95),
                female=0.40,
                adherence=0.88,
                beta_blocker=0.85,
                baseline=_baseline(
                    heart_rate=Normal(80, 10, 58, 105),
                    systolic_bp=Normal(122, 16, 90, 165),
                    diastolic_bp=Normal(72, 9, 50, 95),
                    spo2=Normal(95.0, 1.5, 91.0, 98.0),
                    respiratory_rate=Normal(18.0, 2.0, 14.0, 23.0),
                    body_temperature=_TEMP,
                    body_weight=Normal(84, 17, 50, 150),
                ),
                sessions=(
                    Session("scale", "morning", 7.0, 25),
                    Session("cuff", "morning", 7.3, 35),
                    Session("cuff", "evening", 20.0, 45),
                    Session("oxi", "morning", 7.4, 35),
                    Session("oxi", "midday", 13.0, 60, probability=0.3),
                    Session("oxi", "evening", 20.1, 45),
                ),
                episodes=("hf_decompensation",),
                comorbid=(("hypertension", 0.25), ("diabetes", 0.25), ("copd", 0.10)),
            ),
            ProgramProfile(
                name="copd",
                age=Normal(70, 9, 45, 92),
                female=0.45,
                adherence=0.82,
                beta_blocker=0.10,
                baseline=_baseline(
                    heart_rate=Normal(84, 10, 62, 110),
                    systolic_bp=Normal(132, 15, 100, 170),
                    diastolic_bp=Normal(78, 9, 55, 100),
                    spo2=Normal(93.5, 1.5, 90.0, 97.0),  # hypercapnic patients: 88-92
                    respiratory_rate=Normal(20.0, 2.5, 15.0, 26.0),
                    body_temperature=_TEMP,
                    body_weight=Normal(74, 17, 40, 140),
                ),
                sessions=(
                    Session("oxi", "morning", 8.0, 40),
                    Session("oxi", "midday", 13.0, 60, probability=0.6),
                    Session("oxi", "evening", 19.5, 45),
                    Session("thermo", "morning", 8.1, 40),
                    Session("cuff", "morning", 8.2, 40),
                ),
                episodes=("copd_exacerbation", "infection"),
                comorbid=(("heart_failure", 0.10), ("hypertension", 0.25)),
            ),
            ProgramProfile(
                name="hypertension",
                age=Normal(62, 12, 30, 90),
                female=0.50,
                adherence=0.78,
                beta_blocker=0.25,
                baseline=_baseline(
                    heart_rate=Normal(74, 10, 52, 100),
                    systolic_bp=Normal(142, 12, 118, 175),
                    diastolic_bp=Normal(86, 9, 65, 108),
                    spo2=_SPO2,
                    respiratory_rate=_RR,
                    body_temperature=_TEMP,
                    body_weight=Normal(86, 18, 48, 160),
                ),
                sessions=(
                    Session("cuff", "morning", 7.5, 40),
                    Session("cuff", "evening", 21.0, 45),
                    Session("scale", "morning", 7.2, 30, weekly=True),
                ),
                episodes=("hypertensive_crisis",),
                comorbid=(("diabetes", 0.25),),
            ),
            ProgramProfile(
                name="diabetes",
                age=Normal(62, 12, 25, 90),
                female=0.45,
                adherence=0.80,
                beta_blocker=0.15,
                baseline=_baseline(
                    heart_rate=Normal(76, 10, 55, 100),
                    systolic_bp=Normal(134, 14, 105, 170),
                    diastolic_bp=Normal(80, 9, 60, 100),
                    spo2=_SPO2,
                    respiratory_rate=_RR,
                    body_temperature=_TEMP,
                    body_weight=Normal(90, 19, 50, 170),
                    blood_glucose=Normal(7.4, 1.4, 5.0, 12.0),  # fasting, mmol/L
                ),
                sessions=(
                    Session("gluco", "fasting", 7.0, 30),
                    Session("gluco", "before_lunch", 11.8, 30, insulin_only=True),
                    Session("gluco", "before_dinner", 17.5, 40),
                    Session("gluco", "after_dinner", 19.8, 30, probability=0.2),
                    Session("gluco", "bedtime", 22.0, 40, insulin_only=True),
                    Session("cuff", "morning", 8.0, 40),
                    Session("scale", "morning", 7.2, 30, weekly=True),
                ),
                episodes=("hypoglycaemia",),
                comorbid=(("hypertension", 0.40), ("wound_care", 0.05)),
            ),
            ProgramProfile(
                name="post_surgical_rehab",
                age=Normal(50, 15, 20, 85),
                female=0.35,
                adherence=0.86,
                beta_blocker=0.10,
                baseline=_baseline(
                    heart_rate=Normal(74, 10, 52, 100),
                    systolic_bp=Normal(126, 13, 100, 160),
                    diastolic_bp=Normal(78, 8, 58, 98),
                    spo2=_SPO2,
                    respiratory_rate=_RR,
                    body_temperature=_TEMP,
                    body_weight=Normal(80, 16, 48, 140),
                    pain_score=Normal(5.0, 1.3, 2.0, 8.0),  # at discharge from surgery
                    range_of_motion=Normal(25, 8, 5, 45),  # degrees, at discharge
                ),
                sessions=(
                    Session("app", "pain_rom", 9.5, 60),
                    Session("thermo", "morning", 9.0, 50),
                    Session("cuff", "morning", 9.1, 50),
                ),
                episodes=("postop_complication", "infection"),
                comorbid=(("hypertension", 0.15), ("diabetes", 0.10)),
            ),
            ProgramProfile(
                name="wound_care",
                age=Normal(68, 13, 30, 95),
                female=0.50,
                adherence=0.85,
                beta_blocker=0.20,
                baseline=_baseline(
                    heart_rate=Normal(76, 10, 55, 100),
                    systolic_bp=Normal(132, 15, 100, 170),
                    diastolic_bp=Normal(78, 9, 55, 100),
                    spo2=_SPO2,
                    respiratory_rate=_RR,
                    body_temperature=_TEMP,
                    body_weight=Normal(82, 19, 45, 160),
                    pain_score=Normal(3.0, 1.5, 0.0, 7.0),
                    wound_area=Normal(10.0, 7.0, 1.5, 60.0),  # cm2 at enrolment
                ),
                sessions=(
                    Session("app", "pain", 19.0, 60),
                    Session("app", "wound", 10.0, 90, weekly=True),
                    Session("thermo", "morning", 8.5, 45),
                    Session("cuff", "morning", 8.6, 45),
                ),
                episodes=("wound_infection", "infection"),
                comorbid=(("diabetes", 0.35),),
            ),
            ProgramProfile(
                name="oncology",
                age=Normal(63, 12, 25, 90),
                female=0.55,
                adherence=0.82,
                beta_blocker=0.10,
                baseline=_baseline(
                    heart_rate=Normal(80, 11, 56, 108),
                    systolic_bp=Normal(125, 15, 95, 165),
                    diastolic_bp=Normal(75, 9, 55, 98),
                    spo2=_SPO2,
                    respiratory_rate=_RR,
                    body_temperature=_TEMP,
                    body_weight=Normal(72, 16, 40, 130),
                    # ESAS-r item baselines (0 = none, 10 = worst), outpatient cohorts.
                    esas_pain=Normal(2.5, 1.8, 0, 7),
                    esas_tiredness=Normal(3.8, 1.8, 0, 8),
                    esas_drowsiness=Normal(2.4, 1.6, 0, 7),
                    esas_nausea=Normal(1.0, 1.1, 0, 5),
                    esas_appetite=Normal(2.8, 1.8, 0, 8),
                    esas_shortness_of_breath=Normal(1.8, 1.5, 0, 6),
                    esas_depression=Normal(1.8, 1.5, 0, 6),
                    esas_anxiety=Normal(2.4, 1.7, 0, 7),
                    esas_wellbeing=Normal(3.6, 1.7, 0, 8),
                ),
                sessions=(
                    Session("app", "esas", 18.5, 60),
                    Session("thermo", "morning", 8.0, 40),
                    Session("thermo", "evening", 20.0, 45),
                    Session("cuff", "morning", 8.1, 40),
                    Session("oxi", "morning", 8.2, 40),
                ),
                episodes=("symptom_flare", "infection"),
                comorbid=(("diabetes", 0.10),),
            ),
        )
    }
)

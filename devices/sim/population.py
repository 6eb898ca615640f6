"""Population: draw one simulated patient — programs, demographics, medication, baselines.

Why per-patient seeding: each patient is drawn from a random stream keyed by (seed, index)
only, so patient 7 is the same person in a 10-patient run and in a 1,000-patient run, and
adding a feature that draws more numbers for one patient cannot reshuffle everybody else.

Medication and age act on the drawn baseline where the literature says they matter: a
beta-blocker lowers resting heart rate and blunts both its circadian swing and its rise with
fever; systolic pressure climbs with age; COPD patients at risk of hypercapnia live at an SpO2
of 88-92 % (their target range), some on long-term oxygen.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from types import MappingProxyType

from homecare.devices.sim.config import SimConfig
from homecare.devices.sim.programs import PROGRAM_PROFILES, Normal, ProgramProfile, Session

__all__ = ["PatientProfile", "PlannedSession", "draw_patient", "patient_key", "stream"]


def stream(seed: int, purpose: str, index: int) -> random.Random:
    """stream: the random stream of one purpose for one patient (or pair), independent of others.

    String seeds are hashed with SHA-512 by ``random.Random``, stable across Python versions.
    """
    return random.Random(f"homecare-sim/{seed}/{purpose}/{index}")


def patient_key(config: SimConfig, index: int) -> str:
    """patient_key: the simulated patient's id (also its display name in the store)."""
    return f"{config.id_prefix}{index:05d}"


@dataclass(frozen=True)
class PlannedSession:
    """PlannedSession: a program session as this patient keeps it (``weekday`` if weekly)."""

    session: Session
    weekday: int | None


@dataclass(frozen=True)
class PatientProfile:
    """PatientProfile: who the patient is and their usual (baseline) physiology.

    ``baseline`` is in canonical units (fasting glucose for ``blood_glucose``; at enrolment for
    ``pain_score``, ``range_of_motion`` and ``wound_area``, which follow ``trajectory``).
    """

    index: int
    key: str
    programs: tuple[str, ...]
    age: int
    sex: str
    birth_date: date
    medications: tuple[str, ...]
    hypercapnic: bool
    on_oxygen: bool
    esas_daily: bool
    baseline: Mapping[str, float]
    trajectory: Mapping[str, float]
    adherence_initial: float
    adherence_floor: float
    adherence_half_life_days: float
    hr_circadian_amplitude: float
    fever_hr_gain: float
    sessions: tuple[PlannedSession, ...]
    # Multipliers and shift a variant draws (``devices.sim.vary``); neutral in the default.
    variability: float = 1.0  # day-to-day drift SD
    noise: float = 1.0  # measurement noise SD
    circadian: float = 1.0  # 24-hour amplitudes
    circadian_shift_h: float = 0.0  # every circadian peak moved by this many hours

    @property
    def insulin(self) -> bool:
        return "insulin" in self.medications

    @property
    def beta_blocker(self) -> bool:
        return "beta_blocker" in self.medications

    def kinds(self) -> tuple[str, ...]:
        """PatientProfile.kinds: the device kinds this patient uses, in a fixed order."""
        used = {planned.session.kind for planned in self.sessions}
        return tuple(k for k in ("cuff", "oxi", "scale", "thermo", "gluco", "app") if k in used)

    def measures_daily(self, kind: str) -> bool:
        return any(p.session.kind == kind and p.weekday is None for p in self.sessions)


def draw_patient(config: SimConfig, index: int) -> PatientProfile:
    """draw_patient: patient ``index`` of the cohort; primary programs are dealt in turn."""
    rng = stream(config.seed, "patient", index)
    primary = PROGRAM_PROFILES[config.programs[index % len(config.programs)]]
    programs = [primary.name]
    for other, probability in primary.comorbid:
        if rng.random() < probability and config.comorbidity:
            programs.append(other)
    profiles = [PROGRAM_PROFILES[p] for p in programs]

    age = round(primary.age.draw(rng))
    sex = "female" if rng.random() < primary.female else "male"
    born = config.end.date() - timedelta(days=365.25 * age + rng.uniform(0, 364))

    baseline: dict[str, float] = {}
    for profile in profiles:
        for name, dist in profile.baseline.items():
            if name not in baseline:
                baseline[name] = dist.draw(rng)
    if "copd" in programs and primary.name != "copd":
        for name in ("spo2", "respiratory_rate"):
            baseline[name] = PROGRAM_PROFILES["copd"].baseline[name].draw(rng)

    medications: list[str] = []
    beta_blocked = rng.random() < max(p.beta_blocker for p in profiles)
    hr_amplitude = rng.uniform(4.0, 7.0)
    fever_gain = rng.uniform(8.0, 11.0)
    if beta_blocked:
        medications.append("beta_blocker")
        baseline["heart_rate"] = max(52.0, baseline["heart_rate"] - rng.uniform(6.0, 12.0))
        hr_amplitude *= 0.6
        fever_gain *= 0.6
    baseline["systolic_bp"] = min(185.0, baseline["systolic_bp"] + 0.4 * (age - primary.age.mean))
    if sex == "female":
        baseline["body_weight"] *= 0.85
    baseline["diastolic_bp"] = min(baseline["diastolic_bp"], baseline["systolic_bp"] - 30)

    hypercapnic = on_oxygen = False
    if "copd" in programs:
        hypercapnic = rng.random() < 0.25
        on_oxygen = rng.random() < 0.15
        if hypercapnic:
            baseline["spo2"] = rng.uniform(88.0, 92.0)
        elif on_oxygen:
            baseline["spo2"] = rng.uniform(89.0, 94.0)
        if on_oxygen:
            medications.append("long_term_oxygen")
    if "diabetes" in programs and rng.random() < 0.45:
        medications.append("insulin")
        baseline["blood_glucose"] = Normal(8.0, 1.8, 5.0, 13.0).draw(rng)
    esas_daily = rng.random() < 0.4

    trajectory = {
        "rom_target": rng.uniform(60.0, 100.0),
        "rom_tau_days": rng.uniform(15.0, 35.0),
        "pain_end": rng.uniform(0.5, 2.0),
        "pain_tau_days": rng.uniform(10.0, 25.0),
        "wound_weekly_reduction": rng.uniform(0.0, 0.10),
    }
    initial = min(0.99, max(0.35, rng.gauss(primary.adherence, 0.08)))
    floor = initial * rng.uniform(0.45, 0.85)
    half_life = rng.uniform(45.0, 200.0)

    sessions = _sessions(rng, profiles, insulin="insulin" in medications, esas_daily=esas_daily)
    return PatientProfile(
        index=index,
        key=patient_key(config, index),
        programs=tuple(programs),
        age=age,
        sex=sex,
        birth_date=born,
        medications=tuple(medications),
        hypercapnic=hypercapnic,
        on_oxygen=on_oxygen,
        esas_daily=esas_daily,
        baseline=MappingProxyType(baseline),
        trajectory=MappingProxyType(trajectory),
        adherence_initial=initial,
        adherence_floor=floor,
        adherence_half_life_days=half_life,
        hr_circadian_amplitude=hr_amplitude,
        fever_hr_gain=fever_gain,
        sessions=sessions,
    )


def _sessions(
    rng: random.Random, profiles: list[ProgramProfile], *, insulin: bool, esas_daily: bool
) -> tuple[PlannedSession, ...]:
    """_sessions merges the programs' plans: one session per (device kind, slot).

    The primary program's session wins, except that a daily plan beats a weekly one from
    another program (a heart-failure patient with hypertension weighs every morning).
    """
    chosen: dict[tuple[str, str], PlannedSession] = {}
    for profile in profiles:
        for session in profile.sessions:
            if session.insulin_only and not insulin:
                continue
            key = (session.kind, session.slot)
            weekly = session.weekly or (session.slot == "esas" and not esas_daily)
            weekday = rng.randrange(7) if weekly else None
            existing = chosen.get(key)
            if existing is not None and (existing.weekday is None or weekly):
                continue
            chosen[key] = PlannedSession(session, weekday)
    return tuple(chosen.values())

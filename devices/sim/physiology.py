"""Physiology: a patient's true vital signs at any instant, and what a device reads of them.

Why this decomposition: each term is a separately published phenomenon, so each can be
checked and tuned on its own (MODEL.md gives the sources):

    true(t) = baseline (+ recovery trajectory)      who the patient is
            + circadian(local hour)                 the 24-hour rhythm
            + drift(day)                            slow day-to-day wandering (Ornstein-Uhlenbeck)
            + Σ effect.deltas × effect.scale(t)     episodes and look-alikes
            + fever coupling                        heart and breathing rate follow temperature
    reading = device(true + noise), rounded in the device's unit

Drift starts in its stationary distribution, so day 1 looks like any other day.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Protocol

from homecare import catalogue
from homecare.devices.sim.clock import DAY_MS
from homecare.devices.sim.episodes import RELATIVE_TYPES, RR_FEVER_GAIN
from homecare.devices.sim.equipment import NOISE_SD
from homecare.devices.sim.population import PatientProfile

__all__ = ["CIRCADIAN", "DRIFT", "GLUCOSE_SLOTS", "Effect", "Physiology", "to_wire"]


class Effect(Protocol):
    """Effect: anything that moves vitals for a while (an episode, a salty meal)."""

    @property
    def deltas(self) -> Mapping[str, float]: ...

    def scale(self, type_name: str, ms: int) -> float: ...


# type -> (amplitude, local hour of the peak) of a cosine; heart rate's amplitude is per patient.
CIRCADIAN: Mapping[str, tuple[float, float]] = MappingProxyType(
    {
        "heart_rate": (0.0, 15.0),
        "systolic_bp": (7.0, 13.0),
        "diastolic_bp": (5.0, 13.0),
        "spo2": (0.5, 14.0),
        "respiratory_rate": (0.7, 14.0),
        "body_temperature": (0.3, 17.0),
        "body_weight": (0.4, 19.0),
    }
)

# type -> (stationary SD, time constant in days) of the day-to-day drift. Wound area drifts as
# a fraction of itself.
DRIFT: Mapping[str, tuple[float, float]] = MappingProxyType(
    {
        "heart_rate": (3.0, 4.0),
        "systolic_bp": (5.0, 7.0),
        "diastolic_bp": (3.0, 7.0),
        "spo2": (0.6, 3.0),
        "respiratory_rate": (0.8, 4.0),
        "body_temperature": (0.08, 2.0),
        "body_weight": (0.4, 5.0),
        "blood_glucose": (0.6, 3.0),
        "pain_score": (0.5, 4.0),
        "range_of_motion": (2.0, 5.0),
        "wound_area": (0.04, 7.0),
        **{item: (0.6, 5.0) for item in catalogue.ESAS_ITEMS},
    }
)

# Glucose above the fasting value at each measurement slot (mmol/L), diabetic patients.
GLUCOSE_SLOTS: Mapping[str, float] = MappingProxyType(
    {
        "fasting": 0.0,
        "before_lunch": 0.6,
        "before_dinner": 0.9,
        "after_dinner": 2.8,
        "bedtime": 1.6,
        "symptomatic": 0.0,
    }
)

# Physiological limits of a true value (a reading may still be a glitch outside them).
_CLAMP: Mapping[str, tuple[float, float]] = MappingProxyType(
    {
        "heart_rate": (30.0, 220.0),
        "systolic_bp": (60.0, 260.0),
        "diastolic_bp": (30.0, 150.0),
        "spo2": (60.0, 100.0),
        "respiratory_rate": (6.0, 50.0),
        "body_temperature": (34.5, 42.0),
        "body_weight": (30.0, 300.0),
        "blood_glucose": (1.5, 33.0),
        "range_of_motion": (-10.0, 180.0),
        "wound_area": (0.1, 1000.0),
    }
)
_SCORE_CLAMP = (0.0, 10.0)
_INTEGER_TYPES = frozenset(
    {"heart_rate", "systolic_bp", "diastolic_bp", "spo2", "respiratory_rate", "range_of_motion"}
)
_KG_PER_LB = 0.45359237
_MG_DL_PER_MMOL_L = 18.0156
_TWO_PI = 2.0 * math.pi


def _clamp(type_name: str, value: float) -> float:
    low, high = _CLAMP.get(type_name, _SCORE_CLAMP)
    return low if value < low else high if value > high else value


def to_wire(type_name: str, value: float, unit: str) -> int | float:
    """to_wire: a canonical value as the device shows it: converted, rounded like its display.

    >>> to_wire("body_weight", 80.0, "[lb_av]"), to_wire("blood_glucose", 5.5, "mg/dL")
    (176.4, 99)
    """
    if unit == "[lb_av]":
        return round(round(value / _KG_PER_LB / 0.2) * 0.2, 1)
    if unit == "[degF]":
        return round(value * 9.0 / 5.0 + 32.0, 1)
    if unit == "mg/dL":
        return round(value * _MG_DL_PER_MMOL_L)
    if type_name in _INTEGER_TYPES or type_name not in _CLAMP:  # scores are whole numbers
        return round(value)
    return round(value, 1)


class Physiology:
    """Physiology: one patient's changing state (the drift) and their true values."""

    def __init__(self, profile: PatientProfile, rng: random.Random, start_ms: int) -> None:
        self._profile = profile
        self._rng = rng
        self._start_ms = start_ms
        self._baseline = dict(profile.baseline)
        self._drift: dict[str, float] = {}
        self._phi: dict[str, float] = {}
        self._step: dict[str, float] = {}
        for name, (usual_sd, tau) in DRIFT.items():
            if name in self._baseline:
                sd = usual_sd * profile.variability
                phi = math.exp(-1.0 / tau)
                self._phi[name] = phi
                self._step[name] = sd * math.sqrt(1.0 - phi * phi)
                self._drift[name] = rng.gauss(0.0, sd)
        self._circadian = {
            name: (
                (profile.hr_circadian_amplitude if name == "heart_rate" else amp)
                * profile.circadian,
                peak + profile.circadian_shift_h,
            )
            for name, (amp, peak) in CIRCADIAN.items()
        }
        self._noise = profile.noise
        self._fever_gain = profile.fever_hr_gain
        t = profile.trajectory
        self._rehab = "post_surgical_rehab" in profile.programs
        self._pain_end, self._pain_tau = t["pain_end"], t["pain_tau_days"]
        self._rom_target, self._rom_tau = t["rom_target"], t["rom_tau_days"]
        self._wound_rate = math.log(1.0 - t["wound_weekly_reduction"]) / 7.0

    def new_day(self) -> None:
        """Physiology.new_day: one day of drift (called once per simulated day, in order)."""
        gauss = self._rng.gauss
        for name, value in self._drift.items():
            self._drift[name] = value * self._phi[name] + gauss(0.0, self._step[name])

    def base(self, type_name: str, ms: int) -> float:
        """Physiology.base: the baseline, following recovery for rehab and wound patients."""
        value = self._baseline[type_name]
        if type_name == "wound_area":
            return value * math.exp(self._wound_rate * (ms - self._start_ms) / DAY_MS)
        if self._rehab and type_name in ("pain_score", "range_of_motion"):
            days = (ms - self._start_ms) / DAY_MS
            if type_name == "pain_score":
                end, tau = self._pain_end, self._pain_tau
            else:
                end, tau = self._rom_target, self._rom_tau
            return end + (value - end) * math.exp(-days / tau)
        return value

    def true_value(
        self,
        type_name: str,
        ms: int,
        hour: float,
        effects: Iterable[Effect],
        slot: str = "",
        session_deltas: Mapping[str, float] | None = None,
    ) -> float:
        """Physiology.true_value: the patient's real value of ``type_name`` at ``ms``."""
        value = self.base(type_name, ms)
        circadian = self._circadian.get(type_name)
        if circadian is not None:
            value += circadian[0] * math.cos(_TWO_PI * (hour - circadian[1]) / 24.0)
        if type_name == "blood_glucose":
            value += GLUCOSE_SLOTS.get(slot, 0.0)
        drift = self._drift.get(type_name, 0.0)
        relative = type_name in RELATIVE_TYPES and type_name != "blood_glucose"
        value = value * (1.0 + drift) if relative else value + drift
        change = 0.0
        fever = self._drift.get("body_temperature", 0.0)
        for effect in effects:
            deltas = effect.deltas
            if type_name in deltas:
                change += deltas[type_name] * effect.scale(type_name, ms)
            if "body_temperature" in deltas:
                fever += deltas["body_temperature"] * effect.scale("body_temperature", ms)
        if session_deltas:
            change += session_deltas.get(type_name, 0.0)
        if type_name in RELATIVE_TYPES:
            value *= 1.0 + change
        else:
            value += change
        if fever > 0.0:
            if type_name == "heart_rate":
                value += self._fever_gain * fever
            elif type_name == "respiratory_rate":
                value += RR_FEVER_GAIN * fever
        return _clamp(type_name, value)

    def read(self, type_name: str, true: float, unit: str, noisy: bool = False) -> int | float:
        """Physiology.read: what a device shows for a true value (noise, limits, rounding).

        ``noisy`` is a poor-perfusion or moving finger on an oximeter: more scatter, and now
        and then a falsely low saturation.
        """
        gauss = self._rng.gauss
        sd = NOISE_SD.get(type_name, 0.0) * self._noise
        if type_name == "blood_glucose":
            value = true * (1.0 + gauss(0.0, sd))
        else:
            value = true + gauss(0.0, sd)
        if noisy:
            if type_name == "spo2":
                value += gauss(0.0, 1.5) - (
                    self._rng.uniform(2.0, 8.0) if self._rng.random() < 0.5 else 0.0
                )
            elif type_name == "heart_rate":
                value += gauss(0.0, 8.0)
        return to_wire(type_name, _clamp(type_name, value), unit)

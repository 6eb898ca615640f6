"""Config: what a simulation run is asked to produce — cohort, window, rates — checked once.

Why a frozen value validated at construction: every module of the simulator reads the same
config, the labels file records it, and a determinism guarantee ("same config, same bytes") is
only meaningful if the config itself cannot change under the run. The fault rates are the
*configured* ones the tests compare the generated data against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from homecare import catalogue
from homecare.devices.sim.variants import VARIANTS

__all__ = ["FaultRates", "SimConfig"]


def _check_rate(name: str, value: float, upper: float = 1.0) -> None:
    if not (math.isfinite(value) and 0.0 <= value <= upper):
        raise ValueError(f"{name} must be between 0 and {upper:g}, not {value!r}")


@dataclass(frozen=True)
class FaultRates:
    """FaultRates: how often each device fault happens (defaults are judgement, see MODEL.md).

    - ``resend``: share of messages published a second time with the same msg_id;
    - ``offline_per_day``: chance per device-day that the device loses its connection (its
      readings are kept and uploaded as a backlog when it reconnects);
    - ``clock_skew``: share of devices whose clock is off by 10 min to 3 h for a while;
    - ``clock_reset``: share of devices whose clock falls back to 2000-01-01 for a while;
    - ``glitch``: share of eligible readings (pulse, SpO2, temperature) replaced by an
      artefact (300 bpm, SpO2 70 from cold fingers, a reading of 0, an ambient thermometer);
    - ``wrong_unit``: share of scales, thermometers and glucometers set to lb, °F or mg/dL;
    - ``reassign``: share of patient pairs in which the first patient's device is handed on
      to the second after the first leaves the program.
    """

    resend: float = 0.01
    offline_per_day: float = 0.02
    clock_skew: float = 0.05
    clock_reset: float = 0.01
    glitch: float = 0.005
    wrong_unit: float = 0.10
    reassign: float = 0.05

    def __post_init__(self) -> None:
        for name in (
            "resend",
            "offline_per_day",
            "clock_skew",
            "clock_reset",
            "glitch",
            "wrong_unit",
            "reassign",
        ):
            _check_rate(f"FaultRates.{name}", getattr(self, name))

    @classmethod
    def none(cls) -> FaultRates:
        """FaultRates.none: a fault-free run (clean data, e.g. to study physiology alone)."""
        return cls(0, 0, 0, 0, 0, 0, 0)

    def as_dict(self) -> dict[str, float]:
        """FaultRates.as_dict: the rates by name, for the labels file."""
        return {
            "resend": self.resend,
            "offline_per_day": self.offline_per_day,
            "clock_skew": self.clock_skew,
            "clock_reset": self.clock_reset,
            "glitch": self.glitch,
            "wrong_unit": self.wrong_unit,
            "reassign": self.reassign,
        }


@dataclass(frozen=True)
class SimConfig:
    """SimConfig: one simulation run.

    The window is ``[end - days, end]``; ``end`` is explicit so that nothing in the generated
    bytes depends on the wall clock (the CLI passes "now", tests pass a fixed time).
    ``programs`` restricts the cohort (default: all seven, in turn); ``episode_rate_scale``
    multiplies every episode and look-alike rate (tests raise it to get many episodes from a
    small cohort). ``wearable`` adds a minute-by-minute heart rate from a watch.
    ``id_prefix`` starts every patient key and device id, so two runs can share one database.
    ``variant`` names a family of cohorts (``devices.sim.variants``); ``default`` is the
    simulator MODEL.md describes, the others change its physiology, episode courses,
    schedules or devices.
    """

    patients: int
    days: float
    seed: int
    end: datetime
    programs: tuple[str, ...] = catalogue.PROGRAMS
    comorbidity: bool = True
    wearable: bool = False
    episode_rate_scale: float = 1.0
    faults: FaultRates = field(default_factory=FaultRates)
    timezone: str = "America/Toronto"
    id_prefix: str = "sim-"
    variant: str = "default"

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(sorted(VARIANTS))}")
        if self.patients < 0:
            raise ValueError(f"patients must be >= 0, not {self.patients}")
        if not (math.isfinite(self.days) and 0 < self.days <= 3650):
            raise ValueError(f"days must be in (0, 3650], not {self.days!r}")
        if self.end.tzinfo is None:
            raise ValueError("end must be an aware datetime")
        if not self.programs or any(p not in catalogue.PROGRAMS for p in self.programs):
            raise ValueError(f"programs must be among {', '.join(catalogue.PROGRAMS)}")
        _check_rate("episode_rate_scale", self.episode_rate_scale, upper=1000.0)
        if not self.id_prefix or len(self.id_prefix) > 40:
            raise ValueError("id_prefix must be 1-40 characters")
        allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
        if set(self.id_prefix) - allowed:
            raise ValueError("id_prefix may use only A-Z a-z 0-9 . _ - (device id alphabet)")

    @property
    def start(self) -> datetime:
        """SimConfig.start: the first moment of the window."""
        return self.end - timedelta(days=self.days)

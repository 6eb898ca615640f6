"""Plan: everything about the cohort that is decided before a single reading is generated.

Why plan first: provisioning (patients, devices, assignment intervals) must happen before
readings are published, and the labels (episodes, look-alikes, stays, device faults) are the
ground truth the generated data is judged against — so they are fixed up front, and the
message stream (``timeline``) only plays them out. Planning is cheap (no readings), so the
whole cohort's plan is held in memory; the readings never are.

The one decision that ties two patients together is a device handed on: for each pair of
patients (0 and 1, 2 and 3, ...) with probability ``FaultRates.reassign``, the first leaves the
program part-way and, one to three days later, their device of a kind both use goes to the
second, who uses it instead of their own from then on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from homecare.devices.sim.clock import DAY_MS, LocalCalendar, to_ms
from homecare.devices.sim.config import SimConfig
from homecare.devices.sim.episodes import Episode, HospitalStay, LookAlike, plan_events
from homecare.devices.sim.faults import DevicePlan, plan_device
from homecare.devices.sim.population import PatientProfile, draw_patient, stream
from homecare.devices.sim.vary import episode_variation, variant_patient

__all__ = ["ENROLMENT_LEAD_MS", "Handover", "PatientPlan", "plan_cohort"]

# Devices are assigned this long before the window opens, so a device whose clock runs
# behind still stamps readings inside its assignment.
ENROLMENT_LEAD_MS = DAY_MS
_HANDOVER_ORDER = ("cuff", "oxi", "scale", "thermo", "gluco")


@dataclass(frozen=True)
class Handover:
    """Handover: ``device_id`` leaves ``donor`` (who left at ``left_ms``) for ``receiver``."""

    device_id: str
    kind: str
    donor: str
    receiver: str
    left_ms: int
    at_ms: int


@dataclass(frozen=True)
class PatientPlan:
    """PatientPlan: one patient's devices, the device each kind uses over time, and events."""

    profile: PatientProfile
    devices: tuple[DevicePlan, ...]  # every device this patient ever uses
    own_devices: tuple[str, ...]  # the devices issued to this patient at enrolment
    use: Mapping[str, tuple[tuple[int, str], ...]]  # kind -> ((since_ms, device_id), ...)
    monitoring_end_ms: int
    episodes: tuple[Episode, ...]
    stays: tuple[HospitalStay, ...]
    lookalikes: tuple[LookAlike, ...]
    handover_out: Handover | None = None
    handover_in: Handover | None = None

    def device_for(self, kind: str, ms: int) -> str:
        """PatientPlan.device_for: the device of ``kind`` this patient uses at ``ms``."""
        chosen = ""
        for since, device_id in self.use[kind]:
            if ms >= since:
                chosen = device_id
        return chosen


def plan_cohort(config: SimConfig, calendar: LocalCalendar) -> list[PatientPlan]:
    """plan_cohort: every patient's plan, with the cohort's device handovers applied."""
    start_ms, end_ms = to_ms(config.start), to_ms(config.end)
    profiles = [variant_patient(draw_patient(config, i), config) for i in range(config.patients)]
    kinds = [_device_kinds(p, config) for p in profiles]
    handovers: dict[int, Handover] = {}
    for pair in range(config.patients // 2):
        rng = stream(config.seed, "handover", pair)
        donor, receiver = profiles[2 * pair], profiles[2 * pair + 1]
        happens = rng.random() < config.faults.reassign
        leave = start_ms + round(rng.uniform(0.3, 0.6) * (end_ms - start_ms))
        at = leave + round(rng.uniform(1.0, 3.0) * DAY_MS)
        common = [k for k in _HANDOVER_ORDER if k in kinds[2 * pair] and k in kinds[2 * pair + 1]]
        if happens and common and at < end_ms:
            kind = common[0]
            handover = Handover(f"{donor.key}-{kind}", kind, donor.key, receiver.key, leave, at)
            handovers[2 * pair] = handovers[2 * pair + 1] = handover

    plans: list[PatientPlan] = []
    donated: dict[str, DevicePlan] = {}
    for profile, used in zip(profiles, kinds, strict=True):
        mine = handovers.get(profile.index)
        out = mine if mine is not None and mine.donor == profile.key else None
        into = mine if mine is not None and mine.receiver == profile.key else None
        fault_rng = stream(config.seed, "faults", profile.index)
        devices = [
            plan_device(
                f"{profile.key}-{kind}",
                kind,
                fault_rng,
                config.faults,
                start_ms,
                end_ms,
                clock_faults=out is None or out.kind != kind,
            )
            for kind in used
        ]
        use: dict[str, tuple[tuple[int, str], ...]] = {
            d.kind: ((start_ms - ENROLMENT_LEAD_MS, d.device_id),) for d in devices
        }
        if out is not None:
            donated[out.device_id] = next(d for d in devices if d.device_id == out.device_id)
        if into is not None:
            use[into.kind] = (*use[into.kind], (into.at_ms, into.device_id))
            devices.append(donated[into.device_id])
        monitoring_end = out.left_ms if out is not None else end_ms
        episodes, stays, lookalikes = plan_events(
            profile,
            stream(config.seed, "events", profile.index),
            calendar,
            start_ms,
            monitoring_end,
            config.episode_rate_scale,
            episode_variation(config, profile.index),
        )
        plans.append(
            PatientPlan(
                profile=profile,
                devices=tuple(devices),
                own_devices=tuple(f"{profile.key}-{kind}" for kind in used),
                use=MappingProxyType(use),
                monitoring_end_ms=monitoring_end,
                episodes=tuple(episodes),
                stays=tuple(stays),
                lookalikes=tuple(lookalikes),
                handover_out=out,
                handover_in=into,
            )
        )
    return plans


def _device_kinds(profile: PatientProfile, config: SimConfig) -> tuple[str, ...]:
    kinds = profile.kinds()
    return (*kinds, "watch") if config.wearable else kinds

"""Cohort: the simulator's front door — plan a cohort, stream its messages, write its files.

Why one object: the messages and the labels of a run must come from the same plan, the
message-level fault labels (glitches, resends, mis-stamped readings) are only known once the
stream has been generated, and provisioning needs the plan before anything is published.
``Simulation`` holds the plan (small), streams the messages once (never all in memory), and
writes the labels when asked.
"""

from __future__ import annotations

import heapq
import json
import operator
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import IO

from homecare.devices.sim.clock import LocalCalendar, from_ms, stamp, to_ms
from homecare.devices.sim.config import SimConfig
from homecare.devices.sim.labels import build_labels, write_labels
from homecare.devices.sim.plan import ENROLMENT_LEAD_MS, PatientPlan, plan_cohort
from homecare.devices.sim.timeline import SimMessage, patient_messages
from homecare.devices.sim.vary import variant_config

__all__ = [
    "Enrolment",
    "EnrolmentAssignment",
    "EnrolmentPatient",
    "Simulation",
    "SimulationCounts",
    "write_messages",
]


@dataclass(frozen=True)
class EnrolmentPatient:
    """EnrolmentPatient: a patient to create (``key`` is its display name and label id)."""

    key: str
    programs: tuple[str, ...]
    birth_date: date
    hypercapnic: bool


@dataclass(frozen=True)
class EnrolmentAssignment:
    """EnrolmentAssignment: ``device_id`` measures ``patient_key`` from ``since``.

    ``handover`` marks a device handed on from another patient (it closes their interval).
    """

    device_id: str
    patient_key: str
    since: datetime
    handover: bool = False


@dataclass(frozen=True)
class Enrolment:
    """Enrolment: what must exist in the store before the messages are published.

    ``assignments`` are in the order to apply them: every device's first assignment, then the
    handovers (which close the donor's interval).
    """

    patients: tuple[EnrolmentPatient, ...]
    devices: tuple[tuple[str, str], ...]  # (device_id, model)
    assignments: tuple[EnrolmentAssignment, ...]


@dataclass
class SimulationCounts:
    """SimulationCounts: what the stream produced so far."""

    messages: int = 0
    readings: int = 0
    resends: int = 0


class Simulation:
    """Simulation: one planned cohort.

    >>> from datetime import UTC, datetime
    >>> end = datetime(2026, 1, 1, tzinfo=UTC)
    >>> sim = Simulation(SimConfig(patients=2, days=3, seed=1, end=end))
    >>> [p.profile.programs[0] for p in sim.plans]
    ['heart_failure', 'copd']
    >>> first = next(iter(sim.messages()))
    >>> first.topic.startswith("homecare/v1/devices/sim-0000")
    True
    """

    def __init__(self, config: SimConfig) -> None:
        # A variant's fault-rate multipliers are applied here, so the stream and the labels
        # both see the rates in force.
        config = variant_config(config)
        self.config = config
        self.calendar = LocalCalendar(config.timezone)
        self.plans: list[PatientPlan] = plan_cohort(config, self.calendar)
        self.counts = SimulationCounts()
        self._message_faults: list[dict[str, object]] = []
        self._complete = False
        self._streamed = False

    def device_ids(self) -> tuple[str, ...]:
        """Simulation.device_ids: every device of the cohort, once, in patient order."""
        seen: dict[str, None] = {}
        for plan in self.plans:
            for device in plan.devices:
                seen.setdefault(device.device_id, None)
        return tuple(seen)

    def messages(self) -> Iterator[SimMessage]:
        """Simulation.messages: the whole cohort's messages in send order (once per object)."""
        if self._streamed:
            raise RuntimeError("a Simulation streams its messages once; make a new one")
        self._streamed = True
        streams = [patient_messages(plan, self.config, self.calendar) for plan in self.plans]
        counts, faults = self.counts, self._message_faults
        for message in heapq.merge(*streams, key=operator.itemgetter(0)):
            counts.messages += 1
            counts.readings += len(message.expected)
            if message.faults:
                faults.extend(message.faults)
                if message.resend:
                    counts.resends += 1
            yield message
        self._complete = True

    def labels(self) -> dict[str, object]:
        """Simulation.labels: the ground truth; message-level faults as far as streamed."""
        return build_labels(self.config, self.plans, self._message_faults, self._complete)

    def write_labels(self, path: Path | str) -> None:
        """Simulation.write_labels: the labels as a JSON file (schema in MODEL.md)."""
        write_labels(path, self.labels())

    def enrolment(self) -> Enrolment:
        """Simulation.enrolment: patients, devices and assignment intervals to provision."""
        since = from_ms(to_ms(self.config.start) - ENROLMENT_LEAD_MS)
        patients = tuple(
            EnrolmentPatient(
                p.profile.key, p.profile.programs, p.profile.birth_date, p.profile.hypercapnic
            )
            for p in self.plans
        )
        devices: dict[str, str] = {}
        first: list[EnrolmentAssignment] = []
        handovers: list[EnrolmentAssignment] = []
        for plan in self.plans:
            for device in plan.devices:
                devices.setdefault(device.device_id, device.model)
            for device_id in plan.own_devices:
                first.append(EnrolmentAssignment(device_id, plan.profile.key, since))
            if plan.handover_in is not None:
                into = plan.handover_in
                handovers.append(
                    EnrolmentAssignment(
                        into.device_id, plan.profile.key, from_ms(into.at_ms), handover=True
                    )
                )
        return Enrolment(patients, tuple(devices.items()), (*first, *handovers))


def write_messages(messages: Iterable[SimMessage], out: IO[str]) -> int:
    """write_messages: JSON lines ``{"topic", "payload", "sent_at"}``; returns how many.

    ``payload`` is the exact payload text (UTF-8 JSON as published), so a replay publishes the
    same bytes; ``sent_at`` is when the device published it, for replaying at the same pace.
    """
    written = 0
    dumps = json.dumps
    for message in messages:
        out.write(
            dumps(
                {
                    "topic": message.topic,
                    "payload": message.payload.decode(),
                    "sent_at": stamp(message.sent_ms),
                }
            )
        )
        out.write("\n")
        written += 1
    return written

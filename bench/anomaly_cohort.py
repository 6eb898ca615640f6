"""Simulated patients' readings for the anomaly benchmarks, one patient at a time, no database.

Each patient's messages are generated on their own (``devices.sim.timeline``), parsed by the
real ingest parser (canonical units, plausibility checks; resends dropped by message id, as
the store's unique key would) and attributed to the patient who really measured, which is
what the store would hold. One patient at a time, so a 1,000-patient cohort never sits in
memory as readings.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import NamedTuple

from homecare.devices.sim import SimConfig, Simulation
from homecare.devices.sim.timeline import patient_messages
from homecare.ingest import Delivery, ParsedMessage, ParseLimits, Reading, parse_message

__all__ = ["SimulatedPatient", "simulated_patients"]

_LIMITS = ParseLimits()


class SimulatedPatient(NamedTuple):
    """SimulatedPatient: a patient's label id, programs and stored readings."""

    key: str
    programs: tuple[str, ...]
    readings: list[Reading]


def simulated_patients(simulation: Simulation) -> Iterator[SimulatedPatient]:
    """simulated_patients: every patient of ``simulation`` with the readings the store keeps."""
    config: SimConfig = simulation.config
    for plan in simulation.plans:
        key = plan.profile.key
        patient = uuid.uuid5(uuid.NAMESPACE_URL, f"homecare-sim:{key}")
        seen: set[tuple[str, str]] = set()
        readings: list[Reading] = []
        for message in patient_messages(plan, config, simulation.calendar):
            if (message.device_id, message.msg_id) in seen:
                continue
            seen.add((message.device_id, message.msg_id))
            parsed = parse_message(
                Delivery(message.topic, message.payload, message.sent_at), _LIMITS
            )
            if not isinstance(parsed, ParsedMessage):
                continue
            for r in parsed.readings:
                readings.append(
                    Reading(
                        patient, parsed.device_id, parsed.msg_id, r.type, r.time, r.value, r.unit,
                        r.original_value, r.original_unit, message.sent_at, r.on_oxygen,
                        r.consciousness,
                    )
                )  # fmt: skip
        yield SimulatedPatient(key, plan.profile.programs, readings)

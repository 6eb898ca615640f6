"""devices.sim: simulated home-monitoring patients — realistic vitals, faults and ground truth.

We cannot use real patients' data, so this is how the system is shown, tested, tuned and
evaluated. A run is planned from a ``SimConfig`` (cohort, window, seed, rates), then streamed
as the exact MQTT v1 messages the patients' devices would publish, in send order, with a
labels document saying what really happened. The model, each episode kind and the sources of
its numbers are in ``devices/sim/MODEL.md``.

Modules, one job each: ``config`` (what a run is asked for), ``programs`` (per-program
population tables), ``population`` (draw a patient), ``equipment`` (device kinds, units, noise),
``physiology`` (true values and readings), ``episodes`` (deteriorations and look-alikes),
``faults`` (device faults), ``plan`` (the cohort's plan), ``timeline`` (one patient's messages),
``wearable`` (minute heart rate), ``clock`` (integer-millisecond time, local days), ``cohort``
(the front door), ``labels``, ``pacing`` (live publishing), ``cuffs`` (steady BP-cuff load for
benchmarks).

>>> from datetime import UTC, datetime
>>> config = SimConfig(patients=3, days=2, seed=1, end=datetime(2026, 1, 1, tzinfo=UTC))
>>> a = b"".join(m.payload for m in Simulation(config).messages())
>>> b = b"".join(m.payload for m in Simulation(config).messages())
>>> a == b
True
"""

from homecare.devices.sim.cohort import (
    Enrolment,
    EnrolmentAssignment,
    EnrolmentPatient,
    Simulation,
    SimulationCounts,
    write_messages,
)
from homecare.devices.sim.config import FaultRates, SimConfig
from homecare.devices.sim.cuffs import cuff_messages
from homecare.devices.sim.episodes import EPISODE_KINDS, LOOKALIKE_KINDS
from homecare.devices.sim.labels import LABELS_SCHEMA
from homecare.devices.sim.pacing import live_window, paced
from homecare.devices.sim.timeline import SimMessage

__all__ = [
    "EPISODE_KINDS",
    "LABELS_SCHEMA",
    "LOOKALIKE_KINDS",
    "Enrolment",
    "EnrolmentAssignment",
    "EnrolmentPatient",
    "FaultRates",
    "SimConfig",
    "SimMessage",
    "Simulation",
    "SimulationCounts",
    "cuff_messages",
    "live_window",
    "paced",
    "write_messages",
]

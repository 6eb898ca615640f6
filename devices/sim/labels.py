"""Labels: the ground truth of a run as one JSON document (schema in MODEL.md).

Why a file beside the messages: whoever evaluates a rule or a model needs to know, for the
same seed, who the patients were, which device measured whom when, when each deterioration
began and when it would have reached the ER, which changes were harmless look-alikes, and
which readings were device faults and what the ingest should have made of them. Everything is
in canonical units and RFC 3339 UTC times; lists are sorted, keys in a fixed order, so the
same run always writes the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from homecare.devices.sim.clock import stamp, to_ms
from homecare.devices.sim.config import SimConfig
from homecare.devices.sim.episodes import expected_signals
from homecare.devices.sim.equipment import DEVICE_KINDS, session_types
from homecare.devices.sim.faults import DevicePlan
from homecare.devices.sim.plan import ENROLMENT_LEAD_MS, PatientPlan

__all__ = ["LABELS_SCHEMA", "build_labels", "measured_types", "write_labels"]

LABELS_SCHEMA = "homecare-sim-labels/1"

Record = dict[str, object]


def measured_types(plan: PatientPlan) -> frozenset[str]:
    """measured_types: every measurement type this patient's plan produces."""
    return frozenset(
        name
        for planned in plan.profile.sessions
        for name in session_types(planned.session.kind, planned.session.slot)
    )


def build_labels(
    config: SimConfig,
    plans: Iterable[PatientPlan],
    message_faults: Iterable[Record],
    complete: bool,
) -> Record:
    """build_labels: the labels document; ``complete`` says the message stream was exhausted."""
    plans = list(plans)
    patients: list[Record] = []
    devices: dict[str, Record] = {}
    assignments: list[Record] = []
    episodes: list[Record] = []
    lookalikes: list[Record] = []
    stays: list[Record] = []
    faults: list[Record] = [dict(f, scope="message") for f in message_faults]
    since = stamp(to_ms(config.start) - ENROLMENT_LEAD_MS)
    for plan in plans:
        profile = plan.profile
        measured = measured_types(plan)
        patients.append(
            {
                "id": profile.key,
                "display_name": profile.key,
                "programs": list(profile.programs),
                "age": profile.age,
                "sex": profile.sex,
                "birth_date": profile.birth_date.isoformat(),
                "medications": list(profile.medications),
                "hypercapnic": profile.hypercapnic,
                "on_oxygen": profile.on_oxygen,
                "esas_frequency": (
                    ("daily" if profile.esas_daily else "weekly")
                    if "esas_tiredness" in measured
                    else None
                ),
                "adherence": {
                    "initial": round(profile.adherence_initial, 3),
                    "floor": round(profile.adherence_floor, 3),
                    "half_life_days": round(profile.adherence_half_life_days, 1),
                },
                "baseline": {
                    name: round(value, 2)
                    for name, value in sorted(profile.baseline.items())
                    if name in measured
                },
                "measured_types": sorted(measured),
                "devices": list(plan.own_devices),
                "monitoring_end": stamp(plan.monitoring_end_ms)
                if plan.handover_out is not None
                else None,
            }
        )
        for device in plan.devices:
            if device.device_id in devices:
                continue
            devices[device.device_id] = {
                "id": device.device_id,
                "kind": device.kind,
                "model": device.model,
                "types": list(DEVICE_KINDS[device.kind].types),
                "units": dict(sorted(device.units.items())),
            }
            faults.extend(_device_faults(device))
        for device_id in plan.own_devices:
            out = plan.handover_out
            until = stamp(out.at_ms) if out is not None and out.device_id == device_id else None
            assignments.append(
                {"device_id": device_id, "patient_id": profile.key, "from": since, "to": until}
            )
        into = plan.handover_in
        if into is not None:
            assignments.append(
                {
                    "device_id": into.device_id,
                    "patient_id": profile.key,
                    "from": stamp(into.at_ms),
                    "to": None,
                }
            )
            faults.append(
                {
                    "kind": "device_reassigned",
                    "scope": "device",
                    "device_id": into.device_id,
                    "from_patient": into.donor,
                    "to_patient": into.receiver,
                    "donor_left": stamp(into.left_ms),
                    "at": stamp(into.at_ms),
                    "expected": "stored",
                }
            )
        for episode in plan.episodes:
            episodes.append(
                {
                    "id": episode.id,
                    "kind": episode.kind,
                    "patient_id": profile.key,
                    "onset": stamp(episode.onset_ms),
                    "er_visit": stamp(episode.er_ms),
                    "discharge": stamp(episode.discharge_ms),
                    "expected_signals": expected_signals(episode.deltas, profile, measured),
                }
            )
        for lookalike in plan.lookalikes:
            lookalikes.append(
                {
                    "id": lookalike.id,
                    "kind": lookalike.kind,
                    "patient_id": profile.key,
                    "start": stamp(lookalike.start_ms),
                    "end": stamp(lookalike.end_ms),
                    "expected_signals": expected_signals(lookalike.deltas, profile, measured),
                }
            )
        for stay in plan.stays:
            stays.append(
                {
                    "patient_id": profile.key,
                    "start": stamp(stay.start_ms),
                    "end": stamp(stay.end_ms),
                    "reason": stay.reason,
                }
            )
    faults.sort(key=_fault_order)
    generator: Record = {
        "seed": config.seed,
        "patients": config.patients,
        "days": config.days,
        "start": stamp(to_ms(config.start)),
        "end": stamp(to_ms(config.end)),
        "timezone": config.timezone,
        "programs": list(config.programs),
        "comorbidity": config.comorbidity,
        "wearable": config.wearable,
        "episode_rate_scale": config.episode_rate_scale,
        "id_prefix": config.id_prefix,
        "fault_rates": config.faults.as_dict(),
    }
    if config.variant != "default":  # absent for the default: its labels keep their bytes
        generator["variant"] = config.variant
    return {
        "schema": LABELS_SCHEMA,
        "generator": generator,
        "complete": complete,
        "patients": patients,
        "devices": list(devices.values()),
        "assignments": assignments,
        "episodes": episodes,
        "lookalikes": lookalikes,
        "hospital_stays": stays,
        "faults": faults,
    }


def _device_faults(device: DevicePlan) -> list[Record]:
    found: list[Record] = []
    if device.wrong_unit is not None:
        found.append(
            {
                "kind": "wrong_unit",
                "scope": "device",
                "device_id": device.device_id,
                "type": device.wrong_unit,
                "unit": device.units[device.wrong_unit],
                "expected": "stored",
            }
        )
    for start, end in device.offline:
        found.append(
            {
                "kind": "offline",
                "scope": "device",
                "device_id": device.device_id,
                "start": stamp(start),
                "end": stamp(end),
                "expected": "stored",
            }
        )
    for clock in device.clock:
        record: Record = {
            "kind": clock.kind,
            "scope": "device",
            "device_id": device.device_id,
            "start": stamp(clock.start_ms),
            "end": stamp(clock.end_ms),
        }
        if clock.kind == "clock_skew":
            record["offset_s"] = clock.offset_ms / 1000
        found.append(record)
    return found


def _fault_order(record: Record) -> tuple[str, str, str, str, int]:
    moment = next((str(record[k]) for k in ("start", "time", "sent_at", "at") if k in record), "")
    index = record.get("reading_index", -1)
    return (
        str(record["device_id"]),
        moment,
        str(record["kind"]),
        str(record.get("msg_id", "")),
        index if isinstance(index, int) else -1,
    )


def write_labels(path: Path | str, labels: Record) -> None:
    """write_labels: the labels document as UTF-8 JSON (one space indent, fixed key order)."""
    with Path(path).open("w", encoding="utf-8") as out:
        json.dump(labels, out, indent=1, ensure_ascii=False)  # streamed: no copy of the text
        out.write("\n")

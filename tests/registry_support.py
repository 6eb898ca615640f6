"""Helpers for the model registry tests: readings stored and announced as the ingest does, and a
stand-in rule kind that reports which anomaly model judges each instant."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal

import psycopg

from homecare.ingest import Reading
from homecare.rules.kinds.base import Condition, Inputs, RuleBase
from homecare.rules.kinds.series import INSTANT
from homecare.rules.packs import Pack, PackSet

_COLUMNS = (
    "patient_id, device_id, msg_id, type, time, value, unit, original_value, original_unit,"
    " received_at, on_oxygen, consciousness"
)


def store_readings(conn: psycopg.Connection[Any], readings: Sequence[Reading]) -> None:
    """store_readings stores ``readings`` of one patient and announces them to the rules stage
    in the same transaction, as ``ingest.write_batch`` does."""
    if not readings:
        return
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO readings ({_COLUMNS}) VALUES ({', '.join(['%s'] * 12)})",
            [tuple(r) for r in readings],
        )
        cur.execute(
            "INSERT INTO reading_changes (patient_id, earliest_time) VALUES (%s, %s)"
            " ON CONFLICT (patient_id) DO UPDATE SET"
            " earliest_time = least(reading_changes.earliest_time, EXCLUDED.earliest_time),"
            " version = reading_changes.version + 1, noted_at = now()",
            (readings[0].patient_id, min(r.time for r in readings)),
        )


def as_patient(readings: Sequence[Reading], patient: uuid.UUID, device: str) -> list[Reading]:
    """as_patient: the same readings, of another patient and device."""
    return [
        r._replace(patient_id=patient, device_id=device, msg_id=f"{device}-{r.msg_id}")
        for r in readings
    ]


class ModelProbe(RuleBase):
    """ModelProbe (test-only kind): at each reading of ``type``, holds when a personal model of
    ``detector`` judges that instant; the evidence names the model."""

    kind: Literal["model_probe"] = "model_probe"
    type: str = "heart_rate"
    detector: str = "personal_residual"

    evidence_keys: ClassVar[frozenset[str]] = frozenset({"model_id", "scope"})

    def reads(self) -> tuple[str, ...]:
        return (self.type,)

    def lookback(self) -> timedelta:
        return timedelta(0)

    def timeline(self, inputs: Inputs, start: datetime, until: datetime) -> list[Condition]:
        verdicts = []
        for reading in inputs.series.between(self.type, start, until + INSTANT):
            version = inputs.patient.model(self.detector, reading.time)
            scope = version.info.scope if version else None
            verdicts.append(
                Condition(
                    reading.time,
                    scope == "personal",
                    reading.received_at,
                    {"model_id": version.info.model_id if version else None, "scope": scope},
                )
            )
        return verdicts


def probe_packs(program: str = "heart_failure") -> PackSet:
    """probe_packs: one pack for ``program`` holding only a ModelProbe rule."""
    probe = ModelProbe(id="test.model_probe", severity="low", summary="judged by {scope}")
    return PackSet({program: Pack.model_construct(pack=program, version=1, rules=(probe,))})

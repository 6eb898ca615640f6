"""FHIR: ``GET /fhir/Observation?patient={id}&date=ge…`` — a FHIR R4 ``Bundle`` (searchset) of
the patient's vital-signs Observations, for the patient's care team.

Each stored reading of a vital-signs type (``catalogue`` category ``vital-signs``: heart rate,
blood pressure, SpO2, respiratory rate, temperature, weight; glucose is ``laboratory`` there and
questionnaires ``survey``, so neither is exported here) is one Observation:
status ``final``, category ``vital-signs``, code from the catalogue (LOINC, per unit where
LOINC codes it so), ``valueQuantity`` in the canonical UCUM unit (system
``http://unitsofmeasure.org``), ``effectiveDateTime`` the measurement (event) time, ``issued``
the time it was stored, the device by identifier. Systolic and diastolic pressure are exported
as the two separately coded Observations they are stored as (valid R4; the BP panel 85354-9
with components, which the vital-signs profile prefers, is left for a later version).
The ``id`` is derived from (device, type, time), the reading's identity, so a re-export gives
the same ids.

Search parameters: ``patient`` (required), ``date`` (repeatable, prefixes ``eq ge gt le lt``,
a day ``2026-11-01`` or an instant with an offset), ``code`` (a LOINC code, or
``http://loinc.org|8867-4``), ``_count`` (default 100, at most 1000) and ``cursor``; the
Bundle's ``next`` link carries the cursor of the next page.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from homecare import catalogue
from homecare.api import audit
from homecare.api.auth import Clinician
from homecare.api.db import Conn
from homecare.api.errors import ERROR_RESPONSES, BadRequest
from homecare.api.pagination import MAX_LIMIT, PageParams, page
from homecare.api.queries import readings as q
from homecare.api.scope import check_patient

router = APIRouter(prefix="/fhir", tags=["fhir"], responses=ERROR_RESPONSES)

UCUM = "http://unitsofmeasure.org"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
DEVICE_SYSTEM = "urn:homecare:device"
VITAL_TYPES = sorted(t.name for t in catalogue.CATALOGUE.values() if t.category == "vital-signs")
_DATE = re.compile(r"^(eq|ge|gt|le|lt)?(\d{4}-\d{2}-\d{2})(T[0-9:.]+(Z|[+-]\d{2}:\d{2}))?$")


def parse_dates(values: list[str]) -> tuple[datetime | None, datetime | None]:
    """parse_dates turns FHIR ``date`` parameters into [since, until) on the effective time.

    A day is the whole UTC day: ``le2026-11-01`` includes that day, ``gt2026-11-01`` starts
    the next. An instant is exact (``le`` and ``lt`` alike, at the resolution stored).
    """
    since: datetime | None = None
    until: datetime | None = None
    for value in values:
        match = _DATE.match(value)
        if match is None:
            raise BadRequest(
                f"date {value!r}: use [eq|ge|gt|le|lt]YYYY-MM-DD[Thh:mm:ss+hh:mm]",
                code="invalid_date",
            )
        prefix = match[1] or "eq"
        try:
            if match[3]:
                start = datetime.fromisoformat(value[len(match[1] or "") :]).astimezone(UTC)
                end = start + timedelta(microseconds=1)
            else:
                day = date.fromisoformat(match[2])
                start = datetime(day.year, day.month, day.day, tzinfo=UTC)
                end = start + timedelta(days=1)
        except ValueError:
            raise BadRequest(f"date {value!r} is not a valid date", code="invalid_date") from None
        low, high = {
            "eq": (start, end),
            "ge": (start, None),
            "gt": (end, None),
            "le": (None, end),
            "lt": (None, start),
        }[prefix]
        if low is not None:
            since = low if since is None else max(since, low)
        if high is not None:
            until = high if until is None else min(until, high)
    return since, until


def _types_for_code(code: str | None) -> list[str]:
    if code is None:
        return VITAL_TYPES
    system, _, value = code.rpartition("|")
    chosen = [
        name
        for name in VITAL_TYPES
        if any(
            (not system or system == s) and value == c for s, c in _codings(catalogue.lookup(name))
        )
    ]
    return chosen


def _codings(kind: catalogue.MeasurementType) -> list[tuple[str, str]]:
    return [kind.coding_for_unit(unit) for unit in kind.accepted_units]


def observation(patient_id: uuid.UUID, row: q.RawRow) -> dict[str, Any]:
    """observation is one reading as a FHIR R4 vital-signs Observation."""
    kind = catalogue.lookup(row.type)
    system, code = kind.coding_for_unit(row.unit)
    identity = f"{row.device_id}|{row.type}|{row.time.isoformat()}"
    return {
        "resourceType": "Observation",
        "id": hashlib.sha256(identity.encode()).hexdigest()[:32],
        "status": "final",
        "category": [
            {
                "coding": [
                    {"system": CATEGORY_SYSTEM, "code": "vital-signs", "display": "Vital Signs"}
                ]
            }
        ],
        "code": {
            "coding": [{"system": system, "code": code, "display": kind.display}],
            "text": kind.display,
        },
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": row.time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "valueQuantity": {"value": row.value, "unit": row.unit, "system": UCUM, "code": row.unit},
        "device": {"identifier": {"system": DEVICE_SYSTEM, "value": row.device_id}},
    }


@router.get(
    "/Observation",
    summary="FHIR R4 search: the patient's vital-signs Observations as a Bundle",
    response_class=JSONResponse,
    responses={200: {"content": {"application/fhir+json": {}}, "description": "FHIR Bundle"}},
)
def search_observations(
    request: Request,
    principal: Clinician,
    conn: Conn,
    patient: uuid.UUID,
    date: Annotated[list[str] | None, Query(max_length=4)] = None,
    code: Annotated[str | None, Query(max_length=200)] = None,
    count: Annotated[int, Query(alias="_count", ge=1, le=MAX_LIMIT)] = 100,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> JSONResponse:
    check_patient(conn, principal, patient)
    since, until = parse_dates(date or [])
    types = _types_for_code(code)
    params = PageParams(limit=count, cursor=cursor)
    after = params.after("fhir_observations", (datetime, str, str))
    rows = (
        q.raw(
            conn,
            patient,
            types=types,
            since=since,
            until=until,
            after=after,
            limit=count + 1,
        )
        if types and (since is None or until is None or since < until)
        else []
    )
    kept, next_cursor = page(
        rows, count, "fhir_observations", lambda r: (r.time, r.type, r.device_id)
    )
    audit.record_reads(conn, principal, "fhir.read", [patient], {"count": len(kept)})
    root = str(request.base_url).rstrip("/")
    links = [{"relation": "self", "url": str(request.url)}]
    if next_cursor:
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
        next_query = urlencode([*query, ("cursor", next_cursor)])
        links.append({"relation": "next", "url": f"{root}{request.url.path}?{next_query}"})
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "link": links,
        "entry": [
            {
                "fullUrl": f"{root}{request.url.path}/{obs['id']}",
                "resource": obs,
                "search": {"mode": "match"},
            }
            for obs in (observation(patient, r) for r in kept)
        ],
    }
    return JSONResponse(bundle, media_type="application/fhir+json")

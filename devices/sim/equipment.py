"""Equipment: the kinds of home device a simulated patient uses, what each reports, in which units.

Why a table: a device kind fixes which readings travel together in one message (a BP cuff
sends systolic, diastolic and pulse at the same instant), its measurement noise and the units
its firmware may be set to. Units are chosen per device from the catalogue's accepted strings
(UCUM or the vendor spelling the catalogue accepts), and a device set to pounds, °F or mg/dL is
a "wrong-unit device" fault: valid on the wire, converted by the ingest, and a trap for any
downstream code that forgets the canonical column.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from homecare import catalogue

__all__ = ["DEVICE_KINDS", "NOISE_SD", "WRONG_UNITS", "DeviceKind", "session_types"]


@dataclass(frozen=True)
class DeviceKind:
    """DeviceKind: one kind of device; ``unit_styles`` are the unit sets its firmware may use."""

    name: str
    model: str
    types: tuple[str, ...]
    unit_styles: tuple[Mapping[str, str], ...]

    def __post_init__(self) -> None:
        for style in self.unit_styles:
            for type_name, unit in style.items():
                if unit not in catalogue.lookup(type_name).accepted_units:
                    raise ValueError(f"{self.name}: {unit!r} is not accepted for {type_name}")


def _style(**units: str) -> Mapping[str, str]:
    return MappingProxyType(dict(units))


_UCUM_VITALS = _style(
    systolic_bp="mm[Hg]",
    diastolic_bp="mm[Hg]",
    heart_rate="/min",
    spo2="%",
    respiratory_rate="/min",
)
_VENDOR_VITALS = _style(
    systolic_bp="mmHg",
    diastolic_bp="mmHg",
    heart_rate="bpm",
    spo2="%",
    respiratory_rate="{breaths}/min",
)
_SCORES = {name: "{score}" for name in ("pain_score", *catalogue.ESAS_ITEMS)}

DEVICE_KINDS: Mapping[str, DeviceKind] = MappingProxyType(
    {
        kind.name: kind
        for kind in (
            DeviceKind(
                "cuff",
                "simulated upper-arm BP monitor",
                ("systolic_bp", "diastolic_bp", "heart_rate"),
                (_UCUM_VITALS, _VENDOR_VITALS),
            ),
            DeviceKind(
                "oxi",
                "simulated fingertip pulse oximeter",
                ("spo2", "heart_rate", "respiratory_rate"),
                (_UCUM_VITALS, _VENDOR_VITALS),
            ),
            DeviceKind(
                "scale", "simulated bathroom scale", ("body_weight",), (_style(body_weight="kg"),)
            ),
            DeviceKind(
                "thermo",
                "simulated oral thermometer",
                ("body_temperature",),
                (_style(body_temperature="Cel"),),
            ),
            DeviceKind(
                "gluco",
                "simulated glucometer",
                ("blood_glucose",),
                (_style(blood_glucose="mmol/L"),),
            ),
            DeviceKind(
                "app",
                "simulated patient app (questionnaires, wound photos, goniometer)",
                ("pain_score", *catalogue.ESAS_ITEMS, "wound_area", "range_of_motion"),
                (_style(**_SCORES, wound_area="cm2", range_of_motion="deg"),),
            ),
            DeviceKind(
                "watch",
                "simulated wrist wearable",
                ("heart_rate",),
                (_style(heart_rate="/min"), _style(heart_rate="{beats}/min")),
            ),
        )
    }
)

# Wrong-unit devices: the non-canonical unit a device of this type may be set to.
WRONG_UNITS: Mapping[str, str] = MappingProxyType(
    {"body_weight": "[lb_av]", "body_temperature": "[degF]", "blood_glucose": "mg/dL"}
)

# Measurement noise (one SD, in canonical units) of a single reading around the true value:
# device error plus the within-session biological variation a repeat reading would show.
# Sources in MODEL.md (ISO 81060-2, ISO 80601-2-61, ISO 15197, ISO 80601-2-56); the split
# between device and biology is judgement. Glucose noise is relative (ISO 15197 ±15 %).
NOISE_SD: Mapping[str, float] = MappingProxyType(
    {
        "systolic_bp": 6.0,
        "diastolic_bp": 4.5,
        "heart_rate": 3.5,
        "spo2": 0.9,
        "respiratory_rate": 1.3,
        "body_temperature": 0.15,
        "body_weight": 0.2,
        "blood_glucose": 0.075,
        "pain_score": 0.6,
        "wound_area": 0.07,
        "range_of_motion": 4.0,
        **{item: 0.7 for item in catalogue.ESAS_ITEMS},
    }
)


# What one session sends: a measuring device always sends all of its types together; the app
# sends what the session asks (a pain score and a goniometer angle, a questionnaire, a photo).
_APP_SESSIONS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "pain_rom": ("pain_score", "range_of_motion"),
        "pain": ("pain_score",),
        "wound": ("wound_area",),
        "esas": catalogue.ESAS_ITEMS,
    }
)


def session_types(kind: str, slot: str) -> tuple[str, ...]:
    """session_types: the measurement types one session of ``kind`` sends, in message order.

    >>> session_types("cuff", "evening")
    ('systolic_bp', 'diastolic_bp', 'heart_rate')
    >>> session_types("app", "pain_rom")
    ('pain_score', 'range_of_motion')
    """
    if kind == "app":
        return _APP_SESSIONS[slot]
    return DEVICE_KINDS[kind].types

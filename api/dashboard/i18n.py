"""I18n: the dashboard's two languages (fr-CA, the default, and en) and its times.

Messages are flat JSON catalogues, one per language (``i18n/fr-CA.json``, ``i18n/en.json``), with
the same keys — a test checks that every key is in both and that every key a template or the
script uses exists. JSON rather than gettext because the page script needs a few of the same
messages (sent to it in the page), and because a missing translation is then a failing test,
not a silently English page. Placeholders use ``str.format`` names (``{count}``).

Alert summaries are written by the rule packs, in English, from each finding's evidence. Pages
render them again from the same evidence: the French page with the French template of the rule
(``i18n/rules.fr-CA.json``, keyed by rule id; a test checks every alerting rule of the shipped
packs has one, with no placeholder the pack's template lacks), the English page with the pack's
own template (``english``) — so that in both, numbers follow the locale (``82,5`` in French),
times are in the page's zone and language (never the stored UTC instant) and durations read
``24 h``. A rule with no template, or evidence that does not fit it, shows the stored summary
rather than nothing.

Units are stored as UCUM codes (``Cel``, ``mm[Hg]``); pages show them as people write them
(``unit.<code>`` messages: °C, mmHg).

Times are stored in UTC and shown in the care team's IANA time zone with Babel's CLDR formats
for the locale; ``<time datetime>`` keeps the exact UTC instant in the page.
"""

from __future__ import annotations

import json
import logging
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from babel.dates import format_datetime, format_timedelta, get_timezone_name
from babel.numbers import format_decimal

from homecare import catalogue as catalogue_of_types

__all__ = [
    "CATALOGUE_DIR",
    "DEFAULT_LOCALE",
    "LOCALES",
    "Translator",
    "catalogue",
    "duration",
    "pick_locale",
    "rule_templates",
    "zone",
]

log = logging.getLogger(__name__)

CATALOGUE_DIR = Path(__file__).parent / "i18n"
LOCALES: tuple[str, ...] = ("fr-CA", "en")
DEFAULT_LOCALE = "fr-CA"
_BABEL = {"fr-CA": "fr_CA", "en": "en_CA"}


@cache
def catalogue(locale: str) -> Mapping[str, str]:
    """catalogue is the messages of ``locale`` (read once per process)."""
    data: dict[str, str] = json.loads((CATALOGUE_DIR / f"{locale}.json").read_text("utf-8"))
    return data


@cache
def rule_templates(locale: str) -> Mapping[str, str]:
    """rule_templates is the summary template of each rule in ``locale`` (none for English:
    the packs' own summaries are English)."""
    path = CATALOGUE_DIR / f"rules.{locale}.json"
    if not path.exists():
        return {}
    data: dict[str, str] = json.loads(path.read_text("utf-8"))
    return data


def pick_locale(*candidates: str | None) -> str:
    """pick_locale is the first supported locale among ``candidates`` (else the default)."""
    for candidate in candidates:
        if candidate in LOCALES:
            return candidate
    return DEFAULT_LOCALE


@cache
def zone(name: str | None, fallback: str = "America/Montreal") -> ZoneInfo:
    """zone is the IANA zone ``name``, or ``fallback`` when it is unknown or absent."""
    try:
        return ZoneInfo(name or fallback)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(fallback)


@cache
def _babel_locale(locale: str) -> Locale:
    """_babel_locale: Babel's locale data, parsed once (a worklist formats hundreds of values)."""
    return Locale.parse(_BABEL[locale])


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        raise KeyError(key)


@dataclass(frozen=True)
class Translator:
    """Translator: messages, numbers and times of one page, in one locale and time zone."""

    locale: str
    tz: ZoneInfo
    english: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def messages(self) -> Mapping[str, str]:
        """messages is this locale's catalogue."""
        return catalogue(self.locale)

    @property
    def babel_locale(self) -> Locale:
        return _babel_locale(self.locale)

    def __call__(self, key: str, **values: Any) -> str:
        """Translator("key", name=value) is the message ``key`` with its placeholders filled.

        A key missing from the catalogue shows as the key itself (and is logged): the tests
        keep that from happening, and a page with one odd label beats a page that fails.
        """
        text = catalogue(self.locale).get(key)
        if text is None:
            log.warning("dashboard message missing", extra={"key": key, "locale": self.locale})
            return key
        return text.format(**values) if values else text

    def time(self, value: datetime | None) -> str:
        """time is ``value`` in the page's zone, in the locale's short date-time format."""
        if value is None:
            return "—"
        return format_datetime(value, "short", tzinfo=self.tz, locale=self.babel_locale)

    def ago(self, value: datetime | None, now: datetime) -> str:
        """ago is how long before ``now`` ``value`` was, in words (« il y a 3 heures »)."""
        if value is None:
            return "—"
        return format_timedelta(
            value - now, threshold=1.5, add_direction=True, locale=self.babel_locale
        )

    def unit(self, code: str) -> str:
        """unit is a UCUM unit code as people of the locale write it."""
        return self(f"unit.{code}") if f"unit.{code}" in self.messages else code

    def op(self, op: str) -> str:
        """op is a comparison as a reader writes it (≥, not >=)."""
        return _OPS.get(op, op)

    def actor(self, actor: str | None) -> str:
        """actor is who did something: a person's account, or the system in words."""
        if actor is None:
            return "—"
        if actor.startswith("system:"):
            return self("actor.system")
        return actor.removeprefix("user:")

    def reason(self, suppressed_by: str) -> str:
        """reason says why an alert was not paged (``alerts.suppress``'s reasons)."""
        kind, _, ref = suppressed_by.partition(":")
        key = f"suppressed.{kind}"
        return self(key, ref=ref) if key in self.messages else suppressed_by

    def zone_name(self) -> str:
        """zone_name is the page's time zone as people of the locale name it."""
        return get_timezone_name(self.tz, locale=self.babel_locale)

    def number(self, value: float | None, digits: int = 1) -> str:
        """number is ``value`` with ``digits`` decimals in the locale's notation."""
        if value is None:
            return "—"
        pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "")
        return format_decimal(value, format=pattern, locale=self.babel_locale)

    def summary(self, rule_id: str, stored: str, evidence: Mapping[str, Any]) -> str:
        """summary is an alert's summary in this locale (the stored one when none fits)."""
        template = rule_templates(self.locale).get(rule_id) or (
            self.english.get(rule_id) if self.locale == "en" else None
        )
        if template is None:
            return stored
        values = _Blank(evidence)
        if isinstance(evidence.get("vitals"), list):
            values["explanation"] = self._explanation(evidence["vitals"])
        if isinstance(evidence.get("readings"), str):
            values["readings"] = self._readings(evidence["readings"])
        try:
            return _LocalFormatter(self).vformat(template, (), values)
        except (KeyError, ValueError, TypeError, IndexError):
            return stored

    def _readings(self, listed: str) -> str:
        """_readings writes an artefact rule's list of readings (``SpO2 70 %, Temperature 33.1
        °C``: catalogue labels and units, from ``rules.evaluate``) in this locale."""
        labels = sorted(_labels().items(), key=lambda item: -len(item[0]))
        parts = []
        for part in listed.split(", "):
            found = next(((lab, name) for lab, name in labels if part.startswith(lab + " ")), None)
            if found is None:
                parts.append(part)
                continue
            value, _, unit = part[len(found[0]) + 1 :].partition(" ")
            try:
                number = _LocalFormatter(self).format_field(float(value), "g")
            except ValueError:
                number = value
            parts.append(f"{self('type.' + found[1])} {number} {self.unit(unit)}".strip())
        return ", ".join(parts)

    def _explanation(self, moves: list[Any]) -> str:
        """_explanation says, for a deviation rule's evidence, which vitals moved and from what
        (as ``rules.kinds.deviation`` does in English: the vitals that moved a spread or more, most
        first)."""
        usual = self("summary.usual")
        parts = []
        moved = [m for m in moves if isinstance(m, dict) and float(m.get("score", 0)) >= 1.0]
        for move in sorted(moved, key=lambda m: -float(m["score"])):
            change = _LocalFormatter(self).format_field(float(move["change"]), "+.3g")
            before = _LocalFormatter(self).format_field(float(move["usual"]), ".3g")
            parts.append(f"{self('type.' + str(move['type']))} {change} ({usual} {before})")
        return ", ".join(parts)


@cache
def _labels() -> dict[str, str]:
    """_labels maps each catalogue label (as the packs' English text writes it) to its type."""
    return {kind.label: name for name, kind in catalogue_of_types.CATALOGUE.items()}


_OPS = {">=": "≥", "<=": "≤", ">": ">", "<": "<"}
_DURATION = re.compile(r"^(\d+)([mhd])$")
_DURATION_UNITS = {
    "fr-CA": {"m": "min", "h": "h", "d": "j"},
    "en": {"m": "min", "h": "h", "d": "d"},
}


def duration(text: str, locale: str) -> str:
    """duration writes a pack's duration (``24h``) as the locale does (``24 h``); other text
    is returned as it is."""
    match = _DURATION.match(text)
    if match is None:
        return text
    return f"{match[1]}\N{NO-BREAK SPACE}{_DURATION_UNITS[locale][match[2]]}"


class _LocalFormatter(string.Formatter):
    """_LocalFormatter formats numbers with the locale's decimal sign and times in its zone."""

    def __init__(self, t: Translator) -> None:
        self.t = t

    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, int | float) and not isinstance(value, bool):
            text = format(value, format_spec)
            return text.replace(".", ",") if self.t.locale == "fr-CA" else text
        if isinstance(value, str) and not format_spec:
            try:
                when = datetime.fromisoformat(value)
            except ValueError:
                return duration(value, self.t.locale)
            return self.t.time(when) if when.tzinfo else value
        formatted: str = super().format_field(value, format_spec)
        return formatted

"""The rule-kind contract: what every kind of rule declares and does (see docs/rules.md).

A rule kind is a pydantic model — the fields a pack writes for it, validated strictly on load —
that also answers four questions the evaluator asks of every rule:

- ``reads()``: the measurement types its verdicts depend on;
- ``lookback()``: how far before an instant its verdict there looks (readings, or for a
  combination its parts' verdicts), and never further, whatever was loaded — that is what
  lets live evaluation start at the newest data while replays start anywhere;
- ``timeline(inputs, start, until)``: its verdict (a ``Condition``) at each of its instants in
  [start, until], in event time, from the readings alone;
- ``explain(evidence)``: the finding's summary, the pack's template filled from the evidence
  (``evidence_keys`` lists what every holding verdict's evidence carries).

Packs are reviewed by clinicians, not programmers, so the schema is strict: unknown fields are
errors, units are the catalogue's canonical ones, durations are written ``36h`` or ``3d``.
"""

from __future__ import annotations

import re
import string
import uuid
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from homecare import catalogue

if TYPE_CHECKING:
    from homecare.rules.anomaly.contract import Detector, ModelInfo
    from homecare.rules.kinds.series import Series

__all__ = [
    "Condition",
    "Duration",
    "Inputs",
    "ModelVersion",
    "PatientContext",
    "Persistence",
    "RuleBase",
    "Strict",
    "known_type",
    "parse_duration",
]

ZERO = timedelta(0)
DAY = timedelta(days=1)
_DURATION = re.compile(r"^(?P<n>\d+(?:\.\d+)?)(?P<unit>[mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_duration(value: object) -> timedelta:
    """parse_duration reads ``90m``, ``36h`` or ``3d``.

    >>> parse_duration("36h")
    datetime.timedelta(days=1, seconds=43200)
    """
    if isinstance(value, timedelta):
        return value
    match = _DURATION.match(str(value).strip())
    if match is None:
        raise ValueError(f"invalid duration {value!r}: write e.g. 90m, 36h or 3d")
    return timedelta(**{_UNITS[match["unit"]]: float(match["n"])})


Duration = Annotated[timedelta, Field(json_schema_extra={"format": "duration"})]


def known_type(value: str) -> str:
    """known_type: ``value`` if the catalogue defines that measurement type."""
    if value not in catalogue.CATALOGUE:
        raise ValueError(f"unknown measurement type {value!r}")
    return value


class Strict(BaseModel):
    """Strict: a pack model — unknown fields are errors, values frozen once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Persistence(Strict):
    """Persistence: how long a condition must hold — ``count`` of the last ``of`` readings
    taken within ``within`` (a week-old reading says little about today), or, with ``for``,
    every reading over that duration."""

    count: int = Field(default=1, ge=1, le=50)
    of: int = Field(default=1, ge=1, le=50)
    within: timedelta = timedelta(days=3)
    sustained: timedelta | None = Field(default=None, alias="for")

    @field_validator("sustained", "within", mode="before")
    @classmethod
    def _duration(cls, value: object) -> timedelta | None:
        return None if value is None else parse_duration(value)

    @model_validator(mode="after")
    def _count_within_of(self) -> Persistence:
        if self.count > self.of:
            raise ValueError(f"count {self.count} is more than of {self.of}")
        return self


class ModelVersion(NamedTuple):
    """ModelVersion is one fitted anomaly model and the event time from which it judges.

    Models are chosen by event time, never by the wall clock, for the same reason thresholds
    are: replaying stored readings with the same registered models gives the same findings.
    """

    in_force_from: datetime
    info: ModelInfo
    detector: Detector


@dataclass(frozen=True)
class PatientContext:
    """PatientContext is what rules need to know about the patient besides readings."""

    patient_id: uuid.UUID
    programs: tuple[str, ...]
    hypercapnic: bool = False
    # rule id -> [(in force from, threshold or None for the pack's own)], in time order
    overrides: Mapping[str, Sequence[tuple[datetime, float | None]]] = field(default_factory=dict)
    # detector kind -> the patient's personal and (program) cohort model versions, in order of
    # in_force_from; filled from the model registry (or, in evaluation, by a simulated schedule)
    models: Mapping[str, Sequence[ModelVersion]] = field(default_factory=dict)
    # detector kind -> the in_force_from of personal versions the registry holds but that were
    # refused (corrupt, or of another format): from each, the cohort judges, not an older
    # personal model, until a newer personal version is in force
    refused: Mapping[str, Sequence[datetime]] = field(default_factory=dict)

    def model(self, kind: str, at: datetime) -> ModelVersion | None:
        """model is the ``kind`` model that judges this patient at event time ``at``: the latest
        personal model in force then, else the latest cohort model in force (cold start, or a
        refused personal model), else None (no model yet: the rule cannot tell)."""
        personal = cohort = None
        withdrawn = [t for t in self.refused.get(kind, ()) if t <= at]
        since = max(withdrawn) if withdrawn else None
        for version in self.models.get(kind, ()):
            if version.in_force_from > at:
                break
            if version.info.scope != "personal":
                cohort = version
            elif since is None or version.in_force_from > since:
                personal = version
        return personal or cohort

    def threshold(self, rule_id: str, default: float, at: datetime) -> float:
        """threshold is the value in force for ``rule_id`` at event time ``at``."""
        value = default
        for since, override in self.overrides.get(rule_id, ()):
            if since > at:
                break
            value = default if override is None else override
        return value


class Condition(NamedTuple):
    """Condition is a rule's verdict at one instant: True, False, or None (cannot tell).

    A NamedTuple, not a frozen dataclass: a live pass builds thousands of them and the
    dataclass's ``__init__`` was 7 % of a saturated rules worker's time (py-spy).
    """

    time: datetime
    holds: bool | None
    received_at: datetime
    evidence: Mapping[str, Any]


@dataclass(frozen=True)
class Inputs:
    """Inputs: what a rule's ``timeline`` may read.

    ``series`` is the patient's readings less those an artefact rule set aside — or every
    reading, for a kind with ``reads_unconfirmed``; ``set_aside`` is the positions (type ->
    indexes in ``series``) this rule itself set aside, for a kind that ``screens``;
    ``timelines`` is the verdicts of the rules evaluated before it, for a kind that
    ``refers_to`` other rules.
    """

    patient: PatientContext
    series: Series
    set_aside: Mapping[str, set[int]] = field(default_factory=dict)
    timelines: Mapping[str, list[Condition]] = field(default_factory=dict)


class RuleBase(Strict):
    """RuleBase: the fields every rule has, and the contract every kind implements."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
    severity: Literal["low", "medium", "high", "critical"]
    summary: str = Field(min_length=1)
    # Whether the alerts stage may resolve an alert by itself once the condition has cleared.
    auto_resolve: bool = True
    # false: a building block that combinations refer to (e.g. "SpO2 below 92" that matters only
    # together with "SpO2 3 points below the patient's usual"); evaluated, never a finding.
    alert: bool = True
    # A detector kind (``rules.anomaly``): while a model of that kind judges the patient, an
    # anomaly rule of the pack stands in for this one, which then does not hold; before the
    # patient has a model (or with no model registry) this rule pages as it always did.
    yields_to: str | None = None

    # The evidence keys every holding verdict carries: the placeholders a summary may use.
    evidence_keys: ClassVar[frozenset[str]] = frozenset()
    # True: reads every reading, unconfirmed ones included (the patient did measure).
    reads_unconfirmed: ClassVar[bool] = False
    # True: sets readings aside for every other rule, before any is evaluated (``set_aside``).
    screens: ClassVar[bool] = False

    @field_validator("summary")
    @classmethod
    def _template(cls, value: str) -> str:
        for _, name, _, _ in string.Formatter().parse(value):
            if name is not None and not name.isidentifier():
                raise ValueError(f"summary placeholder {{{name}}} is not a plain name")
        return value

    @abstractmethod
    def reads(self) -> tuple[str, ...]:
        """reads: the measurement types this rule's verdicts depend on."""

    @abstractmethod
    def lookback(self) -> timedelta:
        """lookback: how far before an instant the verdict there looks, at most."""

    @abstractmethod
    def timeline(self, inputs: Inputs, start: datetime, until: datetime) -> list[Condition]:
        """timeline: the verdicts at this rule's instants in [start, until], in time order."""

    def refers_to(self) -> tuple[str, ...]:
        """refers_to: the ids of the rules whose verdicts this one reads (none: readings)."""
        return ()

    def set_aside(self, series: Series) -> dict[str, set[int]]:
        """set_aside: for a kind that ``screens``, the readings no other rule should see."""
        return {}

    def explain(self, evidence: Mapping[str, Any]) -> str:
        """explain: the summary with the evidence's values in its placeholders (an unknown one
        is left as written, so a typo shows rather than losing the alert)."""
        try:
            return string.Formatter().vformat(self.summary, (), _Blank(evidence))
        except (ValueError, TypeError):
            return self.summary


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"

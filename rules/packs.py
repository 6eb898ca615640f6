"""Packs: clinical rules as data — one versioned YAML file per program, validated on load.

A pack is reviewed by clinicians, not programmers, so the schema is strict (unknown fields are
errors, units are the catalogue's canonical ones, durations are written ``36h`` or ``3d``) and
every error names the file, the rule and the field. Loading is all-or-nothing: a reload that
finds one bad file keeps the packs already in force.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

import catalogue

__all__ = [
    "AdherenceRule",
    "ArtefactBound",
    "ArtefactRule",
    "BaselineChangeRule",
    "CombinationRule",
    "MissingRule",
    "News2Rule",
    "Pack",
    "PackError",
    "PackSet",
    "Persistence",
    "Rule",
    "ThresholdRule",
    "load_packs",
    "parse_duration",
]

_DURATION = re.compile(r"^(?P<n>\d+(?:\.\d+)?)(?P<unit>[mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
DEFAULT_PACKS = Path(__file__).parent / "packs"


class PackError(ValueError):
    """PackError: a pack file is invalid; the message names file, rule and field."""


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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Persistence(_Strict):
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


class _RuleBase(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
    severity: Literal["low", "medium", "high", "critical"]
    summary: str = Field(min_length=1)
    # Whether the alerts stage may resolve an alert by itself once the condition has cleared.
    auto_resolve: bool = True
    # false: a building block that combinations refer to (e.g. "SpO2 below 92" that matters only
    # together with "SpO2 3 points below the patient's usual"); evaluated, never a finding.
    alert: bool = True

    @field_validator("summary")
    @classmethod
    def _template(cls, value: str) -> str:
        for _, name, _, _ in string.Formatter().parse(value):
            if name is not None and not name.isidentifier():
                raise ValueError(f"summary placeholder {{{name}}} is not a plain name")
        return value


def _known_type(value: str) -> str:
    if value not in catalogue.CATALOGUE:
        raise ValueError(f"unknown measurement type {value!r}")
    return value


class ThresholdRule(_RuleBase):
    """ThresholdRule: a reading above or below a value, with persistence; overridable."""

    kind: Literal["threshold"]
    type: str
    op: Literal[">", ">=", "<", "<="]
    value: float
    persistence: Persistence = Persistence()
    overridable: bool = True

    _type = field_validator("type")(lambda cls, v: _known_type(v))


class BaselineChangeRule(_RuleBase):
    """BaselineChangeRule: the latest reading moved ``change`` from the patient's own median
    over ``baseline``, measured ``over`` a recent period (e.g. +2 kg over 3 days)."""

    kind: Literal["baseline_change"]
    type: str
    change: float
    over: timedelta
    baseline: timedelta
    min_baseline_readings: int = Field(default=3, ge=1)
    # relative: ``change`` is a fraction of the baseline (0.2 = +20 %), e.g. for wound area.
    relative: bool = False
    # The baseline holds only readings taken within this of the reading's time of day (UTC,
    # across midnight), for a value that follows the day: a glucose before dinner is compared
    # with the patient's usual before dinner, not with a median of fasting and after-meal ones.
    # UTC, so no time zone decides it: a patient's 07:00 stays one UTC clock time, and the hour
    # a daylight-saving change moves it stays inside a window of a few hours.
    same_time_of_day: timedelta | None = None
    persistence: Persistence = Persistence()

    _type = field_validator("type")(lambda cls, v: _known_type(v))
    _durations = field_validator("over", "baseline", mode="before")(
        lambda cls, v: parse_duration(v)
    )

    @field_validator("same_time_of_day", mode="before")
    @classmethod
    def _clock_window(cls, value: Any) -> timedelta | None:
        if value is None:
            return None
        window = parse_duration(value)
        if not timedelta(0) < window < timedelta(hours=12):
            raise ValueError("same_time_of_day must be more than 0 and less than 12h")
        return window

    @field_validator("change")
    @classmethod
    def _non_zero(cls, value: float) -> float:
        if value == 0:
            raise ValueError("change must not be 0 (positive: rise, negative: fall)")
        return value


class DeviationVital(_Strict):
    """DeviationVital: one vital of a deviation rule and the way it worsens."""

    type: str
    direction: Literal["up", "down"]
    # The smallest spread used, in the type's canonical unit: a patient whose readings barely
    # vary must still move a clinically meaningful amount (e.g. 1 SpO2 point) to count.
    floor: float = Field(gt=0)
    # true: the rule holds only if this vital moved (e.g. temperature, for signs of infection).
    required: bool = False

    _type = field_validator("type")(lambda cls, v: _known_type(v))


class DeviationRule(_RuleBase):
    """DeviationRule: several vitals moved, together, away from the patient's own usual values.

    For each vital: the median of its readings over the last ``recent`` against its usual value
    (median over ``baseline`` ending at the start (UTC) of the day ``over`` before, so a
    deterioration does not feed its own baseline and every instant of a day shares one), in
    units of the patient's usual spread
    (1.4826 × median absolute deviation, at least ``floor``), counted only in the worsening
    direction and capped at ``cap``. It holds when the sum reaches ``min_score`` and at least
    ``min_vitals`` vitals moved one spread or more, the ``required`` ones among them. This is
    the explainable core of personalised multi-parameter monitoring (LINK-HF, Stehlik et al.,
    Circ Heart Fail 2020: 76-88 % of heart-failure admissions flagged, median 6.5 days ahead,
    from a patient's own baseline across several signals): each alert names the vitals, how far
    they moved and from what.
    """

    kind: Literal["deviation"]
    vitals: tuple[DeviationVital, ...] = Field(min_length=1)
    recent: timedelta = timedelta(hours=24)
    over: timedelta = timedelta(days=1)
    baseline: timedelta = timedelta(days=14)
    min_baseline_readings: int = Field(default=4, ge=2)
    min_score: float = Field(gt=0)
    min_vitals: int = Field(default=2, ge=1)
    cap: float = Field(default=3.0, gt=0)
    persistence: Persistence = Persistence()

    _durations = field_validator("recent", "over", "baseline", mode="before")(
        lambda cls, v: parse_duration(v)
    )

    @model_validator(mode="after")
    def _consistent(self) -> DeviationRule:
        if self.min_vitals > len(self.vitals):
            raise ValueError(
                f"min_vitals {self.min_vitals} is more than the {len(self.vitals)} vitals"
            )
        if len({v.type for v in self.vitals}) != len(self.vitals):
            raise ValueError("a vital is listed twice")
        return self


class News2Personal(_Strict):
    """News2Personal: also require the score to be ``rise`` above the patient's usual score.

    Home patients with chronic lung or heart disease often live at NEWS2 5-6 (SpO2 88-92 % on
    scale 1, respiratory rate 21-24): the absolute band then pages every day about a state the
    team knows, and nurses learn to ignore it. The usual score is the median of the patient's
    scores over ``baseline`` ending at the start (UTC) of the day ``over`` before (so a
    deterioration does not raise its own baseline), one score per 6 hours; with fewer than
    ``min_scores`` of them (a new patient) the absolute band applies.
    """

    rise: int = Field(ge=1, le=20)
    over: timedelta = timedelta(days=1)
    baseline: timedelta = timedelta(days=14)
    min_scores: int = Field(default=5, ge=1)

    _durations = field_validator("over", "baseline", mode="before")(
        lambda cls, v: parse_duration(v)
    )


class News2Rule(_RuleBase):
    """News2Rule: the NEWS2 score from each vital's latest reading within ``within``."""

    kind: Literal["news2"]
    min_score: int = Field(ge=1, le=20)
    within: timedelta = timedelta(hours=12)
    # Home readings rarely say whether the patient is on oxygen or alert; unless the message
    # context says otherwise, assume air and Alert (both score 0, so nothing is invented).
    assume_air_and_alert: bool = True
    min_parameters: int = Field(default=4, ge=1, le=7)
    personal: News2Personal | None = None

    _within = field_validator("within", mode="before")(lambda cls, v: parse_duration(v))


class MissingRule(_RuleBase):
    """MissingRule: no reading of ``type`` for ``hours`` after the patient started sending it."""

    kind: Literal["missing"]
    type: str
    hours: float = Field(gt=0)

    _type = field_validator("type")(lambda cls, v: _known_type(v))


class AdherenceRule(_RuleBase):
    """AdherenceRule: the patient measured ``type`` on fewer than ``min_days`` of the last
    ``days`` days, each day a 24-hour period counted back from the instant; it clears once they
    measured on ``clear_days`` of them.

    Days counted back from the instant rather than calendar days: no time zone decides it, and
    the verdict is the same from any evaluation start. A patient who sent no reading of the type
    in the ``days`` before those is undecidable (not started yet, or gone quiet long ago, which
    the missing-data rule reported at the time), so the state stays as it was.
    """

    kind: Literal["adherence"]
    type: str
    days: int = Field(ge=2, le=90)
    min_days: int = Field(ge=1)
    # Clears only once the patient measured on this many of the days (default: every one); in
    # between, the state stays. A window sliding hour by hour past a patient who measures on 4 or
    # 5 days a week would otherwise open and clear the note every day.
    clear_days: int | None = None

    _type = field_validator("type")(lambda cls, v: _known_type(v))

    @model_validator(mode="after")
    def _fewer_than_days(self) -> AdherenceRule:
        if self.min_days > self.days:
            raise ValueError(f"min_days {self.min_days} is more than days {self.days}")
        clear = self.days if self.clear_days is None else self.clear_days
        if not self.min_days <= clear <= self.days:
            raise ValueError(
                f"clear_days {clear} must be from min_days {self.min_days} to days {self.days}"
            )
        return self

    @property
    def clear_at(self) -> int:
        return self.days if self.clear_days is None else self.clear_days


class CombinationRule(_RuleBase):
    """CombinationRule: all (or any) of other rules' conditions held within ``within``."""

    kind: Literal["combination"]
    mode: Literal["all", "any", "at_least"]
    rules: tuple[str, ...] = Field(min_length=2)
    within: timedelta
    at_least: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _at_least(self) -> CombinationRule:
        if (self.mode == "at_least") != (self.at_least is not None):
            raise ValueError("at_least is required with mode at_least, and only then")
        if self.at_least is not None and self.at_least > len(self.rules):
            raise ValueError(f"at_least {self.at_least} is more than the {len(self.rules)} rules")
        return self

    _within = field_validator("within", mode="before")(lambda cls, v: parse_duration(v))


class ArtefactBound(_Strict):
    """ArtefactBound: a reading of ``type`` above ``above`` (or below ``below``) is suspect."""

    type: str
    above: float | None = None
    below: float | None = None

    _type = field_validator("type")(lambda cls, v: _known_type(v))

    @model_validator(mode="after")
    def _one_side(self) -> ArtefactBound:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of above or below")
        return self

    @property
    def side(self) -> str:
        return "above" if self.above is not None else "below"

    def beyond(self, value: float) -> bool:
        """beyond: whether ``value`` is past the bound (strictly)."""
        if self.above is not None:
            return value > self.above
        assert self.below is not None
        return value < self.below


class ArtefactRule(_RuleBase):
    """ArtefactRule: a reading beyond one of ``bounds`` counts only once confirmed.

    A reading past a bound is *unconfirmed* unless an earlier reading of the same type (earlier
    in event time, or at the same time and earlier in the evaluator's order) within
    ``confirm_within`` before it was past the same bound. Unconfirmed readings are left out of
    every other rule except missing data (the patient did measure); the rule itself is active
    while an unconfirmed reading is the latest of its type and younger than ``confirm_within``
    (a note to ask for a re-measure), and clears at the next reading of that type or when the
    time to confirm it has passed. Only earlier readings confirm: evaluation stays causal, so a
    replay from any start gives the live verdicts. At most in the common pack.
    """

    kind: Literal["artefact"]
    bounds: tuple[ArtefactBound, ...] = Field(min_length=1)
    confirm_within: timedelta

    _within = field_validator("confirm_within", mode="before")(lambda cls, v: parse_duration(v))

    @field_validator("confirm_within")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("confirm_within must be more than 0")
        return value

    @field_validator("bounds")
    @classmethod
    def _distinct(cls, bounds: tuple[ArtefactBound, ...]) -> tuple[ArtefactBound, ...]:
        sides = [(bound.type, bound.side) for bound in bounds]
        for type_name, side in sides:
            if sides.count((type_name, side)) > 1:
                raise ValueError(f"{type_name} has two bounds {side}")
        return bounds


Rule = Annotated[
    ThresholdRule
    | BaselineChangeRule
    | DeviationRule
    | News2Rule
    | MissingRule
    | AdherenceRule
    | CombinationRule
    | ArtefactRule,
    Field(discriminator="kind"),
]


class Pack(_Strict):
    """Pack: the rules of one program (or ``common``), with a version bumped on every change."""

    pack: str
    version: int = Field(ge=1)
    rules: tuple[Rule, ...]

    @field_validator("pack")
    @classmethod
    def _program(cls, value: str) -> str:
        if value != "common" and value not in catalogue.PROGRAMS:
            raise ValueError(
                f"unknown program {value!r}; one of common, {', '.join(catalogue.PROGRAMS)}"
            )
        return value


@dataclass(frozen=True)
class PackSet:
    """PackSet is every loaded pack, with rules looked up by id and by program."""

    packs: Mapping[str, Pack]

    def rules_for(self, programs: Iterable[str]) -> list[tuple[Pack, Any]]:
        """rules_for lists (pack, rule) for the common pack and each program, in file order."""
        chosen = ["common", *sorted(set(programs))]
        return [
            (self.packs[name], rule)
            for name in chosen
            if name in self.packs
            for rule in self.packs[name].rules
        ]

    def rule(self, rule_id: str) -> tuple[Pack, Any]:
        for pack in self.packs.values():
            for rule in pack.rules:
                if rule.id == rule_id:
                    return pack, rule
        raise KeyError(rule_id)


def load_packs(directory: Path = DEFAULT_PACKS) -> PackSet:
    """load_packs reads and validates every ``*.yaml`` pack; PackError names the first bad one."""
    packs: dict[str, Pack] = {}
    owners: dict[str, str] = {}
    for path in sorted(directory.glob("*.yaml")):
        pack = _load_one(path)
        if pack.pack in packs:
            raise PackError(f"{path.name}: pack {pack.pack!r} is defined twice")
        if path.stem != pack.pack:
            raise PackError(
                f"{path.name}: holds pack {pack.pack!r}; name the file {pack.pack}.yaml"
            )
        for rule in pack.rules:
            if rule.id in owners:
                raise PackError(
                    f"{path.name}: rule {rule.id}: id already used in {owners[rule.id]}.yaml"
                )
            owners[rule.id] = pack.pack
        packs[pack.pack] = pack
    for pack in packs.values():
        for rule in pack.rules:
            if isinstance(rule, ArtefactRule) and pack.pack != "common":
                raise PackError(
                    f"{pack.pack}.yaml: rule {rule.id}: field kind: an artefact rule decides"
                    " which readings every rule sees, so it belongs in common.yaml"
                )
    for pack in packs.values():
        for rule in pack.rules:
            if isinstance(rule, CombinationRule):
                for ref in rule.rules:
                    if owners.get(ref) not in (pack.pack, "common"):
                        raise PackError(
                            f"{pack.pack}.yaml: rule {rule.id}: field rules: {ref!r} is not a rule"
                            " of this pack or of the common pack"
                        )
    referenced = {
        ref
        for pack in packs.values()
        for rule in pack.rules
        if isinstance(rule, CombinationRule)
        for ref in rule.rules
    }
    for pack in packs.values():
        for rule in pack.rules:
            if not rule.alert and rule.id not in referenced:
                raise PackError(
                    f"{pack.pack}.yaml: rule {rule.id}: field alert: false, but no combination"
                    " refers to it, so it would never be seen"
                )
    return PackSet(packs)


def _load_one(path: Path) -> Pack:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PackError(f"{path.name}: not valid YAML: {exc}") from None
    try:
        return Pack.model_validate(document)
    except ValidationError as exc:
        raise PackError(_describe(path, document, exc)) from None


def _describe(path: Path, document: Any, exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        location = list(error["loc"])
        where = ""
        if len(location) >= 2 and location[0] == "rules" and isinstance(location[1], int):
            index = location[1]
            rules = document.get("rules") if isinstance(document, dict) else None
            rule_id = (
                rules[index].get("id")
                if isinstance(rules, list) and isinstance(rules[index], dict)
                else None
            )
            where = f"rule {rule_id or f'#{index + 1}'}: "
            location = [p for p in location[2:] if not (isinstance(p, str) and p in _KINDS)]
        if not location and error["type"].startswith("union_tag"):
            location = ["kind"]
        field = ".".join(str(p) for p in location) or "(pack)"
        problems.append(f"{path.name}: {where}field {field}: {error['msg']}")
    return "; ".join(problems)


_KINDS = {
    "threshold",
    "baseline_change",
    "deviation",
    "news2",
    "missing",
    "adherence",
    "combination",
    "artefact",
}

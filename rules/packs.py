"""Packs: clinical rules as data — one versioned YAML file per program, validated on load.

A pack is reviewed by clinicians, not programmers, so the schema is strict (unknown fields are
errors, units are the catalogue's canonical ones, durations are written ``36h`` or ``3d``) and
every error names the file, the rule and the field. Loading is all-or-nothing: a reload that
finds one bad file keeps the packs already in force.

Each rule kind's fields and their validation live beside its evaluation in ``rules.kinds``;
this module assembles them into the pack schema, checks what spans rules (unique ids, the
references of combinations, where a screening rule may be) and loads the files.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, get_args

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

from homecare import catalogue
from homecare.rules.kinds import (
    AdherenceRule,
    AnomalyRule,
    ArtefactBound,
    ArtefactRule,
    BaselineChangeRule,
    CombinationRule,
    DeviationRule,
    DeviationVital,
    MissingRule,
    News2Personal,
    News2Rule,
    Persistence,
    ThresholdRule,
)
from homecare.rules.kinds.base import Strict, parse_duration

__all__ = [
    "AdherenceRule",
    "AnomalyRule",
    "ArtefactBound",
    "ArtefactRule",
    "BaselineChangeRule",
    "CombinationRule",
    "DeviationRule",
    "DeviationVital",
    "MissingRule",
    "News2Personal",
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

DEFAULT_PACKS = Path(__file__).parent / "packs"


class PackError(ValueError):
    """PackError: a pack file is invalid; the message names file, rule and field."""


# Every kind a pack may name; each must have its row in rules.kinds.KINDS (a contract test
# checks that they agree).
Rule = Annotated[
    ThresholdRule
    | BaselineChangeRule
    | DeviationRule
    | News2Rule
    | MissingRule
    | AdherenceRule
    | CombinationRule
    | ArtefactRule
    | AnomalyRule,
    Field(discriminator="kind"),
]


class Pack(Strict):
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
            if rule.screens and pack.pack != "common":
                raise PackError(
                    f"{pack.pack}.yaml: rule {rule.id}: field kind: an {rule.kind} rule decides"
                    " which readings every rule sees, so it belongs in common.yaml"
                )
    for pack in packs.values():
        for rule in pack.rules:
            for ref in rule.refers_to():
                if owners.get(ref) not in (pack.pack, "common"):
                    raise PackError(
                        f"{pack.pack}.yaml: rule {rule.id}: field rules: {ref!r} is not a rule"
                        " of this pack or of the common pack"
                    )
    referenced = {ref for pack in packs.values() for rule in pack.rules for ref in rule.refers_to()}
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


# The kinds the rule union accepts: error locations name the kind, which a reader of the
# message does not need.
_KINDS = {
    get_args(model.model_fields["kind"].annotation)[0]
    for model in get_args(get_args(Rule)[0])
    if issubclass(model, BaseModel)
}

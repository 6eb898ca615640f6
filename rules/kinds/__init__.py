"""Rule kinds: one module per kind, each a pack model implementing the contract of ``base``.

``KINDS`` maps the name a pack writes in ``kind:`` to its model. A new kind is one module here
and one row below (``rules.packs`` lists it in the rule union a pack may name; the contract
test in tests/test_rules_kinds.py checks that the two agree and runs the same checks over
every kind).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from homecare.rules.kinds.adherence import AdherenceRule
from homecare.rules.kinds.anomaly import AnomalyRule
from homecare.rules.kinds.artefact import ArtefactBound, ArtefactRule
from homecare.rules.kinds.base import (
    Condition,
    Inputs,
    PatientContext,
    Persistence,
    RuleBase,
    parse_duration,
)
from homecare.rules.kinds.baseline_change import BaselineChangeRule
from homecare.rules.kinds.combination import CombinationRule
from homecare.rules.kinds.deviation import DeviationRule, DeviationVital
from homecare.rules.kinds.missing import MissingRule
from homecare.rules.kinds.news2 import News2Personal, News2Rule
from homecare.rules.kinds.series import Series
from homecare.rules.kinds.threshold import ThresholdRule

__all__ = [
    "KINDS",
    "AdherenceRule",
    "AnomalyRule",
    "ArtefactBound",
    "ArtefactRule",
    "BaselineChangeRule",
    "CombinationRule",
    "Condition",
    "DeviationRule",
    "DeviationVital",
    "Inputs",
    "MissingRule",
    "News2Personal",
    "News2Rule",
    "PatientContext",
    "Persistence",
    "RuleBase",
    "Series",
    "ThresholdRule",
    "parse_duration",
]

KINDS: Mapping[str, type[RuleBase]] = MappingProxyType(
    {
        "threshold": ThresholdRule,
        "baseline_change": BaselineChangeRule,
        "deviation": DeviationRule,
        "news2": News2Rule,
        "missing": MissingRule,
        "adherence": AdherenceRule,
        "combination": CombinationRule,
        "artefact": ArtefactRule,
        "anomaly": AnomalyRule,
    }
)

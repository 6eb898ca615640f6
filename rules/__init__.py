"""Rules stage: stored readings in, findings (rule transitions per patient, in event time) out.

Public surface: the Finding it produces, the packs (rules as validated YAML), the pure
evaluator, NEWS2, the worker that evaluates announced patients, and replay.
"""

from rules.evaluate import PatientContext, evaluate_patient, history_needed
from rules.model import Finding, FindingState, Severity
from rules.news2 import News2Result, Observations, score_news2
from rules.packs import PackError, PackSet, load_packs
from rules.replay import ReplayReport, replay
from rules.worker import RulesConfig, RulesWorker

__all__ = [
    "Finding",
    "FindingState",
    "News2Result",
    "Observations",
    "PackError",
    "PackSet",
    "PatientContext",
    "ReplayReport",
    "RulesConfig",
    "RulesWorker",
    "Severity",
    "evaluate_patient",
    "history_needed",
    "load_packs",
    "replay",
    "score_news2",
]

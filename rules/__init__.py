"""Rules stage: stored readings in, findings (rule transitions per patient, in event time) out.

Public surface: the Finding it produces, the packs (rules as validated YAML), the pure
evaluator, NEWS2, the worker that evaluates announced patients, and replay.
"""

from homecare.rules.evaluate import PatientContext, evaluate_patient, history_needed
from homecare.rules.model import Finding, FindingState, Severity
from homecare.rules.news2 import News2Result, Observations, score_news2
from homecare.rules.packs import PackError, PackSet, load_packs
from homecare.rules.replay import ReplayReport, replay
from homecare.rules.worker import RulesConfig, RulesWorker

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

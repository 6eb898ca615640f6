"""Values the rules stage produces: a Finding is one transition of one rule for one patient.

A rule's condition, evaluated along a patient's readings in event time, is a timeline of
true/false; a finding records where it turned true (``active``) or back (``cleared``). Findings,
not alerts: de-duplication, inhibition, silences and paging belong to the alerts stage.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal, NamedTuple

__all__ = ["Finding", "FindingState", "Severity"]

Severity = Literal["low", "medium", "high", "critical"]
FindingState = Literal["active", "cleared"]


class Finding(NamedTuple):
    """Finding: rule ``rule_id`` became ``state`` for a patient at ``evidence_time``.

    ``evidence_time`` is the event time of the reading (or the hour, for missing-data rules)
    that decided it; ``late`` is true when that reading reached us long after it was measured
    (a backlog), so the alerts stage can show it as history rather than page it as fresh.
    """

    patient_id: uuid.UUID
    rule_id: str
    state: FindingState
    severity: Severity
    evidence_time: datetime
    received_at: datetime
    late: bool
    summary: str
    evidence: dict[str, Any]
    pack: str
    pack_version: int

    @property
    def key(self) -> tuple[uuid.UUID, str, datetime, str]:
        """key identifies a finding across live evaluation and replay."""
        return (self.patient_id, self.rule_id, self.evidence_time, self.state)

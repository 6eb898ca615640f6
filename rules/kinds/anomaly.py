"""Anomaly: a learned model of the patient's usual state says they are unusually worse now.

The rule names a detector kind (``rules.anomaly``), the vitals it judges, a threshold on the
score and a persistence. At each instant one of those vitals was measured, the model in force
for the patient at that event time (``PatientContext.model``: their personal model once one is
registered, the cohort model of their program before) scores the instant from the vitals'
features; with no model in force the rule cannot tell. The finding says which model judged it
(scope, id, version) and which vitals moved, how far, from what usual value and since when.

Replay equals live: the model is chosen by event time, the features of an instant read only
the readings of ``FeatureConfig.history`` before it, and the detector reads only the rows of
``EXPLAIN`` before the instant it judges.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from homecare import catalogue
from homecare.rules.anomaly import DETECTORS
from homecare.rules.anomaly.features import FeatureConfig, build_features
from homecare.rules.kinds.base import Condition, Inputs, Persistence, RuleBase, known_type
from homecare.rules.kinds.series import INSTANT, instants

__all__ = ["EXPLAIN", "AnomalyRule"]

# How far before an instant the detector may read feature rows (its evidence "since when").
EXPLAIN = timedelta(days=3)
_FEATURES = FeatureConfig()


class AnomalyRule(RuleBase):
    """AnomalyRule: the patient's model scores the instant at or above ``threshold``."""

    kind: Literal["anomaly"]
    detector: str
    vitals: tuple[str, ...] = Field(min_length=1)
    threshold: float = Field(gt=0)
    # How many vitals must have moved a usual spread or more the worse way, together.
    min_vitals: int = Field(default=1, ge=1)
    persistence: Persistence = Persistence()

    evidence_keys: ClassVar[frozenset[str]] = frozenset(
        {"score", "threshold", "scope", "model_id", "model_version", "explanation", "since",
         "vitals"}
    )  # fmt: skip

    _types = field_validator("vitals")(lambda cls, v: tuple(known_type(t) for t in v))

    @field_validator("detector")
    @classmethod
    def _detector(cls, value: str) -> str:
        kinds = sorted(d.kind for d in DETECTORS)
        if value not in kinds:
            raise ValueError(f"unknown detector {value!r}; one of {', '.join(kinds)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AnomalyRule:
        if len(set(self.vitals)) != len(self.vitals):
            raise ValueError("a vital is listed twice")
        if self.min_vitals > len(self.vitals):
            raise ValueError(f"min_vitals {self.min_vitals} is more than the vitals listed")
        return self

    def reads(self) -> tuple[str, ...]:
        return self.vitals

    def lookback(self) -> timedelta:
        return _FEATURES.history + EXPLAIN + self.persistence.within

    def timeline(self, inputs: Inputs, start: datetime, until: datetime) -> list[Condition]:
        """timeline: a verdict whenever one of the vitals was measured."""
        series = inputs.series
        first = start - self.persistence.within if self.persistence.of > 1 else start
        found = dict(instants(series, self.vitals, first, until))
        if not found:
            return []
        earliest = min(found) - EXPLAIN
        horizon = earliest - _FEATURES.history
        readings = [
            reading
            for vital in self.vitals
            for reading in series.between(vital, horizon, until + INSTANT)
        ]
        features = build_features(readings, self.vitals, _FEATURES, since=earliest)
        index = {float(t): i for i, t in enumerate(features.times)}
        ordered = sorted(found)
        # Instants judged by one model version are scored together (a detector with
        # ``score_rows`` scores each row alone, so the numbers equal one ``score`` per row).
        versions = [inputs.patient.model(self.detector, at) for at in ordered]
        scores: list[float | None] = [None] * len(ordered)
        runs: dict[int, list[int]] = {}
        for k, version in enumerate(versions):
            if version is not None:
                runs.setdefault(id(version), []).append(k)
        for members in runs.values():
            detector = versions[members[0]].detector  # type: ignore[union-attr]
            rows = [index[ordered[k].timestamp()] for k in members]
            batch = getattr(detector, "score_rows", None)
            values = (
                batch(features, rows)
                if batch is not None
                else [detector.score(features.upto(i, EXPLAIN)) for i in rows]
            )
            for k, value in zip(members, values, strict=True):
                scores[k] = float(value)
        verdicts: list[tuple[datetime, bool]] = []
        timeline = []
        for k, at in enumerate(ordered):
            version = versions[k]
            score = scores[k]
            if version is None or score is None:
                if at >= start:
                    timeline.append(Condition(at, None, found[at], {}))
                continue
            threshold = inputs.patient.threshold(self.id, self.threshold, at)
            moved: list[dict[str, Any]] = []
            if score >= threshold:
                recent = features.upto(index[at.timestamp()], EXPLAIN)
                moved = _moves(version.detector.explain(recent))
            meets = score >= threshold and sum(m["score"] >= 1.0 for m in moved) >= self.min_vitals
            verdicts.append((at, meets))
            oldest = at - self.persistence.within
            recent_verdicts = [m for t, m in verdicts[-self.persistence.of :] if t >= oldest]
            holds = meets and sum(recent_verdicts) >= self.persistence.count
            if at < start:
                continue
            info = version.info
            since = min((m["since"] for m in moved if m["since"]), default=None)
            timeline.append(
                Condition(
                    at,
                    holds,
                    found[at],
                    {
                        "score": round(score, 2),
                        "threshold": threshold,
                        "scope": info.scope,
                        "model_id": info.model_id,
                        "model_version": info.version,
                        "detector": info.kind,
                        "explanation": _explain(moved),
                        "since": since or "",
                        "vitals": moved,
                    },
                )
            )
        return timeline


def _moves(contributions: Sequence[Any]) -> list[dict[str, Any]]:
    """_moves: the contributions as a deviation rule's evidence writes its vitals (type,
    change, usual, score in spreads the worse way, since), so the dashboard renders both alike."""
    moves = []
    for c in contributions:
        if not np.isfinite(c.value) or not np.isfinite(c.usual):
            continue
        moves.append(
            {
                "type": c.vital,
                "change": round(float(c.value - c.usual), 3),
                "usual": round(float(c.usual), 3),
                "score": round(abs(float(c.deviation)), 2),
                "share": round(float(c.share), 3),
                "since": c.since.astimezone(UTC).isoformat() if c.since else None,
            }
        )
    return moves


def _explain(moves: list[dict[str, Any]]) -> str:
    """_explain: "SpO2 -3 (usual 94), heart rate +12 (usual 80)" — the vitals that moved a
    spread or more the worse way, largest part first (the ``since`` key says since when)."""
    return ", ".join(
        f"{catalogue.lookup(m['type']).label} {m['change']:+.3g} (usual {m['usual']:.3g})"
        for m in moves
        if m["score"] >= 1.0
    )

"""Models: the anomaly models in force for a patient, from the registry into ``PatientContext``.

The rules worker and ``homecare replay`` both call ``ModelLoader.context``, so a pass and a
replay see the same versions for every instant (``PatientContext.model(kind, at)`` then picks
by event time). Decoded models are kept by scope and model id: a model id is the digest of the
model's numbers (a cohort of one patient has the numbers of that patient's own model, hence the
scope) and a registered blob is never changed, so a cached model is always the stored one.
A cohort model, shared by every patient of a program, is decoded once per process.

A blob that cannot be trusted — corrupt (digest or shape), or of another format, detector kind
or version (``ModelBlobError``) — is refused: logged once as an error with the model id and
the reason, counted in ``ModelStats.refused`` by reason, and never scored with. For a refused
personal version the cohort model judges from its ``in_force_from`` (``PatientContext.refused``),
not an older personal model; a refused cohort version leaves the previous cohort version in
force. A model of a detector version this code still reads is served whatever release wrote
it: the blob is data, checked field by field, not the code that produced it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from homecare.rules import registry
from homecare.rules.anomaly import (
    DETECTORS,
    CorruptModel,
    Detector,
    IncompatibleModel,
    ModelBlobError,
    Scope,
)
from homecare.rules.kinds.base import ModelVersion, PatientContext

__all__ = ["ModelLoader", "ModelStats"]

log = logging.getLogger(__name__)


@dataclass
class ModelStats:
    """ModelStats: models decoded, models refused (by reason), passes served from the cache."""

    decoded: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    cache_hits: int = 0


class ModelLoader:
    """ModelLoader fills ``PatientContext.models`` from the registry; one per worker (not
    thread-safe), keeping at most ``max_models`` decoded models (least recently used dropped)."""

    def __init__(
        self, detectors: Sequence[type[Detector]] = DETECTORS, max_models: int = 5000
    ) -> None:
        self.kinds = {d.kind: d for d in detectors}
        self.max_models = max_models
        self.stats = ModelStats()
        self._models: OrderedDict[tuple[Scope, str], Detector | ModelBlobError] = OrderedDict()

    def context(self, conn: psycopg.Connection[Any], patient: PatientContext) -> PatientContext:
        """context: ``patient`` with the models of its registry versions (and those refused).

        Inside a rules pass, call it in the pass's transaction after the patient's claim: the
        shared cohort lock it takes then holds until the pass commits (``rules.registry``).
        """
        program = patient.programs[0] if patient.programs else None
        if program is not None:
            registry.lock_program(conn, program)
        stored = registry.versions_for(conn, patient.patient_id, program)
        if not stored:
            return patient
        self._decode_missing(conn, [(v.scope, v.model_id) for v in stored])
        models: dict[str, list[ModelVersion]] = {}
        refused: dict[str, list[datetime]] = {}
        for version in stored:
            key = (version.scope, version.model_id)
            model = self._models[key]
            self._models.move_to_end(key)
            if isinstance(model, ModelBlobError):
                if version.scope == "personal":
                    refused.setdefault(version.kind, []).append(version.in_force_from)
                continue
            models.setdefault(version.kind, []).append(
                ModelVersion(version.in_force_from, model.info, model)
            )
        self._trim()
        return dataclasses.replace(
            patient,
            models={kind: tuple(v) for kind, v in models.items()},
            refused={kind: tuple(t) for kind, t in refused.items()},
        )

    def _decode_missing(self, conn: psycopg.Connection[Any], keys: list[tuple[Scope, str]]) -> None:
        missing = [k for k in dict.fromkeys(keys) if k not in self._models]
        self.stats.cache_hits += len(keys) - len(missing)
        if not missing:
            return
        for key, (kind, blob) in registry.blobs(conn, missing).items():
            self._models[key] = self._decode(key, kind, blob)

    def _decode(self, key: tuple[Scope, str], kind: str, blob: bytes) -> Detector | ModelBlobError:
        scope, model_id = key
        detector = self.kinds.get(kind)
        try:
            if detector is None:
                raise IncompatibleModel(f"no detector of kind {kind!r} in this release")
            model = detector.from_bytes(blob)
            if (model.info.scope, model.info.model_id) != key:
                raise CorruptModel(
                    f"blob holds {model.info.scope} model {model.info.model_id},"
                    f" registered as {scope} model {model_id}"
                )
        except ModelBlobError as error:
            reason = type(error).__name__
            self.stats.refused[reason] += 1
            log.error(
                "anomaly model refused; the cohort model judges instead of a personal one",
                extra={"model_id": model_id, "kind": kind, "reason": reason, "error": str(error)},
            )
            return error
        self.stats.decoded += 1
        return model

    def _trim(self) -> None:
        while len(self._models) > self.max_models:
            self._models.popitem(last=False)

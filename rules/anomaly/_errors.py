"""Errors of the anomaly detectors, drawn as one tree.

    AnomalyError                 anything a detector refuses
     ├─ NotEnoughHistory         too few instants (or vitals) to fit a model: use the cohort's
     └─ ModelBlobError           a stored model that cannot be trusted; never scored with
         ├─ CorruptModel         not our JSON, or its digest does not match its content
         └─ IncompatibleModel    intact, but another format, detector kind or version

A stored model is data, not code: it is read as JSON and checked field by field, so a blob
that was tampered with or written by another release is refused before any number in it is
used.
"""

from __future__ import annotations

__all__ = [
    "AnomalyError",
    "CorruptModel",
    "IncompatibleModel",
    "ModelBlobError",
    "NotEnoughHistory",
]


class AnomalyError(Exception):
    """AnomalyError is the root of every error the anomaly detectors raise."""


class NotEnoughHistory(AnomalyError):
    """NotEnoughHistory: the history given to ``fit`` cannot support a model."""


class ModelBlobError(AnomalyError):
    """ModelBlobError: a serialised model was refused; the message says why."""


class CorruptModel(ModelBlobError):
    """CorruptModel: the blob is not a well-formed model document or fails its digest."""


class IncompatibleModel(ModelBlobError):
    """IncompatibleModel: a well-formed model of another format, kind or version."""

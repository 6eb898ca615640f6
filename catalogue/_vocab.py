"""Small closed vocabularies shared by every stage: care programmes and the ACVPU scale.

Why: they are not measurement types (they have no unit or plausible range) but they are just as
fixed, and keeping them beside the catalogue gives config validation, rules and the API a single
spelling to agree on.  Tuples, not enums, because they travel as plain strings in MQTT payloads,
database rows and YAML, and the order is meaningful (ACVPU runs from most to least responsive).
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["ACVPU", "PROGRAMS", "Program"]

# The program ids of the REST contract (docs/contracts.md). A Literal so that the API's schema
# lists them; PROGRAMS is the same list for code that iterates.
Program = Literal[
    "heart_failure",
    "copd",
    "hypertension",
    "diabetes",
    "post_surgical_rehab",
    "wound_care",
    "oncology",
]
PROGRAMS: tuple[str, ...] = get_args(Program)

# Alert, new Confusion, Voice, Pain, Unresponsive (NEWS2 level of consciousness).
ACVPU: tuple[str, ...] = ("A", "C", "V", "P", "U")

"""Exceptions raised by the measurement catalogue.

Why: every pipeline stage (ingest, rules, export) must tell "this reading names a type we do not
know" apart from "this reading uses a unit we do not accept for that type", because they are
quarantined with different reasons.  Both derive from ``ValueError`` so that generic validation
code that already catches ``ValueError`` keeps working, and both carry the offending value as an
attribute so callers can build structured quarantine records without parsing the message.
"""

from __future__ import annotations

__all__ = ["BadUnit", "CatalogueError", "UnknownType"]


class CatalogueError(ValueError):
    """CatalogueError: base class for every error raised by the catalogue."""

    # Tracebacks and pickles name the public import path, not this private module.
    __module__ = "homecare.catalogue"


class UnknownType(CatalogueError):
    """UnknownType: a measurement type name that is not in the catalogue.

    >>> str(UnknownType("glucose"))
    "unknown measurement type 'glucose'"
    """

    __module__ = "homecare.catalogue"

    def __init__(self, name: object) -> None:
        self.name = name
        super().__init__(f"unknown measurement type {name!r}")

    def __reduce__(self) -> tuple[type[UnknownType], tuple[object]]:
        # Rebuild from the structured argument, not from the formatted message.
        return (type(self), (self.name,))


class BadUnit(CatalogueError):
    """BadUnit: a unit string that a measurement type does not accept.

    >>> err = BadUnit("MMHG", "systolic_bp", ("mm[Hg]", "mmHg", "kPa"))
    >>> err.unit, err.accepted
    ('MMHG', ('mm[Hg]', 'mmHg', 'kPa'))
    >>> str(err).endswith("(UCUM units are case-sensitive; did you mean 'mmHg'?)")
    True
    """

    __module__ = "homecare.catalogue"

    def __init__(self, unit: object, type_name: str, accepted: tuple[str, ...]) -> None:
        self.unit = unit
        self.type_name = type_name
        self.accepted = accepted
        listed = ", ".join(repr(u) for u in accepted)
        message = f"unit {unit!r} is not accepted for {type_name}; accepted units: {listed}"
        if isinstance(unit, str):
            same_but_case = [u for u in accepted if u.casefold() == unit.casefold()]
            if same_but_case:
                message += f" (UCUM units are case-sensitive; did you mean {same_but_case[0]!r}?)"
        super().__init__(message)

    def __reduce__(self) -> tuple[type[BadUnit], tuple[object, str, tuple[str, ...]]]:
        return (type(self), (self.unit, self.type_name, self.accepted))

"""Row: the base of the query modules' row types, which the routes' response models extend.

A row's fields are declared once, in the query module whose SQL selects them. A response model
that shows a row as it is subclasses the row, adding only its name and docstring (what the
OpenAPI document shows), so the SQL, the row and the API's answer cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

from pydantic import BaseModel, ConfigDict

__all__ = ["Row"]


class Row(BaseModel):
    """Row is one record of a query, its fields in the order the query selects them."""

    model_config = ConfigDict(frozen=True)

    @classmethod
    def from_record(cls, record: Sequence[Any]) -> Self:
        """from_record builds the row from a record whose columns are its fields, in order.

        Not validated: the columns' SQL types are the fields' types, and the response model
        validates what the API answers.
        """
        return cls.model_construct(**dict(zip(cls.model_fields, record, strict=True)))

"""Pagination: every list answers ``{"data": [...], "next_cursor": "..." | null}``
(docs/contracts.md).

Cursors are keyset cursors: the sort key of the last row returned, so a page is one index range
scan whatever the depth, and rows inserted while a client walks the list neither repeat nor
shift the pages (offsets would do both). The cursor is opaque to clients — URL-safe base64 of
a small JSON document naming the list it belongs to — so the key can change without breaking
them; a cursor of another list, or one tampered with, is a 400 ``invalid_cursor``. A tampered
cursor cannot widen access: scoping is in every query's WHERE clause, never in the cursor.

A route asks for ``limit + 1`` rows; ``page`` returns the first ``limit`` and a cursor made from
the last of them when there were more.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from homecare.api.errors import BadRequest

__all__ = ["Page", "PageParams", "decode_cursor", "encode_cursor", "page"]

T = TypeVar("T")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


class Page(BaseModel, Generic[T]):
    """Page is one page of a list, and the cursor of the next (null on the last page)."""

    data: list[T]
    next_cursor: str | None


class PageParams:
    """PageParams: the ``limit`` and ``cursor`` query parameters every list takes."""

    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="rows per page")] = (
            DEFAULT_LIMIT
        ),
        cursor: Annotated[
            str | None, Query(max_length=1000, description="next_cursor of the previous page")
        ] = None,
    ) -> None:
        self.limit = limit
        self.cursor = cursor

    def after(self, kind: str, types: Sequence[type]) -> tuple[Any, ...] | None:
        """after is the key to continue after, its parts converted to ``types`` (None: first
        page); a cursor whose parts do not convert is a 400 ``invalid_cursor``."""
        if not self.cursor:
            return None
        parts = decode_cursor(self.cursor, kind)
        if len(parts) != len(types):
            raise BadRequest("cursor does not fit this list", code="invalid_cursor")
        try:
            return tuple(_convert(value, kind_) for value, kind_ in zip(parts, types, strict=True))
        except (TypeError, ValueError):
            raise BadRequest("cursor does not fit this list", code="invalid_cursor") from None


def _convert(value: Any, to: type) -> Any:
    if value is None:
        return None
    if to is datetime:
        parsed = datetime.fromisoformat(str(value))
        if parsed.tzinfo is None:
            raise ValueError("naive time in cursor")
        return parsed
    if to is uuid.UUID:
        return uuid.UUID(str(value))
    if to in (int, float) and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise TypeError("not a number")
    if to is str and not isinstance(value, str):
        raise TypeError("not a string")
    return to(value)


def encode_cursor(kind: str, key: Sequence[Any]) -> str:
    """encode_cursor makes the opaque cursor continuing after ``key`` in list ``kind``."""
    values = [v.isoformat() if isinstance(v, datetime) else v for v in key]
    raw = json.dumps([kind, values], separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str) -> list[Any]:
    """decode_cursor reads a cursor of list ``kind``; BadRequest if it is not one."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        document = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("cursor is not one this API made", code="invalid_cursor") from None
    if (
        not isinstance(document, list)
        or len(document) != 2
        or document[0] != kind
        or not isinstance(document[1], list)
    ):
        raise BadRequest("cursor belongs to another list", code="invalid_cursor")
    return document[1]


def page(
    rows: Sequence[T], limit: int, kind: str, key: Callable[[T], Sequence[Any]]
) -> tuple[list[T], str | None]:
    """page cuts ``rows`` (fetched with ``limit + 1``) to a page and its next cursor."""
    if len(rows) <= limit:
        return list(rows), None
    kept = list(rows[:limit])
    return kept, encode_cursor(kind, key(kept[-1]))

"""Db: the API's connection pool and the per-request connection dependency.

Route handlers are plain (sync) functions run in FastAPI's thread pool; each takes one
connection from a bounded pool for the request. Connections are in autocommit mode: a handler
that changes several rows does it in one ``conn.transaction()`` (the alerts stage's service does
the same), and a read-only handler costs no transaction round trips.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Request
from psycopg_pool import ConnectionPool
from starlette.concurrency import run_in_threadpool

__all__ = ["Conn", "connection", "open_pool"]


def open_pool(database_url: str, size: int) -> ConnectionPool[psycopg.Connection[Any]]:
    """open_pool opens the pool (connections are made on demand, checked before use)."""
    pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
        database_url,
        min_size=1,
        max_size=size,
        kwargs={"autocommit": True, "application_name": "homecare-api"},
        check=ConnectionPool.check_connection,
        timeout=10.0,
        open=False,
    )
    pool.open(wait=False)
    return pool


@asynccontextmanager
async def connection(app: Any) -> AsyncIterator[psycopg.Connection[Any]]:
    """connection lends one of ``app``'s pooled connections. The wait for a free one happens
    here, on the event loop, behind a semaphore as wide as the pool — never in a worker thread:
    with sync waits, a burst of requests (200 live streams connecting at once) filled every
    worker thread with waiters while the requests holding connections needed a thread to
    finish — a deadlock until the pool's timeout (measured: 60 streams at once stalled 10 s,
    then failed)."""
    pool: ConnectionPool[psycopg.Connection[Any]] = app.state.pool
    gate: asyncio.Semaphore = app.state.db_gate
    async with gate:
        conn = await run_in_threadpool(pool.getconn)
        try:
            yield conn
        finally:
            await run_in_threadpool(pool.putconn, conn)


async def _connection(request: Request) -> AsyncIterator[psycopg.Connection[Any]]:
    """A connection for this request (see ``connection``)."""
    async with connection(request.app) as conn:
        yield conn


# scope="function": the connection goes back to the pool when the handler returns, before the
# answer is sent — a slow client, or a live stream held for hours, holds no connection.
Conn = Annotated[psycopg.Connection[Any], Depends(_connection, scope="function")]

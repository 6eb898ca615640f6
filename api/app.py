"""App: ``create_app`` assembles the API — config, pool, error handlers, routers.

Nothing is built at import time: ``homecare api`` (and each test) calls ``create_app`` with its
own settings, and the lifespan opens the database pool and closes it and the live stream on
shutdown. Every request passes ``api.intake`` (body size, credentials before the body is read)
before any route. Routers live in ``api.routes`` (one per resource, all under ``/api/v1``); the
nurse dashboard's server-rendered pages come from ``api.dashboard.router``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from homecare.alerts import AlertsConfig, AlertService
from homecare.api.access_log import AccessLog
from homecare.api.config import ApiConfig
from homecare.api.db import open_pool
from homecare.api.errors import install_error_handlers
from homecare.api.intake import Intake
from homecare.api.live import LiveHub

__all__ = ["API_PREFIX", "PUBLIC_PATHS", "create_app"]

API_PREFIX = "/api/v1"
# The API's only routes open to everyone that take a body (tests/test_api_matrix.py checks it).
PUBLIC_PATHS = frozenset({f"{API_PREFIX}/auth/login"})


def create_app(config: ApiConfig) -> FastAPI:
    """create_app is the whole API (and dashboard) for ``config``."""
    alerts_config = config.alerts or AlertsConfig(
        database_url=config.database_url, packs_dir=config.packs_dir, clock=config.clock
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # A second lifespan on the same app (a test client inside another) shares the first's
        # pool rather than replacing it; the one that opened it closes it.
        if getattr(app.state, "pool", None) is not None:
            yield
            return
        app.state.pool = open_pool(config.database_url, config.pool_size)
        app.state.db_gate = asyncio.Semaphore(config.pool_size)
        try:
            yield
        finally:
            app.state.live.stop()
            app.state.pool.close()
            app.state.pool = None

    app = FastAPI(
        title="Homecare RPM API",
        version="1",
        description="REST API of Homecare RPM (docs/contracts.md). Every error is JSON"
        ' {"code", "message"}; every list is {"data": [...], "next_cursor": ...}.',
        lifespan=lifespan,
    )
    app.state.config = config
    app.state.alerts = AlertService(alerts_config)
    app.state.live = LiveHub(config.database_url)
    install_error_handlers(app)
    _include_routers(app)
    # The last added runs first: every request is logged and every answer marked no-store,
    # Intake's refusals included.
    app.add_middleware(
        Intake, prefix=API_PREFIX, public=PUBLIC_PATHS, max_body_bytes=config.max_body_bytes
    )
    app.add_middleware(_NoStore)
    app.add_middleware(AccessLog, prefix=API_PREFIX)
    return app


class _NoStore:
    """_NoStore marks every API answer ``Cache-Control: no-store`` (unless it set its own):
    they hold patient data, and neither a shared browser's cache nor a proxy may keep them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).setdefault("cache-control", "no-store")
            await send(message)

        await self.app(scope, receive, send_no_store)


def _include_routers(app: FastAPI) -> None:
    from homecare.api.routes import (
        alerts,
        audit_log,
        auth,
        cohort,
        devices,
        fhir,
        packs,
        patients,
        readings,
        silences,
        users,
    )

    modules = (auth, patients, readings, devices, alerts, silences, packs, audit_log, users)
    for module in (*modules, cohort, fhir):
        app.include_router(module.router, prefix=API_PREFIX)
    # The nurse dashboard: server-rendered pages, built on this app and api.auth.
    from homecare.api import dashboard

    app.include_router(dashboard.router)

"""Serve: run the API with uvicorn until a stop event is set (``homecare api`` / ``run``).

uvicorn runs in a thread of its own and installs no signal handlers there; the command's main
thread owns SIGTERM/SIGINT and sets ``stop``, so ``homecare api`` and ``homecare run`` shut
down the same way: stop accepting, finish requests in flight (SSE clients are told to go),
close the pool.
"""

from __future__ import annotations

import logging
import threading

import uvicorn
from fastapi import FastAPI

__all__ = ["serve"]

log = logging.getLogger(__name__)


def serve(app: FastAPI, host: str, port: int, stop: threading.Event) -> None:
    """serve runs ``app`` on host:port until ``stop`` is set; raises OSError if it cannot bind."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,  # the process's structured logging (homecare.logs) applies
        access_log=False,  # paths carry patient ids: not logged
        timeout_graceful_shutdown=5,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="api-server", daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        thread.join(timeout=0.05)
    if not server.started:
        raise OSError(f"the API could not start on {host}:{port} (see the log)")
    log.info("api listening", extra={"host": host, "port": port})
    while not stop.is_set() and thread.is_alive():
        stop.wait(0.5)
    live = getattr(app.state, "live", None)
    if live is not None:
        live.end_streams()  # open SSE streams finish now instead of holding the shutdown
    server.should_exit = True
    thread.join(timeout=15)

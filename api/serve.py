"""Serve: run the API with uvicorn in a thread (``homecare api``, ``homecare run``, the demo).

uvicorn runs in a thread of its own and installs no signal handlers there; the command's main
thread owns SIGTERM/SIGINT. ``start_server`` returns once the socket is bound — or raises
``OSError`` at once when it cannot be (port in use), so a command fails with a one-line reason
instead of running without its API. ``RunningServer.stop`` ends open live streams first (so the
graceful shutdown does not wait them out), then lets uvicorn finish requests in flight and the
app close its pool.
"""

from __future__ import annotations

import logging
import socket
import threading

import uvicorn
from fastapi import FastAPI

__all__ = ["RunningServer", "serve", "start_server"]

log = logging.getLogger(__name__)


class RunningServer:
    """RunningServer is a started uvicorn server and its thread."""

    def __init__(self, app: FastAPI, server: uvicorn.Server, thread: threading.Thread) -> None:
        self.app = app
        self.server = server
        self.thread = thread

    def stop(self, timeout: float = 15.0) -> None:
        """stop shuts the server down gracefully and waits for its thread."""
        live = getattr(self.app.state, "live", None)
        if live is not None:
            live.end_streams()
        self.server.should_exit = True
        self.thread.join(timeout=timeout)


def start_server(app: FastAPI, host: str, port: int) -> RunningServer:
    """start_server serves ``app`` on host:port from a thread; returns once it listens."""
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
    # The socket is bound here, so a taken port is this caller's OSError, said once.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this (Linux). Without it a keep-alive client waits out a
    # delayed ACK on every answer: measured 44-48 ms per request instead of 2 ms.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"the API cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="api-server", daemon=True
    )
    thread.start()
    while not server.started and thread.is_alive():
        thread.join(timeout=0.05)
    if not server.started:
        raise OSError(f"the API could not listen on {host}:{port} (in use? see the log)")
    log.info("api listening", extra={"host": host, "port": port})
    return RunningServer(app, server, thread)


def serve(app: FastAPI, host: str, port: int, stop: threading.Event) -> None:
    """serve runs ``app`` on host:port until ``stop`` is set (raises OSError if it cannot)."""
    running = start_server(app, host, port)
    try:
        while not stop.is_set() and running.thread.is_alive():
            stop.wait(0.5)
    finally:
        running.stop()

"""Logs: one structured line per event, carrying ids and counts — never payloads or names.

Readings are health data: a log line says which device and message a thing concerned and
what happened, and the data itself stays in the database, where access is controlled.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["configure_logging"]

# Record attributes that are not extras; ``color_message`` is uvicorn's copy of the message
# with terminal colour codes, which would put raw escape sequences into the logs.
_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "color_message"}
)


class JsonFormatter(logging.Formatter):
    """JsonFormatter renders a record and its ``extra`` fields as one JSON object."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                document[key] = value
        if record.exc_info:
            document["exc"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str)


class TextFormatter(logging.Formatter):
    """TextFormatter is for people at a terminal: message then ``key=value`` extras."""

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(
            f"{k}={v}"
            for k, v in record.__dict__.items()
            if k not in _STANDARD and not k.startswith("_")
        )
        line = f"{record.levelname.lower():7} {record.name}: {record.getMessage()}"
        if extras:
            line += f"  {extras}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(level: str, fmt: str, path: Path | None = None) -> None:
    """configure_logging sends every logger to stderr in the chosen format, or to the file
    ``path`` (appended to) with only errors also on stderr, as text: a command whose terminal is
    for people (the demo) keeps its logs without burying what it prints."""
    formatter = JsonFormatter() if fmt == "json" else TextFormatter()
    handlers: list[logging.Handler] = []
    if path is None:
        handlers.append(logging.StreamHandler(sys.stderr))
        handlers[0].setFormatter(formatter)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        to_file = logging.FileHandler(path, encoding="utf-8")
        to_file.setFormatter(formatter)
        errors = logging.StreamHandler(sys.stderr)
        errors.setLevel(logging.ERROR)
        errors.setFormatter(TextFormatter())
        handlers += [to_file, errors]
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("amqtt").setLevel(logging.WARNING)
    # APScheduler logs two INFO lines each time a job runs ("Running job", "executed
    # successfully"): with the alerts worker's one-second dispatch that is most of a service's
    # log. Its warnings (a missed or failed run) still show; DEBUG shows everything.
    scheduler = logging.getLogger("apscheduler")
    scheduler.setLevel(logging.NOTSET if root.level <= logging.DEBUG else logging.WARNING)

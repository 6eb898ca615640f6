"""Arguments: value types and defaults shared by several ``homecare`` subcommands."""

from __future__ import annotations

import argparse
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_LABELS = Path(".homecare/seed/labels.json")


class DefaultsFormatter(argparse.HelpFormatter):
    """DefaultsFormatter appends an option's default to its help, unless the help already says
    what the default is (``(default: …)`` written by hand, e.g. "from the clock")."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or default in (None, False, [], argparse.SUPPRESS)
            or not action.option_strings
        ):
            return text
        shown = f"{default:g}" if isinstance(default, float) else str(default)
        return f"{text} (default: {shown.replace('%', '%%')})"


class HomecareParser(argparse.ArgumentParser):
    """HomecareParser: every ``homecare`` (sub)command's parser, with defaults in its help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kwargs)


def stop_on_signals() -> threading.Event:
    """stop_on_signals is an event set by SIGTERM or SIGINT: long-running commands finish their
    current unit of work and return instead of dying mid-write."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    return stop


def instant(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def speed(text: str) -> float | None:
    if text == "max":
        return None
    if text == "realtime":
        return 1.0
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected max, realtime or a number > 0") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("expected max, realtime or a number > 0")
    return value


def aware_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError("expected an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError("the time needs an offset (Z or +hh:mm)")
    return moment


def programs(text: str) -> tuple[str, ...]:
    from homecare import catalogue

    names = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [p for p in names if p not in catalogue.PROGRAMS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"programs are among {', '.join(catalogue.PROGRAMS)}")
    return names


def acceleration(text: str) -> float:
    value = speed(text)
    if value is None:
        raise argparse.ArgumentTypeError("the demo needs a finite speed (realtime or a number)")
    return value

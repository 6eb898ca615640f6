"""CLI: the ``homecare`` command — one entry point that wires the stages into processes.

Every command builds its Settings here, in ``main``, and exits non-zero with a one-line reason
when the configuration is wrong or a service it needs does not answer in time.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from homecare import store
from homecare.arguments import HomecareParser
from homecare.commands import admin, evaluate, models, services, simulated
from homecare.logs import configure_logging
from homecare.settings import load_settings

__all__ = ["main"]

log = logging.getLogger("homecare")


def main(argv: Sequence[str] | None = None) -> int:
    """main runs one ``homecare`` command and returns its exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = "HOMECARE_" + "_".join(str(p) for p in first["loc"]).upper()
        print(f"homecare: configuration error: {field}: {first['msg']}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        result: int = args.run(settings, args)
        return result
    except (store.StoreError, OSError, TimeoutError) as exc:
        print(f"homecare {args.command}: {exc}", file=sys.stderr)
        return 1
    except _ingest_errors() as exc:
        print(f"homecare {args.command}: {exc}", file=sys.stderr)
        return 1
    except _no_rule_packs() as exc:
        print(f"homecare {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _no_rule_packs() -> type[Exception]:
    from homecare.wiring import NoRulePacks

    return NoRulePacks


def _ingest_errors() -> type[Exception]:
    from homecare.ingest import IngestError

    return IngestError


def _parser() -> argparse.ArgumentParser:
    parser = HomecareParser(
        prog="homecare", description="Homecare RPM: remote patient monitoring pipeline."
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=HomecareParser)
    services.add_commands(commands)
    admin.add_commands(commands)
    evaluate.add_commands(commands)
    models.add_commands(commands)
    simulated.add_commands(commands)
    return parser

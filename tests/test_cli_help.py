"""``homecare … --help``: every command and option says what it does, and its default.

Walks the whole parser tree, so a new option without help fails here rather than reaching a
newcomer as a bare ``--days DAYS``.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from homecare.cli import _parser


def parsers(
    parser: argparse.ArgumentParser, path: str = "homecare"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from parsers(child, f"{path} {name}")


def options(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        yield action


def rendered_help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The text ``--help`` prints for an option, defaults expanded as the formatter does."""
    return str(parser._get_formatter()._expand_help(action))


def has_a_default(action: argparse.Action) -> bool:
    return action.default not in (None, False, [], argparse.SUPPRESS)


def test_every_command_has_a_summary() -> None:
    for path, parser in parsers(_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helped = {choice.dest for choice in action._choices_actions if choice.help}
                assert helped == set(action.choices), f"{path}: commands without help"


def test_every_option_has_a_description_and_shows_its_default() -> None:
    problems = []
    for path, parser in parsers(_parser()):
        for action in options(parser):
            name = "/".join(action.option_strings) or action.dest
            text = rendered_help(parser, action) if action.help else ""
            if not text.strip():
                problems.append(f"{path} {name}: no description")
            elif has_a_default(action) and "default" not in text:
                problems.append(f"{path} {name}: default {action.default!r} not shown")
    assert not problems, "\n".join(problems)


def test_no_option_shows_its_internal_name_as_metavar() -> None:
    """``--patients SEED_PATIENTS`` leaks a destination name; the metavar says what to give."""
    problems = []
    for path, parser in parsers(_parser()):
        for action in options(parser):
            if not action.option_strings or action.nargs == 0 or action.metavar or action.choices:
                continue
            long = max(action.option_strings, key=len).lstrip("-").replace("-", "_")
            if action.dest != long:
                problems.append(f"{path} {action.option_strings[0]} shows {action.dest.upper()}")
    assert not problems, "\n".join(problems)


def test_the_help_of_every_command_renders() -> None:
    for path, parser in parsers(_parser()):
        text = parser.format_help()
        assert "%(" not in text, path
        assert "(default: None)" not in text, path

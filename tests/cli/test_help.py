"""Every argument and option of every command has a line of help (walks the command table)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from linnix.cli import COMMANDS, _parser


def _undocumented(parser: argparse.ArgumentParser, path: str) -> Iterator[str]:
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                if not helps.get(name):
                    yield f"{path} {name}"
                yield from _undocumented(sub, f"{path} {name}")
            continue
        if not (action.help or "").strip():
            yield f"{path} {'/'.join(action.option_strings) or action.dest}"


def test_every_argument_of_every_command_has_help() -> None:
    assert list(_undocumented(_parser(), "linnix")) == []


def test_the_walk_sees_every_command_and_finds_what_lacks_help() -> None:
    parser = _parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(subparsers.choices) == {command.name for command in COMMANDS}
    subparsers.choices["check"].add_argument("--undocumented")
    assert list(_undocumented(parser, "linnix")) == ["linnix check --undocumented"]

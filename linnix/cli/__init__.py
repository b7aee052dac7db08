"""Command-line interface: argument parsing and printing only.

Every sub-command is one entry of :data:`COMMANDS`: its name, its help line,
the function that adds its arguments and the function that runs it.  Those
live in one module per group of commands (:mod:`.rules`, :mod:`.live`,
:mod:`.demo`, :mod:`.client`, :mod:`.analyze`, :mod:`.token`, :mod:`.audit`); the
work itself is done by the packages (language, runtime, tools, api, analysis), which each
command imports when it runs, so that ``linnix check`` never pays for trio, quart or bcc.
Exit status: 0 success, 1 failure found (rule errors, failed tests, bad trace), 2 usage
error, 3 internal error (a bug).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from ..errors import ConfigError, LinnixError, RuleError, UsageError
from . import analyze, audit, client, demo, live, rules, token, ui
from .exits import EXIT_BUG, EXIT_FAIL, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE

__all__ = ["COMMANDS", "Command", "main"]


@dataclass(frozen=True)
class Command:
    """One sub-command: ``linnix NAME``."""

    name: str
    help: str  # its line in ``linnix --help``
    arguments: Callable[[argparse.ArgumentParser], None]  # adds its arguments to its parser
    run: Callable[[argparse.Namespace], int]  # runs it; the exit status
    description: str | None = None  # the text of ``linnix NAME --help``, when not just usage


COMMANDS: tuple[Command, ...] = (
    Command("check", "check .lnx rule files like a compiler would",
            rules.check_arguments, rules.cmd_check),
    Command("explain", "show the evaluation plan of rule files",
            rules.explain_arguments, rules.cmd_explain),
    Command("replay", "replay a recorded trace through the rules",
            rules.replay_arguments, rules.cmd_replay),
    Command("test", "run the test blocks of rule files",
            rules.test_arguments, rules.cmd_test),
    Command("fmt", "rewrite .lnx files in the canonical layout",
            rules.fmt_arguments, rules.cmd_fmt),
    Command("rules", "print where the shipped rules are",
            rules.rules_arguments, rules.cmd_rules),
    Command("demo", "run real, bounded workloads that trip each shipped rule",
            demo.demo_arguments, demo.cmd_demo,
            description="Run a real, bounded workload that trips one shipped rule (or all of "
                        "them in turn), detached from this terminal, and clean it up at the "
                        "end, on Ctrl-C and on SIGTERM."),
    Command("run", "run the daemon: capture, evaluate, alert",
            live.run_arguments, live.cmd_run),
    Command("record", "record the live event stream as a trace",
            live.record_arguments, live.cmd_record),
    Command("doctor", "check what eBPF capture needs on this host",
            live.doctor_arguments, live.cmd_doctor),
    Command("actions", "list, show, approve, reject or thaw actions; pause them all",
            client.actions_arguments, client.cmd_actions),
    Command("incidents", "list or show incidents",
            client.incidents_arguments, client.cmd_incidents),
    Command("analyze", "analyse a stored incident offline, reading the state directory",
            analyze.analyze_arguments, analyze.cmd_analyze,
            description="Run the built-in analyst on one incident of the state database, "
                        "read-only (beside the daemon or on a copy of its state directory), "
                        "and print its numbered facts; nothing is stored ('linnix incidents "
                        "analyze ID' has the daemon analyse it and keep the analysis)."),
    Command("stream", "follow the daemon's alerts and actions as they happen",
            client.stream_arguments, client.cmd_stream),
    Command("token", "add, list or revoke the API's named tokens",
            token.token_arguments, token.cmd_token),
    Command("audit", "verify the hash chain of the audit log",
            audit.audit_arguments, audit.cmd_audit),
    Command("ui", "print a one-time link that signs a browser in to the dashboard",
            ui.ui_arguments, ui.cmd_ui),
)


class _Parser(argparse.ArgumentParser):
    """A parser whose errors reach :func:`main` as UsageError, which prints them its way."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    """The parser of ``linnix``, with one sub-parser per entry of :data:`COMMANDS`."""
    p = _Parser(prog="linnix", description="Process-lifecycle rules for Linux hosts.")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for command in COMMANDS:
        cp = sub.add_parser(command.name, help=command.help, description=command.description)
        command.arguments(cp)
        cp.set_defaults(func=command.run)
    return p


def _unwrapped(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a command; an error raised inside a trio nursery arrives in an exception
    group, which is opened when all it holds are errors linnix reports itself."""
    try:
        return func(args)
    except BaseExceptionGroup as group:
        leaves = list(_leaves(group))
        if leaves and all(isinstance(e, (LinnixError, KeyboardInterrupt)) for e in leaves):
            raise leaves[0] from None
        raise


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for err in group.exceptions:
        if isinstance(err, BaseExceptionGroup):
            yield from _leaves(err)
        else:
            yield err


def _tolerant_streams() -> None:
    """Characters the terminal's encoding lacks are written as escapes, never an error."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):
                reconfigure(errors="backslashreplace")


def _attach_dashed_values(parser: argparse.ArgumentParser, argv: Sequence[str]) -> list[str]:
    """``--until -5s`` as ``--until=-5s``: argparse takes a value that starts with a dash
    for an option of its own ("expected one argument"); attached, it reaches the option's
    type, which says what is wrong with it."""
    takes_value = set(_value_options(parser))
    out: list[str] = []
    for arg in argv:
        if out and out[-1] in takes_value and arg[:1] == "-" and arg[1:2].isdigit():
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def _value_options(parser: argparse.ArgumentParser) -> Iterator[str]:
    """The long options, in every sub-command, that take exactly one value."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _value_options(sub)
        elif action.nargs is None and action.option_strings:
            yield from (o for o in action.option_strings if o.startswith("--"))


def main(argv: Sequence[str] | None = None) -> int:
    _tolerant_streams()
    parser = _parser()
    try:
        args = parser.parse_args(_attach_dashed_values(
            parser, sys.argv[1:] if argv is None else argv))
        if args.version:
            from .. import __version__

            print(f"linnix {__version__}")
            return EXIT_OK
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        func: Callable[[argparse.Namespace], int] = args.func
        return _unwrapped(func, args)
    except UsageError as err:
        sys.stderr.write(f"linnix: {err}\n")
        sys.stderr.write("run 'linnix --help' for usage\n")
        return EXIT_USAGE
    except RuleError as err:
        rules.print_diagnostics(err.diagnostics, sys.stderr, 100)
        return EXIT_FAIL
    except ConfigError as err:  # the file the command was given is wrong: a usage error
        sys.stderr.write(f"linnix: {err}\n")
        return EXIT_USAGE
    except LinnixError as err:
        sys.stderr.write(f"linnix: {err}\n")
        return EXIT_FAIL
    except KeyboardInterrupt:
        sys.stderr.write("linnix: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_OK
    except Exception as err:  # a bug: say so plainly, traceback only on request
        if os.environ.get("LINNIX_DEBUG"):
            raise
        sys.stderr.write(f"linnix: internal error: {type(err).__name__}: {err}\n"
                         "This is a bug in linnix. Set LINNIX_DEBUG=1 to see the traceback.\n")
        return EXIT_BUG


def _quiet_stdout() -> None:
    """After a closed pipe, point stdout at /dev/null so exit does not complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass

"""Command-line interface: argument parsing and printing only.

Each command imports what it needs lazily, so that ``linnix check`` never
pays for trio, quart or bcc.  Exit status: 0 success, 1 failure found (rule
errors, failed tests, bad trace), 2 usage error, 3 internal error (a bug).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TextIO

from ..errors import LinnixError, RuleError, UsageError

__all__ = ["main"]

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_BUG = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def _print_diagnostics(diags: Sequence[object], out: TextIO, limit: int) -> None:
    from ..language.source import Diagnostic, render_all

    shown = [d for d in diags if isinstance(d, Diagnostic)]
    if shown:
        out.write(render_all(shown, limit) + "\n")


# ---- check -------------------------------------------------------------------------

def cmd_check(args: argparse.Namespace) -> int:
    import json

    from ..language.pipeline import build
    from ..language.source import Diagnostic, diagnostics_to_json

    if not args.paths and args.config is None:
        raise UsageError("give the rule files or directories to check, or --config FILE")
    problems = []
    if args.config is not None:
        from ..config import config_problems

        problems = config_problems(args.config)
    result = build(args.paths) if args.paths else None
    diags: Sequence[Diagnostic] = result.diagnostics if result is not None else []
    n_errors = len(problems) + (len(result.errors) if result is not None else 0)
    n_warnings = len(result.warnings) if result is not None else 0
    errors = n_errors + (n_warnings if args.strict else 0)
    if args.format == "json":
        payload = diagnostics_to_json(diags) + [p.to_json() for p in problems]
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return EXIT_FAIL if errors else EXIT_OK
    _print_diagnostics(diags, sys.stdout, args.max_errors)
    for problem in problems:
        where = f"{problem.where()}: error[C001]: "
        sys.stdout.write(where + (f"{problem.key}: " if problem.key else "") + problem.message
                         + "\n")
    counts = (f"{n_errors} error{'s' * (n_errors != 1)}, "
              f"{n_warnings} warning{'s' * (n_warnings != 1)}")
    checked = []
    if result is not None:
        n_files = len(result.program.sources)
        checked.append(f"{n_files} file{'s' * (n_files != 1)}")
    if result is not None and result.plan is not None:
        n_rules, tests = len(result.plan.rules), len(result.tests)
        checked.append(f"{n_rules} rule{'s' * (n_rules != 1)}, {tests} test{'s' * (tests != 1)}")
    if args.config is not None:
        checked.append(f"config {args.config}")
    ok = not problems and (result is None or result.plan is not None)
    sys.stdout.write(f"{'ok' if ok else 'failed'}: {', '.join(checked)} ({counts})\n")
    return EXIT_FAIL if errors else EXIT_OK


# ---- explain -----------------------------------------------------------------------

def cmd_explain(args: argparse.Namespace) -> int:
    import json

    from ..language.pipeline import build
    from ..tools.explain import explain_json, explain_text

    result = build(args.paths)
    if result.plan is None:
        _print_diagnostics(result.errors, sys.stderr, args.max_errors)
        return EXIT_FAIL
    if args.format == "json":
        sys.stdout.write(json.dumps(explain_json(result.plan), indent=2) + "\n")
    else:
        sys.stdout.write(explain_text(result.plan))
    if args.dump_code:
        for path, source in result.plan.generated.items():
            sys.stdout.write(f"\n# ---- generated code for {path} ----\n")
            sys.stdout.write("\n".join(line for line in source.splitlines() if line) + "\n")
    return EXIT_OK


# ---- the parser --------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="linnix", description="Process-lifecycle rules for Linux hosts.")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    c = sub.add_parser("check", help="check .lnx rule files like a compiler would")
    c.add_argument("paths", nargs="*", metavar="PATH", help="files or directories")
    c.add_argument("--config", metavar="FILE",
                   help="also check this configuration file (linnix.toml)")
    c.add_argument("--format", choices=("text", "json"), default="text")
    c.add_argument("--strict", action="store_true", help="treat warnings as errors")
    c.add_argument("--max-errors", type=int, default=100, metavar="N",
                   help="show at most N diagnostics (default 100)")
    c.set_defaults(func=cmd_check)

    e = sub.add_parser("explain", help="show the evaluation plan of rule files")
    e.add_argument("paths", nargs="+", metavar="PATH")
    e.add_argument("--format", choices=("text", "json"), default="text")
    e.add_argument("--dump-code", action="store_true", help="also print the generated code")
    e.add_argument("--max-errors", type=int, default=100, metavar="N")
    e.set_defaults(func=cmd_explain)

    _extend(sub)
    return p


def _extend(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Commands whose implementations live in their own modules."""
    from . import commands

    commands.register(sub)


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


def main(argv: Sequence[str] | None = None) -> int:
    _tolerant_streams()
    parser = _parser()
    try:
        args = parser.parse_args(argv)
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
        _print_diagnostics(err.diagnostics, sys.stderr, 100)
        return EXIT_FAIL
    except LinnixError as err:
        sys.stderr.write(f"linnix: {err}\n")
        return EXIT_FAIL
    except KeyboardInterrupt:
        sys.stderr.write("linnix: interrupted\n")
        return 130
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

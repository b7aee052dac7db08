"""Sub-commands implemented outside cli.py, and their argument parsers."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from ..errors import UsageError
from ..terminal import printable
from .argtypes import duration, positive_duration

if TYPE_CHECKING:
    from ..language.pipeline import Build

__all__ = ["register"]


def _plan_for(paths: list[str]) -> Build:
    """The built rules; RuleError (printed by the CLI) when they have errors."""
    from ..language.pipeline import build

    result = build(paths)
    result.require_plan()
    return result


# ---- replay --------------------------------------------------------------------------

def cmd_replay(args: argparse.Namespace) -> int:
    import orjson

    from ..runtime.replay import Timeline, replay, summary_json, text_summary

    if not args.rules and not os.path.isdir("rules"):
        raise UsageError("no rules given and there is no rules/ directory here: "
                         "name them with --rules PATH")
    result = _plan_for(args.rules or ["rules/"])
    plan = result.require_plan()
    progress = sys.stderr if sys.stderr.isatty() else None
    if args.format == "jsonl":
        out = sys.stdout.buffer
        dumps = orjson.dumps

        def sink(batch):  # type: ignore[no-untyped-def]
            out.write(b"".join(dumps(item.to_json()) + b"\n" for item in batch))

        res = replay(args.trace, plan, sink, tick_s=args.tick, skip_invalid=args.skip_invalid,
                     until=args.until, progress=progress)
        out.write(dumps(summary_json(res)) + b"\n")
        out.flush()
        text_summary(res, sys.stderr)
        return 0
    timeline = Timeline(sys.stdout)
    res = replay(args.trace, plan, timeline, tick_s=args.tick, skip_invalid=args.skip_invalid,
                 until=args.until, progress=progress)
    if not timeline.lines:
        sys.stdout.write("(no alerts)\n")
    text_summary(res, sys.stdout)
    return 0


# ---- test ------------------------------------------------------------------------------

def cmd_test(args: argparse.Namespace) -> int:
    from ..runtime.testing import junit_xml, run_test

    result = _plan_for(args.paths)
    tests = result.tests
    if not tests:
        sys.stdout.write("no test blocks found in " + ", ".join(args.paths) + "\n")
        return 0
    outcomes = []
    for test in tests:
        outcome = run_test(test, result.require_plan())
        outcomes.append(outcome)
        where = f"{test.span.path}:{test.span.line}"
        status = "PASS" if outcome.passed else "FAIL"
        sys.stdout.write(printable(f"{status}  {test.title}  ({where})") + "\n")
        if outcome.error:
            sys.stdout.write(printable(f"      error: {outcome.error}") + "\n")
        for reason in outcome.failures:
            sys.stdout.write(printable(f"      {reason}") + "\n")
    failed = sum(1 for o in outcomes if not o.passed)
    sys.stdout.write(f"\n{len(outcomes) - failed} passed, {failed} failed\n")
    if args.junit:
        try:
            with open(args.junit, "w", encoding="utf-8") as f:
                f.write(junit_xml(outcomes))
        except OSError as err:
            raise UsageError(f"cannot write {args.junit}: {err.strerror}") from None
    return 1 if failed else 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the remaining sub-commands to the parser."""
    r = sub.add_parser("replay", help="replay a recorded trace through the rules")
    r.add_argument("trace", metavar="TRACE", help="a .jsonl trace (.gz is fine)")
    r.add_argument("--rules", action="append", metavar="PATH",
                   help="rule file or directory (repeatable; default rules/)")
    r.add_argument("--tick", type=positive_duration, default=0.5, metavar="DURATION",
                   help="evaluation interval (default 500ms)")
    r.add_argument("--format", choices=("text", "jsonl"), default="text")
    r.add_argument("--skip-invalid", action="store_true",
                   help="count invalid lines and go on instead of stopping")
    r.add_argument("--until", type=duration, metavar="DURATION",
                   help="stop after this trace time (e.g. 30s)")
    r.set_defaults(func=cmd_replay)

    t = sub.add_parser("test", help="run the test blocks of rule files")
    t.add_argument("paths", nargs="+", metavar="PATH")
    t.add_argument("--junit", metavar="FILE", help="also write JUnit XML here")
    t.set_defaults(func=cmd_test)

    from ..tools.fmt import add_parser as add_fmt

    add_fmt(sub)

    from ..tools.demo import add_parser as add_demo

    add_demo(sub)

    from .live import register as add_live

    add_live(sub)
    from .client import register as add_client
    add_client(sub)

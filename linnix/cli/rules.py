"""The commands that work on rule files: ``check``, ``explain``, ``fmt``, ``replay``, ``test``
and ``rules path``.

They share one convention: results on stdout (check's verdict or its JSON, the
explanation, the files fmt changes or its diff, the replay, the tests' results),
diagnostics and errors on stderr, so that ``linnix check rules/ > verdict``
leaves the problems on the terminal and a script reads only what it asked for.

For each command, the function that adds its arguments to its parser and the
function that runs it (``cmd_*``): parsing and printing only, the work is
done by :mod:`linnix.language`, :mod:`linnix.runtime` and :mod:`linnix.tools`.
Those are imported inside the functions, so that building the parser costs
nothing and ``linnix check`` never pays for trio, quart or bcc.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from ..errors import UsageError
from ..terminal import printable
from .argtypes import duration, positive_duration, positive_int
from .exits import EXIT_FAIL, EXIT_OK

if TYPE_CHECKING:
    from ..config import ConfigProblem
    from ..language.pipeline import Build
    from ..plan import Plan
    from ..runtime.replayanalyst import ReplayAnalyst

__all__ = [
    "check_arguments", "cmd_check", "explain_arguments", "cmd_explain", "fmt_arguments",
    "cmd_fmt", "replay_arguments", "cmd_replay", "test_arguments", "cmd_test",
    "print_diagnostics", "require_rule_files", "rules_arguments", "cmd_rules",
]


def print_diagnostics(diags: Sequence[object], out: TextIO, limit: int) -> None:
    """The diagnostics among ``diags``, rendered like a compiler's, at most ``limit``."""
    from ..language.source import Diagnostic, render_all

    shown = [d for d in diags if isinstance(d, Diagnostic)]
    if shown:
        out.write(render_all(shown, limit) + "\n")


def _plan_for(paths: list[str]) -> Build:
    """The built rules; RuleError (printed by the CLI) when they have errors."""
    from ..language.pipeline import build

    result = build(paths)
    result.require_plan()
    return result


def require_rule_files(paths: Sequence[str]) -> None:
    """A usage error for a directory among ``paths`` that holds no ``.lnx`` file: checking,
    testing or running nothing is most likely a wrong path, never a success."""
    from ..language.loader import discover

    for path in paths:
        if os.path.isdir(path) and not discover([path]):
            raise UsageError(f"{path}: no .lnx file found in this directory")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


# ---- check -------------------------------------------------------------------------

def check_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="files or directories (default: the shipped rules, 'linnix rules "
                        "path', unless --config is given)")
    p.add_argument("--config", metavar="FILE",
                   help="also check this configuration file (linnix.toml)")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="text for people (default) or a JSON list of the diagnostics")
    p.add_argument("--strict", action="store_true", help="treat warnings as errors")
    p.add_argument("--max-errors", type=int, default=100, metavar="N",
                   help="show at most N diagnostics (default 100)")


def cmd_check(args: argparse.Namespace) -> int:
    import json

    from ..language.pipeline import check_files
    from ..language.source import Diagnostic, diagnostics_to_json

    if not args.paths and args.config is None:
        from ..shipped import rules_dir

        args.paths = [rules_dir()]
    problems: list[ConfigProblem] = []
    if args.config is not None:
        from ..config import config_problems

        problems = config_problems(args.config)
    require_rule_files(args.paths)
    result = check_files(args.paths) if args.paths else None
    diags: Sequence[Diagnostic] = result.diagnostics if result is not None else []
    n_errors = len(problems) + (len(result.errors) if result is not None else 0)
    n_warnings = len(result.warnings) if result is not None else 0
    errors = n_errors + (n_warnings if args.strict else 0)
    if args.format == "json":
        payload = diagnostics_to_json(diags) + [p.to_json() for p in problems]
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    else:  # the diagnostics on stderr, the verdict on stdout (see the module's docstring)
        print_diagnostics(diags, sys.stderr, args.max_errors)
        _print_problems(problems)
        counts = f"{_plural(n_errors, 'error')}, {_plural(n_warnings, 'warning')}"
        sys.stdout.write(_check_summary(result, problems, args.config, errors)
                         + f" ({counts})\n")
    return EXIT_FAIL if errors else EXIT_OK


def _print_problems(problems: Sequence[ConfigProblem]) -> None:
    """The configuration file's problems, in the same shape as the rules' diagnostics."""
    for problem in problems:
        where = f"{problem.where()}: error[C001]: "
        sys.stderr.write(where + (f"{problem.key}: " if problem.key else "") + problem.message
                         + "\n")


def _check_summary(result: Build | None, problems: Sequence[ConfigProblem],
                   config: str | None, errors: int) -> str:
    """``ok: 3 files, 7 rules, 2 tests`` (or ``failed: ...`` when ``errors``, warnings
    with --strict included, make the command fail): what was checked."""
    checked = []
    if result is not None:
        checked.append(_plural(len(result.program.sources), "file"))
    if result is not None and result.compiled is not None:
        checked.append(f"{_plural(result.compiled, 'rule')}, "
                       f"{_plural(len(result.tests), 'test')}")
    if config is not None:
        checked.append(f"config {config}")
    ok = not errors and not problems and (result is None or result.compiled is not None)
    return f"{'ok' if ok else 'failed'}: {', '.join(checked)}"


# ---- explain -----------------------------------------------------------------------

def explain_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="rule files or directories")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="text for people (default) or the plan as JSON")
    p.add_argument("--dump-code", action="store_true", help="also print the generated code")
    p.add_argument("--max-errors", type=int, default=100, metavar="N",
                   help="when the rules have errors, show at most N of them (default 100)")


def cmd_explain(args: argparse.Namespace) -> int:
    import json

    from ..language.pipeline import build
    from ..tools.explain import explain_json, explain_text

    result = build(args.paths)
    if result.plan is None:
        print_diagnostics(result.errors, sys.stderr, args.max_errors)
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


# ---- fmt ---------------------------------------------------------------------------

def fmt_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or directories")
    p.add_argument("--check", action="store_true",
                   help="change nothing; list the files that would change and exit 1 if any")
    p.add_argument("--diff", action="store_true",
                   help="change nothing; print what would change as a unified diff and exit 1 "
                        "if anything would")


def cmd_fmt(args: argparse.Namespace) -> int:
    from ..tools.fmt import format_paths

    return format_paths(args.paths, check=args.check, diff=args.diff)


# ---- replay ------------------------------------------------------------------------

def replay_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("trace", metavar="TRACE", help="a .jsonl trace (.gz is fine)")
    p.add_argument("--rules", action="append", metavar="PATH",
                   help="rule file or directory (repeatable; default: rules/ here if there "
                        "is one, else the shipped rules, 'linnix rules path')")
    p.add_argument("--tick", type=positive_duration, default=0.5, metavar="DURATION",
                   help="evaluation interval (default 500ms)")
    p.add_argument("--format", choices=("text", "jsonl"), default="text",
                   help="a timeline for people (default) or one JSON object per alert and "
                        "action, then the summary")
    p.add_argument("--skip-invalid", action="store_true",
                   help="count invalid lines and go on instead of stopping")
    p.add_argument("--until", type=duration, metavar="DURATION",
                   help="stop after this trace time (e.g. 30s)")
    p.add_argument("--analyze", action="store_true",
                   help="analyse each incident (the first 1000) as the built-in analyst "
                        "would when it opens: the analyses after the summary, or with "
                        "--format jsonl in each firing alert's line ('incident', 'analysis')")
    why = p.add_argument_group("why a rule did or did not fire")
    why.add_argument("--why", metavar="RULE",
                     help="print, tick by tick, what RULE read, which of its parts held, "
                          "its state and what blocked it; then the closest it came")
    why.add_argument("--pid", type=positive_int, metavar="PID",
                     help="with --why: only this process's instance")
    why.add_argument("--from", dest="start", type=duration, metavar="T",
                     help="with --why: from this trace time (e.g. 10s)")
    why.add_argument("--to", dest="end", type=duration, metavar="T",
                     help="with --why: up to this trace time")
    base = p.add_argument_group("back-testing a rule change")
    base.add_argument("--baseline", action="append", metavar="PATH",
                      help="the rules before the change (repeatable): compare the alerts and "
                           "actions of --rules with theirs; exit 1 when they differ")
    base.add_argument("--tolerance", type=duration, metavar="DURATION",
                      help="with --baseline: a time moved by at most this much is the same "
                           "(default 1s)")


def _replay_usage(args: argparse.Namespace) -> None:
    """Usage errors for options that do not go together."""
    if args.why is not None and args.baseline:
        raise UsageError("--why and --baseline cannot be used together: explain one rule "
                         "set, or compare two")
    if args.analyze and (args.why is not None or args.baseline):
        raise UsageError(f"--analyze cannot be used with {'--why' if args.why else '--baseline'}"
                         ": it analyses the incidents of one plain replay")
    if args.why is None:
        given = [o for o, v in (("--pid", args.pid), ("--from", args.start),
                                ("--to", args.end)) if v is not None]
        if given:
            raise UsageError(f"{', '.join(given)} only go with --why RULE")
    if args.start is not None and args.end is not None and args.start > args.end:
        raise UsageError(f"--from ({args.start:g}s) is after --to ({args.end:g}s)")
    if not args.baseline and args.tolerance is not None:
        raise UsageError("--tolerance only goes with --baseline")
    if args.baseline and not args.rules:
        raise UsageError("--baseline needs the new rules too: --rules NEW --baseline OLD")


def cmd_replay(args: argparse.Namespace) -> int:
    from ..runtime.replay import Timeline, replay, text_summary

    _replay_usage(args)
    if args.baseline:
        return _replay_baseline(args)
    paths = args.rules or _default_replay_rules()
    require_rule_files(paths)
    build = _plan_for(paths)
    plan = build.require_plan()
    progress = sys.stderr if sys.stderr.isatty() else None
    if args.why is not None:
        return _replay_why(args, build, progress)
    analyst = _replay_analyst(args, plan)
    try:
        if args.format == "jsonl":
            return _replay_jsonl(args, plan, progress, analyst)
        timeline = Timeline(sys.stdout)
        res = replay(args.trace, plan, analyst.sink(timeline) if analyst else timeline,
                     tick_s=args.tick, skip_invalid=args.skip_invalid, until=args.until,
                     progress=progress, **_analysing(analyst))
        if not timeline.lines:
            sys.stdout.write("(no alerts)\n")
        text_summary(res, sys.stdout)
        if analyst is not None:
            from ..runtime.replayanalyst import text_analyses

            text_analyses(analyst, sys.stdout)
        return EXIT_OK
    finally:
        if analyst is not None:
            analyst.close()


def _replay_analyst(args: argparse.Namespace, plan: Plan) -> ReplayAnalyst | None:
    if not args.analyze:
        return None
    from ..runtime.replayanalyst import ReplayAnalyst

    return ReplayAnalyst(plan)


def _analysing(analyst: ReplayAnalyst | None) -> dict[str, Any]:
    """replay()'s arguments that let ``analyst`` see each tick (none without one)."""
    return {} if analyst is None else {"attach": analyst.attach, "history": True}


def _default_replay_rules() -> list[str]:
    """``rules/`` in the working directory, as in a checkout or a project of one's own;
    else the rules shipped with linnix."""
    if os.path.isdir("rules"):
        return ["rules/"]
    from ..shipped import rules_dir

    return [rules_dir()]


def _replay_jsonl(args: argparse.Namespace, plan: Plan, progress: TextIO | None,
                  analyst: ReplayAnalyst | None) -> int:
    """``replay --format jsonl``: one JSON line per alert, then the summary; the
    summary for people goes to stderr."""
    import orjson

    from ..engine.evaluator import Alert
    from ..runtime.replay import replay, summary_json, text_summary

    out = sys.stdout.buffer
    dumps = orjson.dumps

    def sink(batch):  # type: ignore[no-untyped-def]
        out.write(b"".join(dumps(item.to_json()) + b"\n" for item in batch))

    def analysed(batch):  # type: ignore[no-untyped-def]
        assert analyst is not None
        for item in batch:
            line = item.to_json()
            incident = analyst.incident_of(item) if isinstance(item, Alert) else None
            if incident is not None:
                line.update(incident=incident, analysis=analyst.analyses.get(incident))
            out.write(dumps(line) + b"\n")

    res = replay(args.trace, plan, analyst.sink(analysed) if analyst else sink,
                 tick_s=args.tick, skip_invalid=args.skip_invalid, until=args.until,
                 progress=progress, **_analysing(analyst))
    out.write(dumps(summary_json(res)) + b"\n")
    out.flush()
    text_summary(res, sys.stderr)
    return EXIT_OK


def _replay_why(args: argparse.Namespace, build: Build, progress: TextIO | None) -> int:
    """``replay --why RULE``: the rule's records as they come, then its summary."""
    from ..language.why import why_parts, why_rule
    from ..names import Scope
    from ..runtime import why

    plan = build.require_plan()
    rule = why_rule(plan, args.why)
    if args.pid is not None and rule.scope is Scope.SYSTEM:
        raise UsageError(f"--pid: rule '{rule.name}' is about the whole host, not a process")
    what = why.WhyRange(rule.name, why_parts(build.program, plan, rule.name), args.pid,
                        args.start, args.end)
    jsonl = args.format == "jsonl"
    emit = why.jsonl_writer(sys.stdout.buffer) if jsonl else why.text_writer(sys.stdout)
    _, watch = why.replay_why(args.trace, plan, what, emit, tick_s=args.tick,
                              skip_invalid=args.skip_invalid, until=args.until,
                              progress=progress)
    if jsonl:
        import orjson

        sys.stdout.buffer.write(orjson.dumps(why.summary_json(watch)) + b"\n")
        sys.stdout.buffer.flush()
    else:
        why.text_summary(watch, sys.stdout)
    return EXIT_OK


def _replay_baseline(args: argparse.Namespace) -> int:
    """``replay --rules NEW --baseline OLD``: the differences; exit 1 when there are any."""
    from ..runtime import baseline

    require_rule_files([*args.rules, *args.baseline])
    new = _plan_for(args.rules).require_plan()
    old = _plan_for(args.baseline).require_plan()
    new_items, old_items = baseline.run_both(args.trace, new, old, tick_s=args.tick,
                                             skip_invalid=args.skip_invalid, until=args.until)
    tolerance = 1.0 if args.tolerance is None else args.tolerance
    diff = baseline.compare(new_items, old_items, tolerance)
    if args.format == "jsonl":
        import orjson

        out = sys.stdout.buffer
        out.write(b"".join(orjson.dumps(obj) + b"\n" for obj in baseline.diff_json(diff)))
        out.flush()
    else:
        baseline.diff_text(diff, sys.stdout)
    return EXIT_FAIL if diff.differs else EXIT_OK


# ---- test --------------------------------------------------------------------------

def test_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="rule files or directories whose test blocks run")
    p.add_argument("--junit", metavar="FILE", help="also write JUnit XML here")


def cmd_test(args: argparse.Namespace) -> int:
    from ..runtime.testing import junit_xml, run_test

    require_rule_files(args.paths)
    result = _plan_for(args.paths)
    tests = result.tests
    if not tests:
        sys.stdout.write("no test blocks found in " + ", ".join(args.paths) + "\n")
        return EXIT_OK
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
    return EXIT_FAIL if failed else EXIT_OK


# ---- rules path --------------------------------------------------------------------

def rules_arguments(p: argparse.ArgumentParser) -> None:
    verbs = p.add_subparsers(dest="verb", metavar="path", required=True)
    verbs.add_parser(
        "path", help="print the directory of the shipped rules",
        description="Print the directory of the rules shipped with linnix: what 'linnix "
                    "check' and 'linnix run' use when given no rules.  The traces their "
                    "tests name are in ../fixtures beside it; to change the rules, copy "
                    "both directories (to /etc/linnix/rules and /etc/linnix/fixtures).")


def cmd_rules(args: argparse.Namespace) -> int:
    from ..shipped import rules_dir

    if args.verb != "path":  # argparse requires the verb: this is only a safeguard
        raise UsageError("say what to do: linnix rules path")
    sys.stdout.write(printable(rules_dir()) + "\n")
    return EXIT_OK

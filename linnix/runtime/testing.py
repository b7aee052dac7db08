"""``linnix test``: run the ``test`` blocks of rule files against their traces.

Each test replays its trace through the engine with only the rules visible
from its file, then judges every ``expect`` line and says precisely why one
failed ("expected cpu_spike firing between 10s and 12s; first firing at
13.5s, pid 200").  Results can also be written as JUnit XML.
"""

from __future__ import annotations

import attrs

from ..engine.core import DEFAULT_TICK_S, Output
from ..engine.evaluator import Alert, Proposal
from ..errors import LinnixError
from ..language.ir import CheckedTest, Expectation
from ..plan import Plan
from .replay import replay

__all__ = ["TestOutcome", "judge", "junit_xml", "run_test"]


@attrs.define
class TestOutcome:
    """The result of one test block."""

    test: CheckedTest
    failures: list[str]
    error: str | None = None
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures and self.error is None


def _t(value: float) -> str:
    return f"{value:g}s"


def _who(a: Alert | Proposal) -> str:
    if a.pid is None:
        return "for the host"
    return f"pid {a.pid}" + (f" ({a.comm})" if a.comm else "")


def judge(exp: Expectation, alerts: list[Alert], proposals: list[Proposal]) -> str | None:
    """None when the expectation holds, else the reason it does not."""
    if exp.kind == "action":
        hits = [p for p in proposals if p.action.name == exp.action and p.pid == exp.pid]
        if hits:
            return None
        same = [p for p in proposals if p.action.name == exp.action]
        if same:
            got = ", ".join(sorted({str(p.pid) for p in same}))
            return f"expected action {exp.action} for pid {exp.pid}; it was proposed for " \
                   f"pid {got}"
        return f"expected action {exp.action} for pid {exp.pid}; no {exp.action} was proposed"
    mine = [a for a in alerts if a.rule == exp.rule]
    firing = [a for a in mine if a.state == "firing"]
    if exp.kind == "never":
        if not firing:
            return None
        first = firing[0]
        return (f"expected {exp.rule} never to fire; it fired {len(firing)} time(s), first at "
                f"{_t(first.ts)}, {_who(first)}")
    if exp.kind == "count":
        if len(firing) == exp.count:
            return None
        at = ", ".join(_t(a.ts) for a in firing[:5]) + (" ..." if len(firing) > 5 else "")
        return (f"expected {exp.rule} to fire {exp.count} time(s); it fired {len(firing)}"
                + (f" (at {at})" if firing else ""))
    in_state = [a for a in mine if a.state == exp.state]
    if exp.kind == "pid":
        if any(a.pid == exp.pid for a in in_state):
            return None
        pids = sorted({a.pid for a in in_state if a.pid is not None})
        seen = f"{exp.state} only for pid {', '.join(map(str, pids))}" if pids else \
            f"never {exp.state}"
        return f"expected {exp.rule} {exp.state} for pid {exp.pid}; it was {seen}"
    assert exp.low is not None and exp.high is not None
    want = f"expected {exp.rule} {exp.state} between {_t(exp.low)} and {_t(exp.high)}"
    if not in_state:
        return f"{want}; it was never {exp.state}"
    first = in_state[0]
    if exp.low - 1e-9 <= first.ts <= exp.high + 1e-9:
        return None
    return f"{want}; first {exp.state} at {_t(first.ts)}, {_who(first)}"


def run_test(test: CheckedTest, plan: Plan) -> TestOutcome:
    """Replay the test's trace with the rules visible from its file, then judge it."""
    import time

    visible = set(test.rules)
    sub = attrs.evolve(plan, rules=tuple(r for r in plan.rules if r.name in visible))
    alerts: list[Alert] = []
    proposals: list[Proposal] = []

    def sink(batch: list[Output]) -> None:
        for item in batch:
            (alerts if isinstance(item, Alert) else proposals).append(item)  # type: ignore[arg-type]

    started = time.perf_counter()
    try:
        res = replay(test.trace, sub, sink,  # type: ignore[arg-type]
                     tick_s=test.tick_s or DEFAULT_TICK_S)
    except LinnixError as err:
        return TestOutcome(test, [], str(err), time.perf_counter() - started)
    if res.reader.events == 0:  # nothing was tested: 'never' would pass on anything
        return TestOutcome(test, [], f"{test.trace}: the trace holds no event",
                           time.perf_counter() - started)
    failures = [r for r in (judge(e, alerts, proposals) for e in test.expects) if r]
    return TestOutcome(test, failures, None, time.perf_counter() - started)


def junit_xml(outcomes: list[TestOutcome]) -> str:
    """JUnit XML: one testsuite per rule file, one testcase per test block."""
    from xml.etree import ElementTree as ET

    suites = ET.Element("testsuites", name="linnix")
    by_file: dict[str, list[TestOutcome]] = {}
    for o in outcomes:
        by_file.setdefault(o.test.span.path, []).append(o)
    for path, items in by_file.items():
        failed = sum(1 for o in items if o.failures)
        errors = sum(1 for o in items if o.error)
        suite = ET.SubElement(suites, "testsuite", name=path, tests=str(len(items)),
                              failures=str(failed), errors=str(errors),
                              time=f"{sum(o.seconds for o in items):.3f}")
        for o in items:
            case = ET.SubElement(suite, "testcase", classname=path, name=o.test.title,
                                 time=f"{o.seconds:.3f}")
            if o.error:
                ET.SubElement(case, "error", message=o.error).text = o.error
            if o.failures:  # one element, as JUnit readers expect: every expectation in it
                ET.SubElement(case, "failure", message="; ".join(o.failures),
                              type=f"{len(o.failures)} failed expectation"
                                   f"{'s' * (len(o.failures) != 1)}").text = \
                    "\n".join(o.failures)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, "unicode") + "\n"

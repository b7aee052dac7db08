"""Incidents for the analyst's tests: a fixture trace replayed through the engine, the
responder and the store, as the daemon would have stored them.

The store's clock is a counter (one second a call) and nothing reads /proc, so the same
trace always gives the same rows.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import trio
import trio.testing
from actions_support import InlineStore, inline_argv0
from support import ROOT

from linnix.actions import ActionManager, ActionPolicy, Guards
from linnix.actions.store import AsyncStore, Store
from linnix.engine import trace as t
from linnix.engine.core import Core
from linnix.language.pipeline import build
from linnix.plan import Plan
from linnix.runtime.analyst import Analyses
from linnix.runtime.responder import Responder, describe_rule

FIXTURES = ROOT / "fixtures"
TICK_S = 0.5
RUNBOOK = "https://runbooks.example/fork-storm: find the parent shell, stop it"


def shipped_plan() -> Plan:
    result = build([str(p) for p in sorted((ROOT / "rules").glob("*.lnx"))])
    assert result.plan is not None
    return result.plan


def with_runbooks(plan: Plan, runbooks: dict[str, str]) -> Plan:
    """``plan`` with the rules named in ``runbooks`` given that runbook."""
    return attrs.evolve(plan, rules=tuple(
        attrs.evolve(r, runbook=runbooks[r.name]) if r.name in runbooks else r
        for r in plan.rules))


def store_at(path: Path) -> Store:
    counter = itertools.count(1_733_486_400, 1)
    return Store(str(path), clock=lambda: float(next(counter)))


def _counted(made: Analyses) -> list[int]:
    """How many incidents ``made`` was asked to analyse, counted as they are submitted."""
    submitted = [0]
    submit = made.submit

    async def counting(incident_id: int) -> None:
        submitted[0] += 1
        await submit(incident_id)

    made.submit = counting  # type: ignore[method-assign]
    return submitted


async def replay_into(store: Store, trace: Path, plan: Plan,
                      runbooks: dict[str, str] | None = None,
                      analyses: Callable[[AsyncStore], Analyses] | None = None) -> None:
    """Replay ``trace`` with ``plan`` (values history kept), opening incidents in ``store``
    and proposing their actions (monitor mode: nothing is executed)."""
    astore = InlineStore(store)
    guards = Guards(frozenset(), frozenset(), own=set(), root=str(trace.parent / "no-proc"))
    manager = ActionManager(astore, guards, ActionPolicy(), publish=lambda kind, data: None,
                            read_argv0=inline_argv0)
    plan = with_runbooks(plan, runbooks or {})
    core = Core(plan, TICK_S, history=True)
    made = analyses(astore) if analyses else Analyses(astore)
    submitted = _counted(made)
    responder = Responder(astore, manager, lambda: core.table, lambda kind, data: None,
                          describe=lambda rule: describe_rule(plan, rule), analyses=made)
    reader = t.TraceReader(str(trace), False)
    async with trio.open_nursery() as nursery:
        await nursery.start(manager.run)
        nursery.start_soon(responder.run)
        with t.open_trace(str(trace)) as stream:
            events = [ev for batch in reader.batches(stream) for ev in batch]
        if reader.header is not None:
            core.header(reader.header)
        # tick by tick, as the daemon feeds it: the table is as it was when a rule fired
        for _, chunk in itertools.groupby(events, key=lambda ev: math.ceil(ev.ts / TICK_S)):
            batch = list(chunk)
            core.feed(batch)
            core.run_until(math.ceil(batch[-1].ts / TICK_S) * TICK_S)
            responder(core.drain())
            await trio.testing.wait_all_tasks_blocked()
        core.finish()
        responder(core.drain())
        with trio.fail_after(30):
            while True:
                await trio.testing.wait_all_tasks_blocked()
                # and every analysis asked for is stored (the analyst works in a thread,
                # which wait_all_tasks_blocked does not wait for)
                if not responder.unhandled and made.done >= submitted[0]:
                    break
                await trio.sleep(0.001)
        nursery.cancel_scope.cancel()


def incident_of(store: Store, rule: str) -> dict[str, Any]:
    """The first incident of ``rule`` in the store, whole."""
    found = [i for i in reversed(store.incidents(limit=1000)) if i["rule"] == rule]
    assert found, f"no incident of {rule}"
    row = store.incident(found[0]["id"])
    assert row is not None
    return row

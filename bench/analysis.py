#!/usr/bin/env python3
"""Time to produce the built-in analysis of a big incident (target: 200 ms).

    python bench/analysis.py                # 500 processes, 10 minutes, 20 rounds
    python bench/analysis.py --procs 500 --minutes 10 --rounds 20 --earlier 1000

The incident is made as the daemon makes it: a trace of a tree of PROCS processes
(a root and its descendants, four children each) sampled every 10 s is fed to the
engine with values history kept, under a rule that holds for MINUTES before it
fires (a sample per tick, of which the engine keeps the first and the latest 120); at
the firing tick the responder's snapshot is taken (``incident_record``: the
subtree, capped at 200 processes as every incident is, ancestors, forkers).  It is
stored in a new state database that already holds EARLIER incidents of the same
rule.  Then, ROUNDS times each, timed apart:

* snapshot: ``incident_record`` at the firing tick (the responder's part, before
  anything is stored: not the analyst's, shown for the whole picture);
* analysis: ``linnix.analysis.analyze`` on the incident as the store returns it,
  with its earlier and nearby incidents (the facts alone, pure); again with a
  sample at every tick of the MINUTES (the engine keeps the first and the latest
  120 of a pending instance's values, so this is more than any incident holds);
* with store look-ups: ``linnix.analysis.analyze_stored`` (reading the incident
  and decoding its JSON, the earlier incidents of the rule, the incidents of the
  window, then the facts): what the ``analyze`` action's worker runs.

Medians are printed as Markdown for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from common import machine  # bench/common.py

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from linnix.actions.store import Store  # noqa: E402 - after the path is set
from linnix.analysis import WINDOW_S, analyze, analyze_stored  # noqa: E402
from linnix.engine import trace as t  # noqa: E402
from linnix.engine.core import Core  # noqa: E402
from linnix.engine.evaluator import Alert  # noqa: E402
from linnix.language.pipeline import compile_text  # noqa: E402
from linnix.runtime.responder import describe_rule, incident_record  # noqa: E402
from linnix.runtime.snapshot import SubtreeTotals  # noqa: E402

TICK_S = 0.5
ROOT_PID = 1000


def rule(procs: int, minutes: int) -> str:
    return (f"rule big_tree {{ when subtree_procs >= {procs} and subtree_cpu_pct > 50 "
            f"and ncpu > 0 for {minutes}m\n"
            ' runbook "find the job that started it" }\n')


def events(procs: int, minutes: int) -> list[t.Event]:
    """The tree, then a sample of every process every 10 s, a little past the 'for'."""
    rnd = random.Random(procs)
    out: list[t.Event] = [t.Proc(ts=0.0, pid=1, ppid=0, comm="systemd", exe="/sbin/init",
                                 cmdline="/sbin/init", start=0.0),
                          t.Proc(ts=0.0, pid=ROOT_PID, ppid=1, comm="make", exe="/usr/bin/make",
                                 cmdline="make -j", start=0.0)]
    for n in range(1, procs):
        parent = ROOT_PID + (n - 1) // 4
        out.append(t.Fork(ts=0.0, pid=ROOT_PID + n, ppid=parent, comm="cc1"))
    for second in range(10, minutes * 60 + 30, 10):
        out.append(t.System(ts=float(second), cpu_pct=90.0, ncpu=2, psi_cpu_some=40.0))
        for n in range(procs):
            out.append(t.Sample(ts=float(second), pid=ROOT_PID + n,
                                cpu_pct=round(rnd.uniform(0.5, 2.0), 1),
                                rss_kb=1024 * rnd.randint(10, 90), fds=rnd.randint(3, 40)))
    return out


def incident_at_firing(procs: int, minutes: int, rounds: int
                       ) -> tuple[dict[str, Any], list[float], int]:
    """The incident the responder would open; the snapshot's times; history samples."""
    plan = compile_text(rule(procs, minutes))
    core = Core(plan, TICK_S, history=True)
    found: dict[str, Any] = {}
    times: list[float] = []

    def after_tick(now: float) -> None:
        if found:
            return
        for item in core.output:
            if isinstance(item, Alert) and item.state == "firing":
                described = describe_rule(plan, item.rule)
                for _ in range(rounds):
                    started = time.perf_counter()
                    record = incident_record(item, core.table, SubtreeTotals(), described)
                    times.append(time.perf_counter() - started)
                found.update(record)
                return

    core.after_tick = after_tick
    core.feed(events(procs, minutes))
    core.finish()
    if not found:
        raise SystemExit("the rule never fired: nothing to analyse")
    found.pop("key")
    found.pop("analyze")
    return found, times, len(found["history"])


def filled_store(path: str, record: dict[str, Any], earlier: int) -> tuple[Store, int]:
    """A store holding ``earlier`` incidents of the rule, then the one to analyse."""
    opened = [0.0]
    store = Store(path, clock=lambda: opened[0])
    store.db.execute("PRAGMA synchronous = OFF")  # only the setup: the timed part reads
    small = {**record, "history": record["history"][-4:], "subtree": record["subtree"][:3]}
    for n in range(earlier):
        opened[0] = 1_000_000.0 + n * 600
        store.resolve_incident(store.open_incident(**small), "cleared")
    opened[0] = 1_000_000.0 + earlier * 600
    return store, store.open_incident(**record)


def uncapped(history: list[dict[str, Any]], minutes: int) -> list[dict[str, Any]]:
    """A history with a sample at every tick of the 'for' (the engine keeps the first and
    the latest 120): the same values, spread over every tick, to show the cost grows with
    it but stays far from the target."""
    fired = history[-1]["ts"]
    ticks = int(minutes * 60 / TICK_S)
    return [{"ts": fired - (ticks - k) * TICK_S, "values": history[k % len(history)]["values"]}
            for k in range(ticks + 1)]


def rounds_of(fn: Callable[[], object], rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--procs", type=int, default=500)
    ap.add_argument("--minutes", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--earlier", type=int, default=1000)
    args = ap.parse_args()
    record, snapshot, samples = incident_at_firing(args.procs, args.minutes, args.rounds)
    folder = tempfile.mkdtemp(prefix="linnix-bench-")
    try:
        store, incident = filled_store(os.path.join(folder, "linnix.db"), record, args.earlier)
        row = store.incident(incident)
        assert row is not None
        earlier = store.earlier_incidents(row["rule"], incident)
        nearby = store.incidents_between(row["opened_at"] - WINDOW_S * 11,
                                         row["opened_at"] + WINDOW_S, but=incident)
        facts = len(analyze(row, earlier, nearby)["facts"])
        pure = rounds_of(lambda: analyze(row, earlier, nearby), args.rounds)
        whole = {**row, "history": uncapped(row["history"], args.minutes)}
        long = rounds_of(lambda: analyze(whole, earlier, nearby), args.rounds)
        stored = rounds_of(lambda: analyze_stored(store, incident), args.rounds)
        size = os.path.getsize(os.path.join(folder, "linnix.db"))
        store.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report(args, record, samples, facts, size, [("snapshot at the firing tick", snapshot),
                                                ("analysis (facts, pure)", pure),
                                                (f"analysis, every tick's sample kept "
                                                 f"({len(whole['history']):,})", long),
                                                ("analysis with store look-ups", stored)])
    return 0


def report(args: argparse.Namespace, record: dict[str, Any], samples: int, facts: int,
           size: int, rows: list[tuple[str, list[float]]]) -> None:
    print(f"\n## Incident analysis (bench/analysis.py) — {time.strftime('%Y-%m-%d')}\n")
    print(f"Machine: {machine()}; load average {os.getloadavg()[0]:.1f} at the end.\n")
    print(f"Command: `python bench/analysis.py --procs {args.procs} --minutes {args.minutes} "
          f"--rounds {args.rounds} --earlier {args.earlier}`\n")
    print(f"Incident: a subtree of {args.procs} processes ({len(record['subtree'])} kept in "
          f"the snapshot), {samples:,} history samples of {len(record['history'][0]['values'])} "
          f"names ({args.minutes} minutes at {TICK_S * 1000:.0f} ms), in a store of "
          f"{args.earlier:,} earlier incidents of the rule ({size / 1e6:.1f} MB); "
          f"{facts} facts.\n")
    print("| step | median | fastest | slowest |")
    print("|---|---|---|---|")
    for name, times in rows:
        print(f"| {name} | {statistics.median(times) * 1e3:.1f} ms | {min(times) * 1e3:.1f} ms "
              f"| {max(times) * 1e3:.1f} ms |")


if __name__ == "__main__":
    raise SystemExit(main())

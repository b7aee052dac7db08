"""bench/wakecost.py: the reference load it builds, and the batches it feeds."""

from __future__ import annotations

import itertools

from bench_support import load_bench

from linnix.engine.trace import Exit, Fork

wakecost = load_bench("wakecost")


def test_the_engine_holds_the_reference_load_and_takes_forks_and_their_exits() -> None:
    core = wakecost.reference_core()
    table = core.table
    assert len(table.procs) == 1 + 1010  # init and its ten trees of 1 + 10 + 90
    parent = table.procs[wakecost.PARENT]
    assert parent.parent is not None and parent.parent.parent is not None  # 3 levels down
    feeder = wakecost.Feeder(core)
    batch = feeder.batch(4)
    assert [type(ev) for ev in batch] == [Fork, Exit, Fork, Exit]
    assert [ev.pid for ev in batch] == [60_001, 60_001, 60_002, 60_002]
    assert all(a.ts < b.ts for a, b in itertools.pairwise(batch))
    spent = feeder.feed(10, 3, 0.0)
    assert len(spent) == 3 and all(s >= 0 for s in spent)
    assert len(table.procs) == 1 + 1010  # every child forked has exited again
    assert table.procs[wakecost.PARENT].child_forks.count(feeder.ts) == 15  # fed in 0.15 s

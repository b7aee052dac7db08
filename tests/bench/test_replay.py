"""bench/replay.py: the shape of the tree trace it generates, read back through the engine."""

from __future__ import annotations

import hashlib
from pathlib import Path

from bench_support import load_bench

from linnix.engine.proctable import ProcTable
from linnix.engine.trace import Exit, Fork, Sample, read_trace

replay = load_bench("replay")


def test_the_tree_trace_keeps_1000_live_processes_in_trees_4_deep(tmp_path: Path) -> None:
    path = str(tmp_path / "tree.jsonl")
    shape = replay.generate_tree(path, 20_000)
    reader, events = read_trace(path)
    assert reader.invalid == 0 and len(events) == shape["events"] >= 20_000
    assert shape["live"] == 1030
    table = ProcTable()
    seconds: dict[float, set[int]] = {}
    for ev in events:
        table.apply(ev)
        if isinstance(ev, Sample):
            seconds.setdefault(ev.ts, set()).add(ev.pid)
            assert len(table.procs) == 1 + 1030  # pid 1 and the trees, at every sample
    roots = list(table.procs[1].kids.values())  # ten trees of 1+3+9+90, leaves moving
    assert len(roots) == 10 and sum(p.sub_procs for p in roots) == 1030
    depths = {len(list(p.lineage())) for p in table.procs.values()}
    assert depths == {0, 1, 2, 3, 4}  # pid 1, then the trees' four levels
    assert len(seconds) == shape["seconds"] >= 15
    assert all(len(pids) == 1030 for pids in seconds.values())  # each live one, every second
    churn = [ev for ev in events if isinstance(ev, (Fork, Exit))]
    assert len(churn) == 2 * 4 * len(seconds)  # 0.5 % of the 900 leaves, and their forks


def test_the_flat_trace_is_the_one_the_earlier_figures_were_measured_on(tmp_path: Path) -> None:
    path = tmp_path / "flat.jsonl"
    shape = replay.generate(str(path), 5_000, 250)
    assert shape == {"events": 5_131, "processes": 314, "seconds": 18.0}
    # the digest of the file the generator wrote before the tree trace was added
    assert hashlib.sha256(path.read_bytes()).hexdigest() == (
        "c70c850a651310e452cb75cc7c245e7bf71b33b464e6fae1a699ef82a01e0af6")

"""bench/eventlatency.py: its arithmetic of times, and a reduced run against the real daemon.

The reduced run (root and eBPF) starts the daemon and runs 20 execs in each mode instead of
1,000; it checks that every exec's alert arrived and was measured, not the figures.
"""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
from bench_support import BENCH, load_bench
from live_support import require_ebpf

bench = load_bench("eventlatency")


def test_latency_runs_from_the_kernels_boot_time_stamp_of_the_exec() -> None:
    # the daemon's clock started at boot time 100 s; the exec was stamped 2.5 s later, spawned
    # 1 ms before that, and its alert arrived at boot time 102.530
    kernel, spawn = bench.latencies({7: (2.5, 102.530)}, {7: 102.499}, 100.0)
    assert [round(v, 6) for v in kernel] == [30.0]
    assert [round(v, 6) for v in spawn] == [31.0]


def test_the_figures_are_nearest_rank_and_none_is_not_zero() -> None:
    assert bench._stats([float(v) for v in range(200, 0, -1)]) == {
        "p50": 100.0, "p99": 198.0, "max": 200.0}
    assert all(math.isnan(v) for v in bench._stats([]).values())


@pytest.mark.root
@pytest.mark.ebpf
@pytest.mark.slow
def test_a_reduced_run_measures_every_exec() -> None:
    require_ebpf()
    done = subprocess.run([sys.executable, str(BENCH / "eventlatency.py"), "--execs", "20",
                           "--rounds", "1"], check=False, capture_output=True, text=True,
                          timeout=240, cwd=str(BENCH))
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith(("| spaced",
                                                                         "| burst"))]
    assert len(rows) == 2 and all("| 20 / 20 |" in row for row in rows), done.stdout

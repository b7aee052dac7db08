"""bench/notify.py: its statistics, its arguments, and a run in a reduced mode.

The reduced run starts the real Alertmanager and daemons like the full one, with
5 alerts and a 3-second window instead of 200 alerts and three minutes; it only
checks that every part ran and reported, not the figures.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from bench_support import BENCH, load_bench

notify = load_bench("notify")


def test_p99_of_200_values_is_the_198th_smallest() -> None:
    values = [float(v) for v in range(200, 0, -1)]  # 1 .. 200, in no order
    assert notify.nearest_rank(values, 0.99) == 198.0
    assert notify.nearest_rank(values, 0.5) == 100.0
    assert notify.summary(values) == (100.0, 198.0, 200.0)
    assert notify.nearest_rank([7.0], 0.99) == 7.0


def test_latency_pairs_each_pid_and_leaves_out_what_one_side_lacks() -> None:
    emitted = {1: 10.0, 2: 20.0, 3: 30.0}
    received = {1: 10.004, 3: 30.25, 4: 40.0}
    assert notify.latencies(emitted, received, [1, 2, 3, 4]) == pytest.approx([0.004, 0.25])


def test_alertmanager_times_are_read_to_the_millisecond() -> None:
    assert notify.instant("2026-12-06T13:44:58.721Z") == pytest.approx(1796564698.721)


def test_each_statistic_is_the_median_of_the_runs() -> None:
    args = notify.parse(["--alerts", "4", "--interval", "0.5"])
    runs = [{"one": [0.001, 0.002, 0.003, 0.010], "burst": []},
            {"one": [0.002, 0.004, 0.006, 0.030], "burst": []},
            {"one": [0.003, 0.005, 0.007, 0.020], "burst": []}]
    one, burst = notify.latency_rows(runs, args)[2:]
    # p50 of each run: 2, 4, 5 ms; p99 (= max with four values): 10, 30, 20 ms
    assert one.startswith("| 4 one at a time (one every 0.5 s) | **4.0 ms** | **20.0 ms** | "
                          "20.0 ms | 2.0 ms / 10.0 ms / 10.0 ms; ")
    assert one.endswith("| 4, 4, 4 of 4 |")
    assert burst == "| 4 at once | | | | none measured | 0 |"


@pytest.mark.parametrize("argv", [["--alerts", "0"], ["--window", "0"], ["--runs", "-1"],
                                  ["--only", "both"]])
def test_bad_arguments_are_a_usage_error(argv: list[str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        notify.parse(argv)
    assert exit_.value.code == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.slow
def test_a_reduced_run_measures_both_parts() -> None:
    if shutil.which(notify.ALERTMANAGER) is None:
        pytest.skip(f"{notify.ALERTMANAGER} is not installed (scripts/setup.sh installs it)")
    done = subprocess.run(
        [sys.executable, str(BENCH / "notify.py"), "--alerts", "5", "--interval", "0.2",
         "--runs", "1", "--held", "5", "--window", "3", "--windows", "1", "--resend", "1s"],
        capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("## Alert delivery (bench/notify.py)")
    assert "| 5 one at a time (one every 0.2 s) | **" in out
    assert "| 5 at once | **" in out
    assert out.count("| 5 of 5 |") == 2  # every alert measured, in both modes
    assert "WARNING" not in out  # updatedAt was the receipt time
    assert "| without `[notify]` | **" in out
    resent = out.split("`linnix_notifications_sent_total`): ", 1)[1].split(";", 1)[0]
    assert float(resent.replace(",", "")) >= 5  # a 1 s resend: 5 alerts, about thrice
    assert "latency run 1 of 1" in done.stderr and "window 1 of 1" in done.stderr

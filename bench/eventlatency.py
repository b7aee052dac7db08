#!/usr/bin/env python3
"""Event-rule latency in the daemon: from an exec in the kernel to its alert on ``GET /stream``.

    sudo .venv/bin/python bench/eventlatency.py [--execs 1000] [--rounds 3]

Starts ``linnix run`` with the eBPF source and one event rule,
``on exec when exe startswith "/tmp/linnix-lat"``, subscribes to the API's
event stream (with the daemon's token), and runs a do-nothing program (a copy
of /bin/true under /tmp/linnix-lat-*) ``--execs`` times, one every
``--interval`` (spaced), then the same number back to back (burst).

For each exec, the latency is the alert's arrival on the stream (read on
``CLOCK_BOOTTIME``) minus the exec's time in the kernel.  The eBPF program
stamps each event with ``bpf_ktime_get_boot_ns()``; the source turns that into
the alert's ``ts`` by subtracting the daemon's clock origin (seconds of boot
time at its start, ``clock_origin_boottime`` in ``daemon.json``), so
``ts + origin`` is the kernel's boot-time stamp of the exec.  The engine moves an
event's ``ts`` later only when it came after a later one or after a tick had run
(clamping); the spawner's own boot-time reading just before ``posix_spawn`` is an
earlier bound, so the latency from it is also given (it includes the fork and the
exec themselves, about a millisecond).

Rounds alternate spaced and burst runs in one daemon; medians over the rounds are
reported, as Markdown for bench/RESULTS.md, with the load average before and after.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from typing import Any

from common import ROOT, Agent, machine  # bench/common.py
from notify import summary  # bench/notify.py

sys.path.insert(0, ROOT)
from linnix.api.client import ApiClient, parse_sse

RULE = """rule lat {
    on exec
    when exe startswith "/tmp/linnix-lat"
    severity info
    max_rate 100000/s
    message "{comm}[{pid}] {cmdline}"
}
"""


def boot() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


class Listener:
    """Reads the daemon's /stream in a thread: each ``lat`` alert with its arrival time."""

    def __init__(self, client: ApiClient) -> None:
        self.response = client.open_stream()
        self.arrived: dict[int, tuple[float, float]] = {}  # pid -> (alert ts, arrival boot)
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _lines(self) -> Any:
        while True:
            line = self.response.readline()
            if not line:
                return
            yield line

    def _read(self) -> None:
        try:
            for event in parse_sse(self._lines()):
                at = boot()
                data = event.json() if event.event == "alert" else None
                if isinstance(data, dict) and data.get("rule") == "lat":
                    with self.lock:
                        self.arrived[int(data["pid"])] = (float(data["ts"]), at)
        except (OSError, http.client.HTTPException):
            return  # the daemon stopped: the end

    def count(self) -> int:
        with self.lock:
            return len(self.arrived)


def spawn_all(program: str, n: int, interval: float) -> dict[int, float]:
    """Run ``program`` ``n`` times, one every ``interval`` (0: back to back); each pid with
    the boot-time clock just before it was spawned."""
    spawned: dict[int, float] = {}
    start = time.monotonic()
    for i in range(n):
        if interval:
            delay = start + i * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        at = boot()
        pid = os.posix_spawn(program, [program, "tick", str(i)], {})
        spawned[pid] = at
        os.waitpid(pid, 0)
    return spawned


def run_once(listener: Listener, program: str, n: int, interval: float,
             origin: float) -> dict[str, Any]:
    with listener.lock:
        listener.arrived.clear()
    began = time.monotonic()
    spawned = spawn_all(program, n, interval)
    rate = n / (time.monotonic() - began)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and listener.count() < n:
        time.sleep(0.05)
    time.sleep(0.2)  # anything late or extra
    with listener.lock:
        got = {pid: listener.arrived[pid] for pid in spawned if pid in listener.arrived}
    kernel, spawn = latencies(got, spawned, origin)
    return {"alerts": len(got), "execs": n, "rate": rate, "kernel": _stats(kernel),
            "spawn": _stats(spawn)}


def latencies(got: dict[int, tuple[float, float]], spawned: dict[int, float],
              origin: float) -> tuple[list[float], list[float]]:
    """Milliseconds from each exec to its alert's arrival: from the kernel's stamp (the
    alert's ``ts`` plus the daemon's clock origin, both boot time) and from the spawn call."""
    kernel = [1000 * (at - (ts + origin)) for ts, at in got.values()]
    spawn = [1000 * (at - spawned[pid]) for pid, (_, at) in got.items()]
    return kernel, spawn


def _stats(ms: list[float]) -> dict[str, float]:
    if not ms:
        return {"p50": float("nan"), "p99": float("nan"), "max": float("nan")}
    p50, p99, top = summary(ms)  # nearest rank, as bench/notify.py's figures
    return {"p50": p50, "p99": p99, "max": top}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--execs", type=int, default=1000)
    ap.add_argument("--interval", type=float, default=0.007, help="seconds between spaced execs")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (eBPF)", file=sys.stderr)
        return 2
    load_before = os.getloadavg()
    runs: dict[str, list[dict[str, Any]]] = {"spaced": [], "burst": []}
    with tempfile.TemporaryDirectory(prefix="linnix-lat-", dir="/tmp") as tmp:
        program = os.path.join(tmp, "tick")
        shutil.copy("/bin/true", program)
        rules = os.path.join(tmp, "rules")
        os.mkdir(rules)
        with open(os.path.join(rules, "lat.lnx"), "w") as f:
            f.write(RULE)
        agent = Agent(os.path.join(tmp, "state"), rules=rules)
        try:
            with open(os.path.join(agent.state, "daemon.json")) as f:
                api = json.load(f)["api"]
            with open(os.path.join(agent.state, "api.token")) as f:
                token = f.read().strip()
            listener = Listener(ApiClient(f"http://{api}", token))
            for _ in range(args.rounds):
                runs["spaced"].append(run_once(listener, program, args.execs, args.interval,
                                               agent.origin))
                runs["burst"].append(run_once(listener, program, args.execs, 0.0,
                                              agent.origin))
        finally:
            agent.stop()
    report(args, runs, load_before, os.getloadavg())
    return 0


def report(args: argparse.Namespace, runs: dict[str, list[dict[str, Any]]],
           before: tuple[float, ...], after: tuple[float, ...]) -> None:
    print(f"Machine: {machine()}; load average before {_load(before)}, after {_load(after)}\n")
    print(f"Command: `python bench/eventlatency.py --execs {args.execs} --interval "
          f"{args.interval:g} --rounds {args.rounds}`\n")
    print("| run | execs/s | alerts / execs | p50 from the kernel's exec | p99 | max | "
          "p50 from the spawn call | p99 |")
    print("|---|---|---|---|---|---|---|---|")
    for name, results in runs.items():
        for r in results:
            k, s = r["kernel"], r["spawn"]
            print(f"| {name} | {r['rate']:,.0f} | {r['alerts']:,} / {r['execs']:,} | "
                  f"{k['p50']:.1f} ms | "
                  f"{k['p99']:.1f} ms | {k['max']:.1f} ms | {s['p50']:.1f} ms | "
                  f"{s['p99']:.1f} ms |")
    print()
    for name, results in runs.items():
        med = {q: statistics.median(r["kernel"][q] for r in results)
               for q in ("p50", "p99", "max")}
        print(f"- {name} (medians of {len(results)} rounds): p50 {med['p50']:.1f} ms, "
              f"p99 {med['p99']:.1f} ms, max {med['max']:.1f} ms")


def _load(avg: tuple[float, ...]) -> str:
    return " ".join(f"{x:.2f}" for x in avg)


if __name__ == "__main__":
    raise SystemExit(main())

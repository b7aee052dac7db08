#!/usr/bin/env python3
"""The network capture's cost per connect at the highest loopback connect rate, side by side.

    sudo .venv/bin/python bench/netcost.py [--seconds 3] [--rounds 5]

One ``bench/connloop.c`` per core connects to its own loopback listener (a thread
accepts and closes) as fast as it can, for ``--seconds``: with nothing attached, with
the eBPF source loaded without the network programs (what a daemon whose rules read no
network name runs), and with them, loaded and drained as the daemon does (every 25 ms).
Rounds alternate the three; medians are reported:

- connects a second (the loop's rate: the slowdown as the workload sees it);
- the capture process's CPU (user and system) per network event it decoded: each
  connect gives two (its connect and its accept);
- kernel time in the network programs per connect: the kernel's BPF statistics
  (``kernel.bpf_stats_enabled``) give each handler's mean time per run, summed over
  those a connect and its accept run once each (connect's entry and exit, accept4's).

Results are printed as Markdown for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

from common import OUT, ROOT, machine  # bench/common.py

HERE = os.path.dirname(os.path.abspath(__file__))
NCPU = os.cpu_count() or 1
PER_CONNECT = ("net_enter_connect", "net_exit_connect", "net_enter_accept4", "net_exit_accept4")

CONSUMER = r"""
import json, os, resource, sys, time
sys.path.insert(0, sys.argv[3])
from linnix.engine import trace as t
from linnix.procfs import Clock
from linnix.runtime.sources.bcc import BpfSource
seconds, network = float(sys.argv[1]), sys.argv[2] == "1"
src = BpfSource(Clock(), ring_pages=4096, network=network)

def stats():
    out = {}
    for name, fd in src.programs.items():  # name -> program fd (the loader's child)
        with open(f"/proc/self/fdinfo/{fd}") as fh:
            fields = dict(line.split(":", 1) for line in fh if ":" in line)
        out[name] = (int(fields.get("run_cnt", 0)), int(fields.get("run_time_ns", 0)))
    return out

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

src.drain()
print("ready", flush=True)
k0, c0, events, net = stats(), cpu(), 0, 0
end = time.time() + seconds
while True:
    batch = src.drain()
    events += len(batch)
    net += sum(1 for ev in batch if isinstance(ev, t.NET_TYPES))
    if time.time() >= end:
        break
    time.sleep(0.025)
used = cpu() - c0
k1 = stats()
runs = {n: (k1[n][0] - k0[n][0], k1[n][1] - k0[n][1]) for n in k1}
print(json.dumps({"events": events, "net": net, "cpu_s": used, "runs": runs,
                  "lost": src.lost_total()}), flush=True)
src.close()
"""


def build() -> str:
    source = os.path.join(HERE, "connloop.c")
    exe = os.path.join(OUT, "connloop")
    if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(source):
        os.makedirs(OUT, exist_ok=True)
        subprocess.run(["gcc", "-O2", "-pthread", "-o", exe, source], check=True)
    return exe


def loops(loop: str, seconds: float) -> int:
    procs = [subprocess.Popen([loop, str(seconds)], stdout=subprocess.PIPE, text=True)
             for _ in range(NCPU)]
    return sum(int(p.communicate()[0].split()[0]) for p in procs)


def measure(loop: str, seconds: float, mode: str) -> dict[str, float]:
    if mode == "none":
        return {"rate": loops(loop, seconds) / seconds}
    proc = subprocess.Popen([sys.executable, "-c", CONSUMER, str(seconds + 0.5),
                             "1" if mode == "network" else "0", ROOT],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    connects = loops(loop, seconds)
    got = json.loads(proc.stdout.readline())
    proc.wait()
    mean = {name: ns / cnt for name, (cnt, ns) in got["runs"].items() if cnt}
    out = {"rate": connects / seconds, "lost": got["lost"], "events": got["events"],
           "net": got["net"], "connects": connects,
           "kernel_ns": sum(mean.get(name, 0.0) for name in PER_CONNECT),
           "cpu_us": 1e6 * got["cpu_s"] / max(1, got["events"])}
    out.update({f"ns:{name}": ns for name, ns in mean.items() if name.startswith("net_")})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (eBPF)", file=sys.stderr)
        return 2
    loop = build()
    with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
        f.write("1")
    try:
        modes = ("none", "process events only", "network")
        runs: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
        for _ in range(args.rounds):
            for mode in modes:
                runs[mode].append(measure(loop, args.seconds, mode))
    finally:
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write("0")
    base = _med(runs["none"], "rate")
    print(f"{machine()}; {NCPU} connect loops, {args.seconds:g} s, {args.rounds} rounds "
          f"(medians); load average before: {os.getloadavg()[0]:.1f}\n")
    print("| capture | connects/s | slowdown | capture CPU µs per event | network events "
          "per connect | kernel ns per connect (4 handlers) | lost |")
    print("|---|---|---|---|---|---|---|")
    for mode, results in runs.items():
        rate = _med(results, "rate")
        if mode == "none":
            print(f"| none | {rate:,.0f} | - | - | - | - | - |")
            continue
        per = statistics.median(r["net"] / max(1, r["connects"]) for r in results)
        print(f"| {mode} | {rate:,.0f} | {100 * (1 - rate / base):.1f} % | "
              f"{_med(results, 'cpu_us'):.2f} | {per:.2f} | {_med(results, 'kernel_ns'):,.0f} | "
              f"{sum(int(r['lost']) for r in results)} |")
    print("\nslowdown per round (network vs the none run just before it): " + ", ".join(
        f"{100 * (1 - n['rate'] / z['rate']):.1f} %"
        for z, n in zip(runs["none"], runs["network"], strict=True)))
    handlers = sorted({k for r in runs["network"] for k in r if k.startswith("ns:")})
    print("\nmean ns per run of each network handler: " + ", ".join(
        f"{k[3:]} {_med(runs['network'], k):,.0f}" for k in handlers))
    return 0


def _med(results: list[dict[str, float]], key: str) -> float:
    return statistics.median(r.get(key, float("nan")) for r in results)


if __name__ == "__main__":
    raise SystemExit(main())

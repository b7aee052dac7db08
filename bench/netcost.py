#!/usr/bin/env python3
"""The network capture's cost per connect at the highest loopback connect rate, side by side.

    sudo .venv/bin/python bench/netcost.py [--seconds 3] [--rounds 5] [--loops 1 2]
                                           [--nice -20] [--before DIR]

``--loops N`` runs N ``bench/connloop.c`` at once, each connecting to its own loopback
listener (a thread accepts and closes) as fast as it can, for ``--seconds``.  One loop
is what issue 17 asks about: the slowdown of one loop at its maximum rate, its two
threads and the capture sharing the host.  One loop per core (2 here) saturates the
host: every µs the capture process spends is taken from a loop.  Several values (the
default: 1 and one per core) are set-ups measured in the same rounds, one after the
other.  Each set-up runs with nothing attached, with the eBPF source loaded without the
network programs (what a daemon whose rules read no network name runs), and with them,
loaded and drained as the daemon does (every 25 ms).  ``--before DIR`` adds the network
capture of another checkout (``git archive`` of an older commit, unpacked in DIR) to
every round, so that two versions are measured side by side on the same load.  Rounds
alternate the modes (every other round in the reverse order); every round's rates are
printed, with the host's load average at the start of each round, and medians.  On a
host that others keep busy, ``--nice`` raises the loops and the capture (once loaded)
above that work for the seconds they are measured, the one as much as the other:

- connects a second (the loop's rate: the slowdown as the workload sees it), and the
  median of each round's slowdown against the "none" run of the same round;
- the loop's own CPU (both its threads, user and system) per connect: what the
  handlers add inside its syscalls, apart from the CPU the capture process takes;
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
net_types = frozenset(t.NET_TYPES)

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
    net += sum(map(net_types.__contains__, map(type, batch)))  # C loops: little of the CPU
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


def loops(loop: str, seconds: float, count: int, nice: int) -> tuple[int, float]:
    """Connects made by ``count`` loops at once, and the CPU seconds the loops used."""
    procs = [subprocess.Popen(["nice", "-n", str(nice), loop, str(seconds)],
                              stdout=subprocess.PIPE, text=True)
             for _ in range(count)]
    made = [p.communicate()[0].split() for p in procs]
    return sum(int(n) for n, _cpu in made), sum(float(cpu) for _n, cpu in made)


def measure(loop: str, seconds: float, count: int, root: str | None, network: bool,
            nice: int = 0) -> dict[str, float]:
    """One run of ``count`` loops: nothing attached (``root`` None), or the source of the
    checkout ``root``."""
    if root is None:
        connects, used = loops(loop, seconds, count, nice)
        return {"rate": connects / seconds, "loop_us": 1e6 * used / max(1, connects)}
    proc = subprocess.Popen([sys.executable, "-c", CONSUMER, str(seconds + 0.5),
                             "1" if network else "0", root],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    if nice:  # loaded (the compiler's child at the usual priority): now as the loops
        os.setpriority(os.PRIO_PROCESS, proc.pid, nice)
    connects, used = loops(loop, seconds, count, nice)
    got = json.loads(proc.stdout.readline())
    proc.wait()
    mean = {name: ns / cnt for name, (cnt, ns) in got["runs"].items() if cnt}
    out = {"rate": connects / seconds, "lost": got["lost"], "events": got["events"],
           "net": got["net"], "connects": connects,
           "loop_us": 1e6 * used / max(1, connects),
           "kernel_ns": sum(mean.get(name, 0.0) for name in PER_CONNECT),
           "cpu_us": 1e6 * got["cpu_s"] / max(1, got["events"])}
    out.update({f"ns:{name}": ns for name, ns in mean.items() if name.startswith("net_")})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--loops", type=int, nargs="+", default=sorted({1, NCPU}), metavar="N",
                    help="connect loops run at once; each value is a set-up of its own, "
                         "measured in the same rounds (default: 1 and one per core)")
    ap.add_argument("--nice", type=int, default=0,
                    help="run the loops and the capture at this niceness while measured "
                         "(e.g. -20: on a host other work keeps busy, the rates then "
                         "follow the capture more than that work)")
    ap.add_argument("--before", metavar="DIR",
                    help="also measure the network capture of the checkout in DIR")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (eBPF)", file=sys.stderr)
        return 2
    if args.before and not os.path.isdir(os.path.join(args.before, "linnix")):
        print(f"{args.before}: not a checkout of linnix", file=sys.stderr)
        return 2
    if any(n < 1 for n in args.loops):
        print("--loops: at least one loop", file=sys.stderr)
        return 2
    loop = build()
    modes: dict[str, tuple[str | None, bool]] = {
        "none": (None, False), "process events only": (ROOT, False)}
    if args.before:
        modes["network, before"] = (os.path.abspath(args.before), True)
    modes["network"] = (ROOT, True)
    loads: list[float] = []
    with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
        f.write("1")
    try:
        runs: dict[tuple[int, str], list[dict[str, float]]] = {
            (n, m): [] for n in args.loops for m in modes}
        for rnd in range(args.rounds):
            loads.append(os.getloadavg()[0])
            for count in args.loops:
                # every other round in the reverse order: a load that rises or falls
                # through a round favours no mode over the rounds
                order = list(modes.items())
                for mode, (root, network) in order[::-1] if rnd % 2 else order:
                    runs[count, mode].append(measure(loop, args.seconds, count, root, network,
                                                             args.nice))
    finally:
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write("0")
    loads.append(os.getloadavg()[0])
    print(f"{machine()}; {args.seconds:g} s a run, {args.rounds} rounds (medians), niceness "
          f"{args.nice}; load "
          f"average (1 min) at each round's start and at the end: "
          + ", ".join(f"{x:.1f}" for x in loads))
    for count in args.loops:
        report(count, {m: runs[count, m] for m in modes})
    return 0


def report(count: int, runs: dict[str, list[dict[str, float]]]) -> None:
    """The Markdown table of ``count`` loops, each round's slowdown and each handler's time."""
    what = "one loop (its connecting and accepting threads)" if count == 1 else (
        f"{count} loops at once" + (" (one per core: the host saturated)"
                                    if count == NCPU else ""))
    print(f"\n### {what}\n")
    print("| capture | connects/s | slowdown (median of rounds) | loop CPU µs per connect | "
          "capture CPU µs per event | network events per connect | kernel ns per connect "
          "(4 handlers) | lost |")
    print("|---|---|---|---|---|---|---|---|")
    none = runs["none"]
    for mode, results in runs.items():
        rate, loop_us = _med(results, "rate"), _med(results, "loop_us")
        if mode == "none":
            print(f"| none | {rate:,.0f} | - | {loop_us:.1f} | - | - | - | - |")
            continue
        slow = statistics.median(_slowdowns(none, results))
        per = statistics.median(r["net"] / max(1, r["connects"]) for r in results)
        print(f"| {mode} | {rate:,.0f} | {slow:.1f} % | {loop_us:.1f} | "
              f"{_med(results, 'cpu_us'):.2f} | {per:.2f} | {_med(results, 'kernel_ns'):,.0f} | "
              f"{sum(int(r['lost']) for r in results)} |")
    print("\nconnects/s per round: " + "; ".join(
        f"{mode} " + ", ".join(f"{r['rate']:,.0f}" for r in results)
        for mode, results in runs.items()))
    for mode, results in runs.items():
        if mode.startswith("network"):
            print(f"\n{mode}: slowdown per round (against the none run of that round): "
                  + ", ".join(f"{s:.1f} %" for s in _slowdowns(none, results)))
            handlers = sorted({k for r in results for k in r if k.startswith("ns:")})
            print(f"{mode}: mean ns per run of each network handler: " + ", ".join(
                f"{k[3:]} {_med(results, k):,.0f}" for k in handlers))


def _slowdowns(none: list[dict[str, float]], results: list[dict[str, float]]) -> list[float]:
    return [100 * (1 - r["rate"] / z["rate"]) for z, r in zip(none, results, strict=True)]


def _med(results: list[dict[str, float]], key: str) -> float:
    return statistics.median(r.get(key, float("nan")) for r in results)


if __name__ == "__main__":
    raise SystemExit(main())

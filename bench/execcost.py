#!/usr/bin/env python3
"""The eBPF source's cost per exec at the highest exec rate, for two versions side by side.

    sudo .venv/bin/python bench/execcost.py                     # this tree only
    sudo .venv/bin/python bench/execcost.py --against OTHER     # and a checkout of another
                                                                  # version (git archive)

One ``bench/execloop.c`` per core forks and execs a do-nothing program with
four arguments as fast as it can, for ``--seconds``, with nothing attached,
then with each version's eBPF source loaded and drained as the daemon does
(every 25 ms).  Rounds alternate the versions; medians are reported:

- execs a second (the loop's rate: the cost as the workload sees it);
- kernel time in the program's tracepoint handlers per exec: the kernel's own
  BPF statistics (``kernel.bpf_stats_enabled``) give each handler's mean time
  per run (over the whole host's events, so other processes do not inflate
  it), summed over the handlers a fork+exec+exit runs once each;
- user-space CPU of the reader per exec: its CPU per record parsed (argv
  included) times the three records of a fork+exec+exit.

Results are printed as Markdown for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

from common import OUT, machine  # bench/common.py

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
NCPU = os.cpu_count() or 1
ARGS = ["alpha", "--beta=2", "/tmp/gamma", "delta"]

CONSUMER = r"""
import json, os, sys, time
sys.path.insert(0, sys.argv[2])
from linnix.procfs import Clock
from linnix.runtime.sources.bcc import BpfSource
seconds = float(sys.argv[1])
src = BpfSource(Clock(), ring_pages=4096)
fds = src.programs  # name -> program fd

def stats():
    out = {}
    for name, fd in fds.items():
        with open(f"/proc/self/fdinfo/{fd}") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        out[name] = (int(fields.get("run_cnt", 0)), int(fields.get("run_time_ns", 0)))
    return out

print("ready", flush=True)
k0, c0, events = stats(), time.process_time(), 0
end = time.time() + seconds
while time.time() < end:
    events += len(src.drain())
    time.sleep(0.025)
events += len(src.drain())
used = time.process_time() - c0
k1 = stats()
runs = {n: (k1[n][0] - k0[n][0], k1[n][1] - k0[n][1]) for n in k1}
print(json.dumps({"events": events, "user_s": used, "runs": runs, "lost": src.lost_total()}),
      flush=True)
src.close()
"""


def build(name: str) -> str:
    source = os.path.join(HERE, f"{name}.c")
    exe = os.path.join(OUT, name)
    if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(source):
        os.makedirs(OUT, exist_ok=True)
        subprocess.run(["gcc", "-O2", "-o", exe, source], check=True)
    return exe


def loops(loop: str, target: str, seconds: float) -> int:
    procs = [subprocess.Popen([loop, str(seconds), target, *ARGS], stdout=subprocess.PIPE,
                              text=True) for _ in range(NCPU)]
    return sum(int(p.communicate()[0].split()[0]) for p in procs)


def measure(loop: str, target: str, seconds: float, tree: str | None) -> dict[str, float]:
    if tree is None:
        return {"rate": loops(loop, target, seconds) / seconds}
    proc = subprocess.Popen([sys.executable, "-c", CONSUMER, str(seconds + 0.5), tree],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    execs = loops(loop, target, seconds)
    got = json.loads(proc.stdout.readline())
    proc.wait()
    # every handler's mean time per run: the host's other processes run them too, so a
    # total over this loop's execs would count theirs; a fork+exec+exit of the loop runs
    # each handler in ONCE_PER_EXEC once
    mean = {name: ns / cnt for name, (cnt, ns) in got["runs"].items() if cnt}
    out = {"rate": execs / seconds, "lost": got["lost"],
           "kernel_ns": sum(ns for name, ns in mean.items() if _once(name)),
           "user_us": 1e6 * got["user_s"] / max(1, got["events"]) * 3}
    out.update({f"ns:{name}": ns for name, ns in mean.items()})
    return out


ONCE_PER_EXEC = ("task_newtask", "sys_enter_execve", "sched_process_exec",
                 "sys_enter_exit_group", "sched_process_exit")


def _once(name: str) -> bool:
    return name.endswith(ONCE_PER_EXEC)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--against", help="another version's source tree (a git archive)")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (eBPF)", file=sys.stderr)
        return 2
    loop = build("execloop")
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "nothing.c"), "w") as f:
            f.write("int main(void) { return 0; }\n")
        target = os.path.join(tmp, "nothing")
        subprocess.run(["gcc", "-O2", "-static", "-o", target, f.name], check=True)
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write("1")
        try:
            versions = {"none": None, "this tree": ROOT}
            if args.against:
                versions["against"] = os.path.abspath(args.against)
            runs: dict[str, list[dict[str, float]]] = {v: [] for v in versions}
            for _ in range(args.rounds):
                for name, tree in versions.items():
                    runs[name].append(measure(loop, target, args.seconds, tree))
        finally:
            with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
                f.write("0")
    print(f"{machine()}; {NCPU} exec loops, {args.seconds:g} s, {args.rounds} rounds "
          "(medians)\n")
    print("| source | execs/s | kernel ns per exec (BPF handlers) | reader µs per exec "
          "(3 records) | lost |")
    print("|---|---|---|---|---|")
    for name, results in runs.items():
        lost = "-" if name == "none" else f"{sum(int(r['lost']) for r in results)}"
        print(f"| {name} | {_med(results, 'rate'):,.0f} | {_med(results, 'kernel_ns'):,.0f} | "
              f"{_med(results, 'user_us'):.2f} | {lost} |")
    print("\nmean ns per run of each handler:\n")
    for name, results in runs.items():
        handlers = sorted({k for r in results for k in r if k.startswith("ns:")})
        if handlers:
            print(f"- {name}: " + ", ".join(
                f"{k[3:].split('__')[-1]} {_med(results, k):,.0f}" for k in handlers))
    return 0


def _med(results: list[dict[str, float]], key: str) -> float:
    return statistics.median(r.get(key, float("nan")) for r in results)


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""What event rules cost: replay throughput with 20 of them loaded, side by side with none.

    python bench/events.py                  # 1,000,000 events, 5 rounds
    python bench/events.py --events 200000 --rounds 3 --execs 50000

1. Generates bench/replay.py's trace (seeded; forks, execs, exits and a sample per
   live process per second).
2. Runs ``linnix replay --format jsonl > /dev/null`` with the shipped rules, and
   with the shipped rules plus 20 event rules (10 ``on exec``, 5 ``on fork``, 5
   ``on exit``, with and without cooldowns), alternating, as fresh processes;
   reports the medians of wall and CPU time and their ratios (target: within 10 %).
3. In process, at the maximum exec rate (execs fed back to back, nothing else):
   the engine's CPU time per exec event with no event rule, with the 20, with the
   shipped rules and with the shipped rules plus the 20, the four side by side
   (each batch of 1,000 execs fed to each in turn; the execs are ordinary
   programs none of the 20 rules looks for, so each exec costs what the rules'
   pre-filters and the conditions they cannot rule out cost).

Results are printed as Markdown for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any

from common import OUT, machine, run_child  # bench/common.py
from replay import generate  # bench/replay.py

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

EXEC_WHENS = [
    'exe startswith "/tmp/"', 'exe startswith "/dev/shm/"', 'comm in ["nc", "ncat", "socat"]',
    'comm in ["bash", "sh", "dash"] and parent.comm in ["nginx", "httpd", "php-fpm"]',
    '"nginx" in ancestors and comm == "sh"', 'cmdline contains "base64 -d"',
    'exe glob "/var/tmp/*"', 'comm == "xmrig" or exe endswith "/xmrig"',
    "uid == 0 and parent.uid != 0 and parent.pid > 1", 'cmdline matches "curl .*\\\\| *sh"',
]
FORK_WHENS = ['parent.comm == "nginx"', "children > 100", 'comm == "sshd" and uid != 0',
              'parent.comm in ["cron", "atd"]', "ppid == 1 and uid >= 1000"]
EXIT_WHENS = ["crashed", "failed and lifetime_s < 1s", 'exit_signal == "SIGKILL"',
              "exit_code == 137", "crashed and lifetime_s < 10s"]


def event_rules() -> str:
    """The 20 event rules, every other one with a cooldown."""
    out = []
    whens = [("exec", w) for w in EXEC_WHENS] + [("fork", w) for w in FORK_WHENS] + [
        ("exit", w) for w in EXIT_WHENS]
    for i, (trigger, when) in enumerate(whens):
        cooldown = "\n    cooldown 1m by exe" if i % 2 else ""
        out.append(f"rule event_{i} {{\n    on {trigger}\n    when {when}{cooldown}\n}}\n")
    return "\n".join(out)


def run_cpu(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one child process."""
    wall, usage = run_child(argv)
    return wall, usage.ru_utime + usage.ru_stime


def throughput(trace: str, extra: str, events: int, rounds: int) -> dict[str, Any]:
    """``linnix replay`` without and with the event rules, alternating; medians of wall
    and CPU seconds (CPU is less disturbed by other tenants than wall time)."""
    base = [sys.executable, "-m", "linnix", "replay", trace, "--rules",
            os.path.join(ROOT, "rules"), "--format", "jsonl"]
    runs: dict[str, list[tuple[float, float]]] = {"without": [], "with": []}
    for i in range(rounds):
        print(f"  round {i + 1}/{rounds}", file=sys.stderr)
        runs["without"].append(run_cpu(base))
        runs["with"].append(run_cpu([*base, "--rules", extra]))
    out: dict[str, Any] = {}
    for key, got in runs.items():
        out[f"{key}_s"] = statistics.median(w for w, _ in got)
        out[f"{key}_cpu"] = statistics.median(c for _, c in got)
        out[f"{key}_rate"] = events / out[f"{key}_s"]
        out[f"{key}_all"] = [w for w, _ in got]
    out["change"] = out["with_s"] / out["without_s"] - 1
    out["cpu_change"] = out["with_cpu"] / out["without_cpu"] - 1
    return out


# What a busy host execs: a build, a package manager, cron jobs, a web server's
# helpers, shells (comm, exe, argv); none of them is what the 20 rules look for.
EXECS = [
    ("sh", "/usr/bin/dash", ["sh", "-c", "make -j2 all"]),
    ("make", "/usr/bin/make", ["make", "-j2", "all"]),
    ("gcc", "/usr/bin/x86_64-linux-gnu-gcc-12", ["gcc", "-O2", "-c", "src/main.c"]),
    ("cc1", "/usr/lib/gcc/x86_64-linux-gnu/12/cc1", ["cc1", "-quiet", "src/main.c"]),
    ("as", "/usr/bin/x86_64-linux-gnu-as", ["as", "--64", "-o", "main.o", "/tmp/cc.s"]),
    ("ld", "/usr/bin/x86_64-linux-gnu-ld.bfd", ["ld", "-o", "app", "main.o"]),
    ("git", "/usr/bin/git", ["git", "status", "--porcelain"]),
    ("python3", "/usr/bin/python3.11", ["python3", "-m", "pytest", "-q"]),
    ("apt-get", "/usr/bin/apt-get", ["apt-get", "-qq", "update"]),
    ("dpkg", "/usr/bin/dpkg", ["dpkg", "--status-fd", "23", "--configure", "-a"]),
    ("logrotate", "/usr/sbin/logrotate", ["logrotate", "/etc/logrotate.conf"]),
    ("run-parts", "/usr/bin/run-parts", ["run-parts", "--report", "/etc/cron.daily"]),
    ("php-fpm", "/usr/sbin/php-fpm8.2", ["php-fpm: pool www"]),
    ("nginx", "/usr/sbin/nginx", ["nginx", "-g", "daemon off;"]),
    ("bash", "/usr/bin/bash", ["bash", "-l"]),
    ("grep", "/usr/bin/grep", ["grep", "-r", "TODO", "src"]),
]


def exec_batches(batches: int, size: int = 1000) -> list[list[Any]]:
    """Execs cycling through :data:`EXECS`, by turns by a root process (pid 100, cron) and
    a user's (pid 101, a login shell of uid 1000), both under pid 1."""
    from linnix.engine import trace as tr

    out = []
    for b in range(batches):
        batch = []
        for i in range(size):
            k = b * size + i
            comm, exe, argv = EXECS[k % len(EXECS)]
            batch.append(tr.Exec(ts=1.0 + k * 1e-5, pid=100 + k % 2, comm=comm, exe=exe,
                                 argv=argv))
        out.append(batch)
    return out


def per_exec(rules: dict[str, list[str]], n: int = 100_000) -> dict[str, float]:
    """Engine CPU microseconds per exec event for each set of rule files, side by side: one
    core per set, fed the same batches of 1,000 execs in turn; the median batch."""
    from linnix.engine import trace as tr
    from linnix.engine.core import Core
    from linnix.language.pipeline import build

    cores = {}
    for name, paths in rules.items():
        core = Core(build(paths).require_plan(), 3600.0)
        core.feed([tr.Proc(ts=0.0, pid=1, ppid=0, comm="systemd", uid=0, start=0.0),
                   tr.Proc(ts=0.0, pid=100, ppid=1, comm="cron", exe="/usr/sbin/cron",
                           uid=0, start=0.0),
                   tr.Proc(ts=0.0, pid=101, ppid=1, comm="bash", exe="/usr/bin/bash",
                           uid=1000, start=0.0)])
        cores[name] = core
    times: dict[str, list[float]] = {name: [] for name in rules}
    for batch in exec_batches(n // 1000):
        for name, core in cores.items():
            started = time.process_time()
            core.feed(batch)
            times[name].append((time.process_time() - started) / len(batch))
            if core.drain():
                raise SystemExit(f"{name}: a rule fired on the benchmark's execs")
    return {name: statistics.median(got) * 1e6 for name, got in times.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--live", type=int, default=250)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--execs", type=int, default=100_000, help="execs per in-process round")
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    trace = os.path.join(OUT, f"replay-{args.events}.jsonl")
    print(f"generating {trace}", file=sys.stderr)
    shape = generate(trace, args.events, args.live)
    extra = os.path.join(OUT, "events20.lnx")
    quiet = os.path.join(OUT, "quiet.lnx")
    with open(extra, "w", encoding="utf-8") as f:
        f.write(event_rules())
    with open(quiet, "w", encoding="utf-8") as f:
        f.write("rule quiet: cpu_pct > 1000\n")
    load = os.getloadavg()
    print("measuring throughput", file=sys.stderr)
    tp = throughput(trace, extra, int(shape["events"]), args.rounds)
    print("measuring the cost per exec", file=sys.stderr)
    shipped = os.path.join(ROOT, "rules")
    sets = {"none": [quiet], "20": [quiet, extra], "shipped": [shipped],
            "shipped+20": [shipped, extra]}
    rounds = [per_exec(sets, args.execs) for _ in range(args.rounds)]
    cost = {k: statistics.median(r[k] for r in rounds) for k in sets}
    added = [r["20"] - r["none"] for r in rounds]
    added_shipped = [r["shipped+20"] - r["shipped"] for r in rounds]
    load_after = os.getloadavg()
    print(f"\n## Event rules (bench/events.py) — {time.strftime('%Y-%m-%d')}\n")
    print(f"Machine: {machine()}; load average {load[0]:.2f} before, {load_after[0]:.2f} "
          "after\n")
    print(f"Command: `python bench/events.py --events {args.events} --rounds {args.rounds} "
          f"--execs {args.execs}`\n")
    print(f"Trace: bench/replay.py's, {shape['events']:,} events, {shape['processes']:,} "
          f"processes over {shape['seconds']:,.0f} s.\n")
    print("| `linnix replay --format jsonl` | median wall | median CPU | all rounds (wall) |\n"
          "|---|---|---|---|")
    for label, key in (("shipped rules", "without"), ("shipped rules + 20 event rules",
                                                      "with")):
        runs = ", ".join(f"{x:.2f}" for x in tp[f"{key}_all"])
        print(f"| {label} | {tp[f'{key}_s']:.2f} s ({tp[f'{key}_rate']:,.0f} events/s) | "
              f"{tp[f'{key}_cpu']:.2f} s | {runs} |")
    print(f"\nWith 20 event rules the replay takes **{100 * tp['change']:+.1f} %** wall time "
          f"and **{100 * tp['cpu_change']:+.1f} %** CPU time (target: within 10 %).\n")
    print("Engine CPU time per exec event, in process (median of batches of 1,000 execs of "
          f"{len(EXECS)} ordinary programs, {args.rounds} rounds of {args.execs:,}, the rule "
          "sets side by side):\n")
    print("| rules loaded | µs per exec | 20 event rules add |\n|---|---|---|")
    print(f"| none (one tick rule) | {cost['none']:.2f} | |")
    print(f"| the 20 event rules | {cost['20']:.2f} | **{statistics.median(added):+.2f} µs** "
          f"(rounds {', '.join(f'{x:+.2f}' for x in added)}) |")
    print(f"| shipped rules | {cost['shipped']:.2f} | |")
    print(f"| shipped rules + the 20 | {cost['shipped+20']:.2f} | "
          f"**{statistics.median(added_shipped):+.2f} µs** "
          f"(rounds {', '.join(f'{x:+.2f}' for x in added_shipped)}) |")
    print("\nTarget: the 20 event rules add at most 1 µs per exec.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""What event rules cost: replay throughput with 20 of them loaded, side by side with none.

    python bench/events.py                  # 1,000,000 events, 5 rounds
    python bench/events.py --events 200000 --rounds 3

1. Generates bench/replay.py's trace (seeded; forks, execs, exits and a sample per
   live process per second).
2. Runs ``linnix replay --format jsonl > /dev/null`` with the shipped rules, and
   with the shipped rules plus 20 event rules (10 ``on exec``, 5 ``on fork``, 5
   ``on exit``, with and without cooldowns), alternating, as fresh processes;
   reports the medians and the ratio (target: within 10 %).
3. In process: the engine's time per exec event with the 20 event rules and with
   none (execs only, in batches of 1,000).

Results are printed as Markdown for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from common import OUT, machine  # bench/common.py
from replay import generate, run_timed  # bench/replay.py

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

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


def throughput(trace: str, extra: str, events: int, rounds: int) -> dict[str, object]:
    base = [sys.executable, "-m", "linnix", "replay", trace, "--rules",
            os.path.join(ROOT, "rules"), "--format", "jsonl"]
    without, with_events = [], []
    for i in range(rounds):
        print(f"  round {i + 1}/{rounds}", file=sys.stderr)
        without.append(run_timed(base)[0])
        with_events.append(run_timed([*base, "--rules", extra])[0])
    a, b = statistics.median(without), statistics.median(with_events)
    return {"without_s": a, "with_s": b, "without_rate": events / a, "with_rate": events / b,
            "change": b / a - 1, "without_all": without, "with_all": with_events}


def per_exec(rules_text: str, n: int = 100_000) -> float:
    """Engine microseconds per exec event (median of batches of 1,000)."""
    sys.path.insert(0, ROOT)
    from linnix.engine import trace as tr
    from linnix.engine.core import Core
    from linnix.language.pipeline import compile_text

    core = Core(compile_text(rules_text) if rules_text else compile_text(
        "rule quiet: cpu_pct > 1000\n"), 3600.0)
    core.feed([tr.Proc(ts=0.0, pid=1, ppid=0, comm="systemd", start=0.0),
               tr.Proc(ts=0.0, pid=100, ppid=1, comm="nginx", exe="/usr/sbin/nginx",
                       start=0.0)])
    times = []
    for b in range(n // 1000):
        batch = [tr.Exec(ts=1.0 + (b * 1000 + i) * 1e-6, pid=100, comm="nginx",
                         exe="/usr/sbin/nginx", argv=["nginx", "-g", "daemon off;"])
                 for i in range(1000)]
        started = time.perf_counter()
        core.feed(batch)
        times.append((time.perf_counter() - started) / 1000)
        core.drain()
    return statistics.median(times) * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--live", type=int, default=250)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    trace = os.path.join(OUT, f"replay-{args.events}.jsonl")
    print(f"generating {trace}", file=sys.stderr)
    shape = generate(trace, args.events, args.live)
    extra = os.path.join(OUT, "events20.lnx")
    with open(extra, "w", encoding="utf-8") as f:
        f.write(event_rules())
    print("measuring throughput", file=sys.stderr)
    tp = throughput(trace, extra, int(shape["events"]), args.rounds)
    print("measuring the cost per exec", file=sys.stderr)
    bare, loaded = per_exec(""), per_exec(event_rules())
    print(f"\n## Event rules (bench/events.py) — {time.strftime('%Y-%m-%d')}\n")
    print(f"Machine: {machine()}\n")
    print(f"Command: `python bench/events.py --events {args.events} --rounds {args.rounds}`\n")
    print(f"Trace: bench/replay.py's, {shape['events']:,} events, {shape['processes']:,} "
          f"processes over {shape['seconds']:,.0f} s.\n")
    print("| `linnix replay --format jsonl` | median | all rounds |\n|---|---|---|")
    for label, key in (("shipped rules", "without"), ("shipped rules + 20 event rules",
                                                      "with")):
        runs = ", ".join(f"{x:.2f}" for x in tp[f"{key}_all"])  # type: ignore[attr-defined]
        print(f"| {label} | {tp[f'{key}_s']:.2f} s ({tp[f'{key}_rate']:,.0f} events/s) | "
              f"{runs} |")
    print(f"\nWith 20 event rules the replay takes **{100 * tp['change']:+.1f} %** "  # type: ignore[operator]
          "(target: within 10 %).\n")
    print(f"Engine time per exec event, in process: {bare:.2f} µs with no event rule, "
          f"{loaded:.2f} µs with the 20 ({loaded - bare:+.2f} µs).")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Quiet on healthy work, loud on pathologies: the shipped rule pack on this host.

    sudo .venv/bin/python bench/quiet.py              # needs root and eBPF
    sudo .venv/bin/python bench/quiet.py --only build,idle --idle 20

The daemon runs with the shipped rules (eBPF source, monitor mode, its own
state directory and port) while real workloads run one after another:

healthy   lint (ruff) and type check (mypy) of this project; a parallel C build
          (``make -j`` over generated files with gcc); a configure-style shell
          script running a few thousand short commands; ``python -m compileall``
          over the standard library (into a private cache); tar and gzip of
          /usr/share; a package reinstall with apt-get; a process that grows to
          1.5 GB over 20 s and then stays flat; a minute idle.
pathology every ``linnix demo`` scenario, those that do not disturb one another
          side by side (each must trip its rule, about its own process); a
          shell fork bomb (a bash function forking itself, run as
          ``nobody`` under ``ulimit -u``, so every forker is ``bash``); one shell
          starting 3,000 sleeping children as fast as it can.

For each workload: the alerts that fired, by severity, and the actions
proposed, counted from the workload's start until its alerts had time to
settle.  Targets: 0 critical alerts and 0 proposed actions on healthy work;
each pathology raises a critical alert within 10 s.  Results are printed as
Markdown for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from common import ROOT, Agent, machine  # bench/common.py

SETTLE_S = 15.0  # after a workload: its last alerts are written
BOMB_PROCS = 300  # the fork bomb's process limit (ulimit -u as nobody)
NOBODY = 65534


@dataclass
class Outcome:
    """What the agent said while one workload ran."""

    name: str
    kind: str  # healthy | pathology
    seconds: float
    firing: Counter[str] = field(default_factory=Counter)  # severity -> alerts
    rules: Counter[str] = field(default_factory=Counter)  # "rule (severity)" -> alerts
    proposed: int = 0
    first_critical_s: float | None = None  # pathology: seconds to the first critical alert
    note: str = ""


# ---- healthy workloads ---------------------------------------------------------------

def lint(tmp: str) -> None:
    venv = os.path.join(ROOT, ".venv", "bin")
    # without their caches: the whole work, as on a fresh checkout
    subprocess.run([os.path.join(venv, "ruff"), "check", "--no-cache", "linnix", "tests", "bench"],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([os.path.join(venv, "mypy"), "--cache-dir", os.path.join(tmp, "mypy")],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def c_build(tmp: str, files: int = 300) -> None:
    src = os.path.join(tmp, "cbuild")
    os.makedirs(src, exist_ok=True)
    for i in range(files):
        with open(os.path.join(src, f"f{i}.c"), "w") as f:
            f.write(f"#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n"
                    f"int f{i}(int n) {{ char b[64]; int s = 0;\n"
                    f"  for (int k = 0; k < n; k++) {{ snprintf(b, sizeof b, \"%d\", k * {i});"
                    f" s += (int) strlen(b); }}\n  return s; }}\n")
    with open(os.path.join(src, "main.c"), "w") as f:
        f.write("int main(void) { return 0; }\n")
    objs = " ".join(f"f{i}.o" for i in range(files))
    with open(os.path.join(src, "Makefile"), "w") as f:
        f.write(f"prog: main.o {objs}\n\tgcc -o $@ $^\n%.o: %.c\n\tgcc -O2 -c -o $@ $<\n")
    subprocess.run(["make", "-s", f"-j{os.cpu_count() or 1}", "-C", src], check=True,
                   stdout=subprocess.DEVNULL)


CONFIGURE = r"""
set -e
cd "$1"
for i in $(seq 1 700); do
    test -d . && echo "checking for feature $i... yes" > /dev/null
    printf 'int x%d;\n' "$i" | grep -q "x$i"
    expr "$i" + 1 > /dev/null
    echo "HAVE_$i" | sed 's/HAVE_/#define HAVE_/' >> config.h
done
"""


def configure(tmp: str) -> None:
    subprocess.run(["bash", "-c", CONFIGURE, "configure", tmp], check=True)


def compileall(tmp: str) -> None:
    env = {**os.environ, "PYTHONPYCACHEPREFIX": os.path.join(tmp, "pycache")}
    stdlib = os.path.dirname(os.__file__)
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-f", "-j", "0", stdlib],
                   env=env, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def tar_gzip(tmp: str) -> None:
    with open(os.path.join(tmp, "share.tar.gz"), "wb") as out:
        subprocess.run(["tar", "-cz", "-C", "/usr", "share"], stdout=out,
                       stderr=subprocess.DEVNULL, check=False)


def package_install(tmp: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "install", "--reinstall", "-y", "-qq", "hostname"], env=env,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


CACHE = r"""
import time
chunks = []
for _ in range(60):                      # 1.5 GB in 25 MiB steps over 20 s
    chunk = bytearray(25 * 1024 * 1024)
    for i in range(0, len(chunk), 4096):
        chunk[i] = 1                     # touch every page: resident, not just reserved
    chunks.append(chunk)
    time.sleep(20 / 60)
time.sleep(25)                           # then flat, as a warm cache is
"""


def cache_warmup(tmp: str) -> None:
    subprocess.run([sys.executable, "-c", CACHE], check=True)


def idle(tmp: str, seconds: float = 60.0) -> None:
    time.sleep(seconds)


# ---- pathologies -----------------------------------------------------------------------

def demos(tmp: str) -> None:
    """Every demo scenario; a group of them side by side, the groups in turn."""
    sys.path.insert(0, ROOT)
    from linnix.tools.demo import GROUPS

    for group in GROUPS:
        print(f"    demo {' + '.join(group)}", file=sys.stderr, flush=True)
        runs = [subprocess.Popen([sys.executable, "-m", "linnix", "demo", name], cwd=ROOT,
                                 stdout=subprocess.DEVNULL) for name in group]
        for run in runs:
            if run.wait() != 0:
                raise subprocess.CalledProcessError(run.returncode, run.args)
        time.sleep(SETTLE_S)


BOMB = r"""
ulimit -u {limit}
bomb() {{ bomb | bomb & }}
bomb
"""


def fork_bomb(tmp: str, seconds: float = 15.0) -> None:
    """A bash fork bomb as nobody, bounded by ulimit -u, killed after ``seconds``."""
    as_nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    if _nobody_runs():
        raise SystemExit("processes of nobody are running: the fork bomb's clean-up would "
                         "kill them; stop them first")
    subprocess.Popen([*as_nobody, "bash", "-c", BOMB.format(limit=BOMB_PROCS)],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(seconds)
    _kill_user(as_nobody)


def _kill_user(as_user: list[str]) -> None:
    """kill -KILL -1 as that user (every process it owns) until none is left."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        subprocess.run([*as_user, "kill", "-KILL", "-1"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)
        if not _nobody_runs():
            return
        time.sleep(0.2)
    raise SystemExit("the fork bomb's processes would not go away")


def _nobody_runs() -> bool:
    found = subprocess.run(["pgrep", "-u", str(NOBODY)], stdout=subprocess.DEVNULL, check=False)
    return found.returncode == 0


SPAWNER = r"""
trap 'kill $(jobs -p) 2>/dev/null' EXIT
for i in $(seq 1 3000); do sleep 60 & done
sleep 15
"""


def spawn_3000(tmp: str) -> None:
    subprocess.run(["bash", "-c", SPAWNER], check=False, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


HEALTHY: dict[str, Callable[[str], None]] = {
    "lint and type check": lint, "parallel C build": c_build, "configure script": configure,
    "compileall stdlib": compileall, "tar+gzip /usr/share": tar_gzip,
    "apt-get reinstall": package_install, "1.5 GB cache warm-up": cache_warmup,
    "idle": idle,
}
PATHOLOGIES: dict[str, Callable[[str], None]] = {
    "linnix demo (every scenario)": demos, "bash fork bomb": fork_bomb,
    "3,000 sleeping children": spawn_3000,
}


# ---- measuring ---------------------------------------------------------------------------

QUIET_MAX_S = 180.0  # the longest wait for the previous workload's alerts to resolve


def wait_quiet(agent: Agent) -> None:
    """Until no alert is firing: a storm still firing from the previous workload (the
    pack's hysteresis keeps one storm one alert) would hide the next one's firing."""
    deadline = time.monotonic() + QUIET_MAX_S
    while time.monotonic() < deadline:
        firing: set[tuple[object, object, object]] = set()
        for r in agent.alerts():
            if r.get("type") != "alert":
                continue
            key = (r.get("rule"), r.get("pid"), r.get("start"))
            if r.get("state") == "firing":
                firing.add(key)
            elif r.get("state") == "resolved":
                firing.discard(key)
        if not firing:
            return
        time.sleep(1.0)
    print(f"    (alerts still firing after {QUIET_MAX_S:.0f}s; going on)", file=sys.stderr)


def run_workload(agent: Agent, name: str, kind: str, work: Callable[[str], None]) -> Outcome:
    wait_quiet(agent)
    print(f"  {kind}: {name}", file=sys.stderr, flush=True)
    tmp = tempfile.mkdtemp(prefix="linnix-quiet-")
    start = agent.now()
    began = time.monotonic()
    note = ""
    try:
        work(tmp)
    except (subprocess.CalledProcessError, OSError) as err:
        note = f"workload failed: {err}"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    seconds = time.monotonic() - began
    time.sleep(SETTLE_S)
    return tally(agent.alerts(), name, kind, start, agent.now(), seconds, note)


def tally(records: list[dict[str, object]], name: str, kind: str, start: float, end: float,
          seconds: float, note: str) -> Outcome:
    out = Outcome(name, kind, seconds, note=note)
    for r in records:
        ts = float(r["ts"])  # type: ignore[arg-type]
        if not start <= ts <= end:
            continue
        if r.get("type") == "alert" and r.get("state") == "firing":
            severity = str(r.get("severity"))
            out.firing[severity] += 1
            about = r.get("comm") if r.get("pid") is not None else "the host"
            out.rules[f"{r.get('rule')} ({severity}) about {about}"] += 1
            if severity == "critical" and out.first_critical_s is None:
                out.first_critical_s = ts - start
        elif r.get("type") == "action":
            out.proposed += 1
    return out


def demo_coverage(records: list[dict[str, object]], start: float,
                  end: float) -> tuple[list[str], list[str]]:
    """(rules that fired about their demo's own processes, rules that did not)."""
    sys.path.insert(0, ROOT)
    from linnix.tools.demo import SCENARIOS

    fired, missed = [], []
    for scenario in SCENARIOS.values():
        for r in records:
            if r.get("type") != "alert" or r.get("state") != "firing" \
                    or r.get("rule") != scenario.rule:
                continue
            if not start <= float(r["ts"]) <= end:  # type: ignore[arg-type]
                continue
            about = [r.get("comm")] if r.get("pid") is not None else [
                a.get("comm") for a in records if a.get("type") == "action"
                and a.get("rule") == r.get("rule") and a.get("ts") == r.get("ts")]
            if scenario.comm in about:
                fired.append(scenario.rule)
                break
        else:
            missed.append(scenario.rule)
    return fired, missed


def report(outcomes: list[Outcome], demos_fired: tuple[list[str], list[str]] | None,
           argv: list[str], load: tuple[float, float, float]) -> None:
    print(f"\n## Healthy work and pathologies (bench/quiet.py) — {time.strftime('%Y-%m-%d')}\n")
    print(f"Machine: {machine()}; load average before the run "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
    print(f"Command: `sudo .venv/bin/python bench/quiet.py {' '.join(argv)}`".rstrip() + "\n")
    print("| workload | kind | seconds | critical | warning | proposed actions | "
          "first critical after | rules that fired |")
    print("|---|---|---|---|---|---|---|---|")
    for o in outcomes:
        first = "-" if o.first_critical_s is None else f"{o.first_critical_s:.1f}s"
        rules = ", ".join(f"{r} x{n}" for r, n in sorted(o.rules.items())) or "none"
        if o.note:
            rules += f" ({o.note})"
        print(f"| {o.name} | {o.kind} | {o.seconds:.0f} | {o.firing['critical']} | "
              f"{o.firing['warning']} | {o.proposed} | {first} | {rules} |")
    healthy = [o for o in outcomes if o.kind == "healthy"]
    if healthy:
        crit = sum(o.firing["critical"] for o in healthy)
        acts = sum(o.proposed for o in healthy)
        print(f"\nHealthy work: {crit} critical alert(s), {acts} proposed action(s) "
              "(target: 0 and 0).")
    if demos_fired is not None:
        fired, missed = demos_fired
        print(f"`linnix demo`: {len(fired)} of {len(fired) + len(missed)} rules fired about "
              "the demo's own processes" + (f" (not: {', '.join(missed)})." if missed else "."))
    for o in outcomes:
        if o.kind == "pathology" and o.name != "linnix demo (every scenario)":
            verdict = ("within 10 s" if o.first_critical_s is not None
                       and o.first_critical_s <= 10 else "NOT within 10 s")
            print(f"{o.name}: critical alert {verdict}.")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", help="comma-separated workload names (or parts of them)")
    ap.add_argument("--idle", type=float, default=60.0, help="seconds of the idle workload")
    ap.add_argument("--rules", default=os.path.join(ROOT, "rules"),
                    help="the rules the agent runs (default: the shipped pack)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/quiet.py needs root (eBPF, apt-get, the fork bomb as nobody)",
              file=sys.stderr)
        return 2
    HEALTHY["idle"] = lambda tmp: idle(tmp, args.idle)
    plan = [(n, "healthy", w) for n, w in HEALTHY.items()]
    plan += [(n, "pathology", w) for n, w in PATHOLOGIES.items()]
    if args.only:
        keys = [k.strip() for k in args.only.split(",") if k.strip()]
        plan = [p for p in plan if any(k in p[0] for k in keys)]
    load = os.getloadavg()
    state = tempfile.mkdtemp(prefix="linnix-quiet-state-")
    agent = Agent(state, rules=args.rules)
    outcomes: list[Outcome] = []
    demos_fired = None
    try:
        time.sleep(SETTLE_S)  # whatever ran before the agent started settles first
        for name, kind, work in plan:
            start = agent.now()
            outcomes.append(run_workload(agent, name, kind, work))
            if work is demos:
                demos_fired = demo_coverage(agent.alerts(), start, agent.now())
    finally:
        agent.stop()
        shutil.rmtree(state, ignore_errors=True)
    report(outcomes, demos_fired, sys.argv[1:], load)
    return 0


if __name__ == "__main__":
    sys.exit(main())

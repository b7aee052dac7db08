#!/usr/bin/env python3
"""Alert delivery to Alertmanager: latency from the firing transition, and the CPU of re-sending.

    sudo .venv/bin/python bench/notify.py                 # eBPF as root, else /proc polling
    python bench/notify.py --alerts 5 --held 5 --window 3 --windows 1 --runs 1   # a quick check

Needs Debian's ``prometheus-alertmanager``; each run starts its own, on a loopback
port, with empty storage.  The daemon runs the shipped rules plus ``lnx_notify``,
which fires for every process named ``lnx-notify`` (a copy of sleep).

1. Latency.  The daemon runs in a child process of this script, built as
   ``linnix run`` builds it, with one more sink: it notes the wall time at which
   the engine hands each firing transition to its sinks (the notifier is the
   next one).  Alertmanager's ``updatedAt`` is the wall time its API received
   the alert, to the millisecond (checked at the start of each run with a probe
   alert this script POSTs itself); the script reads it from
   ``GET /api/v2/alerts`` the first time each alert shows there, before any
   re-send can change it.  Latency = updatedAt - hand-over time, for --alerts
   alerts one at a time (a process every --interval s: about one alert per
   tick) and --alerts alerts at once (started together: one or two ticks fire
   them all, sent 64 to a request).  p50, p99 (nearest rank) and max of each
   run, and their medians over --runs runs.
2. CPU.  --held processes are started first; then three daemons (``linnix run``,
   side by side over the same windows), each firing for all of them: one with
   ``[notify]`` to Alertmanager (``resend_interval`` --resend, the default 60 s),
   two with no ``[notify]`` (how far those two differ is the noise of the
   comparison).  Once every alert is in Alertmanager, the CPU time
   of each (utime + stime, /proc/PID/stat) over --windows windows of --window
   seconds (one resend cycle each by default), as % of one core; and the
   alerts re-sent in each window (the daemon's ``/metrics``).

Progress goes to stderr; the Markdown section for bench/RESULTS.md to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from common import ROOT, cpu_seconds, free_port, machine  # bench/common.py

ALERTMANAGER = "prometheus-alertmanager"
RULE = "lnx_notify"
COMM = "lnx-notify"
RULE_TEXT = f'rule {RULE} {{\n    when comm == "{COMM}"\n    message "{{comm}} runs"\n}}\n'
POLL_S = 0.25  # how often Alertmanager's alerts are read (updatedAt, not this, is the measure)
STARTUP_S = 120.0  # a daemon or Alertmanager ready, all alerts shown
SETTLE_S = 3.0
SOURCES: set[str] = set()  # the sources the daemons said they use


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ---- what is measured ---------------------------------------------------------------
def instant(text: str) -> float:
    """An RFC 3339 time (Alertmanager's) as a Unix time."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp()


def nearest_rank(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile by nearest rank: the smallest value with at least q of them at or
    below it (p99 of 200 values is the 198th smallest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def summary(values: Sequence[float]) -> tuple[float, float, float]:
    """p50, p99 and max."""
    return nearest_rank(values, 0.5), nearest_rank(values, 0.99), max(values)


def latencies(emitted: dict[int, float], received: dict[int, float],
              pids: Sequence[int]) -> list[float]:
    """Seconds from hand-over to receipt for each of ``pids`` that has both."""
    return [received[p] - emitted[p] for p in pids if p in emitted and p in received]


# ---- Alertmanager -------------------------------------------------------------------
class Alertmanager:
    """``prometheus-alertmanager`` on a loopback port with its own storage; no receiver."""

    def __init__(self, tmp: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = os.path.join(tmp, "alertmanager.yml")
        with open(config, "w") as f:
            f.write("route:\n  receiver: none\n  group_by: [alertname]\n"
                    "receivers:\n  - name: none\n")
        self.log = os.path.join(tmp, "alertmanager.log")
        self.proc = subprocess.Popen(
            [ALERTMANAGER, f"--config.file={config}", f"--storage.path={tmp}/am-data",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="],
            stdout=subprocess.DEVNULL, stderr=open(self.log, "wb"))  # noqa: SIM115
        wait_for(self.ready, "Alertmanager to be ready")

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            with open(self.log, errors="replace") as f:
                raise SystemExit(f"notify.py: Alertmanager exited: {f.read()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=5) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def alerts(self, name: str = RULE) -> list[dict[str, Any]]:
        query = urllib.parse.quote(f'alertname="{name}"')
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts?filter={query}",
                                    timeout=10) as answer:
            found: list[dict[str, Any]] = json.loads(answer.read())
            return found

    def probe(self) -> tuple[float, float, float]:
        """POST an alert; (before, after, its updatedAt): is updatedAt the receipt?"""
        body = json.dumps([{"labels": {"alertname": "lnx_notify_probe"}}]).encode()
        request = urllib.request.Request(f"{self.url}/api/v2/alerts", body,
                                         {"Content-Type": "application/json"})
        before = time.time()
        with urllib.request.urlopen(request, timeout=10):
            after = time.time()
        (shown,) = self.alerts("lnx_notify_probe")
        return before, after, instant(shown["updatedAt"])

    def stop(self) -> None:
        stop(self.proc)


def version() -> str:
    try:
        out = subprocess.run([ALERTMANAGER, "--version"], capture_output=True, text=True,
                             timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown version"
    words = (out.stdout or out.stderr).split()
    return words[2] if len(words) > 2 else "unknown version"


class Watcher:
    """Reads Alertmanager's alerts every ``POLL_S`` in a thread: the first ``updatedAt``
    of each pid (a re-send, a minute later, would move it)."""

    def __init__(self, am: Alertmanager) -> None:
        self.am = am
        self.received: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            with contextlib.suppress(OSError, ValueError):
                for alert in self.am.alerts():
                    pid = int(alert["labels"]["pid"])
                    if pid not in self.received:
                        self.received[pid] = instant(alert["updatedAt"])

    def wait(self, pids: Sequence[int]) -> None:
        wait_for(lambda: all(p in self.received for p in pids), "every alert in Alertmanager")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


# ---- the processes, the daemons -----------------------------------------------------
def wait_for(ready: Callable[[], bool], what: str, timeout: float = STARTUP_S) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise SystemExit(f"notify.py: gave up waiting for {what} after {timeout:g}s")
        time.sleep(0.05)


def stop(proc: subprocess.Popen[Any], timeout: float = 30.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Targets:
    """Processes named ``COMM`` (a copy of sleep), each the subject of one alert."""

    def __init__(self, tmp: str) -> None:
        self.program = os.path.join(tmp, COMM)
        shutil.copy("/bin/sleep", self.program)
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, count: int, every: float = 0.0) -> list[int]:
        started = []
        for i in range(count):
            if every and i:
                time.sleep(every)
            proc = subprocess.Popen([self.program, "3600"])
            self.procs.append(proc)
            started.append(proc.pid)
        return started

    def stop(self) -> None:
        for proc in self.procs:
            proc.kill()
        for proc in self.procs:
            proc.wait()
        self.procs = []


def write_config(path: str, am_url: str | None, resend: str) -> None:
    text = f'[api]\nbind = "127.0.0.1:{free_port()}"\n'
    if am_url is not None:
        text += (f'\n[notify]\nresend_interval = "{resend}"\n\n'
                 f'[[notify.alertmanager]]\nurl = "{am_url}"\n')
    with open(path, "w") as f:
        f.write(text)


class Daemon:
    """A daemon in the background with its own state directory, config and port."""

    def __init__(self, state: str, argv: list[str]) -> None:
        self.state = state
        os.makedirs(state, exist_ok=True)
        self.log = os.path.join(state, "stderr.log")
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, "w"))  # noqa: SIM115
        status = os.path.join(state, "daemon.json")
        wait_for(lambda: self._alive() and os.path.exists(status), "a daemon to start")
        with open(status) as f:
            found = json.load(f)
        self.api, self.source = f"http://{found['api']}", str(found["source"])
        SOURCES.add(self.source)

    def _alive(self) -> bool:
        if self.proc.poll() is not None:
            with open(self.log, errors="replace") as f:
                raise SystemExit(f"notify.py: the daemon exited: {f.read()[-2000:]}")
        return True

    def firing(self) -> int:
        """Firing transitions of ``RULE`` in alerts.jsonl."""
        try:
            with open(os.path.join(self.state, "alerts.jsonl"), "rb") as f:
                return sum(1 for line in f
                           if b'"state":"firing"' in line and f'"rule":"{RULE}"'.encode() in line)
        except FileNotFoundError:
            return 0

    def sent(self) -> float | None:
        """Alerts Alertmanager accepted so far (None without a notifier)."""
        with urllib.request.urlopen(f"{self.api}/metrics", timeout=10) as answer:
            text = answer.read().decode()
        found = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                 if line.startswith("linnix_notifications_sent_total{")]
        return sum(found) if found else None

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        stop(self.proc)


def rules_dir(tmp: str) -> str:
    path = os.path.join(tmp, "rules")
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "notify_bench.lnx"), "w") as f:
        f.write(RULE_TEXT)
    return path


def run_argv(state: str, config: str, rules: str, source: str) -> list[str]:
    return [sys.executable, "-m", "linnix", "run", "--config", config, "--rules",
            os.path.join(ROOT, "rules"), "--rules", rules, "--state-dir", state,
            "--source", source]


# ---- the child: the daemon with one more sink ---------------------------------------
def agent(spec: dict[str, Any]) -> int:
    """Run the daemon as ``linnix run`` does, noting when each firing transition of
    ``RULE`` is handed to the sinks; write those times to ``emitted.json`` at the end."""
    sys.path.insert(0, ROOT)
    from linnix.config import load_config
    from linnix.engine.evaluator import Alert
    from linnix.runtime.daemon import Daemon as LinnixDaemon
    from linnix.runtime.daemon import DaemonOptions

    stamps: list[tuple[int | None, float]] = []

    def stamp(batch: Sequence[object]) -> None:  # before the notifier, in the same call
        now = time.time()
        stamps.extend((item.pid, now) for item in batch if isinstance(item, Alert)
                      and item.state == "firing" and item.rule == RULE)

    config = load_config(spec["config"])
    telemetry = config.telemetry
    opts = DaemonOptions(
        rules=spec["rules"], state_dir=spec["state"], tick_s=telemetry.tick,
        sample_interval=telemetry.sample_interval, ring_pages=telemetry.ring_buffer_pages,
        source=spec["source"], sample_fds=telemetry.sample_fds, config=config)
    code = LinnixDaemon(opts, sinks=[stamp]).run()
    with open(os.path.join(spec["state"], "emitted.json"), "w") as f:
        json.dump(stamps, f)
    return code


def agent_argv(state: str, config: str, rules: str, source: str) -> list[str]:
    spec = {"state": state, "config": config, "source": source,
            "rules": [os.path.join(ROOT, "rules"), rules]}
    return [sys.executable, os.path.abspath(__file__), "--agent", json.dumps(spec)]


# ---- 1. latency ---------------------------------------------------------------------
def latency_run(tmp: str, args: argparse.Namespace, rules: str) -> dict[str, Any]:
    """One Alertmanager and one daemon: alerts one at a time, then all at once."""
    am = Alertmanager(tmp)
    targets = Targets(tmp)
    daemon: Daemon | None = None
    watcher = Watcher(am)
    try:
        before, after, updated = am.probe()
        config = os.path.join(tmp, "linnix.toml")
        write_config(config, am.url, args.resend)
        state = os.path.join(tmp, "state")
        daemon = Daemon(state, agent_argv(state, config, rules, args.source))
        time.sleep(SETTLE_S)  # the start-up scan and the first samples
        say(f"  {args.alerts} alerts one at a time, one every {args.interval:g}s")
        one = targets.start(args.alerts, args.interval)
        watcher.wait(one)
        targets.stop()
        time.sleep(SETTLE_S)  # they resolve
        say(f"  {args.alerts} alerts at once")
        burst = targets.start(args.alerts)
        watcher.wait(burst)
        daemon.stop()
        with open(os.path.join(state, "emitted.json")) as f:
            emitted: dict[int, float] = {int(pid): at for pid, at in json.load(f)}
        return {"probe": (before, after, updated),
                "one": latencies(emitted, watcher.received, one),
                "burst": latencies(emitted, watcher.received, burst),
                "burst_ticks": len({emitted[p] for p in burst if p in emitted})}
    finally:
        watcher.stop()
        if daemon is not None:
            daemon.stop()
        targets.stop()
        am.stop()


# ---- 2. CPU -------------------------------------------------------------------------
def cpu_run(tmp: str, args: argparse.Namespace, rules: str) -> dict[str, Any]:
    """Three daemons holding the same firing alerts: one with [notify], two without (the
    second shows how far two identical daemons differ over the same windows)."""
    targets = Targets(tmp)
    am: Alertmanager | None = None
    daemons: list[Daemon] = []
    try:
        say(f"  starting {args.held:,} processes")
        targets.start(args.held)
        am = Alertmanager(tmp)
        for name, url in (("notify", am.url), ("plain", None), ("control", None)):
            config = os.path.join(tmp, f"{name}.toml")
            write_config(config, url, args.resend)
            state = os.path.join(tmp, name)
            daemons.append(Daemon(state, run_argv(state, config, rules, args.source)))
        wait_for(lambda: len(am.alerts()) >= args.held
                 and all(d.firing() >= args.held for d in daemons[1:]),
                 f"{args.held:,} alerts firing in every daemon")
        time.sleep(SETTLE_S)
        windows = [cpu_window(daemons, args, i) for i in range(args.windows)]
        return {"windows": windows, "shown": len(am.alerts())}
    finally:
        for daemon in daemons:
            daemon.stop()
        if am is not None:
            am.stop()
        targets.stop()


def cpu_window(daemons: list[Daemon], args: argparse.Namespace, index: int) -> dict[str, float]:
    """% of one core of each daemon over one window, and the alerts re-sent in it."""
    say(f"  window {index + 1} of {args.windows} ({args.window:g}s)")
    sent = [d.sent() for d in daemons]  # the same request to each
    cpu = [d.cpu() for d in daemons]
    started = time.monotonic()
    time.sleep(args.window)
    used = [d.cpu() - c for d, c in zip(daemons, cpu, strict=True)]
    seconds = time.monotonic() - started
    resent = (daemons[0].sent() or 0.0) - (sent[0] or 0.0)
    for daemon in daemons[1:]:
        daemon.sent()
    notify, plain, control = (100 * u / seconds for u in used)
    return {"notify": notify, "plain": plain, "control": control, "resent": resent,
            "extra_s": used[0] - used[1]}


# ---- the report ---------------------------------------------------------------------
def ms(value: float) -> str:
    return f"{1000 * value:.0f} ms" if value >= 0.1 else f"{1000 * value:.1f} ms"


def latency_rows(runs: list[dict[str, Any]], args: argparse.Namespace) -> list[str]:
    rows = ["| alerts | p50 | p99 | max | each run: p50 / p99 / max | measured |",
            "|---|---|---|---|---|---|"]
    for key, name in (("one", f"{args.alerts} one at a time (one every {args.interval:g} s)"),
                      ("burst", f"{args.alerts} at once")):
        per_run = [summary(r[key]) for r in runs if r[key]]
        if not per_run:
            rows.append(f"| {name} | | | | none measured | 0 |")
            continue
        med = [statistics.median(s[i] for s in per_run) for i in range(3)]
        each = "; ".join(" / ".join(ms(v) for v in s) for s in per_run)
        count = ", ".join(str(len(r[key])) for r in runs)
        rows.append(f"| {name} | **{ms(med[0])}** | **{ms(med[1])}** | {ms(med[2])} | "
                    f"{each} | {count} of {args.alerts} |")
    return rows


def probe_text(runs: list[dict[str, Any]]) -> str:
    ok = all(math.floor(b * 1000) / 1000 <= u <= a for b, a, u in (r["probe"] for r in runs))
    return ("a probe alert this script POSTed before each run came back with an updatedAt "
            "between the moment it sent the request and the moment the answer came"
            if ok else "WARNING: a probe's updatedAt fell outside its request; the figures "
            "below may not be receipt times")


def cpu_rows(result: dict[str, Any], args: argparse.Namespace) -> list[str]:
    windows = result["windows"]
    notify = [w["notify"] for w in windows]
    plain = [w["plain"] for w in windows]
    control = [w["control"] for w in windows]
    diff = [w["notify"] - w["plain"] for w in windows]
    floor = [w["control"] - w["plain"] for w in windows]
    resent = [w["resent"] for w in windows]
    per_alert = [w["extra_s"] / w["resent"] for w in windows if w["resent"] > 0]

    def row(name: str, values: list[float], signed: bool = False) -> str:
        fmt = "{:+.2f}%" if signed else "{:.2f}%"
        return (f"| {name} | **{fmt.format(statistics.median(values))}** | "
                f"{', '.join(fmt.format(v) for v in values)} |")

    rows = [f"| agent holding {args.held:,} firing alerts | CPU, % of one core (median) | "
            f"each window of {args.window:g} s |", "|---|---|---|",
            row(f"with `[notify]` to Alertmanager (resend every {args.resend})", notify),
            row("without `[notify]`", plain),
            row("a second daemon without `[notify]` (control)", control),
            row("difference: with `[notify]` - without", diff, signed=True),
            row("difference: control - without (the noise of this comparison)", floor,
                signed=True), ""]
    rows.append(f"Alerts sent per window (every rule's, `linnix_notifications_sent_total`): "
                f"{', '.join(f'{r:,.0f}' for r in resent)}; Alertmanager held "
                f"{result['shown']:,} alerts of `{RULE}` at the end.")
    if per_alert:
        rows.append(f"CPU per alert sent (the first difference / alerts sent, median): "
                    f"**{1e6 * statistics.median(per_alert):.0f} µs**.")
    return rows


def report(args: argparse.Namespace, lat: list[dict[str, Any]], cpu: dict[str, Any] | None,
           load: str, source: str) -> str:
    lines = [f"## Alert delivery (bench/notify.py) — {time.strftime('%Y-%m-%d')}", "",
             f"Machine: {machine()}; load average before the run {load}", "",
             f"Command: `{' '.join(['python bench/notify.py', *sys.argv[1:]])}`", "",
             f"Alertmanager {version()} (Debian's `{ALERTMANAGER}`) on loopback; the daemon's "
             f"source: {source}; the shipped rules plus `{RULE}` (fires for each process "
             f"named `{COMM}`); `resend_interval` {args.resend}.", ""]
    if lat:
        ticks = ", ".join(str(r["burst_ticks"]) for r in lat)
        lines += [f"**Latency**, from the engine handing the firing transition to its sinks "
                  f"to Alertmanager receiving the alert (its `updatedAt`, kept to the "
                  f"millisecond and cut, not rounded: a figure may be up to 1 ms low; "
                  f"{probe_text(lat)}); median over {len(lat)} run(s):", "",
                  *latency_rows(lat, args), "",
                  f"The alerts \"at once\" were fired by {ticks} tick(s) in each run; "
                  f"Alertmanager takes them 64 to a request.", ""]
    if cpu is not None:
        lines += [f"**CPU while re-sending**: the three daemons side by side, over the same "
                  f"{len(cpu['windows'])} window(s) of {args.window:g} s (utime + stime from "
                  "/proc/PID/stat, in 10 ms ticks):", "", *cpu_rows(cpu, args), ""]
    return "\n".join(lines)


# ---- main ---------------------------------------------------------------------------
def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--alerts", type=int, default=200, help="alerts per latency run (200)")
    ap.add_argument("--interval", type=float, default=0.5,
                    help="seconds between alerts one at a time (0.5, a tick)")
    ap.add_argument("--runs", type=int, default=3, help="latency runs (3)")
    ap.add_argument("--held", type=int, default=1000, help="firing alerts held (1000)")
    ap.add_argument("--window", type=float, default=60.0, help="CPU window, seconds (60)")
    ap.add_argument("--windows", type=int, default=3, help="CPU windows (3)")
    ap.add_argument("--resend", default="60s", help="resend_interval (60s, the default)")
    ap.add_argument("--source", default="auto", choices=("auto", "ebpf", "netlink", "poll"))
    ap.add_argument("--only", choices=("latency", "cpu"), help="one part only")
    ap.add_argument("--agent", help=argparse.SUPPRESS)  # the child of part 1
    args = ap.parse_args(argv)
    for name in ("alerts", "runs", "held", "windows"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be at least 1")
    if args.window <= 0 or args.interval < 0:
        ap.error("--window must be positive and --interval not negative")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    if args.agent is not None:
        return agent(json.loads(args.agent))
    if shutil.which(ALERTMANAGER) is None:
        print(f"notify.py: {ALERTMANAGER} is not installed (scripts/setup.sh installs it)",
              file=sys.stderr)
        return 1
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="linnix-bench-notify-") as tmp:
        rules = rules_dir(tmp)
        lat = []
        if args.only in (None, "latency"):
            for i in range(args.runs):
                say(f"latency run {i + 1} of {args.runs}")
                lat.append(latency_run(scratch(tmp, f"run{i}"), args, rules))
        cpu = None
        if args.only in (None, "cpu"):
            say(f"CPU with {args.held:,} firing alerts")
            cpu = cpu_run(scratch(tmp, "cpu"), args, rules)
    print(report(args, lat, cpu, load, ", ".join(sorted(SOURCES))))
    return 0


def scratch(tmp: str, name: str) -> str:
    """A directory of its own for one run (the whole of ``tmp`` goes at the end)."""
    path = os.path.join(tmp, name)
    os.makedirs(path)
    return path


if __name__ == "__main__":
    sys.exit(main())

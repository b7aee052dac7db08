"""Live capture against the real kernel: threads, overflow, scan races, signals, fallback.

These need root and a working eBPF toolchain (``live_support.require_ebpf``);
they skip with the reason otherwise, except in CI as root where they must run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from live_support import RULES, Daemon, drain_until, require_ebpf, require_root
from support import run_linnix

from linnix.engine import trace as t
from linnix.engine.core import Core
from linnix.language.pipeline import compile_text

pytestmark = [pytest.mark.root, pytest.mark.ebpf, pytest.mark.slow]


@pytest.fixture
def bpf():  # type: ignore[no-untyped-def]
    require_ebpf()
    from linnix.procfs import Clock
    from linnix.runtime.sources.bcc import BpfSource

    src = BpfSource(Clock(), ring_pages=256)
    yield src
    src.close()




def test_threads_are_not_reported_as_forks(bpf) -> None:  # type: ignore[no-untyped-def]
    script = ("import os, threading\n"
              "ts = [threading.Thread(target=lambda: None) for _ in range(8)]\n"
              "[x.start() for x in ts]; [x.join() for x in ts]\n"
              "pid = os.fork()\n"
              "if pid == 0: os._exit(0)\n"
              "os.waitpid(pid, 0); print(pid, flush=True)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    child = int(proc.stdout.split()[0])
    events = drain_until(bpf, lambda evs: any(
        isinstance(e, t.Exit) and e.pid == child for e in evs))
    python_pid = next(e.pid for e in events if isinstance(e, t.Fork) and e.pid != child
                      and any(isinstance(x, t.Exec) and x.pid == e.pid for x in events))
    forks_by_python = [e for e in events if isinstance(e, t.Fork) and e.ppid == python_pid]
    assert [e.pid for e in forks_by_python] == [child]  # 8 threads, one process
    exits = [e for e in events if isinstance(e, t.Exit) and e.pid in (child, python_pid)]
    assert {e.pid for e in exits} == {child, python_pid}  # thread exits are not process exits


def test_exec_reports_the_new_image(bpf) -> None:  # type: ignore[no-untyped-def]
    proc = subprocess.run(["/bin/true"], check=True)
    assert proc.returncode == 0
    events = drain_until(bpf, lambda evs: any(
        isinstance(e, t.Exec) and e.exe == "/bin/true" for e in evs))
    execs = [e for e in events if isinstance(e, t.Exec) and e.exe == "/bin/true"]
    assert execs and execs[0].comm == "true"


def test_ring_buffer_overflow_is_counted_as_lost_events_not_a_crash() -> None:
    require_ebpf()
    from linnix.procfs import Clock
    from linnix.runtime.sources.bcc import BpfSource

    clock = Clock()
    src = BpfSource(clock, ring_pages=1)  # 4 KiB: about a hundred records
    try:
        subprocess.run([sys.executable, "-c",
                        "import os\n"
                        "for _ in range(600):\n"
                        "    pid = os.fork()\n"
                        "    if pid == 0: os._exit(0)\n"
                        "    os.waitpid(pid, 0)\n"], check=True)
        lost = src.lost_event()
        assert lost is not None and lost.count > 0
        events = src.drain()
        assert 0 < len(events) < 1200
        core = Core(compile_text('rule degraded: lost_events > 0'))
        core.feed([*events, lost, t.System(ts=lost.ts + 0.6)])
        core.finish()
        fired = [o for o in core.drain() if getattr(o, "state", None) == "firing"]
        assert fired and fired[0].values["lost_events"] == lost.count
        assert src.lost_event() is None  # reported once
    finally:
        src.close()


def test_startup_scan_skips_a_process_that_exits_while_it_is_read(tmp_path: Path) -> None:
    from linnix.procfs import Clock
    from linnix.runtime.sources.telemetry import snapshot

    fake = tmp_path / "proc"
    for pid, stat in ((1, "1 (init) S 0 1 1 0 -1 4194560 0 0 0 0 5 5 0 0 20 0 1 0 10 0 100"),
                      (42, None),  # listed, gone before it could be read
                      (77, "77 (my (odd) name) R 1 77 77 0 -1 0 0 0 0 0 1 2 0 0 20 0 3 0 50 0 9")):
        (fake / str(pid)).mkdir(parents=True)
        if stat is not None:
            (fake / str(pid) / "stat").write_text(stat + " 0" * 30 + "\n")
    procs = snapshot(Clock(origin=0.0), root=str(fake), cmdline=False)
    assert [(p.pid, p.comm, p.ppid) for p in procs] == [(1, "init", 0), (77, "my (odd) name", 1)]


def test_startup_scan_of_the_real_proc_while_processes_come_and_go() -> None:
    from linnix.procfs import Clock
    from linnix.runtime.sources.telemetry import snapshot

    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            subprocess.run(["/bin/true"], check=False)

    workers = [threading.Thread(target=churn) for _ in range(2)]
    for w in workers:
        w.start()
    try:
        for _ in range(20):
            procs = snapshot(Clock(), cmdline=True)
            assert any(p.pid == os.getpid() for p in procs)
    finally:
        stop.set()
        for w in workers:
            w.join()


def _write_rules(path: Path, text: str) -> None:
    path.write_text(text)


def test_sighup_reload_is_all_or_nothing_and_sigterm_stops_within_2s(tmp_path: Path) -> None:
    require_ebpf()
    rules = tmp_path / "rules"
    rules.mkdir()
    _write_rules(rules / "a.lnx", "rule busy: cpu_pct > 5000 for 5s\n")
    daemon = Daemon(tmp_path / "state", rules=[str(rules)])
    try:
        daemon.wait_ready()
        _write_rules(rules / "a.lnx", "rule busy: cpu_pct > for 5s\n")  # broken
        daemon.signal(signal.SIGHUP)
        time.sleep(1.5)
        _write_rules(rules / "a.lnx", "rule busy: cpu_pct > 5000 for 5s\n"
                     "rule other: rss_mb > 1000000\n")
        daemon.signal(signal.SIGHUP)
        time.sleep(1.5)
        assert daemon.proc.poll() is None  # still running after both reloads
    finally:
        took = daemon.stop()
    assert took < 2.0, f"took {took:.2f}s to stop"
    assert "reload rejected: 1 error(s); keeping the running rules" in daemon.stderr
    assert "error[E100]" in daemon.stderr
    assert "reloaded: 2 active rule(s)" in daemon.stderr
    assert daemon.proc.returncode == 0


def test_refuses_to_start_on_a_rule_error(tmp_path: Path) -> None:
    rules = tmp_path / "bad.lnx"
    rules.write_text("rule x: cpu_pctt > 5\n")
    proc = run_linnix("run", "--rules", str(rules), "--state-dir", str(tmp_path / "state"))
    assert proc.returncode == 1
    assert "unknown name 'cpu_pctt' (did you mean 'cpu_pct'?)" in proc.stderr
    assert "not starting: the rules have 1 error(s)" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_without_root_the_daemon_says_why_once_and_falls_back() -> None:
    require_root()  # to drop privileges we need them first
    import tempfile

    state = Path(tempfile.mkdtemp(prefix="linnix-nobody-", dir="/tmp"))
    os.chown(state, 65534, 65534)
    daemon = Daemon(state, "--duration", "3s", user=65534)
    daemon.proc.wait(60)
    daemon.collect()
    assert daemon.proc.returncode == 0, daemon.stderr
    assert daemon.stderr.count("eBPF unavailable: eBPF capture needs CAP_BPF + CAP_PERFMON") == 1
    status = json.loads((state / "daemon.json").read_text())
    # the process-events connector when the kernel lets this user listen, else polling
    assert status["source"] in ("netlink", "poll")
    expected = {"netlink": "using the kernel's process-events connector instead",
                "poll": "falling back to polling /proc"}[status["source"]]
    assert daemon.stderr.count(expected) == 1
    subprocess.run(["rm", "-rf", str(state)], check=False)


def test_an_unusable_state_directory_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = run_linnix("run", "--rules", str(RULES), "--state-dir", str(blocker / "state"))
    assert proc.returncode == 1
    assert f"cannot use the state directory {blocker / 'state'}" in proc.stderr
    assert "internal error" not in proc.stderr


def test_a_recording_replays_to_the_alerts_the_daemon_raised(tmp_path: Path) -> None:
    require_ebpf()
    rec = tmp_path / "live.jsonl"
    # a rule that fires within seconds (the shipped cpu_spike needs two minutes)
    rules = tmp_path / "spike.lnx"
    rules.write_text("rule cpu_spike: cpu_pct > 50 for 3s\n")
    daemon = Daemon(tmp_path / "state", "--record", str(rec), rules=[str(rules)])
    try:
        daemon.wait_ready()
        spin = subprocess.Popen([sys.executable, "-c",
                                 "import time\nend = time.time() + 7\n"
                                 "while time.time() < end: pass\n"])
        daemon.wait_alert("cpu_spike", "firing", 0.0, timeout=20)
        spin.wait()
        time.sleep(1.0)
    finally:
        daemon.stop()
    live = daemon.alerts()
    for a in live:
        a.pop("time")
    replayed = subprocess.run([sys.executable, "-m", "linnix", "replay", str(rec), "--rules",
                               str(rules), "--format", "jsonl"],
                              capture_output=True, text=True, check=True).stdout.splitlines()
    replay = [json.loads(line) for line in replayed if '"type":"summary"' not in line]
    assert any(a["rule"] == "cpu_spike" and a["state"] == "firing" for a in live)
    assert replay == live

"""Event rules in the running daemon: an alert is emitted as soon as its event is read, not at
the next tick, and its incident is opened and closed at once (reason ``event``); every short
program is seen, a flood of names keeps memory bounded and counts exactly, and a cooldown holds
across a restart.  These need root and eBPF (they skip with the reason otherwise)."""

from __future__ import annotations

import collections
import os
import random
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from live_support import Api, Daemon, free_port, require_ebpf, wait_for
from support import ROOT, write

TICK_S = 3600  # a tick an hour: an alert that waited for one would never come in the test


@pytest.mark.slow
def test_an_event_rules_alert_reaches_the_alerts_file_and_the_store_without_a_tick(
        tmp_path: Path) -> None:
    require_ebpf()
    probe = tmp_path / "bin" / "lnx-ev-probe"  # a program nobody else runs
    probe.parent.mkdir()
    shutil.copy("/bin/true", probe)
    rules = write(tmp_path / "rules", {"e.lnx": (
        "rule probe {\n    on exec\n"
        f'    when comm == "{probe.name}"\n'  # the comm comes with the exec event itself
        '    message "{comm}[{pid}]: {cmdline}"\n}\n')})
    config = tmp_path / "linnix.toml"
    config.write_text(f'[api]\nbind = "127.0.0.1:{free_port()}"\n'
                      f'[telemetry]\ntick = "{TICK_S}s"\n')
    daemon = Daemon(tmp_path / "state", "--config", str(config), rules=[str(rules)])
    daemon.wait_ready()
    try:
        api = Api(tmp_path / "state")
        wait_for(lambda: api.get("/health"), 10, "the API")
        before = daemon.now()
        subprocess.run([str(probe), "--flag"], check=True, timeout=10)
        started = time.monotonic()
        alert = daemon.wait_alert("probe", "firing", before, timeout=30)
        assert time.monotonic() - started < TICK_S
        assert (alert["trigger"], alert["comm"]) == ("exec", "lnx-ev-probe")
        assert before <= alert["ts"] < before + 30  # the exec's own time
        assert api.metrics()["linnix_ticks_total"] <= 1  # the one at the start, no other
        incident = wait_for(lambda: next(
            (i for i in api.get("/incidents")["incidents"]
             if i["rule"] == "probe" and i["resolved_at"] is not None), None), 30,
            "the event's incident")
        assert (incident["pid"], incident["resolved_reason"]) == (alert["pid"], "event")
    finally:
        daemon.stop()
    assert daemon.proc.returncode == 0, daemon.stderr


# ---- as root with eBPF: every short program, a flood of names, a restart -------------------

def _daemon(tmp_path: Path, rule: str, state: str = "state",
            env: dict[str, str] | None = None) -> tuple[Daemon, Api]:
    """A daemon with ``rule`` on the eBPF source, ready, and its API."""
    rules = tmp_path / "rules"
    if not rules.exists():
        write(rules, {"e.lnx": rule})
    config = tmp_path / "linnix.toml"
    if not config.exists():
        config.write_text(f'[api]\nbind = "127.0.0.1:{free_port()}"\n')
    (tmp_path / state / "daemon.json").unlink(missing_ok=True)  # a stopped one's: not ready
    daemon = Daemon(tmp_path / state, "--config", str(config), "--source", "ebpf",
                    rules=[str(rules)], env=env, stdout=tmp_path / f"{state}.out")
    daemon.wait_ready()
    api = Api(tmp_path / state)
    wait_for(lambda: api.get("/health"), 10, "the API")
    return daemon, api


def _samples(api: Api, name: str, rule: str) -> dict[str, float]:
    """The samples of ``name`` for ``rule`` on /metrics, by their other label (or '')."""
    status, data = api._raw("GET", "/metrics")
    assert status == 200
    found = {}
    for line in data.decode().splitlines():
        head, _, value = line.rpartition(" ")
        if head.startswith(name + "{") and f'rule="{rule}"' in head:
            other = [part for part in head[len(name) + 1:-1].split(",")
                     if not part.startswith("rule=")]
            found[other[0].split("=")[1].strip('"') if other else ""] = float(value)
    return found


def _fired(daemon: Daemon, rule: str) -> list[dict[str, Any]]:
    return [a for a in daemon.alerts() if a.get("type") == "alert" and a.get("rule") == rule]


def _spawn(program: str, *args: str) -> int:
    pid = os.posix_spawn(program, [program, *args], {})
    os.waitpid(pid, 0)
    return pid


@pytest.mark.root
@pytest.mark.ebpf
@pytest.mark.slow
def test_fifty_programs_of_a_millisecond_from_tmp_give_fifty_alerts_each_with_its_argv(
        tmp_path: Path) -> None:
    require_ebpf()
    assert str(tmp_path).startswith("/tmp/")
    blink = tmp_path / "blink"
    shutil.copy("/bin/true", blink)  # lives about a millisecond
    daemon, _ = _daemon(tmp_path, 'rule tmp_binary {\n    on exec\n'
                        '    when exe startswith "/tmp/"\n'
                        '    max_rate 1000/s\n'  # no cooldown; the default rate is 20/s
                        '    message "{exe} ran from /tmp: {cmdline}"\n}\n')
    try:
        pids = [_spawn(str(blink), "run", str(i)) for i in range(50)]
        def mine() -> list[dict[str, Any]]:  # others may run programs from /tmp meanwhile
            return [a for a in _fired(daemon, "tmp_binary") if a["pid"] in pids]

        wait_for(lambda: len(mine()) >= 50, 30, "50 alerts")
        time.sleep(0.5)  # and no more than 50
    finally:
        daemon.stop()
    assert [(a["pid"], a["message"], a["trigger"]) for a in mine()] == [
        (pid, f"{blink} ran from /tmp: {blink} run {i}", "exec") for i, pid in enumerate(pids)]
    assert daemon.proc.returncode == 0, daemon.stderr


KEYS = 300  # the key table's bound in this test's daemon (10,000 in production)
NAMES = 400  # more names than the table holds: keys are forgotten and alert again
EXECS = 10_000
FLOOD = """rule flood {
    on exec
    when exe startswith "%s/"
    cooldown 1h by exe
    max_rate 100000/s
    severity info
}
"""


def _expected(names: list[str]) -> tuple[int, int, int, int]:
    """(alerts, suppressed, evicted, keys held) of a 1h cooldown by exe over ``names``, with a
    table of ``KEYS`` keys, the key that fired longest ago forgotten first."""
    held: collections.OrderedDict[str, None] = collections.OrderedDict()
    alerted = suppressed = evicted = 0
    for name in names:
        if name in held:
            suppressed += 1
            continue
        alerted += 1
        held[name] = None
        if len(held) > KEYS:
            held.popitem(last=False)
            evicted += 1
    return alerted, suppressed, evicted, len(held)


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


@pytest.mark.root
@pytest.mark.ebpf
@pytest.mark.slow
def test_ten_thousand_execs_of_random_names_keep_the_key_table_bounded_and_count_exactly(
        tmp_path: Path) -> None:
    require_ebpf()
    bins = tmp_path / "bins"
    bins.mkdir()
    shutil.copy("/bin/true", bins / "true")
    rng = random.Random(12)
    pool = [str(bins / f"{rng.getrandbits(48):012x}") for _ in range(NAMES)]
    for path in pool:
        os.link(bins / "true", path)  # one file, many names
    order = [rng.choice(pool) for _ in range(EXECS)]
    site = tmp_path / "site"  # the daemon's key table made small enough to fill
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
        f"import linnix.engine.events\nlinnix.engine.events.KEYS_MAX = {KEYS}\n")
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    daemon, api = _daemon(tmp_path, FLOOD % bins, env={"PYTHONPATH": path})
    try:
        done, rss = 0, 0
        for upto in (1_000, EXECS):
            for exe in order[done:upto]:
                _spawn(exe)
            done = upto
            alerted, suppressed, evicted, keys = _expected(order[:upto])
            wait_for(lambda n=upto: sum(_samples(api, "linnix_event_rule_suppressed_total",
                                                 "flood").values())
                     + len(_fired(daemon, "flood")) >= n, 60, f"{upto} execs judged")
            assert api.metrics()["linnix_lost_events_total"] == 0  # else nothing is exact
            assert len(_fired(daemon, "flood")) == alerted
            assert _samples(api, "linnix_event_rule_suppressed_total", "flood") == {
                "cooldown": suppressed, "max_rate": 0}
            assert _samples(api, "linnix_event_rule_cooldown_evictions_total", "flood") == {
                "": evicted}
            assert _samples(api, "linnix_event_rule_cooldown_keys", "flood") == {"": keys}
            if upto == 1_000:
                assert keys == KEYS  # full already: from here on it can only stay so
                rss = _rss_kb(daemon.proc.pid)
        grown = _rss_kb(daemon.proc.pid) - rss
        assert grown < 32 * 1024, f"the daemon grew by {grown:,} kB over 9,000 execs"
    finally:
        daemon.stop()
    assert daemon.proc.returncode == 0, daemon.stderr


@pytest.mark.root
@pytest.mark.ebpf
@pytest.mark.slow
def test_a_restart_does_not_alert_again_on_what_a_cooldown_held_back(tmp_path: Path) -> None:
    require_ebpf()
    bins = tmp_path / "bins"
    bins.mkdir()
    for name in ("x", "y"):
        shutil.copy("/bin/true", bins / name)
    rule = FLOOD % bins
    daemon, _ = _daemon(tmp_path, rule)
    try:
        first = _spawn(str(bins / "x"))
        wait_for(lambda: [a for a in _fired(daemon, "flood") if a["pid"] == first], 30,
                 "x's alert")
    finally:
        daemon.stop()
    assert daemon.proc.returncode == 0, daemon.stderr
    daemon, api = _daemon(tmp_path, rule)
    try:
        _spawn(str(bins / "x"))
        other = _spawn(str(bins / "y"))
        wait_for(lambda: [a for a in _fired(daemon, "flood") if a["pid"] == other], 30,
                 "y's alert")
        wait_for(lambda: _samples(api, "linnix_event_rule_suppressed_total",
                                  "flood").get("cooldown") == 1, 30, "x held back")
    finally:
        daemon.stop()
    assert [a["pid"] for a in _fired(daemon, "flood")] == [first, other]
    assert "event rules: 1 cooldown key(s)" in daemon.stderr

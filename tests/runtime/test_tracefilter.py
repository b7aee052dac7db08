"""What a recording keeps: the chosen process trees only, and no environment text."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import RULES, run_cli

from linnix.engine import trace as t
from linnix.runtime.live import Recorder
from linnix.runtime.tracefilter import (
    REDACTED,
    FilteredRecorder,
    TraceFilter,
    looks_like_env,
    open_recorder,
    redact_text,
)

HEADER = t.Header(version=1, host="test", ncpu=2, mem_total_kb=1024)

# 1 ── 50 (outside) ── 51
#  └── 100 (the root) ── 90 (a child listed before its parent: a pid that wrapped)
#                     └─ 101 ── 102
SNAPSHOT: list[t.Event] = [
    t.Proc(ts=0.0, pid=1, ppid=0, comm="init"),
    t.Proc(ts=0.0, pid=50, ppid=1, comm="other", cmdline="other --x"),
    t.Proc(ts=0.0, pid=51, ppid=50, comm="other2"),
    t.Proc(ts=0.0, pid=90, ppid=100, comm="late"),
    t.Proc(ts=0.0, pid=100, ppid=1, comm="root", cmdline="root run"),
    t.Proc(ts=0.0, pid=101, ppid=100, comm="kid"),
    t.Proc(ts=0.0, pid=102, ppid=101, comm="grandkid"),
    t.System(ts=0.0, cpu_pct=5.0),
]


def pids(events: list[t.Event]) -> list[int | None]:
    return [getattr(ev, "pid", None) for ev in events]


def test_only_the_tree_is_kept_with_the_host() -> None:
    keep = TraceFilter([100])
    assert pids(keep.apply(SNAPSHOT)) == [90, 100, 101, 102, None]
    later: list[t.Event] = [
        t.Fork(ts=1.0, pid=200, ppid=102, comm="grandkid"),  # started later, under the root
        t.Fork(ts=1.0, pid=201, ppid=50, comm="other"),
        t.Exec(ts=1.1, pid=200, comm="job"), t.Exec(ts=1.1, pid=201, comm="job"),
        t.Sample(ts=2.0, pid=200, cpu_pct=1.0), t.Sample(ts=2.0, pid=50, cpu_pct=1.0),
        t.System(ts=2.0, cpu_pct=9.0), t.Lost(ts=2.0, count=3),
        t.Exit(ts=3.0, pid=200), t.Exit(ts=3.0, pid=201),
        # pid 200 reused by a process outside the tree: not kept, nor what it does
        t.Fork(ts=4.0, pid=200, ppid=50, comm="other"), t.Sample(ts=4.5, pid=200, fds=3),
    ]
    kept = keep.apply(later)
    assert [(type(ev).__name__, getattr(ev, "pid", None)) for ev in kept] == [
        ("Fork", 200), ("Exec", 200), ("Sample", 200), ("System", None), ("Lost", None),
        ("Exit", 200)]


def test_several_trees_and_a_root_that_is_itself_a_child() -> None:
    assert pids(TraceFilter([101, 51]).apply(SNAPSHOT)) == [51, 101, 102, None]


def test_a_loop_of_parents_in_a_hostile_snapshot_is_not_in_the_tree() -> None:
    loop: list[t.Event] = [t.Proc(ts=0.0, pid=7, ppid=8, comm="a"),
                           t.Proc(ts=0.0, pid=8, ppid=7, comm="b"),
                           t.Proc(ts=0.0, pid=9, ppid=8, comm="c"),
                           t.Proc(ts=0.0, pid=100, ppid=1, comm="root")]
    assert pids(TraceFilter([100]).apply(loop)) == [100]


def test_without_roots_every_process_is_kept() -> None:
    keep = TraceFilter()
    assert not keep.active
    assert keep.apply(SNAPSHOT) == SNAPSHOT


def test_redaction_drops_command_lines_and_environment_text() -> None:
    events: list[t.Event] = [
        t.Proc(ts=0.0, pid=100, ppid=1, comm="env", exe="/usr/bin/env",
               cmdline="env HOME=/root API_TOKEN=s3cret app", uid=0, start=-1.0),
        t.Fork(ts=1.0, pid=101, ppid=100, comm="PATH=/usr/bin"),
        t.Exec(ts=1.1, pid=101, comm="app", exe="/opt/SSL_CERT_FILE=/etc/ssl/x.pem/app",
               argv=["app", "--token", "s3cret"], argv_truncated=True),
        t.Sample(ts=2.0, pid=101, cpu_pct=3.0, comm="x LANG=C y"),
        t.Sample(ts=2.0, pid=100, cpu_pct=1.0),
        t.Exit(ts=3.0, pid=101, code=0),
    ]
    before = copy.deepcopy(events)
    got = TraceFilter(redact=True).apply(events)
    assert events == before  # the engine consumes the originals: never changed
    assert got == [
        t.Proc(ts=0.0, pid=100, ppid=1, comm="env", exe="/usr/bin/env", uid=0, start=-1.0),
        t.Fork(ts=1.0, pid=101, ppid=100, comm=REDACTED),
        t.Exec(ts=1.1, pid=101, comm="app", exe=REDACTED),
        t.Sample(ts=2.0, pid=101, cpu_pct=3.0, comm=f"x {REDACTED} y"),
        t.Sample(ts=2.0, pid=100, cpu_pct=1.0),
        t.Exit(ts=3.0, pid=101, code=0),
    ]
    host = TraceFilter(redact=True).header(t.Header(version=1, host="HOSTNAME=box"))
    assert host.host == REDACTED


def test_redaction_drops_network_addresses_and_keeps_ports() -> None:
    events: list[t.Event] = [
        t.Connect(ts=1.0, pid=101, family="inet", remote_addr="203.0.113.9", remote_port=443,
                  error=111),
        t.Accept(ts=2.0, pid=101, family="inet6", remote_addr="2001:db8::1", remote_port=5000,
                 local_port=22),
        t.Listen(ts=3.0, pid=101, family="inet", local_port=8080, local_addr="10.0.0.1"),
        t.Connect(ts=4.0, pid=101, family="unix", remote_addr="/home/alice/.gnupg/S.agent"),
        t.Listen(ts=5.0, pid=101, family="inet", local_port=9000),
    ]
    before = copy.deepcopy(events)
    got = TraceFilter(redact=True).apply(events)
    assert events == before
    assert got == [
        t.Connect(ts=1.0, pid=101, family="inet", remote_port=443, error=111),
        t.Accept(ts=2.0, pid=101, family="inet6", remote_port=5000, local_port=22),
        t.Listen(ts=3.0, pid=101, family="inet", local_port=8080),
        t.Connect(ts=4.0, pid=101, family="unix"),
        t.Listen(ts=5.0, pid=101, family="inet", local_port=9000),
    ]
    assert TraceFilter().apply(events) == events  # kept as they are without --redact


def test_network_events_follow_their_process_in_and_out_of_the_tree() -> None:
    keep = TraceFilter(roots=[100])
    got = keep.apply([
        t.Proc(ts=0.0, pid=100, ppid=1, comm="web"), t.Proc(ts=0.0, pid=200, ppid=1, comm="db"),
        t.Listen(ts=1.0, pid=100, family="inet", local_port=80),
        t.Listen(ts=1.0, pid=200, family="inet", local_port=5432),
    ])
    assert [(type(ev).__name__, ev.pid) for ev in got] == [("Proc", 100), ("Listen", 100)]


def test_redaction_covers_cgroup_paths_and_user_names() -> None:
    # whoever makes a cgroup names it, and a name can carry a secret like any other text
    odd = "/system.slice/run-API_TOKEN=s3cret.scope"
    events: list[t.Event] = [
        t.Proc(ts=0.0, pid=100, ppid=1, comm="a", cgroup="/init.scope", user="root"),
        t.Fork(ts=1.0, pid=101, ppid=100, comm="a", cgroup=odd, user="X=y"),
        t.Exec(ts=1.1, pid=101, comm="b", cgroup=odd),
    ]
    got = TraceFilter(redact=True).apply(events)
    assert got == [
        t.Proc(ts=0.0, pid=100, ppid=1, comm="a", cgroup="/init.scope", user="root"),
        t.Fork(ts=1.0, pid=101, ppid=100, comm="a", cgroup=REDACTED, user=REDACTED),
        t.Exec(ts=1.1, pid=101, comm="b", cgroup=REDACTED),
    ]


@pytest.mark.parametrize(("word", "env"), [
    ("PATH=/bin", True), ("--env=HOME=/root", True), ("a=b", True), ("_X=", True),
    ("x/KUBE_TOKEN=abc", True), ("=x", False), ("1A=b", False), ("a==b", True),
    ("plain", False), ("/usr/bin/x", False), ("-=x", False), ("a-=x", False),
])
def test_what_looks_like_environment_text(word: str, env: bool) -> None:
    assert looks_like_env(word) is env


@given(st.text(alphabet="AZaz09_=-/ .\t", max_size=60))
def test_redacted_text_holds_no_environment_shape(text: str) -> None:
    out = redact_text(text)
    assert not any(looks_like_env(w) for w in out.split())
    if not any(looks_like_env(w) for w in text.split()):
        assert out == text  # nothing to hide: unchanged, to the byte


def test_a_long_word_is_checked_in_linear_time() -> None:
    word = "a" * 200_000 + "-" + "=" * 200_000
    assert not looks_like_env(word)
    assert looks_like_env(word + "B=")


def test_the_filtered_recorder_writes_what_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    rec = open_recorder(str(path), t.Header(version=1, host="A_KEY=1"), only_tree=[100],
                        redact=True)
    assert isinstance(rec, FilteredRecorder)
    rec.write(SNAPSHOT)
    rec.write([t.Exit(ts=1.0, pid=50)])  # nothing kept: nothing written
    rec.close()
    reader, events = t.read_trace(str(path))
    assert reader.header == t.Header(version=1, host=REDACTED)
    assert pids(events) == [90, 100, 101, 102, None]
    assert all(getattr(ev, "cmdline", None) is None for ev in events)
    assert rec.events == 5
    plain = open_recorder(str(tmp_path / "y.jsonl"), HEADER)
    assert type(plain) is Recorder
    plain.close()


# ---- the commands ---------------------------------------------------------------------------

def test_only_tree_must_name_a_running_process(capsys: pytest.CaptureFixture[str],
                                               tmp_path: Path) -> None:
    pid = 4_194_304 + 1  # above any pid_max
    status, _, err = run_cli(capsys, "record", str(tmp_path / "x.jsonl"), "--only-tree",
                             str(pid))
    assert status == 2
    assert err.startswith(f"linnix: --only-tree {pid}: no process has this pid\n")
    assert not (tmp_path / "x.jsonl").exists()
    status, _, err = run_cli(capsys, "record", str(tmp_path / "x.jsonl"), "--only-tree", "0")
    assert status == 2 and "'0' must be at least 1" in err


@pytest.mark.parametrize("flag", [["--only-tree", "1"], ["--redact"]])
def test_run_takes_the_recording_flags_only_with_record(
        capsys: pytest.CaptureFixture[str], flag: list[str]) -> None:
    status, _, err = run_cli(capsys, "run", "--no-api", *flag)
    assert status == 2
    assert err.startswith("linnix: --only-tree and --redact apply to a recording: "
                          "add --record FILE\n")


CHILD = ("import sys, subprocess\n"
         "sys.stdin.readline()\n"
         "kid = subprocess.Popen([sys.executable, '-c', 'import sys; sys.stdin.read()',"
         " 'SECRET_TOKEN=abc'], stdin=subprocess.PIPE)\n"
         "print(kid.pid, flush=True)\n"
         "sys.stdin.readline()\n"
         "kid.stdin.close(); kid.wait()\n")


def _wait_for_line(path: Path, needle: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        if path.exists() and needle in path.read_text(encoding="utf-8", errors="replace"):
            return
        time.sleep(0.05)
    pytest.fail(f"{needle!r} never reached {path}")


def _command(how: str, out: Path, tmp_path: Path) -> tuple[list[str], str]:
    """The recording command, and what it says once it watches."""
    if how == "record":
        return ["record", str(out), "--sample-interval", "0.2"], "recording for"
    return (["run", "--record", str(out), "--rules", str(RULES), "--no-api",
             "--state-dir", str(tmp_path / "state")], "linnix: watching")


@pytest.mark.parametrize("how", ["record", "run"])
def test_a_recording_keeps_a_tree_started_later_and_no_secret(tmp_path: Path,
                                                              how: str) -> None:
    """A live recording (/proc polling: no root needed) of one process: its child, started
    after the recording began, is in; the rest of the machine and the child's
    ``SECRET_TOKEN=`` argument are not."""
    out, log = tmp_path / "x.jsonl", tmp_path / "log"
    command, ready = _command(how, out, tmp_path)
    parent = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert parent.stdin is not None and parent.stdout is not None
    with open(log, "w", encoding="utf-8") as err:
        recorder = subprocess.Popen(
            [sys.executable, "-m", "linnix", *command, "--source", "poll", "--duration", "5m",
             "--only-tree", str(parent.pid), "--redact"],
            stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 60
        _wait_for_line(log, ready, deadline)
        parent.stdin.write("go\n")
        parent.stdin.flush()
        kid = int(parent.stdout.readline())
        _wait_for_line(out, f'"pid":{kid}', deadline)  # seen by the poller, flushed
        # and a host sample (the kid can be seen before the first one is due)
        _wait_for_line(out, '"kind":"system"', deadline)
    finally:
        recorder.send_signal(signal.SIGINT)
        assert recorder.wait(timeout=60) == 0, log.read_text()
        parent.stdin.write("end\n")
        parent.stdin.close()
        parent.wait(timeout=60)
        parent.stdout.close()
    reader, events = t.read_trace(str(out))
    assert reader.header is not None and reader.header.version == 1
    assert {ev.pid for ev in events if hasattr(ev, "pid")} == {parent.pid, kid}
    assert any(isinstance(ev, t.System) for ev in events)  # the host's samples stay
    text = out.read_text(encoding="utf-8")
    assert "SECRET_TOKEN" not in text and '"cmdline"' not in text and '"argv"' not in text


def test_cgroup_samples_are_kept_with_the_host_and_redacted_as_paths() -> None:
    events: list[t.Event] = [
        t.Cgroup(ts=1.0, cgroup="/system.slice/x.service", id=7, procs=2),
        t.Cgroup(ts=1.0, cgroup="/a b=c", id=8),
        t.CgroupGone(ts=2.0, id=7),
    ]
    assert TraceFilter([100]).apply(events) == events
    got = TraceFilter(redact=True).apply(events)
    assert [getattr(ev, "cgroup", None) for ev in got] == [
        "/system.slice/x.service", f"/a {REDACTED}", None]
    line = t.encode_event(got[1])  # still a valid sample
    assert line.startswith(b'{"kind":"cgroup"')

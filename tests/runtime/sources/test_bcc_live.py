"""Each field from its true source, against the real kernel: argv at the exec, an absolute
exe, the exit code or fatal signal at the exit.

These need root and a working eBPF toolchain (``live_support.require_ebpf``); they
skip with the reason otherwise, except in CI as root where they must run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from live_support import drain_until, require_ebpf, require_program

from linnix.engine import trace as t

pytestmark = [pytest.mark.root, pytest.mark.ebpf, pytest.mark.slow]

CRASH_C = "int main(void) { volatile int *p = 0; return *p; }\n"


@pytest.fixture
def bpf() -> Iterator[object]:
    require_ebpf()
    from linnix.procfs import Clock
    from linnix.runtime.sources.bcc import BpfSource

    src = BpfSource(Clock(), ring_pages=256)
    yield src
    src.close()


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    assert str(tmp_path).startswith("/tmp/")  # programs run from /tmp, as the rules watch
    return tmp_path




def _exit_of(pid: int) -> Callable[[list[t.Event]], bool]:
    return lambda evs: any(isinstance(e, t.Exit) and e.pid == pid for e in evs)


def _of(events: list[t.Event], kind: type, pid: int) -> list[t.Event]:
    return [e for e in events if isinstance(e, kind) and e.pid == pid]


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(args, env=env)
    proc.wait(30)
    return proc


def test_fifty_short_programs_from_tmp_each_with_its_argv(bpf: object, tmp: Path) -> None:
    blink = tmp / "blink"
    shutil.copy("/bin/true", blink)  # lives about a millisecond
    pids = [_run([str(blink), "run", str(i)]).pid for i in range(50)]
    events = drain_until(bpf, _exit_of(pids[-1]))
    execs = [e for e in events if isinstance(e, t.Exec) and e.exe == str(blink)]
    assert [(e.pid, e.argv, e.argv_truncated) for e in execs] == [
        (pid, [str(blink), "run", str(i)], False) for i, pid in enumerate(pids)]
    exits = [e for e in events if isinstance(e, t.Exit) and e.pid in pids]
    assert [(e.code, e.signal) for e in exits] == [(0, None)] * 50
    assert bpf.lost_total() == 0  # type: ignore[attr-defined]


def test_a_relative_exec_has_an_absolute_exe(bpf: object, tmp: Path) -> None:
    shutil.copy("/bin/true", tmp / "x")
    # a short ./x whose parent, the shell, waits in its directory (`; read` makes sh fork)
    shell = subprocess.Popen(["sh", "-c", f"cd {tmp} && ./x one; read line"],
                             stdin=subprocess.PIPE)
    try:
        events = drain_until(bpf, lambda evs: any(
            isinstance(e, t.Exec) and e.argv == ["./x", "one"] for e in evs))
    finally:
        shell.communicate(b"\n", timeout=30)
    execs = [e for e in events if isinstance(e, t.Exec) and e.argv == ["./x", "one"]]
    assert [e.exe for e in execs] == [str(tmp / "x")]


def test_a_relative_exec_in_another_directory_than_its_parent(bpf: object, tmp: Path) -> None:
    shutil.copy(shutil.which("sleep") or "/bin/sleep", tmp / "x")
    proc = subprocess.Popen(["./x", "30"], cwd=tmp)  # this test runs elsewhere
    try:
        events = drain_until(bpf, lambda evs: bool(_of(evs, t.Exec, proc.pid)))
        (ev,) = _of(events, t.Exec, proc.pid)
        assert isinstance(ev, t.Exec) and ev.exe == str(tmp / "x") and ev.argv == ["./x", "30"]
    finally:
        proc.kill()  # kill -9
        proc.wait()
    events = drain_until(bpf, _exit_of(proc.pid))
    assert [(e.code, e.signal) for e in _of(events, t.Exit, proc.pid)] == [  # type: ignore[attr-defined]
        (None, signal.SIGKILL)]


def test_a_null_dereference_is_a_crash_with_sigsegv(bpf: object, tmp: Path) -> None:
    cc = require_program("cc", "gcc")
    (tmp / "crash.c").write_text(CRASH_C)
    subprocess.run([cc, "-O0", "-o", str(tmp / "crash"), str(tmp / "crash.c")], check=True)
    proc = _run([str(tmp / "crash")])
    assert proc.returncode == -signal.SIGSEGV
    (ev,) = _of(drain_until(bpf, _exit_of(proc.pid)), t.Exit, proc.pid)
    assert isinstance(ev, t.Exit)
    assert (ev.code, ev.signal, ev.signal_name(), ev.crashed()) == (None, 11, "SIGSEGV", True)


def test_grep_exiting_1_has_a_code_and_no_signal(bpf: object) -> None:
    grep = require_program("grep", "grep")
    proc = _run([grep, "-q", "no such text", "/dev/null"])
    assert proc.returncode == 1
    (ev,) = _of(drain_until(bpf, _exit_of(proc.pid)), t.Exit, proc.pid)
    assert isinstance(ev, t.Exit) and (ev.code, ev.signal, ev.crashed()) == (1, None, False)


def test_a_kill_names_the_signal_sent_not_the_sigkill_it_became(bpf: object) -> None:
    # SIGTERM with the default action reaches every thread as SIGKILL; SIGTERM is the cause
    term = subprocess.Popen(["sleep", "30"])
    handled = subprocess.Popen([sys.executable, "-c",
                                "import signal, sys, time\n"
                                "signal.signal(signal.SIGTERM, lambda *a: sys.exit(4))\n"
                                "print(flush=True)\n"
                                "time.sleep(30)\n"], stdout=subprocess.PIPE)
    assert handled.stdout is not None and handled.stdout.readline() == b"\n"
    time.sleep(0.1)  # sleep has exec'd
    for proc in (term, handled):
        proc.terminate()
        proc.wait()
    events = drain_until(bpf, lambda evs: _exit_of(term.pid)(evs) and _exit_of(handled.pid)(evs))
    assert [(e.code, e.signal) for e in _of(events, t.Exit, term.pid)] == [  # type: ignore[attr-defined]
        (None, signal.SIGTERM)]
    assert [(e.code, e.signal) for e in _of(events, t.Exit, handled.pid)] == [  # type: ignore[attr-defined]
        (4, None)]  # it caught the signal and chose its code


def test_threads_exit_and_exec_for_their_process(bpf: object) -> None:
    exits = _run([sys.executable, "-c",
                  "import os, threading, time\n"
                  "threading.Thread(target=lambda: os._exit(5)).start()\n"
                  "time.sleep(30)\n"])
    execs = _run([sys.executable, "-c",
                  "import os, threading\n"
                  "t = threading.Thread(target=lambda: os.execv('/bin/true', ['true', 'thread']))\n"
                  "t.start(); t.join()\n"])
    events = drain_until(bpf, lambda evs: _exit_of(exits.pid)(evs) and _exit_of(execs.pid)(evs))
    assert [(e.code, e.signal) for e in _of(events, t.Exit, exits.pid)] == [  # type: ignore[attr-defined]
        (5, None)]
    assert [e.argv for e in _of(events, t.Exec, execs.pid)][-1] == [  # type: ignore[attr-defined]
        "true", "thread"]  # sent by a thread whose id the process then took


def test_a_failed_exec_lends_its_argv_to_nothing(bpf: object) -> None:
    proc = _run([sys.executable, "-c",
                 "import os\n"
                 "try:\n"
                 "    os.execv('/nonexistent/prog', ['bad', 'argv'])\n"
                 "except OSError:\n"
                 "    pass\n"
                 "os.execv('/bin/true', ['true', 'good'])\n"])
    events = drain_until(bpf, _exit_of(proc.pid))
    argvs = [e.argv for e in _of(events, t.Exec, proc.pid)]  # type: ignore[attr-defined]
    assert argvs[-1] == ["true", "good"] and ["bad", "argv"] not in argvs


def test_a_huge_argv_is_cut_bounded_and_marked(bpf: object) -> None:
    many = _run(["/bin/true", *[str(i) for i in range(1000)]])
    long = _run(["/bin/true", "a" * 100_000])
    events = drain_until(bpf, lambda evs: _exit_of(many.pid)(evs) and _exit_of(long.pid)(evs))
    (m,) = _of(events, t.Exec, many.pid)
    (lo,) = _of(events, t.Exec, long.pid)
    assert isinstance(m, t.Exec) and isinstance(lo, t.Exec)
    assert m.argv == ["/bin/true", *[str(i) for i in range(63)]] and m.argv_truncated
    assert lo.argv is not None and lo.argv_truncated and len(lo.argv) == 2
    assert lo.argv[1] == "a" * (2048 - len("/bin/true") - 2)  # the bytes left, NUL at the end
    assert lo.cmdline() is not None and lo.cmdline().endswith(" ...")  # type: ignore[union-attr]


def test_os_environ_is_not_argv(bpf: object) -> None:
    proc = _run(["/bin/true", "x"], env={**os.environ, "SECRET": "s3cr3t"})
    (ev,) = _of(drain_until(bpf, _exit_of(proc.pid)), t.Exec, proc.pid)
    assert isinstance(ev, t.Exec) and ev.argv == ["/bin/true", "x"]


def test_held_events_wait_in_the_ring_until_a_flush_sends_them(bpf: Any) -> None:
    import trio

    bpf.pump.hold = lambda: True  # as the daemon does while no event rule is loaded
    bpf.pump.rest_max = 10.0

    async def main() -> tuple[list[t.Event], list[t.Event]]:
        send, receive = trio.open_memory_channel[list[t.Event]](1024)

        def received() -> list[t.Event]:
            out: list[t.Event] = []
            while True:
                try:
                    out.extend(receive.receive_nowait())
                except trio.WouldBlock:
                    return out

        async with trio.open_nursery() as nursery:
            nursery.start_soon(bpf.run, send)
            await trio.sleep(0.2)
            received()  # what the host did before
            proc = subprocess.Popen(["/bin/true", "held"])
            await trio.to_thread.run_sync(proc.wait)
            await trio.sleep(1.0)
            before = received()
            await bpf.pump.flush()
            after = received()
            nursery.cancel_scope.cancel()
        assert proc.returncode == 0
        return ([ev for ev in before if getattr(ev, "pid", None) == proc.pid],
                [ev for ev in after if getattr(ev, "pid", None) == proc.pid])

    before, after = trio.run(main)
    assert before == []  # a second later, still in the ring
    assert [type(ev) for ev in after] == [t.Fork, t.Exec, t.Exit]
    assert isinstance(after[1], t.Exec) and after[1].argv == ["/bin/true", "held"]

"""Connect, accept and listen against the real kernel: the right process, the right ports.

A listener here, connections from a child process (blocking, non-blocking, from a
thread), over IPv4, IPv6 and a unix socket, and a loop of a few thousand connects:
each is captured, attributed to its process (the thread group), and nothing is lost.
These need root and a working eBPF toolchain (``live_support.require_ebpf``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from live_support import CONNECT_LOOP, drain_until, free_port, require_ebpf

from linnix.engine import trace as t

pytestmark = [pytest.mark.root, pytest.mark.ebpf, pytest.mark.slow]

# Connects to argv[2] (family argv[1]: inet, inet6, unix; the port or path) blocking, then
# non-blocking (EINPROGRESS), then from a thread; prints the local port of each (inet).
CLIENT = r"""
import errno, select, socket, sys, threading
fam = {"inet": socket.AF_INET, "inet6": socket.AF_INET6, "unix": socket.AF_UNIX}[sys.argv[1]]
addr = sys.argv[2] if fam == socket.AF_UNIX else (
    "127.0.0.1" if fam == socket.AF_INET else "::1", int(sys.argv[2]))
kept = []
def blocking():
    s = socket.socket(fam); s.connect(addr); kept.append(s)
def nonblocking():
    s = socket.socket(fam); s.setblocking(False)
    rc = s.connect_ex(addr)
    assert rc in (0, errno.EINPROGRESS), rc
    select.select([], [s], [], 5); kept.append(s)
blocking()
nonblocking()
th = threading.Thread(target=blocking); th.start(); th.join()
print(" ".join(str(s.getsockname()[1]) if fam != socket.AF_UNIX else "-" for s in kept))
sys.stdout.flush()
sys.stdin.read()  # until the test has seen everything
"""



@pytest.fixture(scope="module")
def loaded() -> Iterator[object]:
    """One program for the module: compiling it takes seconds."""
    require_ebpf()
    from linnix.procfs import Clock
    from linnix.runtime.sources.bcc import BpfSource

    src = BpfSource(Clock(), ring_pages=1024, network=True)
    yield src
    src.close()


@pytest.fixture
def capture(loaded: object) -> object:
    """The program, with what earlier tests left in its ring buffer drained."""
    loaded.drain()  # type: ignore[attr-defined]
    return loaded




def _of(events: list[t.Event], kind: type, pid: int) -> list[Any]:
    return [e for e in events if isinstance(e, kind) and e.pid == pid]


def _listener(family: str, where: Path) -> tuple[socket.socket, str]:
    """A listener bound to a known port (or path), and how a client names it."""
    if family == "unix":
        path = str(where / "srv.sock")
        srv = socket.socket(socket.AF_UNIX)
        srv.bind(path)
        srv.listen(16)
        return srv, path
    fam, host = (socket.AF_INET, "127.0.0.1") if family == "inet" else (socket.AF_INET6, "::1")
    srv = socket.socket(fam)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, free_port()))
    srv.listen(16)
    return srv, str(srv.getsockname()[1])


@pytest.mark.parametrize("family", ["inet", "inet6", "unix"])
def test_listen_connect_and_accept_with_their_processes_and_ports(
        capture: object, family: str, tmp_path: Path) -> None:
    srv, target = _listener(family, tmp_path)
    host = {"inet": "127.0.0.1", "inet6": "::1", "unix": target}[family]
    child = subprocess.Popen([sys.executable, "-c", CLIENT, family, target],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        accepted = [srv.accept() for _ in range(3)]
        assert child.stdout is not None
        local_ports = child.stdout.readline().split()
        me = os.getpid()
        events = drain_until(capture, lambda evs: len(_of(evs, t.Connect, child.pid)) >= 3
                              and len(_of(evs, t.Accept, me)) >= 3)
    finally:
        child.communicate("", timeout=10)
        srv.close()
    port = None if family == "unix" else int(target)
    listens = [e for e in _of(events, t.Listen, me) if e.family == family]
    assert [(e.local_port, e.local_addr) for e in listens] == [(port, host)]
    # the thread's connect is its process's: every one carries the child's pid
    assert [(e.family, e.remote_addr, e.remote_port, e.error)
            for e in _of(events, t.Connect, child.pid)] == [(family, host, port, None)] * 3
    accepts = _of(events, t.Accept, me)
    assert [(e.family, e.local_port) for e in accepts] == [(family, port)] * 3
    if family == "unix":  # the clients are unnamed sockets
        assert [e.remote_addr for e in accepts] == [None] * 3
    else:
        assert [(e.remote_addr, str(e.remote_port)) for e in accepts] == [
            (host, p) for p in local_ports]
        assert [str(peer[1]) for _conn, peer in accepted] == local_ports
    assert capture.lost_total() == 0  # type: ignore[attr-defined]


def test_a_refused_connect_carries_its_errno(capture: object) -> None:
    port = free_port()  # nothing listens there
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) == 111
    events = drain_until(capture, lambda evs: bool(_of(evs, t.Connect, os.getpid())))
    assert [(e.remote_port, e.error) for e in _of(events, t.Connect, os.getpid())] == [
        (port, 111)]


def test_every_connect_of_a_loop_of_two_thousand_a_second(capture: object) -> None:
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", free_port()))
    srv.listen(1024)
    port = srv.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                srv.accept()[0].close()
            except TimeoutError:
                continue

    server = threading.Thread(target=serve)
    server.start()
    seen: list[t.Event] = []
    try:
        loop = subprocess.Popen([sys.executable, "-c", CONNECT_LOOP, str(port), "2000", "2"],
                                stdout=subprocess.PIPE, text=True)
        while loop.poll() is None:  # drained as it runs, as the daemon does
            seen.extend(capture.drain())  # type: ignore[attr-defined]
            time.sleep(0.025)
        made = int(loop.communicate()[0])
        seen += drain_until(
            capture, lambda evs: len(_of(seen + evs, t.Connect, loop.pid)) >= made, 5.0)
    finally:
        stop.set()
        server.join()
        srv.close()
    assert made >= 2000  # about 2,000 a second for 2 s, even on a loaded machine
    connects = _of(seen, t.Connect, loop.pid)
    assert len(connects) == made
    assert {(e.remote_port, e.error) for e in connects} == {(port, None)}
    assert capture.lost_total() == 0  # type: ignore[attr-defined]


def test_a_connect_with_no_address_sends_nothing_after_one_that_had_one(
        capture: object) -> None:
    # each thread's entry is rewritten in place, call after call: a connect with no
    # address, or one not reported (AF_UNSPEC dissolves a UDP association), must not
    # send the last one's
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("127.0.0.1", port))
        assert libc.connect(s.fileno(), None, 0) == -1  # no address: EINVAL
        unspec = (ctypes.c_ubyte * 16)()  # sa_family 0: AF_UNSPEC
        assert libc.connect(s.fileno(), unspec, 16) == 0
    events = drain_until(capture, lambda evs: bool(_of(evs, t.Connect, os.getpid())), 2.0)
    time.sleep(0.1)
    events += capture.drain()  # type: ignore[attr-defined]
    # (this process makes other connects now and then: glibc's unix ones to nscd)
    assert [(e.remote_port, e.error) for e in _of(events, t.Connect, os.getpid())
            if e.family == "inet"] == [(port, None)]


# Threads that each connect (refused), print their thread ids, and end; the main thread
# connects too and lives on until the test has looked.
THREADS = r"""
import socket, sys, threading
port = int(sys.argv[1])
ids = []
def call():
    ids.append(threading.get_native_id())
    with socket.socket() as s:
        s.connect_ex(("127.0.0.1", port))
threads = [threading.Thread(target=call) for _ in range(8)]
for th in threads: th.start()
for th in threads: th.join()
call()
print(" ".join(map(str, ids)), flush=True)
sys.stdin.read()
"""


def _pending_threads(src: object) -> set[int]:
    """The thread ids the table of calls under way holds an entry for."""
    import ctypes

    from linnix.runtime.sources.bpfmap import bpf_call

    fd = src.loaded.maps["netpending"]  # type: ignore[attr-defined]
    key, nxt, seen = None, ctypes.create_string_buffer(4), set()
    for _ in range(1 << 16):  # the table holds 16,384 at most
        if not bpf_call(4, fd, key, nxt):  # BPF_MAP_GET_NEXT_KEY: none after this one
            break
        seen.add(int.from_bytes(nxt.raw, "little"))
        key = ctypes.create_string_buffer(nxt.raw, 4)
    return seen


def test_a_threads_entry_goes_when_it_ends(capture: object) -> None:
    child = subprocess.Popen([sys.executable, "-c", THREADS, str(free_port())],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        *ended, main = map(int, child.stdout.readline().split())
        drain_until(capture, lambda evs: len(_of(evs, t.Connect, child.pid)) >= 9)
        pending = _pending_threads(capture)
        # the ended threads' entries are gone; the live one's is kept for its next call
        assert len(ended) == 8 and not pending & set(ended)
        assert main in pending
    finally:
        child.communicate("", timeout=10)


def test_detached_nothing_is_seen_and_attached_again_everything(capture: object) -> None:
    net = capture.net  # type: ignore[attr-defined]
    port = free_port()
    net.detach()
    try:
        with socket.socket() as s:
            s.connect_ex(("127.0.0.1", port))
        time.sleep(0.1)
        assert _of(capture.drain(), t.Connect, os.getpid()) == []  # type: ignore[attr-defined]
    finally:
        net.attach()
    with socket.socket() as s:
        s.connect_ex(("127.0.0.1", port))
    events = drain_until(capture, lambda evs: bool(_of(evs, t.Connect, os.getpid())))
    assert [e.remote_port for e in _of(events, t.Connect, os.getpid())] == [port]


def test_linnix_record_writes_the_network_events(tmp_path: Path) -> None:
    require_ebpf()
    out = tmp_path / "net.jsonl"
    rec = subprocess.Popen([sys.executable, "-m", "linnix", "record", str(out), "--duration",
                            "2s"], stderr=subprocess.PIPE, text=True)
    assert rec.stderr is not None
    line = rec.stderr.readline()  # once the program is loaded and attached
    assert "recording for" in line, line
    port = free_port()
    with socket.socket() as s:
        s.connect_ex(("127.0.0.1", port))
    assert rec.wait(60) == 0, rec.stderr.read()
    _header, *events = [msgspec.json.decode(raw) for raw in out.read_bytes().splitlines()]
    mine = [e for e in events if e["kind"] == "connect" and e["pid"] == os.getpid()]
    assert [(e["family"], e["remote_addr"], e["remote_port"], e["error"]) for e in mine] == [
        ("inet", "127.0.0.1", port, 111)]

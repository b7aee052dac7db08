"""The eBPF program compiled and loaded in a short-lived child process.

Compiling with BCC maps LLVM and clang into the process and leaves about
100 MB resident for good (a quarter file pages of the libraries, the rest
the compiler's heap).  So the daemon never imports BCC: a child process does
(:func:`serve`, in :mod:`.bcc` terms), compiles the program, attaches its
tracepoints, and sends over a unix socket (``SCM_RIGHTS``) the descriptors
that keep it all alive: each tracepoint's perf event (which holds its
program, which holds its maps), the programs, and the two maps the daemon
reads (``events``, the ring buffer, and ``lost``).  The child then exits
without BCC's clean-up, which would detach what it attached; the daemon's
copies of the descriptors keep the program running, and closing them
(:meth:`Loaded.close`) detaches and frees it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

__all__ = ["LOAD_TIMEOUT_S", "LoadError", "Loaded", "load_program", "serve"]

LOAD_TIMEOUT_S = 300.0  # compiling takes seconds; on a loaded host, a minute
MAX_FDS = 250  # SCM_RIGHTS carries at most 253 descriptors per message
MAX_MESSAGE = 1 << 16
# which directory holds the linnix package this one is: the child imports the same
_CODE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
_CHILD = ("import sys; sys.path.insert(0, sys.argv[1]); "
          "from linnix.runtime.sources.bpfload import serve; serve()")


class LoadError(Exception):
    """The child could not compile or load the program; the message says why."""


@dataclass
class Loaded:
    """The descriptors of a loaded program: closing the last of them unloads it."""

    maps: dict[str, int]
    programs: dict[str, int]
    attached: list[int] = field(default_factory=list)  # perf events, one per tracepoint

    def close(self) -> None:
        for fd in {*self.maps.values(), *self.programs.values(), *self.attached}:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.maps, self.programs, self.attached = {}, {}, []


def load_program(cflags: list[str], timeout: float = LOAD_TIMEOUT_S) -> Loaded:
    """The program compiled with ``cflags`` and attached, by a child process."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with ours, tempfile.TemporaryFile() as errors:
        try:
            child = subprocess.Popen(
                [sys.executable, "-c", _CHILD, _CODE, json.dumps(cflags),
                 str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=errors)
        except OSError as err:
            raise LoadError(f"the loader did not start: {err}") from None
        finally:
            theirs.close()
        ours.settimeout(timeout)
        try:
            data, fds = _receive(ours)
        except (OSError, ValueError) as err:
            child.kill()
            raise LoadError(f"the loader did not answer: {err}") from None
        finally:
            status = child.wait()
        if not data:
            errors.seek(0)
            tail = errors.read()[-400:].decode("utf-8", "replace").strip()
            raise LoadError(f"the loader exited with status {status}"
                            + (f": {tail.splitlines()[-1]}" if tail else ""))
    return _loaded(json.loads(data), fds)


def _receive(sock: socket.socket) -> tuple[bytes, list[int]]:
    """The child's whole message and the descriptors that came with it."""
    data, fds, flags, _addr = socket.recv_fds(sock, MAX_MESSAGE, MAX_FDS)
    if flags & socket.MSG_CTRUNC:
        for fd in fds:
            os.close(fd)
        raise ValueError("descriptors were cut off")
    while chunk := sock.recv(MAX_MESSAGE):
        data += chunk
        if len(data) > MAX_MESSAGE:
            raise ValueError("the message is too long")
    return data, fds


def _loaded(message: dict[str, object], fds: list[int]) -> Loaded:
    """The descriptors named as the child's message says (an error closes them all)."""
    def pick(names: object) -> dict[str, int]:
        assert isinstance(names, dict)
        return {str(name): fds[int(i)] for name, i in names.items()}

    if "error" in message or len(fds) != message.get("fds"):
        for fd in fds:
            os.close(fd)
        raise LoadError(str(message.get("error", "the loader sent the wrong descriptors")))
    attached = message["attached"]
    assert isinstance(attached, list)
    return Loaded(maps=pick(message["maps"]), programs=pick(message["programs"]),
                  attached=[fds[int(i)] for i in attached])


def serve() -> None:
    """The child: ``argv`` is the code path, the cflags (JSON) and the socket's fd."""
    sock = socket.socket(fileno=int(sys.argv[3]))
    try:
        message, fds = _compile(json.loads(sys.argv[2]))
    except Exception as err:  # every failure is the daemon's to report
        message, fds = {"error": _reason(err)}, []
    socket.send_fds(sock, [json.dumps(message).encode()], fds)
    sock.close()
    # no clean-up: BCC's (at exit) would disable the perf events the daemon now holds
    os._exit(0)


def _reason(err: Exception) -> str:
    from .bcc import BpfUnavailableError

    if isinstance(err, BpfUnavailableError):
        return str(err)
    return f"the eBPF program did not load: {err}"


def _compile(cflags: list[str]) -> tuple[dict[str, object], list[int]]:
    from .bcc import _quiet_stderr, import_bcc, program_source, tracefs_dir
    from .netcap import NET_TRACEPOINTS, missing_tracepoints, net_program_source

    bcc = import_bcc()
    with _quiet_stderr():
        bpf = bcc.BPF(text=(program_source() + net_program_source()).encode(), cflags=cflags)
        # the network programs are loaded, not attached: the daemon attaches them when
        # its rules ask (.bpfattach), and the table of calls under way is emptied then
        missing = missing_tracepoints(tracefs_dir() or "")
        for tp, fn in NET_TRACEPOINTS:
            if tp not in missing:
                bpf.load_func(fn.encode(), bcc.BPF.TRACEPOINT)
    fds: list[int] = []

    def add(fd: int) -> int:
        fds.append(fd)
        return len(fds) - 1

    maps = {name: add(bpf[name.encode()].map_fd) for name in ("events", "lost", "netpending")}
    programs = {name.decode(): add(fn.fd) for name, fn in bpf.funcs.items()}
    attached = [add(fd) for fd in bpf.tracepoint_fds.values()]
    if len(fds) > MAX_FDS:
        raise LoadError(f"{len(fds)} descriptors are more than one message carries")
    return {"maps": maps, "programs": programs, "attached": attached, "fds": len(fds)}, fds

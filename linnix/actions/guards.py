"""Safety guards: may this action touch this process, right now?

Every guard is checked when an action is proposed and again right before it
runs, in both modes.  A guard answers with the reason it refuses, or None.
Identity is the pair (pid, start time in clock ticks since boot, from
/proc/PID/stat): a pid that was reused by another process never matches.

A protected executable is matched against the process, not against the
current state of its file: when the binary is replaced (an upgrade) or
removed, the kernel shows ``/usr/sbin/sshd (deleted)`` as /proc/PID/exe, and
that still is sshd; and the path the process was started from, as the engine
recorded it at exec, matches too (a binary renamed aside keeps its process).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping

import attrs
import trio

from ..errors import ConfigError
from ..procfs import PROC, ProcStat, read_argv, read_stat

__all__ = [
    "BUILTIN_PROTECTED", "Guards", "Identity", "ReadArgv0", "argv0_reader", "argv0s",
    "descendants", "executable", "identify", "lineage_of", "pid_namespace_refusal",
    "protected_names",
]

ARGV_WAIT_S = 2.0  # how long the guards wait for the command lines of a target's processes
ARGV_READERS = 2  # threads reading them at most: reads stuck for good take no more

# Process names (the kernel's comm, exact, at most 15 bytes) that no action may touch,
# whatever a rule says; each with why.  Only [actions] unprotect removes one.
BUILTIN_PROTECTED: Mapping[str, str] = {
    # init and service supervisors: killing one takes down what it supervises
    "systemd": "pid 1 on most distributions, and each user's service manager",
    "init": "pid 1 on SysV-style and BusyBox systems",
    "supervisord": "the supervisor daemon of supervisor",
    "runit": "runit's pid 1",
    "runsvdir": "runit's supervisor of service directories",
    "runsv": "runit's supervisor of one service",
    "s6-svscan": "s6's supervision tree root",
    "s6-supervise": "s6's supervisor of one service",
    "tini": "a container's init (reaps zombies, forwards signals)",
    "dumb-init": "a container's init (reaps zombies, forwards signals)",
    # the system's own daemons, which everything else needs
    "systemd-journal": "systemd-journald (the kernel keeps 15 bytes of a name)",
    "systemd-logind": "logins and sessions",
    "systemd-udevd": "device events",
    "dbus-daemon": "the message bus",
    "dbus-broker": "the message bus",
    # terminal multiplexers: every session of every user attached to them
    "tmux: server": "tmux's server: tmux renames it so on Linux (its clients are "
                    "'tmux: client')",
    "screen": "GNU screen: its server is a fork of the first client, also 'screen' "
              "(argv[0] 'SCREEN')",
    # remote access: the listener and each connection's processes, not what users run
    "sshd": "the listener, and each connection's processes before OpenSSH 9.8",
    "sshd-session": "a connection's process since OpenSSH 9.8",
    "sshd-auth": "a connection's authentication process since OpenSSH 10",
    # container runtimes and shims: killing one orphans or kills every container
    "containerd": "the container runtime daemon",
    "containerd-shim": "containerd-shim-runc-v2 and the like (15 bytes of the name)",
    "dockerd": "the Docker daemon",
    "docker-proxy": "the Docker port forwarder",
    "runc": "the OCI runtime, while it sets a container up",
    "crun": "an OCI runtime, while it sets a container up",
    "conmon": "the monitor of a podman or CRI-O container",
    "crio": "the CRI-O daemon",
    "kubelet": "the Kubernetes node agent",
    # the agent itself (its own process and ancestors are refused by pid as well)
    "linnix": "another linnix on this host",
}

DELETED = " (deleted)"  # what the kernel appends to /proc/PID/exe once the file is gone
# The inode number the kernel gives the initial (the host's) pid namespace, fixed since
# Linux 3.8 (PROC_PID_INIT_INO in include/linux/proc_ns.h): every other one gets another.
PROC_PID_INIT_INO = 0xEFFFFFFC


@attrs.frozen
class Identity:
    """Who a process is: pid, start time (ticks since boot), name and executable."""

    pid: int
    start_ticks: int
    comm: str
    exe: str | None
    ppid: int
    kernel_thread: bool


def executable(path: str | None) -> str | None:
    """The path a process runs from, without the kernel's `` (deleted)`` mark: the file
    was replaced or removed since, but the process is still the program it was."""
    if path is not None and path.endswith(DELETED):
        return path[:-len(DELETED)]
    return path


def _exe(pid: int, root: str) -> str | None:
    try:
        return os.readlink(f"{root}/{pid}/exe")
    except OSError:
        return None


def identify(pid: int, root: str = PROC) -> Identity | None:
    """The process now running as ``pid``, or None if there is none."""
    st: ProcStat | None = read_stat(pid, root)
    if st is None or st.exited:
        return None  # gone, or a zombie: it has ended already
    return Identity(pid, st.start_ticks, st.comm, _exe(pid, root), st.ppid, st.kernel_thread)


def _session(pid: int, root: str) -> tuple[int, int, int] | None:
    """(start ticks, session id, tty_nr) of ``pid`` from /proc/PID/stat, or None."""
    try:
        with open(f"{root}/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2:].split()  # comm may hold anything but ends at ')'
    try:
        return int(fields[19]), int(fields[3]), int(fields[4])
    except (IndexError, ValueError):
        return None


def argv0s(pids: Iterable[int], root: str = PROC) -> dict[int, str | None]:
    """argv[0] of each process (None when it has no command line, or is gone).

    Blocking: a read of /proc/PID/cmdline waits for the process's memory map, which a
    process can keep locked; the action manager reads them off the event loop."""
    found: dict[int, str | None] = {}
    for pid in pids:
        argv = read_argv(pid, root)
        found[pid] = argv[0] if argv else None
    return found


ReadArgv0 = Callable[[list[int], str], Awaitable[dict[int, str | None]]]


def argv0_reader() -> ReadArgv0:
    """argv[0] of processes for the guards, read on worker threads: a read of
    /proc/PID/cmdline waits for the process's memory map, which a process can keep
    locked, so it must never stall the event loop.  What is not read within
    :data:`ARGV_WAIT_S` is left out (the guards refuse those processes)."""
    limiter = trio.CapacityLimiter(ARGV_READERS)

    async def read(pids: list[int], root: str) -> dict[int, str | None]:
        with trio.move_on_after(ARGV_WAIT_S):
            return await trio.to_thread.run_sync(argv0s, pids, root, limiter=limiter,
                                                 abandon_on_cancel=True)
        return {}

    return read


def descendants(pid: int, root: str = PROC) -> list[Identity]:
    """Every process below ``pid`` now, deepest first (read from /proc)."""
    from ..procfs import list_pids

    children: dict[int, list[int]] = {}
    for other in list_pids(root):
        st = read_stat(other, root)
        if st is not None:
            children.setdefault(st.ppid, []).append(other)
    order: list[int] = []  # breadth first: by depth, shallowest first
    seen = {pid}
    queue = deque([pid])
    while queue:
        node = queue.popleft()
        for kid in sorted(children.get(node, ())):
            if kid not in seen:
                seen.add(kid)
                order.append(kid)
                queue.append(kid)
    found = (identify(p, root) for p in reversed(order))  # deepest first
    return [i for i in found if i is not None]


def lineage_of(pid: int, root: str = PROC) -> set[int]:
    """``pid`` and all its ancestors."""
    out: set[int] = set()
    while pid > 0 and pid not in out:
        out.add(pid)
        st = read_stat(pid, root)
        if st is None:
            break
        pid = st.ppid
    return out


def protected_names(extra: Iterable[str] = (), unprotect: Iterable[str] = ()) -> frozenset[str]:
    """The built-in names without ``unprotect``, plus ``extra``: what the configuration
    adds never removes a default.  A name to unprotect that is not built in is an error
    (a typo would leave the operator believing something else)."""
    unknown = sorted(set(unprotect) - BUILTIN_PROTECTED.keys())
    if unknown:
        raise ConfigError(
            f"actions.unprotect: {', '.join(repr(n) for n in unknown)} "
            f"{'is' if len(unknown) == 1 else 'are'} not on the built-in protected list "
            f"({', '.join(BUILTIN_PROTECTED)})")
    return (frozenset(BUILTIN_PROTECTED) - frozenset(unprotect)) | frozenset(extra)


def pid_namespace_refusal(root: str = PROC) -> str | None:
    """Why no action may run from here: linnix is not in the host's pid namespace, or the
    /proc it reads is not its own namespace's; None when both are the host's.

    Comparing /proc/self/ns/pid with /proc/1/ns/pid proves nothing inside a container (its
    pid 1 shares its namespace); the initial namespace's inode number is fixed, so that is
    what is compared.  ``NSpid`` in /proc/self/status must then hold one pid: more would
    mean the /proc mounted here belongs to an ancestor namespace, whose pids are not ours.
    """
    try:
        link = os.readlink(f"{root}/self/ns/pid")
    except OSError as err:
        return (f"cannot tell whether linnix runs in the host's pid namespace ({root}/self/ns/"
                f"pid: {err.strerror or err}): actions are refused")
    if link != f"pid:[{PROC_PID_INIT_INO}]":
        return ("linnix does not run in the host's pid namespace (a container without the "
                "host's pids?): a pid it reads may name another process there, so actions "
                "are refused; capture and alerts go on")
    nspid = _nspid(f"{root}/self/status")
    if nspid != 1:
        return (f"{root} is not this pid namespace's (NSpid lists "
                f"{'no' if nspid is None else nspid} pid(s)): actions are refused")
    return None


def _nspid(status: str) -> int | None:
    """How many pids the NSpid line of ``status`` lists; None when there is none."""
    try:
        with open(status, encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return len(line.split()) - 1
    except OSError:
        return None
    return None


@attrs.define
class Guards:
    """The guards of one daemon: its protected names and its own lineage.

    ``protected`` names are added to the built-in ones, never instead of them;
    only ``unprotect`` removes a built-in name (see :func:`protected_names`)."""

    protected: frozenset[str]
    protected_exe: frozenset[str]
    own: set[int] = attrs.field(factory=lambda: lineage_of(os.getpid()))
    root: str = PROC
    unprotect: frozenset[str] = frozenset()
    names: frozenset[str] = attrs.field(init=False)  # every protected name, in effect

    def __attrs_post_init__(self) -> None:
        self.names = protected_names(self.protected, self.unprotect)
    # why every action is refused here (not the host's pid namespace); None: they may run
    namespace: str | None = attrs.field(
        default=attrs.Factory(lambda self: pid_namespace_refusal(self.root), takes_self=True))

    def check(self, expected: Identity, *, tree: Iterable[Identity] = (),
              started_as: str | None = None,
              argv0: Mapping[int, str | None] | None = None) -> str | None:
        """Why the action must not touch ``expected`` (and its ``tree``), or None.

        ``started_as`` is the executable ``expected`` was started from, as recorded
        when it exec'd (the engine's process table), if known: a protected one refuses
        as well, whatever its file has become since.  ``argv0`` holds the argv[0] of
        the processes, read beforehand (:func:`argv0s`); a pid missing from it could
        not be read in time, and is refused.  Without it, they are read here.
        """
        if self.namespace is not None:
            return self.namespace
        if argv0 is None:
            argv0 = argv0s([i.pid for i in (expected, *tree)], self.root)
        for ident in (expected, *tree):
            reason = self._one(ident, started_as if ident is expected else None, argv0)
            if reason is not None:
                if ident is expected:
                    return reason
                return f"its subtree contains {ident.comm}[{ident.pid}]: {reason}"
        return None

    def _one(self, ident: Identity, started_as: str | None,
             argv0: Mapping[int, str | None]) -> str | None:
        if ident.pid <= 2:
            return f"pid {ident.pid} is never touched (init or the kernel's thread parent)"
        if ident.kernel_thread or ident.ppid == 2:
            return f"{ident.comm}[{ident.pid}] is a kernel thread"
        if ident.pid in self.own:
            return f"{ident.comm}[{ident.pid}] is linnix itself or one of its ancestors"
        if ident.comm in self.names:
            return f"'{ident.comm}' is on the protected list"
        return self._protected_exe(ident, started_as) or self._interactive(ident, argv0)

    def _interactive(self, ident: Identity, argv0: Mapping[int, str | None]) -> str | None:
        """Why ``ident`` is someone's interactive session, if it is one."""
        terminal = _session(ident.pid, self.root)
        if terminal is not None and terminal[0] == ident.start_ticks:
            _, session, tty_nr = terminal
            if session == ident.pid and tty_nr != 0:
                return (f"{ident.comm}[{ident.pid}] leads a session with a terminal (an "
                        "interactive shell or login)")
        if ident.pid not in argv0:
            return (f"{ident.comm}[{ident.pid}]: its command line could not be read in time, "
                    "so it may be a login shell")
        first = argv0[ident.pid]
        if first is not None and first.startswith("-"):
            return f"{ident.comm}[{ident.pid}] is a login shell (argv[0] is '{first[:32]}')"
        return None

    def _protected_exe(self, ident: Identity, started_as: str | None) -> str | None:
        running = executable(ident.exe)
        if running is not None and running in self.protected_exe:
            if running != ident.exe:
                return (f"{running} is on the protected list (the process runs it; the file "
                        "was replaced or removed since it started)")
            return f"{running} is on the protected list"
        recorded = executable(started_as)
        if recorded is not None and recorded in self.protected_exe:
            return (f"{recorded} is on the protected list (the process was started from it; "
                    f"it now shows {ident.exe or 'no executable'})")
        return None

    def still(self, expected: Identity) -> str | None:
        """None if the process running as ``expected.pid`` is still the same one."""
        now = identify(expected.pid, self.root)
        if now is None:
            return f"process {expected.pid} is gone"
        if now.start_ticks != expected.start_ticks:
            return (f"pid {expected.pid} now belongs to another process ({now.comm}, started "
                    "later): the original is gone")
        return None

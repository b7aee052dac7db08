"""The Linux capabilities linnix uses, and which of them this process holds.

One list, read by the eBPF source (may it load its program?), by ``linnix
doctor`` (what is missing, and what for) and checked against the systemd unit
(``packaging/linnix.service`` grants exactly these).  Each was found by running
the agent without it: see docs/service.md.

Capabilities are read from ``CapEff`` in /proc/self/status, never inferred from
the user id: a root process in a service with a narrowed bounding set, or in a
container, holds far less than "root".
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["CAPTURE", "SERVICE", "capture_problem", "effective", "missing", "names"]

CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_KILL, CAP_SYS_PTRACE, CAP_SYS_ADMIN = 1, 2, 5, 19, 21
CAP_SYS_NICE, CAP_PERFMON, CAP_BPF = 23, 38, 39

_NAMES = {CAP_DAC_READ_SEARCH: "CAP_DAC_READ_SEARCH", CAP_KILL: "CAP_KILL",
          CAP_SYS_PTRACE: "CAP_SYS_PTRACE", CAP_SYS_ADMIN: "CAP_SYS_ADMIN",
          CAP_SYS_NICE: "CAP_SYS_NICE", CAP_PERFMON: "CAP_PERFMON", CAP_BPF: "CAP_BPF"}

# What eBPF capture needs: loading the program and its maps (CAP_BPF), attaching it to
# tracepoints (CAP_PERFMON).  A process that is not uid 0 also needs CAP_DAC_READ_SEARCH to
# read tracefs (mode 0700, root's), see CAPTURE_NOT_OWNER.
CAPTURE = (CAP_BPF, CAP_PERFMON)
CAPTURE_NOT_OWNER = (CAP_DAC_READ_SEARCH,)

# Everything the service grants, and why.
SERVICE: dict[int, str] = {
    CAP_BPF: "load the eBPF program and its maps",
    CAP_PERFMON: "attach it to the scheduler's tracepoints",
    CAP_DAC_READ_SEARCH: "list /proc/PID/fd of every user's processes (fd counts); read tracefs",
    CAP_SYS_PTRACE: "read /proc/PID/exe of every user's processes (protected executables)",
    CAP_KILL: "signal every user's processes (kill, stop)",
    CAP_SYS_NICE: "renice every user's processes",
}


def names(caps: Iterable[int]) -> list[str]:
    """``CAP_*`` names, in the order given."""
    return [_NAMES.get(c, f"capability {c}") for c in caps]


def effective(status: str = "/proc/self/status") -> int | None:
    """The effective capability mask of this process; None when it cannot be read."""
    try:
        with open(status, encoding="ascii") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        return None
    return None


def missing(wanted: Iterable[int], mask: int) -> list[int]:
    """The capabilities of ``wanted`` that ``mask`` lacks, in the order given."""
    return [c for c in wanted if not mask >> c & 1]


def capture_problem(mask: int | None, uid: int) -> str | None:
    """Why eBPF capture cannot be loaded with ``mask`` as user ``uid``; None when it can.

    CAP_SYS_ADMIN stands in for CAP_BPF and CAP_PERFMON (kernels before 5.8 know only it).
    """
    if mask is None:
        return "cannot read this process's capabilities from /proc/self/status"
    wanted = list(CAPTURE) if not mask >> CAP_SYS_ADMIN & 1 else []
    if uid != 0:
        wanted += CAPTURE_NOT_OWNER
    lacking = missing(wanted, mask)
    if not lacking:
        return None
    return (f"eBPF capture needs {' + '.join(names(wanted))} (without "
            f"{', '.join(names(lacking))} here): run as root or as the linnix service")

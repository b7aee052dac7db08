"""``linnix doctor``: can this host run linnix with eBPF, and if not, what fixes it.

Each check says ok, warn or fail, and for anything not ok the command that
fixes it, including what the service's capabilities allow, whether actions
may run here (the host's pid namespace) and which cgroup values this host can
serve, from its v2 hierarchy or a v1 controller (docs/cgroups.md).  With
``--load`` the eBPF program is really compiled and attached (a few seconds),
the only proof that capture works.  With ``--config``, it also says whether
``[analysis]`` names a model and whether its server answers (a cheap request
with a short timeout; the key is sent, never shown).
"""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TextIO

import attrs

if TYPE_CHECKING:
    from ..cgroups.hierarchy import Hierarchy

__all__ = ["Check", "run_checks"]

@attrs.frozen
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str
    fix: str | None = None


def _kernel() -> Check:
    release = platform.release()
    m = re.match(r"(\d+)\.(\d+)", release)
    version = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    if version >= (5, 8):
        return Check("kernel", "ok", f"{release} (BPF ring buffer and boot-time clock: 5.8+)")
    return Check("kernel", "fail", f"{release} is older than 5.8 (no BPF ring buffer)",
                 "upgrade the kernel; meanwhile linnix runs with the /proc fallback")


def _btf() -> Check:
    if os.path.exists("/sys/kernel/btf/vmlinux"):
        return Check("BTF", "ok", "/sys/kernel/btf/vmlinux present")
    return Check("BTF", "warn", "no /sys/kernel/btf/vmlinux (not needed: linnix uses "
                 "tracepoint arguments only)")


def _tracefs() -> Check:
    from ..runtime.sources.bcc import TRACEFS

    for path in TRACEFS:
        if os.path.isdir(os.path.join(path, "events", "sched", "sched_process_exec")):
            return Check("tracefs", "ok", f"mounted at {path} with sched tracepoints")
    return Check("tracefs", "fail", "tracefs is not mounted",
                 "mount -t tracefs tracefs /sys/kernel/tracing")


# What no tracepoint linnix reads can see (docs/trace-format.md, "Where each field comes from").
BLIND_SPOTS = ("the argv and exit code of 32-bit programs (their syscalls are not traced) and "
               "of the kernel's own execs; argv pages not yet in memory (cut, marked); a "
               "relative or /dev/fd exe once its process and parent are gone; exits forced "
               "without a signal (seccomp's kill)")


def _fields() -> Check:
    from ..runtime.sources.bcc import TRACEFS

    tracefs = next((p for p in TRACEFS if os.path.isdir(os.path.join(p, "events"))), None)
    if tracefs is None:
        return Check("fields", "fail", "tracefs is not mounted: no tracepoint can be read")
    return field_sources(tracefs)


def field_sources(tracefs: str) -> Check:
    """Which tracepoints the program uses here, what is missing and what that costs."""
    from ..runtime.sources.bcc import TRACEPOINT_PARTS, optional_parts

    base = "task_newtask, sched_process_exec, sched_process_exit"
    present = {flag: ok for flag, _gives, ok in optional_parts(tracefs)}
    used = [base] + [", ".join(event.split("/")[1] for event, _ in needs)
                     for flag, _gives, needs in TRACEPOINT_PARTS if present[flag]]
    missing = [gives for flag, gives, _ in TRACEPOINT_PARTS if not present[flag]]
    detail = f"tracepoints: {', '.join(used)}; never seen: {BLIND_SPOTS}"
    if missing:
        return Check("fields", "warn", f"without {', '.join(missing)} (their tracepoints are "
                     f"missing); {detail}", "a kernel built with CONFIG_FTRACE_SYSCALLS")
    return Check("fields", "ok", detail)


# What the network capture never sees (docs/network.md).
NET_BLIND_SPOTS = ("sockets driven through io_uring; UDP datagrams sent to an address without "
                   "connect (sendto, sendmsg) and TCP Fast Open's connect by sendto; the local "
                   "port of an accept or listen on a socket this process did not bind since "
                   "capture began (inherited, passed, bound to port 0 or never bound; a listen "
                   "without a bind this process made is not reported at all); 32-bit programs")


def _network() -> Check:
    from ..runtime.sources.bcc import TRACEFS

    tracefs = next((p for p in TRACEFS if os.path.isdir(os.path.join(p, "events"))), None)
    if tracefs is None:
        return Check("network", "warn", "tracefs is not mounted: no connect, accept or listen "
                     "can be seen", "mount -t tracefs tracefs /sys/kernel/tracing")
    return network_sources(tracefs)


def network_sources(tracefs: str) -> Check:
    """Whether connect, accept and listen can be captured here, and what is never seen."""
    from ..runtime.sources.netcap import NET_TRACEPOINTS, missing_tracepoints

    missing = missing_tracepoints(tracefs)
    present = [tp.split(":")[1] for tp, _fn in NET_TRACEPOINTS
               if tp not in missing and tp.startswith("syscalls:")]
    detail = f"connect, accept, listen from {len(present)} syscall tracepoints; never seen: " \
             f"{NET_BLIND_SPOTS}"
    if missing:
        return Check("network", "warn", f"without {', '.join(missing)}; {detail}",
                     "a kernel built with CONFIG_FTRACE_SYSCALLS")
    return Check("network", "ok", detail)


def _bcc() -> Check:
    from ..runtime.sources.bcc import BpfUnavailableError, import_bcc

    try:
        bcc = import_bcc()
    except BpfUnavailableError as err:
        return Check("BCC", "fail", str(err), "apt-get install python3-bpfcc")
    return Check("BCC", "ok", f"bindings from {os.path.dirname(bcc.__file__)}")


def _headers() -> Check:
    release = platform.release()
    build = f"/lib/modules/{release}/build"
    if os.path.isdir(os.path.join(build, "include")):
        target = os.path.realpath(build)
        generic = release not in target
        note = f" (generic headers: {target})" if generic else ""
        return Check("kernel headers", "ok", f"{build}{note}")
    return Check("kernel headers", "fail", f"nothing at {build}",
                 f"apt-get install linux-headers-{release} || make setup "
                 "(links the distribution's generic headers)")


def _caps() -> Check:
    """May this process load the eBPF program: the very test the eBPF source makes."""
    from ..runtime.sources.caps import capture_problem, effective

    problem = capture_problem(effective(), os.geteuid())
    if problem is None:
        return Check("privileges", "ok", "may load eBPF programs")
    return Check("privileges", "fail", problem, _AS_SERVICE)


_AS_SERVICE = ("run linnix as root, or as the systemd service (packaging/linnix.service grants "
               "exactly what it needs; docs/service.md)")


def _service_caps() -> Check:
    """The capabilities the service grants, and what each missing one costs."""
    from ..runtime.sources.caps import SERVICE, effective, missing, names

    mask = effective()
    if mask is None:
        return Check("capabilities", "warn", "cannot read CapEff from /proc/self/status")
    lacking = missing(SERVICE, mask)
    if not lacking:
        return Check("capabilities", "ok", " ".join(names(SERVICE)))
    costs = "; ".join(f"{name}: cannot {SERVICE[cap]}"
                      for cap, name in zip(lacking, names(lacking), strict=True))
    return Check("capabilities", "warn", f"without {costs}", _AS_SERVICE)


def _pid_namespace() -> Check:
    from ..actions.guards import pid_namespace_refusal

    refusal = pid_namespace_refusal()
    if refusal is None:
        return Check("pid namespace", "ok", "the host's: actions may run")
    return Check("pid namespace", "warn", refusal,
                 "run linnix in the host's pid namespace (docker run --pid=host)")


def _psi() -> Check:
    try:
        with open("/proc/pressure/cpu") as f:
            f.read()
    except OSError:
        return Check("PSI", "warn", "/proc/pressure is unavailable: psi_* metrics have no value",
                     "boot with psi=1 (CONFIG_PSI)")
    return Check("PSI", "ok", "/proc/pressure readable")


def _cgroups() -> Check:
    from ..cgroups.hierarchy import discover

    return cgroup_sources(discover())


def cgroup_sources(h: Hierarchy) -> Check:
    """Where this host's cgroups are and which cg_* names it serves from where."""
    from ..cgroups.hierarchy import sources

    if h.primary is None:
        return Check("cgroups", "warn", "no cgroup hierarchy is mounted: no cg_* name has a "
                     "value", "mount -t cgroup2 cgroup2 /sys/fs/cgroup")
    found = sources(h)
    where = f"v2 at {h.v2}" if h.v2 else f"v1 only (primary {h.primary})"
    # hybrid: the v1 controllers some names come from, next to the v2 hierarchy
    v1 = [f"v1 {c} at {h.v1_mount(c)}" for c, origin in (("memory", h.memory),
                                                          ("cpuacct", h.cpu)) if origin == "v1"]
    hybrid = "hybrid: " if h.v2 else ""
    parts = [where + (f" ({hybrid}{', '.join(v1)})" if v1 else "")]
    for origin, label in (("v2", "from v2"), ("v1", "from v1"), (None, "no value here")):
        names = [s.name for s in found if s.origin == origin]
        if names:
            parts.append(f"{label}: {', '.join(names)}")
    missing = [s.name for s in found if s.origin is None]
    if missing:
        return Check("cgroups", "warn", "; ".join(parts),
                     "docs/cgroups.md says which controller or kernel option serves each name")
    return Check("cgroups", "ok", "; ".join(parts))


def _netlink() -> Check:
    from ..procfs import Clock
    from ..runtime.sources.fallback import NetlinkSource, NetlinkUnavailableError

    try:
        NetlinkSource(Clock()).close()
    except NetlinkUnavailableError as err:
        return Check("fallback", "warn", f"{err}; without eBPF linnix would poll /proc")
    return Check("fallback", "ok", "process-events connector usable if eBPF is not")


def _load() -> Check:
    from ..procfs import Clock
    from ..runtime.sources.bcc import BpfSource, BpfUnavailableError

    try:
        BpfSource(Clock(), ring_pages=64, network=True).close()
    except BpfUnavailableError as err:
        return Check("eBPF program", "fail", str(err))
    return Check("eBPF program", "ok", "compiled, loaded and attached to its tracepoints "
                 "(the network ones too)")


def model_check(analysis: Any) -> Check:
    """Whether a model backend is configured (``analysis``: the AnalysisConfig), and
    whether its server answers; a model that does not is a warning, not a failure:
    the built-in analyst works without it."""
    if analysis.backend != "openai":
        return Check("model", "ok", "none configured: the built-in analyst only, and no "
                     "connection to a model")
    import trio

    from ..runtime.modelclient import probe
    from ..terminal import printable

    where = f"{analysis.model} at {analysis.endpoint}"
    problem = trio.run(probe, analysis)
    if problem is None:
        return Check("model", "ok", f"{where} answers")
    return Check("model", "warn", f"{where} does not answer: {printable(problem)}",
                 "check [analysis] endpoint and api_key_file, and that the server runs; "
                 "incidents keep their built-in analysis meanwhile")


def checks(load: bool, config: Any = None) -> Iterator[Callable[[], Check]]:
    yield from (_kernel, _btf, _tracefs, _fields, _bcc, _headers, _caps, _service_caps,
                _pid_namespace, _psi, _cgroups, _network, _netlink)
    if load:
        yield _load
    if config is not None:
        yield lambda: model_check(config.analysis)


def run_checks(out: TextIO, load: bool = False, config: Any = None) -> int:
    """Print every check (the model's too, given a ``config``); 0 when eBPF capture can
    work, 1 otherwise."""
    results = []
    for check in checks(load, config):
        try:
            result = check()
        except Exception as err:  # a check must never take the doctor down
            result = Check(check.__name__.strip("_"), "fail", f"check failed: {err}")
        results.append(result)
        mark = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}[result.status]
        out.write(f"[{mark}] {result.name:<15} {result.detail}\n")
        if result.fix and result.status != "ok":
            out.write(f"       fix: {result.fix}\n")
    failed = [r for r in results if r.status == "fail"]
    if failed:
        out.write("\neBPF capture is not available; 'linnix run' will use the /proc fallback.\n")
        return 1
    if not load:
        out.write("\nlooks ready; 'linnix doctor --load' proves it by loading the program\n")
    else:
        out.write("\neBPF capture works\n")
    return 0

"""The registry of every name a rule can use: metrics, fields, units, functions, actions.

This is the one table the checker (is the name known, in which scope, which
unit), the compiler (what code reads it), the engine (what must be computed
and sampled), the documentation and ``linnix explain`` all read.  Adding a
metric means adding one :class:`Metric` here and teaching the process table
to maintain the attribute it names.

Code templates use ``P`` for the process record, ``H`` for the host record and
``NOW`` for the evaluation time; the compiler substitutes them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

import attrs

__all__ = [
    "ACTIONS",
    "CGROUP_FIELDS",
    "EXIT_NAMES",
    "NET_NAMES",
    "NET_TRIGGERS",
    "FUNCTIONS",
    "METRICS",
    "SIGNALS",
    "TEMPLATE_EXTRAS",
    "TEXT_MAX",
    "UNITS",
    "DURATION_UNITS",
    "COUNTING_FUNCTIONS",
    "COUNTED_FIELDS",
    "ActionSpec",
    "Dim",
    "Metric",
    "Need",
    "Param",
    "Scope",
    "TRIGGERS",
    "Type",
    "Unit",
    "WINDOW_FUNCTIONS",
    "duration_seconds",
    "readable",
    "field_of",
    "is_ancestry",
    "suggest",
]


# The longest text of a process (comm, exe, cmdline) that rules, messages and
# outputs see, in characters; the rest is cut off where the text enters.  A
# process chooses its own command line, up to megabytes of it.
TEXT_MAX = 4096


class Scope(enum.Enum):
    """Which instances a rule has: one (system), one per process, one per subtree, one per
    cgroup."""

    SYSTEM = "system"
    PROCESS = "process"
    SUBTREE = "subtree"
    CGROUP = "cgroup"

    @property
    def rank(self) -> int:
        return _SCOPE_RANK[self]


# Inference picks the highest rank a rule reads.  A cgroup rule is apart from the process
# scopes rather than above them: what it may read is :func:`readable`'s, not a rank's.
_SCOPE_RANK = {Scope.SYSTEM: 0, Scope.PROCESS: 1, Scope.SUBTREE: 2, Scope.CGROUP: 3}


class Type(enum.Enum):
    """Value types of the language."""

    NUM = "number"
    STR = "string"
    BOOL = "bool"
    STR_LIST = "list of strings"
    NUM_LIST = "list of numbers"
    BOOL_LIST = "list of bools"
    SIGNAL = "signal"

    @property
    def element(self) -> Type | None:
        return {Type.STR_LIST: Type.STR, Type.NUM_LIST: Type.NUM, Type.BOOL_LIST: Type.BOOL}.get(
            self
        )

    @staticmethod
    def list_of(element: Type) -> Type | None:
        return {Type.STR: Type.STR_LIST, Type.NUM: Type.NUM_LIST, Type.BOOL: Type.BOOL_LIST}.get(
            element
        )


class Dim(enum.Enum):
    """The physical dimension of a number; a literal's unit must agree with it."""

    PLAIN = "a plain number"
    PERCENT = "a percentage"
    SIZE = "a size in MiB"
    DURATION = "a duration in seconds"


class Need(enum.Enum):
    """Work the engine and the live sampler must do for a plan."""

    CPU = "per-process cpu_pct sampling"
    RSS = "per-process rss sampling"
    FDS = "per-process fd sampling"
    THREADS = "per-process thread sampling"
    CMDLINE = "process command lines"
    SUBTREE = "subtree aggregation pass"
    HOST = "host cpu/memory sampling"
    PSI = "pressure (PSI) sampling"
    CGROUP = "per-cgroup sampling"
    NETWORK = "network events (connect, accept, listen)"
    SOCKETS = "per-process socket counting"


@attrs.frozen
class Unit:
    """A literal suffix: ``5m`` is 300 in the DURATION base unit (seconds)."""

    suffix: str
    dim: Dim
    factor: float  # multiply by this to get the dimension's base unit


_MIB = 1024.0 * 1024.0
UNITS: Mapping[str, Unit] = {
    u.suffix: u
    for u in (
        Unit("ms", Dim.DURATION, 0.001),
        Unit("s", Dim.DURATION, 1.0),
        Unit("m", Dim.DURATION, 60.0),
        Unit("h", Dim.DURATION, 3600.0),
        Unit("KB", Dim.SIZE, 1e3 / _MIB),
        Unit("MB", Dim.SIZE, 1e6 / _MIB),
        Unit("GB", Dim.SIZE, 1e9 / _MIB),
        Unit("KiB", Dim.SIZE, 1.0 / 1024.0),
        Unit("MiB", Dim.SIZE, 1.0),
        Unit("GiB", Dim.SIZE, 1024.0),
        Unit("%", Dim.PERCENT, 1.0),
    )
}


@attrs.frozen
class Metric:
    """One name of the language.

    ``code`` is the Python expression that reads it (``P``/``H``/``NOW``
    placeholders); ``optional`` says whether it can be missing (no value);
    ``time_varying`` says whether it can change with no event (rates, ages),
    so that the engine re-evaluates it on every tick.  ``adds_up`` names, for
    a subtree metric, what the process table adds up along the tree for it
    (``cpu``, ``rss``, ``fds``, ``forks``, ``connects``; process counts always are).
    """

    name: str
    type: Type
    scope: Scope
    dim: Dim
    help: str
    computed: str
    code: str
    needs: frozenset[Need] = frozenset()
    optional: bool = True
    time_varying: bool = False
    adds_up: str | None = None

    @property
    def numeric(self) -> bool:
        return self.type is Type.NUM


def _m(
    name: str,
    scope: Scope,
    dim: Dim,
    help: str,
    computed: str,
    code: str,
    *needs: Need,
    type: Type = Type.NUM,
    optional: bool = True,
    time_varying: bool = False,
    adds_up: str | None = None,
) -> Metric:
    return Metric(
        name, type, scope, dim, help, computed, code, frozenset(needs), optional, time_varying,
        adds_up,
    )


S, PR, ST, CG = Scope.SYSTEM, Scope.PROCESS, Scope.SUBTREE, Scope.CGROUP
PLAIN, PCT, SIZE, DUR = Dim.PLAIN, Dim.PERCENT, Dim.SIZE, Dim.DURATION

_CATALOGUE = (
    # ---- system ----------------------------------------------------------
    _m("host_cpu_pct", S, PCT, "CPU utilisation of the whole host, 0-100 over all CPUs",
       "'cpu_pct' of the latest system sample", "H.cpu_pct", Need.HOST),
    _m("host_mem_used_pct", S, PCT, "memory in use, percent of total",
       "(mem_total - mem_available) / mem_total x 100", "H.mem_used_pct", Need.HOST),
    _m("mem_available_mb", S, SIZE, "memory available for new work, MiB",
       "'mem_available_kb' / 1024 of the latest system sample", "H.mem_available_mb", Need.HOST),
    _m("mem_total_mb", S, SIZE, "total memory of the host, MiB",
       "'mem_total_kb' / 1024 of the trace header or the latest system sample",
       "H.mem_total_mb", Need.HOST),
    _m("procs", S, PLAIN, "number of live processes", "processes in the table", "H.procs",
       optional=False),
    _m("forks_per_sec", S, PLAIN, "processes created in the last second",
       "fork events in the trailing 1 s", "H.forks.count(NOW)", optional=False,
       time_varying=True),
    _m("execs_per_sec", S, PLAIN, "program executions in the last second",
       "exec events in the trailing 1 s", "H.execs.count(NOW)", optional=False,
       time_varying=True),
    _m("exits_per_sec", S, PLAIN, "processes that ended in the last second",
       "exit events in the trailing 1 s", "H.exits.count(NOW)", optional=False,
       time_varying=True),
    _m("short_jobs_per_sec", S, PLAIN, "processes that lived under 1 s, per second",
       "exits less than 1 s after start, in the trailing 1 s", "H.short_jobs.count(NOW)",
       optional=False, time_varying=True),
    _m("psi_cpu_some", S, PCT, "CPU pressure: share of time some task waited for a CPU (avg10)",
       "/proc/pressure/cpu some avg10", "H.psi_cpu_some", Need.PSI),
    _m("psi_mem_some", S, PCT, "memory pressure, some (avg10)",
       "/proc/pressure/memory some avg10", "H.psi_mem_some", Need.PSI),
    _m("psi_mem_full", S, PCT, "memory pressure, full (avg10)",
       "/proc/pressure/memory full avg10", "H.psi_mem_full", Need.PSI),
    _m("psi_io_some", S, PCT, "I/O pressure, some (avg10)", "/proc/pressure/io some avg10",
       "H.psi_io_some", Need.PSI),
    _m("psi_io_full", S, PCT, "I/O pressure, full (avg10)", "/proc/pressure/io full avg10",
       "H.psi_io_full", Need.PSI),
    _m("lost_events", S, PLAIN, "events the kernel could not deliver in the last 60 s",
       "sum of 'lost' counts in the trailing 60 s", "H.lost.total(NOW)", optional=False,
       time_varying=True),
    _m("ncpu", S, PLAIN, "number of CPUs", "from the trace header or system sample",
       "H.ncpu"),
    # ---- process ---------------------------------------------------------
    _m("pid", PR, PLAIN, "process id", "from the kernel", "P.pid", optional=False),
    _m("ppid", PR, PLAIN, "parent process id", "from the kernel; re-parented on parent exit",
       "P.ppid", optional=False),
    _m("comm", PR, PLAIN, "command name (up to 15 characters)", "from fork/exec",
       "P.comm", type=Type.STR),
    _m("exe", PR, PLAIN, "path of the executable", "from exec or the start-up scan", "P.exe",
       type=Type.STR),
    _m("cmdline", PR, PLAIN, "command line, arguments joined by spaces", "from exec argv",
       "P.cmdline", Need.CMDLINE, type=Type.STR),
    _m("uid", PR, PLAIN, "user id", "from fork or the start-up scan", "P.uid"),
    _m("user", PR, PLAIN, "name of the user (uid) in the password database; no value when "
       "it has none", "the source looks uid up (cached, read again when /etc/passwd "
       "changes); a fork with the same uid has its parent's", "P.user", type=Type.STR),
    _m("cgroup", PR, PLAIN, "cgroup v2 path (\"/system.slice/nginx.service\")",
       "the 0:: line of /proc/PID/cgroup at the start-up scan and after each exec; a fork "
       "is in its parent's", "P.cgroup", type=Type.STR),
    _m("unit", PR, PLAIN, "systemd unit of the cgroup (\"nginx.service\", "
       "\"session-3.scope\"); no value outside units",
       "from cgroup: the first unit below the leading slices, escapes (\\x2d) decoded",
       "P.unit", type=Type.STR),
    _m("container", PR, PLAIN, "container id, its first 12 hex digits (Docker, containerd, "
       "CRI-O, podman, Kubernetes pods); no value outside containers",
       "from cgroup: the outermost container its path names", "P.container", type=Type.STR),
    _m("age_s", PR, DUR, "seconds since the process started", "now - start",
       "P.age(NOW)", time_varying=True),
    _m("cpu_pct", PR, PCT, "CPU use, percent of one CPU (may exceed 100)",
       "'cpu_pct' of the latest sample", "P.cpu_pct", Need.CPU),
    _m("rss_mb", PR, SIZE, "resident memory, MiB", "'rss_kb' / 1024 of the latest sample",
       "P.rss_mb", Need.RSS),
    _m("fds", PR, PLAIN, "open file descriptors", "'fds' of the latest sample", "P.fds",
       Need.FDS),
    _m("fd_limit", PR, PLAIN, "soft limit on open file descriptors",
       "'fd_limit' of the latest sample", "P.fd_limit", Need.FDS),
    _m("fd_pct", PR, PCT, "open file descriptors, percent of the soft limit",
       "fds / fd_limit x 100", "P.fd_pct", Need.FDS),
    _m("threads", PR, PLAIN, "number of threads", "'threads' of the latest sample",
       "P.threads", Need.THREADS),
    _m("children", PR, PLAIN, "number of live child processes", "maintained from fork/exit",
       "P.children", optional=False),
    _m("child_forks_per_sec", PR, PLAIN, "children this process created in the last second",
       "fork events with this ppid in the trailing 1 s", "P.child_forks.count(NOW)",
       optional=False, time_varying=True),
    _m("child_short_jobs_per_sec", PR, PLAIN,
       "children that exited less than 1 s after they started, per second",
       "such exits in the trailing 1 s", "P.child_short_jobs.count(NOW)", optional=False,
       time_varying=True),
    _m("ancestors", PR, PLAIN, "command names of the ancestors, nearest first",
       "walk of the parent chain", "P.ancestors()", type=Type.STR_LIST, optional=False),
    # ---- process, at its exit: 'on exit' rules only ---------------------
    _m("exit_code", PR, PLAIN,
       "'on exit' rules: the exit code; no value when a signal ended the process",
       "'code' of the exit event (from the kernel at exit)", "P.exit_code"),
    _m("exit_signal", PR, PLAIN,
       "'on exit' rules: the signal that ended the process, by name (\"SIGSEGV\"); no "
       "value on a normal exit",
       "'signal' of the exit event, a number, named", "P.exit_signal", type=Type.STR),
    _m("crashed", PR, PLAIN,
       "'on exit' rules: true when a core-dump signal ended the process (SIGSEGV, SIGBUS, "
       "SIGILL, SIGFPE, SIGABRT, SIGSYS, SIGTRAP)",
       "'signal' of the exit event; false when not known",
       "P.crashed", type=Type.BOOL, optional=False),
    _m("failed", PR, PLAIN,
       "'on exit' rules: true when the exit code is not 0, or the process crashed",
       "'code' and 'signal' of the exit event; false when neither is known", "P.failed",
       type=Type.BOOL, optional=False),
    _m("lifetime_s", PR, DUR, "'on exit' rules: seconds from the start of the process to its exit",
       "exit ts - start", "P.lifetime_s"),
    _m("connects_per_sec", PR, PLAIN, "connects this process asked for in the last second",
       "connect events of this process in the trailing 1 s", "P.connects_per_sec(NOW)",
       Need.NETWORK, optional=False, time_varying=True),
    _m("accepts_per_sec", PR, PLAIN, "connections this process accepted in the last second",
       "accept events of this process in the trailing 1 s", "P.accepts_per_sec(NOW)",
       Need.NETWORK, optional=False, time_varying=True),
    _m("listen_ports", PR, PLAIN, "ports this process listens on, oldest first (at most 64)",
       "local_port of its listen events, until it exits", "P.listen_ports()",
       Need.NETWORK, type=Type.NUM_LIST, optional=False),
    _m("sockets", PR, PLAIN, "open sockets", "'sockets' of the latest sample (links in "
       "/proc/PID/fd that start with 'socket:')", "P.sockets", Need.SOCKETS),
    # ---- process, at a network event: 'on connect|accept|listen' rules only ----
    _m("remote_addr", PR, PLAIN, "'on connect' and 'on accept' rules: the peer's address (IPv4 or "
       "IPv6 text, or a unix socket's path)", "'remote_addr' of the event", "P.remote_addr",
       Need.NETWORK, type=Type.STR),
    _m("remote_port", PR, PLAIN, "'on connect' and 'on accept' rules: the peer's port",
       "'remote_port' of the event", "P.remote_port", Need.NETWORK),
    _m("local_port", PR, PLAIN, "'on accept' and 'on listen' rules: the local port",
       "'local_port' of the event", "P.local_port", Need.NETWORK),
    _m("family", PR, PLAIN, "'on connect', 'on accept' and 'on listen' rules: the address family, "
       "\"inet\", \"inet6\" or \"unix\"", "'family' of the event", "P.family",
       Need.NETWORK, type=Type.STR),
    # ---- subtree ---------------------------------------------------------
    _m("subtree_cpu_pct", ST, PCT, "cpu_pct summed over the process and its descendants",
       "subtree pass", "P.sub_cpu_pct", Need.CPU, Need.SUBTREE, optional=False, adds_up="cpu"),
    _m("subtree_rss_mb", ST, SIZE, "rss_mb summed over the process and its descendants",
       "subtree pass", "P.sub_rss_mb", Need.RSS, Need.SUBTREE, optional=False, adds_up="rss"),
    _m("subtree_procs", ST, PLAIN, "number of processes in the subtree, itself included",
       "subtree pass", "P.sub_procs", Need.SUBTREE, optional=False),
    _m("subtree_fds", ST, PLAIN, "fds summed over the process and its descendants",
       "subtree pass", "P.sub_fds", Need.FDS, Need.SUBTREE, optional=False, adds_up="fds"),
    _m("subtree_forks_per_sec", ST, PLAIN,
       "processes created anywhere in the subtree in the last second",
       "fork events under this process in the trailing 1 s", "P.sub_forks.count(NOW)",
       Need.SUBTREE, optional=False, time_varying=True, adds_up="forks"),
    _m("subtree_connects_per_sec", ST, PLAIN,
       "connects asked for anywhere in the subtree in the last second",
       "connect events under this process in the trailing 1 s",
       "P.sub_connects_per_sec(NOW)", Need.NETWORK, Need.SUBTREE, optional=False,
       time_varying=True, adds_up="connects"),
    # ---- cgroup (cgroup rules read cgroup, unit and container too: CGROUP_FIELDS) -----
    _m("cg_procs", CG, PLAIN, "number of processes in the cgroup (not in those below it)",
       "lines of cgroup.procs", "P.cg_procs", Need.CGROUP),
    _m("cg_cpu_pct", CG, PCT, "CPU use of the cgroup and those below it, percent of one CPU "
       "(200 = two CPUs busy)", "growth of cpu.stat usage_usec (v1: cpuacct.usage) since "
       "the previous sample", "P.cg_cpu_pct", Need.CGROUP),
    _m("cg_mem_mb", CG, SIZE, "memory charged to the cgroup, MiB",
       "memory.current (v1: memory.usage_in_bytes)", "P.cg_mem_mb", Need.CGROUP),
    _m("cg_mem_max_mb", CG, SIZE, "memory limit of the cgroup, MiB; no value when unlimited",
       "memory.max (v1: memory.limit_in_bytes)", "P.cg_mem_max_mb", Need.CGROUP),
    _m("cg_mem_pct", CG, PCT, "memory charged, percent of the limit; no value when unlimited",
       "cg_mem_mb / cg_mem_max_mb x 100", "P.cg_mem_pct", Need.CGROUP),
    _m("cg_swap_mb", CG, SIZE, "swap charged to the cgroup, MiB", "memory.swap.current",
       "P.cg_swap_mb", Need.CGROUP),
    _m("cg_psi_cpu_some", CG, PCT, "CPU pressure of the cgroup, some (avg10)",
       "cpu.pressure some avg10", "P.cg_psi_cpu_some", Need.CGROUP),
    _m("cg_psi_mem_some", CG, PCT, "memory pressure of the cgroup, some (avg10)",
       "memory.pressure some avg10", "P.cg_psi_mem_some", Need.CGROUP),
    _m("cg_psi_mem_full", CG, PCT, "memory pressure of the cgroup, full (avg10)",
       "memory.pressure full avg10", "P.cg_psi_mem_full", Need.CGROUP),
    _m("cg_psi_io_some", CG, PCT, "I/O pressure of the cgroup, some (avg10)",
       "io.pressure some avg10", "P.cg_psi_io_some", Need.CGROUP),
    _m("cg_oom_kills", CG, PLAIN, "processes the OOM killer killed in the cgroup, ever",
       "oom_kill in memory.events (v1: memory.oom_control)", "P.cg_oom_kills", Need.CGROUP),
)

# Process fields a cgroup rule reads too, as the cgroup's own: its path and what it names.
CGROUP_FIELDS = frozenset({"cgroup", "unit", "container"})


def readable(scope: Scope, name: str) -> bool:
    """Whether a rule of ``scope`` can read ``name`` (a registry name, or ``parent.NAME``).

    A cgroup rule reads cgroup names, the host's and :data:`CGROUP_FIELDS`; every other
    rule reads no cgroup name, and the names of its own scope and those below it.
    """
    if name.startswith("parent."):
        return scope in (Scope.PROCESS, Scope.SUBTREE)
    own = _CATALOGUE_SCOPE[name]
    if scope is Scope.CGROUP:
        return own in (Scope.SYSTEM, Scope.CGROUP) or name in CGROUP_FIELDS
    return own is not Scope.CGROUP and _SCOPE_RANK[own] <= _SCOPE_RANK[scope]

METRICS: Mapping[str, Metric] = {m.name: m for m in _CATALOGUE}
_CATALOGUE_SCOPE = {m.name: m.scope for m in _CATALOGUE}

WINDOW_FUNCTIONS: Mapping[str, str] = {
    "avg": "time-weighted mean of M over the last W",
    "min": "smallest value of M over the last W",
    "max": "largest value of M over the last W",
    "delta": "M now minus M as it was W ago",
    "rate": "delta(M, W) / W, per second",
}
# Counting: count(EXPR) over the live processes; the event counters over a trailing window.
COUNTING_FUNCTIONS: Mapping[str, str] = {
    "count": "number of live processes for which EXPR (over process fields) holds",
    "execs": "exec events in the last W among processes whose FIELD (exe, comm, uid) is "
             "this one's",
    "exits": "exit events in the last W among processes whose FIELD is this one's",
    "crashes": "exits by a core-dump signal in the last W among processes whose FIELD is "
               "this one's",
}
# the FIELD of execs/exits/crashes(FIELD, W): what the event counters are keyed by
COUNTED_FIELDS = ("exe", "comm", "uid")
FUNCTIONS: Mapping[str, str] = {
    **WINDOW_FUNCTIONS,
    **COUNTING_FUNCTIONS,
    "top": "the live process with the largest M above zero (only as an action target); "
           "top(M, unless EXPR) leaves out the processes for which EXPR holds",
}

# Extra names a message template may use, besides the metrics in scope.
TEMPLATE_EXTRAS: Mapping[str, Type] = {
    "rule": Type.STR,
    "severity": Type.STR,
    "scope": Type.STR,
    "state": Type.STR,
}

# The events an event rule ('on exec', ...) is evaluated at.
TRIGGERS = ("exec", "exit", "fork", "connect", "accept", "listen")
NET_TRIGGERS = ("connect", "accept", "listen")
# Names only a network event rule may read, and the events that carry each (the others
# never give it a value: a listen has no peer, a connect no local port).
NET_NAMES: Mapping[str, tuple[str, ...]] = {
    "remote_addr": ("connect", "accept"),
    "remote_port": ("connect", "accept"),
    "local_port": ("accept", "listen"),
    "family": NET_TRIGGERS,
}
# Names only an 'on exit' rule may read: what the exit event says.
EXIT_NAMES = frozenset({"exit_code", "exit_signal", "crashed", "failed", "lifetime_s"})
SIGNALS: Mapping[str, int] = {
    "SIGHUP": 1, "SIGINT": 2, "SIGQUIT": 3, "SIGKILL": 9, "SIGUSR1": 10, "SIGUSR2": 12,
    "SIGTERM": 15, "SIGCONT": 18, "SIGSTOP": 19, "SIGTSTP": 20,
}


@attrs.frozen
class Param:
    """A parameter of an action: its name, type, and whether it may be positional."""

    name: str
    kind: str  # "duration" | "signal" | "int" | "target"
    positional: bool = False


@attrs.frozen
class ActionSpec:
    """An action a rule may request."""

    name: str
    help: str
    targets_process: bool
    params: tuple[Param, ...] = ()
    subtree: bool = False  # acts on the target's descendants too
    targets_cgroup: bool = False  # acts on the instance's cgroup: cgroup rules only
    reversible: bool = False  # undone later (a thaw): [actions] auto may list it

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


_TARGET = Param("target", "target")
ACTIONS: Mapping[str, ActionSpec] = {
    a.name: a
    for a in (
        ActionSpec("alert", "record and publish the alert (always implied)", False),
        ActionSpec("kill", "SIGTERM, then SIGKILL after the grace period (default 5s)", True,
                   (Param("grace", "duration"), Param("signal", "signal"), _TARGET)),
        ActionSpec("kill_tree", "kill the whole subtree, deepest first", True,
                   (Param("grace", "duration"), Param("signal", "signal"), _TARGET),
                   subtree=True),
        ActionSpec("signal", "send one signal", True,
                   (Param("signal", "signal", positional=True), _TARGET)),
        ActionSpec("renice", "change the nice value (-20..19)", True,
                   (Param("nice", "int", positional=True), _TARGET)),
        ActionSpec("analyze", "attach an analysis to the incident", False),
        ActionSpec("freeze", "freeze the cgroup: its processes stop until thawed; reversible",
                   False, targets_cgroup=True, reversible=True),
        ActionSpec("kill_cgroup", "kill every process in the cgroup", False,
                   targets_cgroup=True),
    )
}


def is_ancestry(path: str) -> bool:
    """Whether ``path`` names an ancestor: ``parent``, ``parent.parent``, ..."""
    return bool(path) and all(part == "parent" for part in path.split("."))


def field_of(name: str) -> str:
    """The registry name behind a name a rule reads: ``comm`` for ``parent.parent.comm``."""
    while name.startswith("parent."):
        name = name[7:]
    return name


def suggest(word: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate to a misspelt word, or None when nothing is close."""
    import difflib

    pool = [c for c in candidates if isinstance(c, str)]
    found = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    return found[0] if found else None


# The units of a duration written outside the rules, in linnix.toml and on the command
# line: the language's duration units (UNITS) and "d" for days, in which retention
# periods are counted.  "d" is not a unit of the rule language: "2d" in a rule is an error.
DURATION_UNITS: Mapping[str, float] = {
    **{u.suffix: u.factor for u in UNITS.values() if u.dim is Dim.DURATION},
    "d": 86400.0,
}


def duration_seconds(text: str) -> float:
    """Seconds in a duration such as ``500ms``, ``30s``, ``2m``, ``1.5h`` or ``30d``.

    The one duration grammar of linnix outside the rules, shared by
    ``linnix.toml`` (:func:`linnix.config.parse_duration`) and the command
    line (:mod:`linnix.cli.argtypes`): a number (digits, optionally a
    fraction: no sign, no exponent), then optionally one unit of
    :data:`DURATION_UNITS` (``ms``, ``s``, ``m``, ``h``, ``d``; case matters),
    with white space allowed around both.  A bare number means seconds.
    Units do not combine (``1h30m`` is refused), and ``d`` is not a unit of
    the rule language.

    Raises ValueError with a readable message for anything else, or for a
    number too large to be finite.
    """
    import math
    import re

    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z%]*)\s*", text)
    if m is None:
        raise ValueError(f"'{text}' is not a duration (e.g. 500ms, 30s, 2m)")
    factor = DURATION_UNITS.get(m.group(2) or "s")
    if factor is None:
        raise ValueError(f"'{text}' is not a duration (units: ms, s, m, h)")
    seconds = float(m.group(1)) * factor
    if not math.isfinite(seconds):
        raise ValueError(f"'{text}' is not a duration (too large)")
    return seconds

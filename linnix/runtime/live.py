"""The live shell: sources → engine on the real clock → sinks, plus signals.

Live events pass through exactly the code replay uses (:meth:`Core.feed`), so
a recording of what the engine consumed replays to the same alerts.  Two
things make that hold on a real clock:

* Sources run concurrently, so batches arrive slightly out of order; the
  engine clamps each event's time to be no earlier than the previous event and
  than the last tick.  A recording stores the clamped times.
* A tick at ``T`` runs when the clock reaches ``T + delay`` (50 ms): events
  stamped up to ``T`` have had time to arrive and are applied before it, just
  as replay applies them.  A source that holds its events until they are
  needed (the eBPF ring, :mod:`.sources.ringpump`) is asked for them first
  (:attr:`LiveEngine.catch_up`), and the tick then goes through the batches'
  channel as a :class:`Mark`: it runs after every batch sent before it.

A gap in time nobody observed (a suspend, a paused VM) is the one exception:
its ticks are skipped, not run on the samples taken before it (see
:meth:`LiveEngine._stale`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import IO, TYPE_CHECKING, Any

import attrs
import orjson
import trio

from ..engine import trace as t
from ..engine.core import Core, Output
from ..engine.evaluator import Alert
from ..errors import LinnixError, Outage
from ..names import Need
from ..plan import Plan
from ..procfs import Clock, read_argv
from ..terminal import TextOut, printable, write_safely
from ..timefmt import stamp

if TYPE_CHECKING:
    from .wakes import Wakes

__all__ = ["AlertFile", "AlertLog", "LiveEngine", "Mark", "Recorder", "header_event",
           "open_state_file"]

TICK_DELAY_S = 0.05
ARGV_WAIT_S = 1.0  # how long a batch waits for its processes' arguments to be read
ARGV_READERS = 2  # threads reading them at most (one stuck read must not take more)
GAP_S = 5.0  # the clock this far past the next tick: time went by that nobody observed
FRESH_WITHIN_S = 10.0  # after a gap, how long to wait at most for fresh samples
STATE_DIR_MODE = 0o750  # the state directory: the daemon's, readable by its group
STATE_FILE_MODE = 0o640  # what the daemon writes there (the API token is 0600)
_KIND: dict[type, str] = {cls: str(cls.__struct_config__.tag) for cls in t.EVENT_TYPES}
SNAPSHOT_DUPLICATE_S = 0.05  # a fork this close to a scanned start is that process


def open_state_file(path: str, flags: int = os.O_WRONLY | os.O_APPEND) -> int:
    """A file of the state directory opened with ``flags``; created 0640 whatever the umask.

    An existing file keeps its mode: an operator may have chosen it.
    """
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, STATE_FILE_MODE)
    except FileExistsError:
        return os.open(path, flags | os.O_CLOEXEC)
    try:
        os.fchmod(fd, STATE_FILE_MODE)  # a umask such as 077 took the group's read bit
    except OSError:
        os.close(fd)
        raise
    return fd


def header_event(clock: Clock) -> t.Header:
    mem = None
    try:
        with open("/proc/meminfo", "rb") as f:
            mem = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return t.Header(version=1, host=socket.gethostname(), ncpu=os.cpu_count(),
                    mem_total_kb=mem)


class Recorder:
    """Writes the stream the engine consumed, in the trace format.

    A file that cannot be created is a :class:`~linnix.errors.LinnixError`.
    A write that fails later (a full disk) ends the recording, never the
    caller: ``failed`` says why, ``on_failure`` is told once, and what was
    written so far stays a valid trace up to its last complete line.
    """

    def __init__(self, path: str, header: t.Header,
                 on_failure: Callable[[str], None] | None = None) -> None:
        self.path = path
        self.events = 0
        self.failed: str | None = None
        self.on_failure = on_failure
        try:
            self.file: IO[bytes] | None = open(path, "wb")  # noqa: SIM115 - closed by close()
            self.file.write(t.encode_event(header) + b"\n")
        except OSError as err:
            raise LinnixError(f"cannot record to {path}: {err.strerror or err}") from None

    def write(self, batch: Sequence[t.Event]) -> None:
        if self.file is None:
            return
        encode = t.encode_event
        try:
            self.file.write(b"".join(encode(ev) + b"\n" for ev in batch))
        except OSError as err:
            self._fail(err)
            return
        self.events += len(batch)

    def flush(self) -> None:
        if self.file is None:
            return
        try:
            self.file.flush()
        except OSError as err:
            self._fail(err)

    def close(self) -> None:
        if self.file is None:
            return
        try:
            self.file.close()
        except OSError as err:
            self.file = None
            self._fail(err)
        self.file = None

    def _fail(self, err: OSError) -> None:
        self.failed = (f"recording to {self.path} stopped after {self.events:,} events: "
                       f"{err.strerror or err}")
        if self.file is not None:
            with contextlib.suppress(OSError):
                self.file.close()
            self.file = None
        if self.on_failure is not None:
            self.on_failure(self.failed)


class Mark(list[t.Event]):
    """Sent through the batches' channel instead of a batch (it holds no event):
    :meth:`LiveEngine.consume` sets ``reached`` once every batch sent before it is
    fed, after running the ticks due when ``tick``."""

    def __init__(self, *, tick: bool = False) -> None:
        super().__init__()
        self.tick = tick
        self.reached = trio.Event()


@attrs.define
class LiveEngine:
    """Feeds live batches to the core with replay's semantics; ticks by the clock."""

    core: Core
    clock: Clock
    sink: Callable[[Sequence[Output]], None]
    recorder: Recorder | None = None
    cmdline: bool = False
    delay: float = TICK_DELAY_S
    snapshot: dict[int, float] = attrs.field(factory=dict)
    clamped: int = 0
    last_ts: float = 0.0
    kinds: dict[str, int] = attrs.field(factory=dict)  # events by kind, for metrics
    last_lag: float | None = None  # how late the latest tick ran after it was due
    say: Callable[[str], None] | None = None  # for the operator (stderr)
    gap_s: float = GAP_S
    fresh_within: float = FRESH_WITHIN_S
    stale_since: float | None = None  # when a gap was seen, until fresh samples came
    gaps: int = 0
    on_tick: Callable[[], None] | None = None  # after each tick that ran (the watchdog)
    # after each round of samples is applied, with its time (the dashboard's ring)
    on_round: Callable[[float], None] | None = None
    wakes: Wakes | None = None  # notes the processes events concern, for the sampler
    # sends what a source holds (the eBPF ring) into the batches' channel: awaited before
    # each tick and each round of samples (settle()); None: no source holds anything
    catch_up: Callable[[], Awaitable[None]] | None = None

    @property
    def degraded(self) -> bool:
        """After a gap in time, until fresh samples arrive: nothing known is current."""
        return self.stale_since is not None

    def feed(self, batch: list[t.Event]) -> None:
        stale = self._stale(self.clock.now() - self.delay)
        fresh = self._fresh_sample(batch) if stale else None  # before clamping moves it
        floor = self.last_ts
        if self.core.first_ts is not None and self.core.ticks:
            floor = max(floor, self.core.next_tick - self.core.tick_s + 1e-6)
        keep: list[t.Event] = []
        kinds = self.kinds
        for ev in batch:
            kind = _KIND[type(ev)]
            kinds[kind] = kinds.get(kind, 0) + 1
            if self.snapshot and type(ev) is t.Fork and self._seen(ev):
                continue
            if ev.ts < floor:
                ev.ts = round(floor, 6)
                self.clamped += 1
            floor = ev.ts
            keep.append(ev)
        if not keep:
            return
        self.last_ts = floor
        if self.recorder is not None:
            self.recorder.write(keep)
        if self.wakes is not None:  # before the table applies them: exits' parents are known
            self.wakes.note(keep, self.core.table.procs)
        if stale:  # the events are applied; no tick runs on what is left of the old state
            self.core.skip_ticks(floor)
        self.core.feed(keep)
        if self.on_round is not None and type(keep[0]) is t.System:
            self.on_round(keep[0].ts)  # the telemetry's rounds start with the host sample
        if fresh is not None:
            self._fresh(fresh.ts)
        self.flush()

    def _seen(self, ev: t.Fork) -> bool:
        """A fork the start-up scan already reported (both saw the same process)."""
        start = self.snapshot.get(ev.pid)
        return start is not None and abs(start - ev.ts) < SNAPSHOT_DUPLICATE_S

    def tick(self) -> None:
        """Run the ticks whose time (plus the delay) has come."""
        if self.core.first_ts is None:
            return
        now = self.clock.now() - self.delay
        if self._stale(now):
            return
        due = self.core.next_tick
        if now >= due:
            self.last_lag = now - due
        self.core.run_until(now)
        self.flush()

    # ---- gaps in time ---------------------------------------------------------------
    # After a suspend, a paused VM or a clock step, the boot-time clock is far past
    # the next tick.  The ticks missed meanwhile are skipped (running them would
    # judge the gap on the samples taken before it, and complete every 'for' at
    # once), and until the next host sample arrives no tick runs at all; then every
    # 'for' under way starts counting again.  Actions wait meanwhile (``degraded``).

    def _stale(self, now: float) -> bool:
        """Whether the input is stale at ``now``; notices a gap and skips its ticks."""
        core = self.core
        if self.stale_since is None:
            if not core.ticks or now - core.next_tick <= self.gap_s:
                return False
            behind = now - core.next_tick
            skipped = core.skip_ticks(now)
            self.stale_since, self.gaps = now, self.gaps + 1
            self._say(f"the clock jumped {behind:,.0f}s past the next tick (a suspend, a "
                      f"paused VM or a clock step): {skipped:,} missed tick(s) skipped; rules "
                      "wait for fresh samples and no action runs by itself until they come")
            return True
        if now - self.stale_since > self.fresh_within:
            self._say(f"no fresh sample {self.fresh_within:g}s after the gap; evaluating "
                      "again on what there is")
            self._fresh(now)
            return False
        core.skip_ticks(now)
        return True

    def _fresh_sample(self, batch: Sequence[t.Event]) -> t.Event | None:
        """The first host sample of ``batch`` taken after the gap was seen, if any."""
        since = self.stale_since
        return next((ev for ev in batch if type(ev) is t.System and since is not None
                     and ev.ts >= since), None)

    def _fresh(self, ts: float) -> None:
        """Samples are current again: every 'for' under way counts from ``ts``."""
        self.stale_since = None
        self.core.restart_timers(ts)

    def _say(self, text: str) -> None:
        if self.say is not None:
            self.say(text)

    def flush(self) -> None:
        out = self.core.drain()
        if out:
            self.emit(out)

    def emit(self, batch: Sequence[Output]) -> None:
        """Hand outputs to the sinks, each with the wall-clock time of its ``ts``, which
        everything that leaves the agent carries as ``time``."""
        wall, now = time.time(), self.clock.now()
        for item in batch:
            item.unix = wall - (now - item.ts)
        self.sink(batch)

    def close(self) -> None:
        """End a recording at the last tick, so that replaying it runs every tick
        the live engine ran (a lost-nothing marker changes no value)."""
        core, recorder = self.core, self.recorder
        if recorder is None:
            return
        if core.ticks:
            last_tick = round(core.next_tick - core.tick_s, 6)
            if last_tick > self.last_ts:
                recorder.write([t.Lost(ts=last_tick, count=0)])
        recorder.close()

    async def consume(self, receive: trio.MemoryReceiveChannel[list[t.Event]]) -> None:
        limiter = trio.CapacityLimiter(ARGV_READERS)
        async with receive:
            async for batch in receive:
                if type(batch) is Mark:
                    if batch.tick:
                        self._tick_now()
                    batch.reached.set()
                    continue
                if self.cmdline:
                    await self.read_argvs(batch, limiter)
                self.feed(batch)

    async def read_argvs(self, batch: list[t.Event], limiter: trio.CapacityLimiter) -> None:
        """Fill in the arguments of the batch's execs, read in a worker thread.

        Reading /proc/PID/cmdline reads the process's memory: a process can make
        that wait (memory backed by a stalled FUSE file system), so the read never
        runs on the event loop, and a batch waits for it at most ``ARGV_WAIT_S``;
        then those arguments stay unknown.  While every reader is stuck, batches
        do not wait at all.
        """
        execs = [ev for ev in batch if type(ev) is t.Exec and ev.argv is None]
        if not execs or not limiter.available_tokens:
            return
        pids = [ev.pid for ev in execs]
        with trio.move_on_after(ARGV_WAIT_S):
            argvs = await trio.to_thread.run_sync(_read_argvs, pids, limiter=limiter,
                                                  abandon_on_cancel=True)
            for ev, argv in zip(execs, argvs, strict=True):
                ev.argv = argv

    async def settle(self, send: trio.MemorySendChannel[list[t.Event]], *,
                     tick: bool = False) -> None:
        """Have what sources hold (:attr:`catch_up`) and everything sent before it through
        ``send`` fed, then (``tick``) the ticks due run."""
        if self.catch_up is not None:
            await self.catch_up()
        mark = Mark(tick=tick)
        await send.send(mark)
        await mark.reached.wait()

    async def ticker(self, send: trio.MemorySendChannel[list[t.Event]] | None = None) -> None:
        """Run the ticks on time; with ``send`` (the batches' channel), each after what
        sources hold and every batch sent before it (:meth:`settle`)."""
        while True:
            if self.core.first_ts is None:
                await trio.sleep(0.05)
                continue
            due = self.core.next_tick + self.delay
            await trio.sleep(max(0.0, due - self.clock.now()))
            if send is None:
                self._tick_now()
            else:
                await self.settle(send, tick=True)

    def _tick_now(self) -> None:
        before = self.core.next_tick
        self.tick()
        if self.on_tick is not None and self.core.next_tick != before:
            self.on_tick()  # only a tick that ran and returned: a wedged engine is silent
        if self.recorder is not None:
            self.recorder.flush()


def _read_argvs(pids: list[int]) -> list[list[str] | None]:
    return [read_argv(pid) for pid in pids]


# ---- sinks ------------------------------------------------------------------------

def _who(pid: int | None, comm: str | None) -> str:
    return "host" if pid is None else f"{comm or '?'}[{pid}]"


def _local(ts: object) -> str:
    """A Unix time as the terminal shows times (local, to the second); '?' if none."""
    if not isinstance(ts, int | float):
        return "?"
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(ts))


def _action_text(row: dict[str, Any]) -> str:
    params = row.get("params") or {}
    shown = ", ".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "target")
    return f"{row.get('kind')}({shown})" if shown else str(row.get("kind"))


def _outcome(row: dict[str, Any]) -> str:
    """What an action ended with: its result's detail, else its reason."""
    result = row.get("result")
    detail = result.get("detail") if isinstance(result, dict) else None
    return str(detail if detail is not None else row.get("reason") or "no detail")


# How far along its lifecycle a status is: the console never goes back.
_RANK = {"pending": 0, "approved": 1, "executing": 2}
_SEEN_MAX = 10000  # actions whose last printed status is remembered


class AlertLog:
    """The daemon's terminal (stdout): alerts that fire or resolve, and what really happens
    to each action, as the action manager reports it (never the engine's proposals, which
    a guard may refuse or enforce mode may carry out at once).  ``verbose`` adds the alerts'
    PENDING transitions and each repeat of a pending action."""

    def __init__(self, out: TextOut, *, verbose: bool = False,
                 now: Callable[[], float] = time.time) -> None:
        self.out: TextOut | None = out
        self.verbose = verbose
        self.now = now
        self._said: dict[int, tuple[int, int]] = {}  # action id -> (rank, repeats) printed

    def __call__(self, batch: Sequence[Output]) -> None:
        stamp = _local(self.now())
        lines = []
        for item in batch:
            if not isinstance(item, Alert) or (item.state == "pending" and not self.verbose):
                continue  # proposals: the manager says what became of them (action())
            why = f" ({item.reason})" if item.reason not in (None, "cleared") else ""
            lines.append(f"{stamp} {item.state.upper():<8} {item.rule} {item.severity} "
                         f"{_who(item.pid, item.comm)}: {item.message}{why}")
        self._write(lines)

    def action(self, row: dict[str, Any]) -> None:
        """An action as the manager published it: a line for each status it reaches."""
        lines = [f"{_local(self.now())} {line}" for line in self._action_lines(row)]
        self._write(lines)

    def pause(self, state: dict[str, Any]) -> None:
        """The pause switch as the manager published it: a line when every action is
        paused (or paused again, with a new end) and one when actions resume."""
        if state.get("actions") == "paused":
            p = state.get("paused") or {}
            until = (f"until {_local(p['until'])}" if p.get("until") is not None
                     else "until resumed")
            why = f": {p['reason']}" if p.get("reason") else ""
            line = (f"PAUSED   actions: every action is paused by {p.get('by')} {until}{why} "
                    "(linnix actions resume)")
        else:
            r = state.get("resumed") or {}
            why = f": {r['reason']}" if r.get("reason") else ""
            line = f"RESUMED  actions: resumed by {r.get('by')}{why}"
        self._write([f"{_local(self.now())} {line}"])

    def _action_lines(self, row: dict[str, Any]) -> list[str]:
        action_id, status = int(row["id"]), str(row.get("status"))
        rank, repeats = _RANK.get(status, 3), int(row.get("repeats") or 0)
        said = self._said.get(action_id)
        lines = []
        if said is not None and (rank < said[0] or (rank == said[0] and rank > 0)):
            return []  # published again, or late: said already
        if said is not None and rank == 0:  # pending again: the rule fired again
            self._said[action_id] = (0, repeats)
            if self.verbose and repeats > said[1]:
                return [self._line(row, "REPEATED", f"fired again ({repeats} in all), still "
                                   "awaiting approval")]
            return []
        if row.get("decided_by") and rank > 1 and status not in ("rejected", "expired") \
                and (said is None or said[0] < 1):  # the approval was not said yet
            lines.append(self._status_line(row, "approved"))
        lines.append(self._status_line(row, status))
        self._remember(action_id, rank, repeats)
        return lines

    def _remember(self, action_id: int, rank: int, repeats: int) -> None:
        if rank == 3:
            self._said.pop(action_id, None)  # final: nothing more will come
            return
        self._said[action_id] = (rank, repeats)
        if len(self._said) > _SEEN_MAX:
            del self._said[next(iter(self._said))]  # the oldest

    def _status_line(self, row: dict[str, Any], status: str) -> str:
        aid = row["id"]
        if status == "pending":
            until = f"awaits approval until {_local(row.get('expires_at'))}"
            if row.get("reason"):  # proposed while actions are paused: it says so
                return self._line(row, "PROPOSED", f"{until}; {row['reason']}")
            return self._line(row, "PROPOSED", f"{until} (linnix actions approve {aid})")
        if status in ("approved", "rejected"):
            reason = f": {row['reason']}" if row.get("reason") else ""
            return self._line(row, status.upper(), f"{status} by {row.get('decided_by')}"
                                                    f"{reason}")
        if status == "executing":
            return self._line(row, "EXECUTING", "executing")
        if status in ("refused", "expired"):
            return self._line(row, status.upper(), f"{status}: {_outcome(row)}")
        return self._line(row, status.upper(), _outcome(row))  # succeeded, failed, recorded

    @staticmethod
    def _line(row: dict[str, Any], word: str, text: str) -> str:
        target = "" if row.get("pid") is None else f" -> {_who(row['pid'], row.get('comm'))}"
        what = f"{row.get('rule')} {_action_text(row)}{target}"
        return f"{word:<8} {what}: action #{row['id']} {text}"

    def _write(self, lines: list[str]) -> None:
        if self.out is None or not lines:
            return
        # names, messages and reasons come from processes: shown as data
        text = "".join(printable(line) + "\n" for line in lines)
        try:
            write_safely(self.out, text)
            self.out.flush()
        except (OSError, ValueError):  # the reader went away (a closed pipe or stream)
            self.out = None  # the alerts file and the API still have everything


class AlertFile:
    """Appends alerts and proposals to a JSONL file (replay's format plus 'time').

    The file is bounded: once it passes ``max_bytes`` it becomes ``PATH.1``
    (replacing the previous one) and a new file is started, so the two hold
    between one and two times ``max_bytes`` of the latest history.  A write
    that fails (a full disk) never stops the daemon: the batch is dropped and
    counted, ``on_problem`` is told when writing starts failing and when it
    works again, and every later batch tries again.
    """

    def __init__(self, path: str, max_bytes: int = 100 * 1024 * 1024,
                 on_problem: Callable[[str], None] | None = None) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.outage = Outage(on_problem or (lambda message: None))
        self.rotations = 0
        self.file: IO[bytes] | None = self._open()

    def __call__(self, batch: Sequence[Output]) -> None:
        lines = []
        for item in batch:
            record: dict[str, Any] = item.to_json()
            record.setdefault("time", stamp())  # the live engine's outputs have their own
            lines.append(orjson.dumps(record) + b"\n")
        try:
            if self.file is None:
                self.file = self._open()
            self.file.write(b"".join(lines))
            self.file.flush()
        except OSError as err:
            self.close()
            self.outage.failed(f"cannot write alerts to {self.path}: {err.strerror or err}; "
                               "they still reach the log and the API", len(lines))
            return
        self.outage.worked(f"writing alerts to {self.path} again ({{lost:,}} record(s) could "
                           "not be written)")
        if self.file.tell() >= self.max_bytes:
            self._rotate()

    def _open(self) -> IO[bytes]:
        return os.fdopen(open_state_file(self.path), "ab")

    @property
    def dropped(self) -> int:
        """Records not written because writing failed."""
        return self.outage.lost

    def _rotate(self) -> None:
        self.close()
        try:
            os.replace(self.path, self.path + ".1")
        except OSError as err:  # keep appending to the full-size file rather than lose any
            self.outage.say(f"cannot rotate {self.path}: {err.strerror or err}")
            return
        self.rotations += 1

    def close(self) -> None:
        if self.file is not None:
            with contextlib.suppress(OSError):
                self.file.close()
            self.file = None


def fan_out(*sinks: Callable[[Sequence[Output]], None]) -> Callable[[Sequence[Output]], None]:
    def sink(batch: Sequence[Output]) -> None:
        for s in sinks:
            s(batch)

    return sink


def needs_cmdline(plan: Plan) -> bool:
    return Need.CMDLINE in plan.needs


def live_cgroups(core: Core) -> Callable[[], set[str]]:
    """What reads the cgroups of the live processes of ``core``'s table (on the trio
    thread, which owns the table): the cgroups whose samples the rules want."""
    return lambda: {p.cgroup for p in core.table.live() if p.cgroup is not None}


async def watch_signals(on_stop: Callable[[int], None], on_reload: Callable[[], None]) -> None:
    """SIGINT/SIGTERM stop the daemon; SIGHUP reloads the rules."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
        async for signum in signals:
            if signum == signal.SIGHUP:
                on_reload()
            else:
                on_stop(signum)


"""Rule state across a restart: a snapshot of every rule's instances, and its restoration.

:func:`save` turns the evaluator's pending, firing and cooling-down instances
into bytes; :func:`load` checks such bytes (anything else is a
:class:`SnapshotError`, never a crash); :func:`restore` puts what still holds
into a new evaluator, before its first tick.  Nothing here reads a clock or a
file: the caller says how engine times relate to the world (:class:`Clocks`).

* Times are stored as Unix (wall-clock) times: the engine's clock starts at 0
  with each daemon.  Process start times are also stored on the boot-time
  clock, with the boot's id.  The start an engine knows is never earlier than the
  real one (the start-up scan reads it from /proc, an eBPF fork is stamped when it
  happens, a polled fork may be stamped later), and at that time the process was
  alive; a process alive now with the same pid that started no later than that
  (:data:`SAME_START_S` allows for rounding) is therefore the same one, since two
  processes never hold one pid at the same time; one that started after it is
  another.  In another boot no process is the same.  When its process is gone a
  firing instance resolves (reason ``exited``); a pending or cooling one is
  forgotten.
* A rule is the same rule when its name and :func:`digest` (its condition,
  ``clear when``, timers, severity, scope and boundary) are; a rule whose
  definition changed starts fresh, as at a reload.
* Firing instances stay firing (no new transition, no proposal) and keep
  their firing time.  A ``for`` or ``clear for`` under way resumes where it
  stood: the time the agent was down does not count (nobody saw whether the
  condition held), as Prometheus restores ``for`` state.  A cooldown is a
  deadline and ends when it would have, down or not.  After an outage longer
  than :data:`OUTAGE_TOLERANCE_S` nothing but cooldowns is restored: what was
  known is too old to carry on from.
* Until ``settle_s`` after the restart a restored instance whose condition
  is false neither stops pending nor starts clearing: the samples its
  condition reads (a CPU share needs two) are not in yet.
* Event rules' flood control is restored too, so that a restart does not alert
  again on a flood the rule was holding back: each cooldown key whose cooldown
  still runs, with the time it last fired, and the alerts that still count
  against ``max_rate``.  Like cooldowns they are deadlines: what ran out during
  the outage is dropped.  At most the key table's bound (the newest keys) and
  :data:`RECENT_MAX` alerts are kept per rule.  An event rule is the same rule
  when its name and :func:`event_digest` are.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, OrderedDict
from typing import Annotated, Literal

import attrs
import msgspec

from ..names import TEXT_MAX, Scope
from ..plan import CompiledRule
from .evaluator import Evaluator
from .events import KEYS_MAX, EventRules, EventState
from .proctable import Proc, ProcTable
from .rulestate import EPS, FIRING, PENDING, Alert, Instance, RuleState, order
from .trace import TS_MAX

__all__ = ["INSTANCES_MAX", "OUTAGE_TOLERANCE_S", "RECENT_MAX", "SNAPSHOT_MAX_BYTES",
           "SNAPSHOT_VERSION", "Clocks", "Restored", "SavedCooldown", "SavedEventRule",
           "SavedInstance", "SavedRule", "Snapshot", "SnapshotError", "digest", "event_digest",
           "load", "restore", "save"]

SNAPSHOT_VERSION = 1
INSTANCES_MAX = 10_000  # per rule: firing ones first, then pending, then cooling down
SNAPSHOT_MAX_BYTES = 64 * 1024 * 1024  # larger is not one of ours: refused unread
OUTAGE_TOLERANCE_S = 3600.0  # down longer: pending and firing state is not restored
SAME_START_S = 0.05  # a start read from /proc (in clock ticks, rounded) may be this much late
RECENT_MAX = 10_000  # per event rule: its latest alerts that count against max_rate
KEY_PARTS_MAX = 8  # fields of a cooldown key (``cooldown ... by`` names a few at most)

Time = Annotated[float, msgspec.Meta(ge=-TS_MAX, le=TS_MAX)]
Text = Annotated[str, msgspec.Meta(max_length=TEXT_MAX)]
_STRUCT = {"forbid_unknown_fields": True, "omit_defaults": True}


class SnapshotError(ValueError):
    """Bytes that are not a snapshot this version can restore."""


class SavedInstance(msgspec.Struct, **_STRUCT):
    """One instance: its state, its process (none for the host), its times (Unix)."""

    state: Literal["pending", "firing", "cooling"]
    pid: Annotated[int, msgspec.Meta(gt=0)] | None = None
    start: Time | None = None  # as the old daemon's alerts and incidents show it
    start_boot: Time | None = None  # on the boot-time clock: the process's identity
    comm: Text | None = None
    since: Time | None = None  # pending since
    fired: Time | None = None  # firing since
    clearing: Time | None = None  # firing, its clear timer running since
    cooldown_until: Time | None = None
    message: Text | None = None  # firing: its message when it fired


class SavedRule(msgspec.Struct, **_STRUCT):
    name: str
    digest: Annotated[str, msgspec.Meta(max_length=64)]
    instances: Annotated[list[SavedInstance], msgspec.Meta(max_length=INSTANCES_MAX)]


KeyPart = Text | int | None  # a field of a cooldown key: exe, comm, cmdline, uid, ppid


class SavedCooldown(msgspec.Struct, **_STRUCT):
    """One cooldown key of an event rule, and when it last fired (Unix)."""

    key: Annotated[list[KeyPart], msgspec.Meta(max_length=KEY_PARTS_MAX)]
    last: Time


class SavedEventRule(msgspec.Struct, **_STRUCT):
    """An event rule's flood control: its running cooldowns, oldest first, and the times
    (Unix) of its alerts that still count against ``max_rate``."""

    name: str
    digest: Annotated[str, msgspec.Meta(max_length=64)]
    cooldowns: Annotated[list[SavedCooldown], msgspec.Meta(max_length=KEYS_MAX)] = []
    recent: Annotated[list[Time], msgspec.Meta(max_length=RECENT_MAX)] = []


class Snapshot(msgspec.Struct, **_STRUCT):
    version: int
    saved_at: Time  # Unix time
    boot_id: Annotated[str, msgspec.Meta(max_length=64)] | None
    rules: list[SavedRule]
    events: list[SavedEventRule] = []  # none: omitted, as in snapshots before event rules


@attrs.frozen
class Clocks:
    """How engine times relate to the world: the Unix time and the boot-time clock's
    reading at engine time 0, and the boot's id (None: unknown)."""

    wall: float
    boot: float
    boot_id: str | None


@attrs.define
class Restored:
    """What :func:`restore` did.

    ``firing``: each restored firing instance as an alert (``ts`` its firing time
    on the new clock) with the start its incident was opened with; firing
    instances whose process is gone are in it too (for those who must learn of
    them before they end) and in ``ended``, their resolved transition.
    ``counts``: instances restored (firing, pending, cooling), gone (their
    process), stale (the outage was too long); ``fresh``: rules whose
    definition changed or that are gone.
    """

    firing: list[tuple[Alert, float | None]] = attrs.field(factory=list)
    ended: list[Alert] = attrs.field(factory=list)
    counts: Counter[str] = attrs.field(factory=Counter)
    fresh: list[str] = attrs.field(factory=list)
    outage_s: float = 0.0


def digest(rule: CompiledRule) -> str:
    """What the state of ``rule`` depends on, hashed: another digest is another rule."""
    parts = (rule.scope.value, rule.cond_text, rule.clear_text, repr(rule.for_s),
             repr(rule.clear_for_s), repr(rule.keep_firing_for_s), repr(rule.cooldown_s),
             rule.severity, rule.boundary.text if rule.boundary is not None else None)
    return hashlib.sha256(msgspec.json.encode(parts)).hexdigest()


def event_digest(rule: CompiledRule) -> str:
    """What an event rule's flood control depends on, hashed: its trigger, condition,
    cooldown (and key) and rate."""
    parts = (rule.trigger, rule.cond_text, repr(rule.cooldown_s), list(rule.cooldown_by or ()),
             rule.max_rate, repr(rule.max_rate_per_s))
    return hashlib.sha256(msgspec.json.encode(parts)).hexdigest()


# ---- saving ---------------------------------------------------------------------------

def save(evaluator: Evaluator, clocks: Clocks, now: float,
         events: EventRules | None = None) -> bytes:
    """Every rule's pending, firing and cooling-down instances, and the flood control of
    ``events``' rules, as bytes."""
    rules = []
    for state in evaluator.rules:
        if state.rule.scope is Scope.CGROUP:  # judged afresh from the first samples
            continue
        kept = [s for s in (_saved(inst, key, clocks, now) for key, inst in  # type: ignore[arg-type]
                            sorted(state.instances.items(), key=lambda kv: order(kv[0])))
                if s is not None]
        kept.sort(key=lambda s: ("firing", "pending", "cooling").index(s.state))
        if kept:
            rules.append(SavedRule(state.rule.name, digest(state.rule), kept[:INSTANCES_MAX]))
    saved = [] if events is None else \
        [s for s in (_saved_events(state, clocks, now) for state in events.states) if s]
    snap = Snapshot(SNAPSHOT_VERSION, clocks.wall + now, clocks.boot_id, rules, saved)
    return msgspec.json.encode(snap)


def _saved_events(state: EventState, clocks: Clocks, now: float) -> SavedEventRule | None:
    """An event rule's cooldowns still running at ``now`` and its alerts still within its
    ``max_rate`` span; None when there are none."""
    rule, wall = state.rule, clocks.wall
    cooldowns = []
    for key, last in state.last.items():
        parts = _key_parts(key)
        if parts is not None and now < last + rule.cooldown_s - EPS:
            cooldowns.append(SavedCooldown(parts, wall + last))
    recent = [wall + ts for ts in state.recent if ts > now - rule.max_rate_per_s + EPS]
    if not (cooldowns or recent):
        return None
    return SavedEventRule(rule.name, event_digest(rule), cooldowns[-KEYS_MAX:],
                          recent[-RECENT_MAX:])


Key = Proc | None  # the instances saved: a process, or the host (cgroup rules are not)


def _saved(inst: Instance, key: Key, clocks: Clocks, now: float) -> SavedInstance | None:
    wall = clocks.wall
    if key is None:
        out = SavedInstance("cooling")
    else:
        boot = key.start + clocks.boot if key.start is not None else None
        out = SavedInstance("cooling", key.pid, key.start, boot, key.comm)
    if inst.state == PENDING:
        out.state, out.since = "pending", wall + inst.since
    elif inst.state == FIRING:
        fired = inst.fired_at if inst.fired_at is not None else inst.since
        out.state, out.fired = "firing", wall + fired
        out.clearing = wall + inst.clear_since if inst.clear_since is not None else None
        out.message = inst.message[:TEXT_MAX] if inst.message is not None else None
    elif inst.cooldown_until > now + EPS:  # a cooldown of centuries ends at TS_MAX
        out.cooldown_until = min(wall + inst.cooldown_until, TS_MAX)
    else:
        return None
    return out


def _key_parts(key: tuple[object, ...]) -> list[KeyPart] | None:
    """A cooldown key as a snapshot holds it; None for one it could not load again (one
    such value would make the whole snapshot unreadable)."""
    if len(key) > KEY_PARTS_MAX:
        return None
    parts: list[KeyPart] = []
    for part in key:
        fits = part is None or (type(part) is int and abs(part) < 2**63) \
            or (type(part) is str and len(part) <= TEXT_MAX)
        if not fits:
            return None
        parts.append(part)  # type: ignore[arg-type]  # checked just above
    return parts


# ---- loading --------------------------------------------------------------------------

_DECODER = msgspec.json.Decoder(Snapshot)


def load(data: object) -> Snapshot:
    """The snapshot ``data`` holds; :class:`SnapshotError` says why it holds none."""
    if not isinstance(data, bytes | str):
        raise SnapshotError(f"a {type(data).__name__}, not a snapshot")
    if len(data) > SNAPSHOT_MAX_BYTES:
        raise SnapshotError(f"{len(data):,} bytes: larger than any snapshot")
    try:
        snap = _DECODER.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError) as err:
        raise SnapshotError(f"not a snapshot: {err}") from None
    if snap.version != SNAPSHOT_VERSION:
        raise SnapshotError(f"version {snap.version}; this linnix restores version "
                            f"{SNAPSHOT_VERSION}")
    return snap


# ---- restoring ------------------------------------------------------------------------

def restore(evaluator: Evaluator, table: ProcTable, snap: Snapshot, clocks: Clocks,
            now: float, settle_s: float = 0.0, events: EventRules | None = None) -> Restored:
    """Put ``snap``'s instances into ``evaluator`` (before its first tick) at ``now``, and
    its event rules' flood control into ``events``."""
    out = Restored(outage_s=max(0.0, clocks.wall + now - snap.saved_at))
    rules = {s.rule.name: s for s in evaluator.rules}
    restorer = _Restorer(table, snap, clocks, now, settle_s, out)
    for saved in snap.rules:
        state = rules.get(saved.name)
        if state is None or digest(state.rule) != saved.digest:
            out.fresh.append(saved.name)
            continue
        for item in saved.instances[:INSTANCES_MAX]:
            restorer.one(state, item)
    if events is not None:
        _restore_events(events, snap, clocks, now, out)
    evaluator.trails_due = -math.inf  # a firing instance restored begins its trail at once
    return out


def _restore_events(events: EventRules, snap: Snapshot, clocks: Clocks, now: float,
                    out: Restored) -> None:
    """Each unchanged event rule's cooldowns and rate window, as deadlines: what ran
    out while the agent was down is dropped."""
    states = {s.rule.name: s for s in events.states}
    for saved in snap.events:
        state = states.get(saved.name)
        if state is None or event_digest(state.rule) != saved.digest:
            out.fresh.append(saved.name)
            continue
        rule = state.rule
        # on the new clock, never later than now (a clock stepped back)
        held = [(tuple(c.key), min(c.last - clocks.wall, now)) for c in saved.cooldowns]
        held = [(key, last) for key, last in held if now < last + rule.cooldown_s - EPS]
        held.sort(key=lambda item: item[1])  # the table is oldest first
        kept = state.last  # anything already seen since the start is newer: it stays last
        state.last = OrderedDict(
            (key, last) for key, last in held[-KEYS_MAX:] if key not in kept)
        state.last.update(kept)
        recent = sorted(min(ts - clocks.wall, now) for ts in saved.recent)
        recent = [ts for ts in recent if ts > now - rule.max_rate_per_s + EPS]
        state.recent.extendleft(reversed(recent[-RECENT_MAX:]))
        out.counts["event_cooldowns"] += len(state.last) - len(kept)
        out.counts["event_rate"] += len(recent[-RECENT_MAX:])


@attrs.define
class _Restorer:
    table: ProcTable
    snap: Snapshot
    clocks: Clocks
    now: float
    settle_s: float
    out: Restored

    def _time(self, wall: float | None) -> float | None:
        """A Unix time on the new engine clock, never later than now (a clock stepped
        back must not put a timer in the future)."""
        return None if wall is None else min(wall - self.clocks.wall, self.now)

    def _resumed(self, wall: float | None) -> float | None:
        """A timer's start moved on by the outage: the time nobody observed does not count."""
        found = self._time(wall)
        return None if found is None else found + self.out.outage_s

    def one(self, state: RuleState, item: SavedInstance) -> None:
        key, gone = self._key(state, item)
        if item.state == "cooling":
            self._cooling(state, key, item, gone)
        elif self.out.outage_s > OUTAGE_TOLERANCE_S:
            self.out.counts["stale"] += 1
        elif gone:
            self.out.counts["gone"] += 1
            if item.state == "firing":
                self._ended(state, item)
        else:
            self._active(state, key, item)

    def _key(self, state: RuleState, item: SavedInstance) -> tuple[Key, bool]:
        """The instance's key in the new table, and whether its process is gone."""
        system = state.rule.scope is Scope.SYSTEM
        if system or item.pid is None:
            return None, not system  # a process rule's instance without a process: gone
        p = self.table.procs.get(item.pid)
        same_boot = self.snap.boot_id is not None and self.snap.boot_id == self.clocks.boot_id
        if (p is None or not p.alive or p.start is None or item.start_boot is None
                or not same_boot
                or p.start + self.clocks.boot > item.start_boot + SAME_START_S):
            return None, True  # gone, or its pid is another process's now
        return p, False

    def _cooling(self, state: RuleState, key: Key, item: SavedInstance, gone: bool) -> None:
        until = None if item.cooldown_until is None else item.cooldown_until - self.clocks.wall
        if gone or until is None or until <= self.now + EPS:
            return  # over, or its process is: nothing to hold back
        inst = state.instances[key] = Instance()
        inst.cooldown_until = until
        state.schedule(key, inst, until)
        self.out.counts["cooling"] += 1

    def _active(self, state: RuleState, key: Key, item: SavedInstance) -> None:
        inst = Instance()
        inst.hold_until = self.now + self.settle_s
        if item.state == "pending":
            since = self._resumed(item.since)
            if since is None:
                return
            inst.state, inst.since = PENDING, min(since, self.now)
        else:
            fired = self._time(item.fired)
            if fired is None:
                return
            inst.state, inst.since, inst.fired_at = FIRING, fired, fired
            clearing = self._resumed(item.clearing)
            inst.clear_since = None if clearing is None else min(clearing, self.now)
            if state.rule.clear is not None:
                state.watch.add(key)
            inst.message = item.message
            alert = self._alert(state, key, fired, item.message, inst)
            self.out.firing.append((alert, item.start))
        state.instances[key] = inst
        state.schedule(key, inst, self.now)  # judged at the first tick, whatever changes
        self.out.counts[item.state] += 1

    def _alert(self, state: RuleState, key: Key, ts: float, message: str | None,
               inst: Instance) -> Alert:
        """The firing alert a restored instance sent: its message as it was (if known)."""
        rule = state.rule
        pid, comm = (key.pid, key.comm) if key is not None else (None, None)
        context = {"rule": rule.name, "severity": rule.severity, "scope": rule.scope.value,
                   "state": "firing", "pid": pid, "comm": comm}
        if message is None:
            message = rule.message.render(context)
        if key is not None:  # what the process is, for labels with placeholders
            context.update(exe=key.exe, uid=key.uid, ppid=key.ppid, cmdline=key.cmdline)
        labels = rule.labels_for(context)
        if rule.label_templates:
            inst.labels = labels  # its resolved alert says the same
        return Alert(ts, rule.name, "firing", rule.severity, rule.scope.value, pid, comm,
                     key.start if key is not None else None, message, labels, {},
                     proc=key, wall=state.wall)

    def _ended(self, state: RuleState, item: SavedInstance) -> None:
        """A firing instance whose process is gone: it resolves, as on an exit."""
        rule = state.rule
        fired = self._time(item.fired)
        context = {"rule": rule.name, "severity": rule.severity, "scope": rule.scope.value,
                   "pid": item.pid, "comm": item.comm}
        message = item.message or rule.message.render({**context, "state": "firing"})
        firing = Alert(fired if fired is not None else self.now, rule.name, "firing",
                       rule.severity, rule.scope.value, item.pid, item.comm, item.start,
                       message, rule.labels_for(context), {})
        self.out.firing.append((firing, item.start))
        self.out.ended.append(attrs.evolve(
            firing, ts=self.now, state="resolved", reason="exited",
            message=rule.message.render({**context, "state": "resolved"})))


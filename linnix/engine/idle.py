"""Quiet stretches: the ticks at which nothing can change, so that the core may skip them.

Between two events only time moves, and the state of every rule instance
can then change only at moments the engine can name:

* a timer: a ``for`` completing, ``clear when ... for``, ``keep_firing_for``,
  a cooldown ending (each rule's timer heap), the next point of a firing
  instance's trail (:mod:`.trail`, when the core keeps them);
* a value moving with time: a host rate window (``forks_per_sec`` and its
  kin count events in the trailing second) or ``lost_events`` (60 s) dropping
  an event, a window function (``avg/min/max/delta/rate(M, W)``) reaching an
  observation's horizon (the evaluator's wake-ups);
* ``age_s`` (and ``parent.age_s``, ``parent.parent.age_s``, ...), which grows with
  every tick.
* a count (:mod:`.tally`): ``count(EXPR)`` over a value that moves with
  time, and the ``execs/exits/crashes`` counters while they hold an event
  (at most their longest window after the last one): the next tick is busy.

:func:`next_busy_tick` returns the index of the first tick, from the next
one, at which any of these may change anything; the core counts the ticks
before it as run (:attr:`Core.ticks` is the same either way) and goes on
from there.  A tick that is skipped would have produced nothing and changed
no state: the outputs are identical to running every tick (a property test
checks it against ``Core(..., skip_idle=False)``).  Only performance
counters (``RuleState.evaluations`` and ``durations``) differ.

When the state is not quiet (a change not yet judged, a process rate still
counting, an average still moving, ``history`` kept for a pending instance,
a host window not settled, a firing instance whose 'clear when' is about to
move it), the next tick is busy; each of these lasts at most the longest
window (or hold) after the last event, so the walk is bounded by the rules,
not by the length of the gap.  Two cases are walked tick by tick for the whole
gap, on purpose: a window over ``age_s`` (its buffer takes a new value at every
tick) and a rule whose condition raised at the last tick (each tick counts an
error; :class:`~linnix.engine.core.Core` checks that one).

``age_s`` is handled by computing where each condition that reads it may
change, not by walking: every other input is constant until the next wake,
so a condition is a function of the tick alone.  It is evaluated once over
a whole range of ticks, with the process's age given as an interval
(:class:`Span`: interval arithmetic, each comparison answering only if it
holds or fails for the whole interval).  If the answer is the instance's
current truth for the whole range, no tick in it changes that instance;
if the comparison cannot decide, the range is halved, down to single ticks,
which are evaluated exactly as the tick itself would.  Floating point does
not break this: ``max(0, T - start)`` and every arithmetic step are monotone
in their operands, so the interval computed from the range's ends contains
every value a tick in the range computes.  A crossing is thus found in
O(log(range)) evaluations, and proofs are kept for the rest of the gap, so a
gap costs O(processes x log(gap)) evaluations, not O(ticks).  A condition the
interval cannot go through (``age_s in [...]`` hashes the age) is not
skipped over: it is evaluated tick by tick, correct first and fast second;
one the interval keeps failing to decide (an input used twice, as in
``age_s - age_s``, over-estimates) is proven :data:`PROOF_BUDGET`
evaluations at a time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..names import METRICS, Scope, field_of
from .evaluator import PENDING, Evaluator, RuleState
from .windows import RATE_WINDOW_S

if TYPE_CHECKING:
    from .proctable import Proc, ProcTable

__all__ = ["Aging", "Grid", "Proofs", "Span", "Undecided", "next_busy_tick"]

# Every metric that changes with no event, and how this module knows when it moves:
# a rate window of the host (its wake) or of a process (rate_hot), lost_events (its
# wake), the age (followed as an interval).  A plan reading a time-varying metric not
# named here is never skipped over: a new one must be taught here first.
TIME_VARYING = frozenset({
    "age_s", "forks_per_sec", "execs_per_sec", "exits_per_sec", "short_jobs_per_sec",
    "lost_events", "child_forks_per_sec", "child_short_jobs_per_sec",
    "subtree_forks_per_sec", "connects_per_sec", "accepts_per_sec", "subtree_connects_per_sec",
})
PROOF_BUDGET = 4096  # interval evaluations per call before giving up (and not skipping)


class Undecided(Exception):  # noqa: N818 - a verdict, not an error
    """A comparison that holds for part of an interval only."""


class Span:
    """A closed interval [lo, hi] of floats (lo < hi): every value a tick may compute."""

    __slots__ = ("hi", "lo")
    __hash__ = None  # type: ignore[assignment]  # 'x in {...}' must not guess

    def __init__(self, lo: float, hi: float) -> None:
        self.lo = lo
        self.hi = hi

    def __repr__(self) -> str:
        return f"Span({self.lo!r}, {self.hi!r})"

    # ---- arithmetic: bounds from the ends (every operation is monotone per operand) --
    def __add__(self, o: object) -> float | Span:
        lo, hi = _bounds(o)
        return _span(self.lo + lo, self.hi + hi)

    __radd__ = __add__

    def __sub__(self, o: object) -> float | Span:
        lo, hi = _bounds(o)
        return _span(self.lo - hi, self.hi - lo)

    def __rsub__(self, o: object) -> float | Span:
        lo, hi = _bounds(o)
        return _span(lo - self.hi, hi - self.lo)

    def __mul__(self, o: object) -> float | Span:
        lo, hi = _bounds(o)
        return _corners(self.lo * lo, self.lo * hi, self.hi * lo, self.hi * hi)

    __rmul__ = __mul__

    def __truediv__(self, o: object) -> float | Span:
        lo, hi = _bounds(o)
        if lo <= 0.0 <= hi:
            raise Undecided
        return _corners(self.lo / lo, self.lo / hi, self.hi / lo, self.hi / hi)

    def __rtruediv__(self, o: object) -> float | Span:
        lo, hi = _bounds(o)
        if self.lo <= 0.0 <= self.hi:
            raise Undecided
        return _corners(lo / self.lo, lo / self.hi, hi / self.lo, hi / self.hi)

    def __neg__(self) -> Span:
        return Span(-self.hi, -self.lo)

    # ---- comparisons: an answer only when it is the same over the whole interval ----
    def __lt__(self, o: object) -> bool:
        lo, hi = _bounds(o)
        return _decide(self.hi < lo, self.lo >= hi)

    def __le__(self, o: object) -> bool:
        lo, hi = _bounds(o)
        return _decide(self.hi <= lo, self.lo > hi)

    def __gt__(self, o: object) -> bool:
        lo, hi = _bounds(o)
        return _decide(self.lo > hi, self.hi <= lo)

    def __ge__(self, o: object) -> bool:
        lo, hi = _bounds(o)
        return _decide(self.lo >= hi, self.hi < lo)

    def __eq__(self, o: object) -> bool:
        lo, hi = _bounds(o)
        return _decide(False, self.hi < lo or self.lo > hi)  # lo < hi: never one value

    def __ne__(self, o: object) -> bool:
        return not self.__eq__(o)

    def __bool__(self) -> bool:
        raise Undecided

    def __float__(self) -> float:
        raise Undecided


def _bounds(o: object) -> tuple[float, float]:
    if type(o) is Span:
        return o.lo, o.hi
    if isinstance(o, (int, float)) and not isinstance(o, bool):
        return float(o), float(o)
    raise Undecided  # not a number: nothing an interval can say about it


def _span(lo: float, hi: float) -> float | Span:
    if math.isnan(lo) or math.isnan(hi):  # inf - inf: no bound is known
        raise Undecided
    return lo if lo == hi else Span(lo, hi)


def _corners(*values: float) -> float | Span:
    if any(math.isnan(v) for v in values):
        raise Undecided
    return _span(min(values), max(values))


def _decide(true: bool, false: bool) -> bool:
    if true:
        return True
    if false:
        return False
    raise Undecided


class Aging:
    """A process seen over a range of ticks: its age (and its parent's) is a :class:`Span`.

    Every other attribute is the process's own: between two wake-ups they do
    not change.
    """

    __slots__ = ("_hi", "_lo", "_p")

    def __init__(self, p: Proc, lo: float, hi: float) -> None:
        self._p, self._lo, self._hi = p, lo, hi

    def __getattr__(self, name: str) -> Any:
        return getattr(self._p, name)

    def age(self, now: float) -> float | Span | None:
        first, last = self._p.age(self._lo), self._p.age(self._hi)
        if first is None or last is None:
            return None
        return _span(first, last)

    @property
    def parent(self) -> Aging | None:
        parent = self._p.parent
        return None if parent is None else Aging(parent, self._lo, self._hi)


class Grid:
    """Tick times: tick ``k`` falls at ``first + k * tick``, computed as the core does."""

    __slots__ = ("first", "tick")

    def __init__(self, first: float, tick: float) -> None:
        self.first, self.tick = first, tick

    def at(self, k: int) -> float:
        return self.first + k * self.tick

    def index(self, t: float, *, inclusive: bool = False) -> int:
        """The first tick at or after ``t`` (strictly after it when ``inclusive``)."""
        if inclusive:
            return self._first(t, lambda k: self.at(k) > t)
        return self._first(t, lambda k: self.at(k) >= t)

    def expiry(self, ts: float) -> float:
        """The first tick at which a rate window has dropped an event at ``ts``."""
        return self.at(self._first(ts + RATE_WINDOW_S,
                                   lambda k: ts <= self.at(k) - RATE_WINDOW_S))

    def _first(self, t: float, past: Callable[[int], bool]) -> int:
        """The first tick ``k`` for which ``past(k)`` (monotone, true from about ``t``)."""
        ticks = (t - self.first) / self.tick
        if ticks > _FAR:  # no tick of a trace ever reaches it (inf included)
            return _FAR
        k = max(0, math.ceil(ticks))
        while k > 0 and past(k - 1):
            k -= 1
        while not past(k):
            k += 1
        return k


_FAR = 1 << 100  # an index beyond any tick a trace can reach (TS_MAX at a 1e-15 s tick)


# (rule state, process, whether of its 'clear when') -> (first tick not proven, truth proven)
Proofs = dict[tuple[int, "Proc", bool], tuple[int, bool]]


def next_busy_tick(ev: Evaluator, table: ProcTable, grid: Grid, k_from: int, k_to: int,
                   proofs: Proofs) -> int:
    """The first tick in [k_from, k_to) that may do anything (k_to if none may).

    Call it right after a tick (tick ``k_from - 1``).  No event may be
    applied between calls sharing ``proofs``: the proofs assume that only
    time moves.
    """
    now = grid.at(k_from - 1)
    if _busy(ev, table, now):
        return k_from
    value_wake, timer_wake = _wakes(ev, table, now)
    k_values = max(k_from, grid.index(value_wake - grid.tick))
    k_timers = max(k_from, grid.index(timer_wake - grid.tick))
    k_end = min(k_to, k_values, k_timers)
    if k_end <= k_from:
        return k_from
    return _conditions(ev, table, grid, k_from, min(k_to, k_values), proofs, k_end)


def _busy(ev: Evaluator, table: ProcTable, now: float) -> bool:
    """Whether the next tick has work whose end no wake-up names."""
    if (not table.quiet() or table.rate_hot or ev.moving.busy()
            or ev.tally.busy()):
        return True
    if any(m not in TIME_VARYING and (m not in METRICS or METRICS[m].time_varying)
           for m in ev.plan.metrics):
        return True
    if ev.history and any(i.state == PENDING for s in ev.rules for i in s.instances.values()):
        return True  # pending instances record their values at every tick
    if ev.trails and ev.trails_due < now:
        return True  # firing instances restored by a restart begin their trails
    host = table.host
    if host.win is not None and not host.settled(now):
        return True
    if any(cg.win is not None and not cg.settled(now) for cg in table.cgroups.live()):
        return True  # a cgroup's window still moving (cgroup rules judge every cgroup)
    return any(wm.name == "age_s" and wm.scope is not Scope.SYSTEM
               for wm in ev.plan.window_metrics) and any(
        p.start is not None for p in table.live())  # a window over age_s moves every tick


def _wakes(ev: Evaluator, table: ProcTable, now: float) -> tuple[float, float]:
    """When an input value may next move; when a timer may next expire."""
    host = table.host
    values = math.inf
    for window in (host.forks, host.execs, host.exits, host.short_jobs):
        window.count(now)  # forget what left the window, as the tick just did
        first = window.first()
        if first is not None:
            values = min(values, first + RATE_WINDOW_S)
    host.lost.total(now)
    first = host.lost.first()
    if first is not None:
        values = min(values, first + host.lost.span)
    if ev.moving.wakes:
        values = min(values, ev.moving.wakes[0][0])
    timers = min((s.timers[0][0] for s in ev.rules if s.timers), default=math.inf)
    if ev.trails:  # a trail's next point is a timer too
        timers = min(timers, ev.trails_due)
    return values, timers


def _conditions(ev: Evaluator, table: ProcTable, grid: Grid, k_from: int, k_proof: int,
                proofs: Proofs, k_end: int) -> int:
    """``k_end``, or the first tick before it where a truth or a 'clear when' may move.

    A firing instance with a 'clear when' is judged at every tick: its clear
    condition must hold (or not) as it did at the last one.  Right after it
    fired it has not been judged yet, so the value is computed for the next
    tick; the conditions of rules reading ``age_s`` are followed over the range.
    """
    budget = [PROOF_BUDGET]
    host = table.host
    now = grid.at(k_from)
    for state in ev.rules:
        rule = state.rule
        ages = rule.scope is not Scope.SYSTEM and any(
            field_of(name) == "age_s" for name in rule.inputs)  # parent.parent.age_s too
        checks: list[tuple[Proc, Callable[..., Any], bool, bool]] = []
        if rule.clear is not None:
            for watched in state.watch:
                held = _clearing(state, rule.clear, watched, host, now)
                if held is None:
                    return k_from
                if ages and watched is not None:  # a cgroup rule reads no age: a process
                    checks.append((watched, rule.clear, held, True))  # type: ignore[arg-type]
        if ages:
            checks += [(p, rule.cond, p in state.true, False) for p in table.live()]
        for p, cond, now_true, is_clear in checks:
            key = (id(state), p, is_clear)
            known = proofs.get(key)
            if known is not None and known[1] == now_true and known[0] >= k_end:
                continue
            start = k_from if known is None or known[1] != now_true else max(k_from, known[0])
            until = _prove(cond, p, host, grid, start, k_proof, now_true, budget)
            proofs[key] = (until, now_true)
            k_end = min(k_end, until)
            if k_end <= k_from:
                return k_from
    return k_end


def _clearing(state: RuleState, clear: Callable[..., Any], key: Any, host: object,
              now: float) -> bool | None:
    """Whether a watched instance's 'clear when' holds at ``now`` as it did at its last
    judgement (its value then); None when its state moves at ``now`` (or it raises)."""
    inst = state.instances.get(key)
    try:
        held = bool(clear(key, host, now))
    except Exception:  # counted as an error at that tick: let the tick run
        return None
    if inst is None or held != (inst.clear_since is not None):
        return None
    return held


def _prove(cond: Callable[..., Any], p: Proc, host: object, grid: Grid, k_from: int,
           k_to: int, truth: bool, budget: list[int]) -> int:
    """The first tick in [k_from, k_to) where ``cond`` may not be ``truth`` (k_to: none)."""
    stack = [(k_from, k_to)] if k_from < k_to else []
    while stack:
        lo, hi = stack.pop()  # half-open, leftmost first: everything before lo is proven
        if budget[0] <= 0:
            return lo
        budget[0] -= 1
        verdict = _same(cond, p, host, grid, lo, hi - 1, truth)
        if verdict is None and hi - lo > 1:
            mid = (lo + hi) // 2
            stack += [(mid, hi), (lo, mid)]
        elif not verdict:
            return lo
    return k_to


def _same(cond: Callable[..., Any], p: Proc, host: object, grid: Grid, first: int, last: int,
          truth: bool) -> bool | None:
    """Whether ``cond`` is ``truth`` at every tick first..last; None: cannot tell yet."""
    lo = grid.at(first)
    try:
        return bool(cond(Aging(p, lo, grid.at(last)), host, lo)) == truth
    except Undecided:
        return None if first < last else False
    except Exception:  # an operation intervals cannot follow: walk these ticks
        return False

"""The values a firing instance read while it fired, for its incident's charts.

With ``history`` on (the live daemon, ``replay --analyze``) a pending instance
keeps its values at every tick (:data:`.rulestate.HISTORY_MAX` of them); with
``trails`` on too (the live daemon, whose incidents keep them), once it fires it
keeps a :class:`Trail` instead: its values at the first tick of every
:data:`TRAIL_EVERY_S` seconds.  When more than :data:`TRAIL_MAX` points are
kept, every other one is dropped (the first, the firing, and the latest stay)
and the spacing doubles: a trail of any length covers the whole episode in at
most ``TRAIL_MAX + 1`` points, finer where it began.  The resolved alert
carries the trail, ending with the values it resolved on.

A point is due at a time the trail names (:attr:`Trail.due`); the evaluator
looks at its firing instances only at the tick where the earliest is due, and
the idle walk treats that time as a timer (:mod:`.idle`): skipping quiet ticks
records the same trail as running them all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from .cgtable import Cg
from .proctable import Proc
from .rulestate import EPS, FIRING, Instance, InstanceKey, RuleState

__all__ = ["TRAIL_EVERY_S", "TRAIL_MAX", "Point", "Trail", "firing_trails", "take_point",
           "thin"]

TRAIL_MAX = 240  # points kept of a firing instance's values (then thinned)
TRAIL_EVERY_S = 1.0  # the spacing of its points until the first thinning

Point = tuple[float, dict[str, object]]
T = TypeVar("T")


def thin(points: list[T], limit: int) -> list[T]:
    """At most ``limit`` (3 or more) of ``points``, in order: every other one dropped, as
    often as it takes, the first and the last always kept."""
    while len(points) > limit:
        kept = points[::2]
        if len(points) % 2 == 0:
            kept.append(points[-1])
        points = kept
    return points


class Trail:
    """The values of one firing instance: the firing's, then one point per spacing."""

    __slots__ = ("due", "every", "points")

    def __init__(self, now: float, values: dict[str, object]) -> None:
        self.points: list[Point] = [(now, values)]
        self.every = TRAIL_EVERY_S
        self.due = now + self.every  # when the next point is taken

    def record(self, now: float, read: Callable[[], dict[str, object]]) -> None:
        """Take a point at ``now`` if one is due (``read`` gives the values)."""
        if now < self.due - EPS:
            return
        self.points.append((now, read()))
        if len(self.points) > TRAIL_MAX:
            self.points = thin(self.points, TRAIL_MAX)
            self.every *= 2
        self.due = now + self.every

    def ended(self, now: float, values: dict[str, object]) -> list[Point]:
        """The whole trail, ending with the values the instance resolved on at ``now``."""
        if self.points[-1][0] < now:
            return [*self.points, (now, values)]
        return list(self.points)


def take_point(inst: Instance, now: float, read: Callable[[], dict[str, object]]) -> float:
    """Take a firing instance's point at ``now`` if one is due (or begin its trail: one
    restored firing by a restart has none); when its next point is due."""
    if inst.trail is None:
        inst.trail = Trail(now, read())
    else:
        inst.trail.record(now, read)
    return inst.trail.due


def firing_trails(rules: Iterable[RuleState]) -> dict[InstanceKey, list[Point]]:
    """The trail so far of every firing instance, by its :data:`InstanceKey`, as the
    responder keys incidents."""
    out: dict[InstanceKey, list[Point]] = {}
    for state in rules:
        for key, inst in state.instances.items():
            if inst.state != FIRING or inst.trail is None:
                continue
            out[instance_key(state.rule.name, key)] = list(inst.trail.points)
    return out


def instance_key(rule: str, key: object) -> InstanceKey:
    """The :data:`InstanceKey` of the engine's instance ``key``: a process, a cgroup or
    None (the host)."""
    if type(key) is Proc:
        return rule, key.pid, key.start, None
    return rule, None, None, key.cgroup if isinstance(key, Cg) else None

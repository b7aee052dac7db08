"""Network events in the process table: ``connect``, ``accept`` and ``listen``.

Kept apart from :mod:`.proctable` (which hands these events here) so that a
plan reading no network name pays nothing: a process gets a
:class:`NetState` (its ``net``) only at its first network event, and the
fields it holds are what the registry's network names read.

* ``connects`` and ``accepts``: rate windows, as ``child_forks`` is
  (``connects_per_sec``, ``accepts_per_sec``); a process with a connect in
  its trailing second is rate-hot, so tick rules see the count fall again;
* ``ports``: the ports it listens on, oldest first, at most :data:`PORTS_MAX`
  (a process may listen on thousands; past that the oldest goes), kept until
  it exits (a listen socket closed early is not seen: the kernel says nothing);
* ``sub_connects``: connects anywhere in its subtree in the trailing second,
  kept only when a rule reads ``subtree_connects_per_sec``; noted per process
  and handed up the tree once per batch, each ancestor once, as forks are
  (:func:`linnix.engine.subtree.upward`);
* ``recent``: the last :data:`RECENT_MAX` network events of the process, for
  the API, kept only when the daemon asks for it (:attr:`Net.recent`), each
  address cut to :data:`ADDR_MAX` characters (a trace may hold longer ones).
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import trace as t
from .subtree import fork_counts, merge_forks, upward
from .windows import ExpiryCounts, RateWindow

if TYPE_CHECKING:
    from .records import Proc

__all__ = ["ADDR_MAX", "PORTS_MAX", "RECENT_MAX", "Net", "NetState", "recent_events"]

PORTS_MAX = 64  # listening ports kept per process
RECENT_MAX = 32  # network events kept per process for the API
# the longest address kept there: an IPv6 address with its zone is under 64, a unix
# socket's path at most 108 bytes
ADDR_MAX = 128
# one kept event: time, kind, family, address, port
Recent = tuple[float, str, str, str | None, int | None]


class NetState:
    """What the network events of one process left."""

    __slots__ = ("accepts", "connects", "ports", "recent", "sub_connects")

    def __init__(self) -> None:
        self.connects = RateWindow.EMPTY
        self.accepts = RateWindow.EMPTY
        self.ports: tuple[int, ...] = ()
        self.sub_connects = ExpiryCounts.EMPTY
        self.recent: collections.deque[Recent] | None = None

    def busy(self, now: float) -> bool:
        """Whether one of its rates still counts an event at ``now`` (it stays rate-hot)."""
        return bool(self.connects.count(now) or self.accepts.count(now)
                    or self.sub_connects.count(now))


class Net:
    """The table's handlers of network events, and the subtree connects not yet folded."""

    def __init__(self, procs: dict[int, Proc], hot: set[Proc], meta: set[Proc],
                 expiry: Callable[[], Callable[[float], float]]) -> None:
        self._procs = procs
        self._hot = hot  # the table's rate_hot
        self._meta = meta  # the table's meta_changed
        self._expiry = expiry  # the table's current expiry function
        self.subtree = False  # keep sub_connects: a rule reads subtree_connects_per_sec
        self.recent = False  # keep each process's last events (the daemon's API)
        self.pending: dict[Proc, list[float]] = {}  # connects not yet handed up the tree

    def keep_recent(self, on: bool) -> None:
        """Start or stop keeping each process's last events (stopping forgets them)."""
        if self.recent and not on:
            for p in self._procs.values():
                if p.net is not None:
                    p.net.recent = None
        self.recent = on

    def _state(self, ev: t.Connect | t.Accept | t.Listen) -> tuple[Proc, NetState] | None:
        p = self._procs.get(ev.pid)
        if p is None:  # a process never announced: nothing to attach it to
            return None
        net = p.net
        if net is None:
            net = p.net = NetState()
        if self.recent:
            if net.recent is None:
                net.recent = collections.deque(maxlen=RECENT_MAX)
            net.recent.append(_kept(ev))
        return p, net

    def connect(self, ev: t.Connect) -> None:
        found = self._state(ev)
        if found is None:
            return
        p, net = found
        if net.connects is RateWindow.EMPTY:
            net.connects = RateWindow()
        net.connects.add(ev.ts)
        self._hot.add(p)
        if self.subtree:
            self.pending.setdefault(p, []).append(ev.ts)

    def accept(self, ev: t.Accept) -> None:
        found = self._state(ev)
        if found is None:
            return
        p, net = found
        if net.accepts is RateWindow.EMPTY:
            net.accepts = RateWindow()
        net.accepts.add(ev.ts)
        self._hot.add(p)

    def listen(self, ev: t.Listen) -> None:
        found = self._state(ev)
        if found is None or ev.local_port is None:
            return
        p, net = found
        port = ev.local_port
        if port in net.ports:
            return
        net.ports = (*net.ports, port)[-PORTS_MAX:]
        self._meta.add(p)

    def fold(self) -> None:
        """Hand the connects noted since the last fold up the tree, each ancestor once."""
        expiry = self._expiry()
        noted = {p: fork_counts(stamps, expiry) for p, stamps in self.pending.items()}
        self.pending = {}
        hot = self._hot.add

        def apply(node: Proc, counts: dict[float, int]) -> None:
            net = node.net
            if net is None:
                net = node.net = NetState()
            window = net.sub_connects
            if window is ExpiryCounts.EMPTY:
                window = net.sub_connects = ExpiryCounts()
            for leaves in sorted(counts):
                window.add(leaves, counts[leaves])
            if node.alive:
                hot(node)

        upward(noted, apply, merge_forks)


def _kept(ev: t.Connect | t.Accept | t.Listen) -> Recent:
    """What the ring keeps of an event (the address cut to :data:`ADDR_MAX`)."""
    if isinstance(ev, t.Listen):
        addr, port = ev.local_addr, ev.local_port
    else:
        addr, port = ev.remote_addr, ev.remote_port
    return (ev.ts, _KIND[type(ev)], ev.family, None if addr is None else addr[:ADDR_MAX], port)


def recent_events(p: Proc) -> list[dict[str, object]]:
    """The last network events of ``p``, oldest first, as the API shows them."""
    net = p.net
    if net is None or net.recent is None:
        return []
    keys = ("ts", "kind", "family", "addr", "port")
    return [dict(zip(keys, kept, strict=True)) for kept in net.recent]


_KIND = {t.Connect: "connect", t.Accept: "accept", t.Listen: "listen"}

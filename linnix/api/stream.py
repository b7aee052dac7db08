"""The live event stream behind ``GET /stream``: one hub, many subscribers.

The engine, the responder and the action manager call :meth:`StreamHub.publish`
synchronously on the trio thread.  Each event gets the next integer id, is
encoded once, kept in a bounded backlog and offered to every subscriber with
``send_nowait``.  A subscriber whose queue is full is dropped on the spot (its
channel is closed after the events already queued), so the publisher never
waits and the other subscribers never notice; the dropped one reconnects with
the id of the last event it saw and is replayed what the backlog still holds.

A subscriber that asks to resume from an id the backlog no longer covers (or
from an id this hub never issued, as after a daemon restart) first receives a
``reset`` event saying that events were missed.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import AsyncGenerator, Collection, Iterable
from types import TracebackType
from typing import Any

import attrs
import orjson
import trio

__all__ = ["MISSED", "StreamClient", "StreamEvent", "StreamHub", "counted", "encode_json"]

_KIND = re.compile(r"[a-z][a-z0-9_]*")


def encode_json(data: Any) -> bytes:
    """Compact JSON on one line; values JSON does not know are written as strings."""
    try:
        return orjson.dumps(data, default=str, option=orjson.OPT_NON_STR_KEYS)
    except (orjson.JSONEncodeError, TypeError):  # e.g. an integer wider than 64 bits
        return json.dumps(data, default=str, separators=(",", ":"),
                          ensure_ascii=False).encode("utf-8")


@attrs.frozen
class StreamEvent:
    """One published event; ``frame`` is its server-sent-events encoding."""

    id: int
    kind: str
    data: Any
    frame: bytes = attrs.field(repr=False)

    @classmethod
    def make(cls, event_id: int, kind: str, data: Any) -> StreamEvent:
        payload = encode_json(data)
        frame = b"id: %d\nevent: %s\ndata: %s\n\n" % (event_id, kind.encode(), payload)
        return cls(event_id, kind, data, frame)


class StreamClient:
    """One subscriber: receive events until the channel ends, then close."""

    def __init__(self, hub: StreamHub, capacity: int, initial: Iterable[StreamEvent]) -> None:
        self._hub = hub
        self._send, self._receive = trio.open_memory_channel[StreamEvent](capacity)
        self.dropped = False  # True once the hub gave up on this subscriber
        for event in initial:
            self._send.send_nowait(event)

    def offer(self, event: StreamEvent) -> str:
        """Queue ``event`` without waiting: "ok", "full" (too slow) or "gone" (closed)."""
        try:
            self._send.send_nowait(event)
        except trio.WouldBlock:
            return "full"
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return "gone"
        return "ok"

    async def receive(self) -> StreamEvent:
        """The next event; raises :class:`trio.EndOfChannel` once dropped or closed."""
        return await self._receive.receive()

    def receive_nowait(self) -> StreamEvent:
        """The next event already queued; raises :class:`trio.WouldBlock` when none is,
        :class:`trio.EndOfChannel` once dropped or closed."""
        return self._receive.receive_nowait()

    def end(self) -> None:
        """Stop queueing: what is queued can still be received, then the channel ends."""
        self._send.close()

    def close(self) -> None:
        """Unsubscribe and release the channel (idempotent)."""
        self._hub.unsubscribe(self)
        self._send.close()
        self._receive.close()

    def __enter__(self) -> StreamClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class StreamHub:
    """Fans published events out to subscribers; keeps the last ``backlog`` of them."""

    def __init__(self, backlog: int = 1000, queue: int = 256) -> None:
        if backlog < 1 or queue < 1:
            raise ValueError("backlog and queue must be at least 1")
        self.queue = queue
        self._backlog: deque[StreamEvent] = deque(maxlen=backlog)
        self._clients: set[StreamClient] = set()
        self.last_id = 0
        self.published = 0  # events published since the hub was made
        self.dropped = 0  # subscribers dropped because they fell behind

    @property
    def clients(self) -> int:
        """Subscribers connected now."""
        return len(self._clients)

    def publish(self, kind: str, data: Any) -> None:
        """Record an event and offer it to every subscriber; never blocks."""
        if not _KIND.fullmatch(kind):
            raise ValueError(f"invalid event kind {kind!r}")
        self.last_id += 1
        event = StreamEvent.make(self.last_id, kind, data)
        self._backlog.append(event)
        self.published += 1
        for client in list(self._clients):
            outcome = client.offer(event)
            if outcome == "ok":
                continue
            self._clients.discard(client)
            if outcome == "full":
                client.dropped = True
                self.dropped += 1
            client.end()

    def subscribe(self, last_event_id: int | None = None) -> StreamClient:
        """A new subscriber; with ``last_event_id`` it first gets what came after it."""
        initial = [] if last_event_id is None else self._replay(last_event_id)
        client = StreamClient(self, self.queue + len(initial), initial)
        self._clients.add(client)
        return client

    def unsubscribe(self, client: StreamClient) -> None:
        self._clients.discard(client)

    def _replay(self, last_event_id: int) -> list[StreamEvent]:
        events = list(self._backlog)
        oldest = events[0].id if events else self.last_id + 1
        if last_event_id > self.last_id:
            reason = ("this event id was never issued: the daemon restarted and its event "
                      "ids started over")
            missed = None
        elif last_event_id < oldest - 1:
            reason = "the events after this id are no longer kept"
            missed = oldest - 1 - last_event_id
        else:
            return [e for e in events if e.id > last_event_id]
        reset = StreamEvent.make(oldest - 1, "reset", {
            "reason": f"events were missed: {reason}; refetch the state you keep",
            "last_event_id": last_event_id,
            "missed": missed,
            "resume_from": oldest,
        })
        return [reset, *events]


MISSED = "missed"  # counted(): the hub dropped the subscription, events were lost


async def counted(hub: StreamHub, kinds: Collection[str],
                  keepalive: float) -> AsyncGenerator[bytes, None]:
    """Server-sent frames that say only which of ``kinds`` came and how many, never
    what they said: at each wake-up, one ``event: KIND`` frame per kind whose data is
    the count of what came and was queued behind it (so a burst is a frame per kind);
    a keep-alive comment when nothing came for ``keepalive`` seconds; nothing for other
    kinds.  A subscription the hub dropped (its queue was full: a burst, or a reader
    that stopped reading) is replaced at once, before anything is written, and a
    ``missed`` frame says that events were lost."""
    client = hub.subscribe()
    try:
        while True:
            counts: dict[str, int] = {}
            dropped = False
            with trio.move_on_after(keepalive) as waited:
                try:
                    dropped = _gather(await client.receive(), client, kinds, counts)
                except trio.EndOfChannel:
                    dropped = True
            if dropped:
                client.close()
                client = hub.subscribe()
                counts[MISSED] = 1
            if waited.cancelled_caught:
                yield b": keep-alive\n\n"
            else:
                yield b"".join(b"event: %s\ndata: %d\n\n" % (kind.encode(), n)
                               for kind, n in counts.items())
    finally:
        client.close()


def _gather(first: StreamEvent, client: StreamClient, kinds: Collection[str],
            counts: dict[str, int]) -> bool:
    """Count ``first`` and every event already queued behind it (at most the queue) by
    kind; whether the hub dropped ``client`` meanwhile."""
    event = first
    while True:
        if event.kind in kinds:
            counts[event.kind] = counts.get(event.kind, 0) + 1
        try:
            event = client.receive_nowait()
        except trio.WouldBlock:
            return False
        except trio.EndOfChannel:
            return True

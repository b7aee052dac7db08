"""One receiver's queue: bounded, delivered in order, retried with a capped backoff.

The engine puts notifications in (:meth:`Delivery.put`, synchronous, never
waiting); a trio task takes them out in batches and sends them.  Nothing a
receiver does can reach the engine: a receiver that is down, slow or
refusing only makes its own queue grow, and the queue is bounded: when it
is full the oldest notification is dropped and counted, since the newest
says most about now.

A batch that fails (no answer, or a 5xx, 408 or 429 answer) is tried again
after 0.5 s, 1 s, 2 s ... up to 30 s between tries, for as long as it takes,
and what came after it waits behind it, so a receiver sees transitions in
the order they happened.  A batch refused with any other status is dropped
(sending it again would be refused again) and counted.  Failures are said
once when they start and once when they stop, never per try.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import trio

from ...errors import Outage

__all__ = ["BACKOFF_FIRST_S", "BACKOFF_MAX_S", "Delivery", "SendFailedError", "SendRefusedError"]

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0

T = TypeVar("T")


class SendFailedError(Exception):
    """A send that did not get through and may if tried again."""


class SendRefusedError(Exception):
    """A send the receiver refused; trying it again would not help."""


class Delivery(Generic[T]):
    """The queue of one receiver and the counts ``/metrics`` shows of it.

    ``send`` sends one batch (at most ``batch`` items) or raises
    :class:`SendFailedError` or :class:`SendRefusedError`, saying why.
    """

    def __init__(self, receiver: str, send: Callable[[Sequence[T]], Awaitable[None]], *,
                 capacity: int, batch: int = 1,
                 say: Callable[[str], None] = lambda message: None) -> None:
        self.receiver = receiver
        self.send = send
        self.capacity = capacity
        self.batch = batch
        self.queue: deque[T] = deque()
        self.inflight: list[T] = []  # taken from the queue, not yet through
        self.sent = 0
        self.failed = 0  # items of tries that failed (a batch tried three times: thrice)
        self.dropped = 0  # items given up: queue full, refused, or left at shutdown
        self.outage = Outage(say)
        self._wake = trio.Event()

    @property
    def waiting(self) -> int:
        """Items not yet delivered."""
        return len(self.queue) + len(self.inflight)

    def put(self, items: Sequence[T]) -> None:
        """Queue ``items``; when full, the oldest give way (on the trio thread)."""
        for item in items:
            if len(self.queue) >= self.capacity:
                self.queue.popleft()
                self.dropped += 1
            self.queue.append(item)
        if items:
            self._wake.set()

    async def run(self) -> None:
        """Deliver batch after batch, until cancelled."""
        while True:
            if not self.inflight:
                if not self.queue:
                    await self._wake.wait()
                    self._wake = trio.Event()
                    continue
                self._take()
            delay = BACKOFF_FIRST_S
            while not await self._attempt():
                await trio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX_S)

    async def flush(self) -> None:
        """At shutdown: one try for everything left, no waiting between tries; stops at
        the first failure (the caller bounds the time it may take)."""
        while self.inflight or self.queue:
            if not self.inflight:
                self._take()
            if not await self._attempt():
                return

    def abandon(self) -> int:
        """Give up what is left (the daemon is stopping): how many, counted as dropped."""
        left = self.waiting
        self.dropped += left
        self.queue.clear()
        self.inflight = []
        return left

    def _take(self) -> None:
        self.inflight = [self.queue.popleft() for _ in range(min(self.batch, len(self.queue)))]

    async def _attempt(self) -> bool:
        """One try of the batch in flight; whether it is done with (sent or refused)."""
        batch = self.inflight
        try:
            await self.send(batch)
        except SendFailedError as err:
            self.failed += len(batch)
            self.outage.failed(f"cannot send alerts to {self.receiver}: {err}; trying again "
                               "(they wait in a queue meanwhile)", 0)
            return False
        except SendRefusedError as err:
            self.dropped += len(batch)
            self.outage.say(f"{self.receiver} refused {len(batch)} notification(s), which "
                            f"are dropped: {err}")
        else:
            self.sent += len(batch)
            self.outage.worked(f"sending alerts to {self.receiver} again")
        self.inflight = []
        return True

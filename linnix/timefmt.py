"""Wall-clock times as the world reads them: RFC 3339, in UTC, to the millisecond.

Inside the agent, times are seconds since the daemon started (``ts``); whatever
leaves it (alerts, actions, incidents, the alerts file, Alertmanager, webhooks)
also carries ``time`` in this form, so that a reader never needs the daemon's
start to place an event.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

__all__ = ["rfc3339", "stamp"]


def rfc3339(wall: float) -> str:
    """A Unix time as RFC 3339 in UTC, to the millisecond: ``2026-12-06T14:05:09.250Z``."""
    stamp = datetime.fromtimestamp(wall, tz=UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def stamp(ts: float | None = None, now: float | None = None) -> str:
    """The RFC 3339 time of ``ts`` on a clock that reads ``now`` at this moment (the
    daemon's seconds since start); the wall clock's present without them."""
    wall = time.time()
    if ts is not None and now is not None:
        wall -= now - ts
    return rfc3339(wall)

"""Times as the world reads them: seconds to the microsecond, and RFC 3339 in UTC.

Inside the agent, times are seconds since the daemon started (``ts``); whatever
leaves it (alerts, actions, incidents, the alerts file, Alertmanager, webhooks)
also carries ``time`` in RFC 3339, so that a reader never needs the daemon's
start to place an event.  Engine times are sums of floats (a tick is the first
event's time plus k ticks), so every output rounds them with :func:`seconds`:
``2.477129``, never ``2.4771289999999997``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

__all__ = ["SECONDS_DIGITS", "rfc3339", "seconds", "stamp"]

SECONDS_DIGITS = 6  # times in outputs: to the microsecond


def seconds(value: float | None) -> float | None:
    """A time (or duration) in seconds as outputs print it: rounded to the microsecond."""
    return None if value is None else round(value, SECONDS_DIGITS)


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

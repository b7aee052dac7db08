"""Server push for the dashboard: ``GET /ui/events``, a stream of server-sent events.

The API's ``/stream`` needs a bearer token; a browser has only its session cookie.
This stream is fed by the same hub (:class:`~linnix.api.stream.StreamHub`), for a
signed-in session, and says only *that* something changed
(:func:`~linnix.api.stream.counted`): one frame per kind (``alert``, ``action``,
``incident``, ``pause``) whose data is how many events of that kind came, never what
they said.  The page's script (``static/live.js``) then asks
htmx to fetch its live part again.  What is queued behind an event is counted into
the same frames, so a burst is a frame or a few.

Bounds: at most :data:`STREAMS_MAX` streams at once (one more is answered 503, and the
page falls back to its slow poll).  A stream's memory is its hub subscription's
bounded queue: a burst larger than that, or a browser that stops reading, fills it and
the hub drops the subscription; the stream subscribes again and says it missed events
(the page fetches everything again).  A stream ends when its session does (sign-out,
idle, a revoked token: checked at every wake-up, at least every :data:`KEEPALIVE_S`,
without counting as a request of the session's owner, so an open stream does not keep
an idle session alive), and at shutdown (the server cuts what is still open).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

from quart import Blueprint
from quart.wrappers import Response

from ..api.stream import counted, encode_json
from .overview import LIVE_EVERY_S
from .sessions import Session
from .web import UiState

__all__ = ["KEEPALIVE_S", "KINDS", "STREAMS_MAX", "register"]

STREAMS_MAX = 16  # dashboard streams at once (the API serves 64 connections by default)
KEEPALIVE_S = 15.0  # a comment when nothing else was sent for this long; the session's check
RETRY_MS = 3000  # how soon a browser reconnects after a stream ended
KINDS = ("alert", "action", "incident", "pause")  # what pages show; other kinds are not sent
ENDED = b"event: ended\ndata: the session ended\n\n"
BUSY = b"event: busy\ndata: too many live streams\n\n"


def register(bp: Blueprint, state: UiState) -> None:
    """Add ``/ui/events`` to ``bp``."""
    streams: set[object] = set()  # one token per stream running

    @bp.get("/events")
    async def events() -> Response:
        found = state.session()
        if found is None:
            return _refused(401, "unauthorized", "not signed in")
        if len(streams) >= STREAMS_MAX:
            return _refused(503, "busy", f"at most {STREAMS_MAX} live streams at once; the "
                            f"page refreshes itself every {LIVE_EVERY_S} s instead",
                            {"Retry-After": str(LIVE_EVERY_S)})
        response = Response(_stream(state, *found, streams), content_type="text/event-stream",
                            headers={"X-Accel-Buffering": "no"})
        response.timeout = None  # the stream lasts as long as the session and the client
        return response


def _refused(status: int, error: str, detail: str,
             headers: dict[str, str] | None = None) -> Response:
    return Response(encode_json({"error": error, "detail": detail}), status=status,
                    content_type="application/json", headers=headers or {})


async def _stream(state: UiState, sid: str, session: Session,
                  streams: set[object]) -> AsyncIterator[bytes]:
    """The body of one stream.  It is counted from its first step on (a body never
    iterated, as when the client left at once, holds no place)."""
    if len(streams) >= STREAMS_MAX:  # the last place was taken since the request came in
        yield BUSY
        return
    me = object()
    streams.add(me)
    try:
        yield b"retry: %d\n\n" % RETRY_MS
        async with aclosing(counted(state.view.hub, KINDS, KEEPALIVE_S)) as changes:
            async for frames in changes:
                if not _holds(state, sid, session):
                    yield ENDED
                    return
                if frames:
                    yield frames
    finally:
        streams.discard(me)


def _holds(state: UiState, sid: str, session: Session) -> bool:
    """Whether the stream's session is still open and its token still accepted."""
    if state.sessions.peek(sid) is not session:
        return False  # signed out, idle for too long, too old, or pushed out
    if not state.book.holds(session.who):
        state.sessions.close(sid)  # as a request would: a revoked token's sessions end
        return False
    return True

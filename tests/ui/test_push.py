"""The dashboard's push stream (/ui/events) through the real app: a session's cookie
opens it, the hub's events arrive as counts per kind (a burst in one frame), and it ends
with its session (sign-out, idle, a revoked token), when the hub drops it, and at
shutdown; at most STREAMS_MAX run at once."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
import trio
import trio.testing
from api_support import TOKEN, SseReader
from ui_support import Browser, UiEnv, start_ui

from linnix.api.server import GRACE_S, serve
from linnix.api.tokens import revoke_token
from linnix.ui.push import KEEPALIVE_S, STREAMS_MAX
from linnix.ui.security import COOKIE
from linnix.ui.sessions import IDLE_S

HOSTILE = "<img src=x onerror=alert(1)>"


async def signed_in(ui: UiEnv, token: str = TOKEN) -> Browser:
    browser = ui.browser()
    assert (await browser.sign_in(token))[0] == 303
    assert (await browser.get("/ui/"))[0] == 200  # and a page with its CSRF token
    return browser


@asynccontextmanager
async def events(browser: Browser) -> AsyncIterator[SseReader]:
    """GET /ui/events with the browser's cookie; cut when the block ends."""
    with trio.CancelScope() as scope:
        async with browser.client.request(
                "/ui/events", scope_base={"client": (browser.address, 50000)}) as conn:
            await conn.send_complete()
            reader = SseReader(conn)
            (hello,) = await reader.frames(1)
            assert hello.retry == 3000
            await trio.testing.wait_all_tasks_blocked()  # subscribed
            yield reader
            scope.cancel()


async def test_the_stream_needs_a_session(tmp_path: Path, nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    # an API token is no session: the bearer header opens nothing here
    status, _, _ = await ui.browser().get("/ui/events", Authorization=f"Bearer {TOKEN}")
    assert status == 401
    assert ui.env.hub.clients == 0


async def test_a_published_alert_arrives_as_its_kind_and_nothing_of_what_it_said(
        tmp_path: Path, nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    browser = await signed_in(ui)
    async with events(browser) as reader:
        assert reader.conn.status_code == 200
        assert reader.conn.headers["Content-Type"].startswith("text/event-stream")
        assert reader.conn.headers["Cache-Control"] == "no-store"
        assert ui.env.hub.clients == 1
        ui.env.hub.publish("alert", {"rule": "r", "state": "firing", "comm": HOSTILE,
                                     "message": HOSTILE})
        (event,) = await reader.events(1)
        ui.env.hub.publish("action", {"id": 1, "status": "pending", "comm": HOSTILE})
        (action,) = await reader.events(1)
    assert (event.event, event.data, event.id) == ("alert", "1", None)
    assert (action.event, action.data) == ("action", "1")
    await trio.testing.wait_all_tasks_blocked()
    assert ui.env.hub.clients == 0  # the browser left: unsubscribed


async def test_a_burst_is_one_frame_per_kind(tmp_path: Path, nursery: trio.Nursery) -> None:
    """The engine publishes a batch at once: the stream counts it into one frame per kind
    (the page fetches its live part once), and sends nothing of kinds no page shows."""
    ui = await start_ui(tmp_path, nursery)
    browser = await signed_in(ui)
    async with events(browser) as reader:
        for n in range(900):
            ui.env.hub.publish("alert", {"n": n})
        for n in range(3):
            ui.env.hub.publish("action", {"id": n})
        ui.env.hub.publish("process", {"pid": 1})  # no page shows it
        ui.env.hub.publish("pause", {"paused": None})
        frames = await reader.events(3)
        ui.env.hub.publish("incident", {"id": 1})
        frames += await reader.events(1)
    assert [(f.event, f.data) for f in frames] == [
        ("alert", "900"), ("action", "3"), ("pause", "1"), ("incident", "1")]
    assert ui.env.hub.dropped == 0


async def test_a_burst_larger_than_the_queue_says_events_were_missed_and_goes_on(
        tmp_path: Path, nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    browser = await signed_in(ui)
    hub = ui.env.hub
    async with events(browser) as reader:
        for n in range(hub.queue + 500):
            hub.publish("alert", {"n": n})
        frames = await reader.events(2)
        assert (hub.dropped, hub.clients) == (1, 1)  # subscribed again
        hub.publish("action", {"id": 1})
        frames += await reader.events(1)
    assert [(f.event, f.data) for f in frames] == [
        ("alert", str(hub.queue + 1)), ("missed", "1"), ("action", "1")]  # +1: the one
    # handed straight to the waiting stream


async def test_keep_alive_while_quiet(tmp_path: Path, nursery: trio.Nursery,
                                      autojump_clock: trio.testing.MockClock) -> None:
    ui = await start_ui(tmp_path, nursery)
    browser = await signed_in(ui)
    async with events(browser) as reader:
        start = trio.current_time()
        comments = [((await reader.frames(1))[0].comment, trio.current_time() - start)
                    for _ in range(3)]
    assert comments == [("keep-alive", KEEPALIVE_S * n) for n in (1, 2, 3)]


async def _ends(reader: SseReader) -> tuple[list[str | None], float]:
    """The events until the stream ends (within a few keep-alives), and when it ended
    (trio's clock)."""
    with trio.fail_after(3 * KEEPALIVE_S):
        frames = await reader.rest()
    return [f.event or f.comment for f in frames], trio.current_time()


async def test_the_stream_ends_at_sign_out(tmp_path: Path, nursery: trio.Nursery,
                                           autojump_clock: trio.testing.MockClock) -> None:
    ui = await start_ui(tmp_path, nursery)
    browser = await signed_in(ui)
    async with events(browser) as reader:
        start = trio.current_time()
        assert (await browser.with_csrf("/ui/signout", {}))[0] == 303
        seen, ended = await _ends(reader)
    assert seen == ["ended"] and reader.ended
    assert ended - start <= KEEPALIVE_S  # checked at the next wake-up at the latest
    assert ui.env.hub.clients == 0


async def test_the_stream_ends_when_its_session_goes_idle_and_keeps_none_alive(
        tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    """The stream checks its session at each keep-alive without using it: a tab whose
    page made no request for IDLE_S is signed out, stream or not."""
    ui = await start_ui(tmp_path, nursery)
    browser = await signed_in(ui)
    async with events(browser) as reader:
        ui.clock.advance(IDLE_S / 2)
        (frame,) = await reader.frames(1)  # checked: still open
        assert frame.comment == "keep-alive"
        ui.clock.advance(IDLE_S / 2)
        seen, _ = await _ends(reader)
    assert seen == ["ended"]
    assert (await browser.get("/ui/"))[0] == 303  # the session is gone, not renewed


async def test_the_stream_ends_when_its_token_is_revoked(
        tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    ui = await start_ui(tmp_path, nursery)
    browser = await signed_in(ui, ui.env.tokens["alice"])
    other = await signed_in(ui)
    async with events(browser) as reader, events(other) as still:
        revoke_token(os.fspath(tmp_path / "api.tokens"), "alice")
        assert await ui.env.book.refresh(_inline)
        ui.env.hub.publish("alert", {})  # a wake-up: the check comes with it
        seen, _ = await _ends(reader)
        (event,) = await still.events(1)  # the admin's session goes on
    assert seen == ["ended"] and event.event == "alert"


async def _inline(fn):  # type: ignore[no-untyped-def]
    return fn()


async def test_at_most_streams_max_at_once(tmp_path: Path, nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    browser = await signed_in(ui)
    async with contextlib.AsyncExitStack() as stack:
        readers = [await stack.enter_async_context(events(browser))
                   for _ in range(STREAMS_MAX)]
        assert ui.env.hub.clients == STREAMS_MAX
        status, body, headers = await browser.get("/ui/events")
        assert (status, headers["Retry-After"]) == (503, "30")
        assert orjson.loads(body)["error"] == "busy" and "every 30 s" in body
        assert ui.env.hub.clients == STREAMS_MAX
        ui.env.hub.publish("alert", {})
        for reader in readers:  # the others go on
            assert [f.event for f in await reader.events(1)] == ["alert"]
    await trio.testing.wait_all_tasks_blocked()
    assert ui.env.hub.clients == 0
    async with events(browser):  # the places are free again
        assert ui.env.hub.clients == 1


async def test_a_browser_that_stops_reading_holds_no_more_than_the_hub_queue(
        tmp_path: Path, nursery: trio.Nursery) -> None:
    """While the browser reads nothing the stream waits on its write: its subscription's
    queue fills and the hub drops it, so what the hub keeps for it is bounded; once the
    browser reads again, it learns that it missed events and the stream goes on."""
    ui = await start_ui(tmp_path, nursery)
    browser = await signed_in(ui)
    hub = ui.env.hub
    async with events(browser) as reader:
        published = 0
        while hub.dropped == 0:
            assert published < 10 * hub.queue
            hub.publish("alert", {"n": published, "pad": "x" * 100})
            published += 1
            await trio.testing.wait_all_tasks_blocked()
        assert hub.clients == 0  # dropped, and not subscribed again while stuck writing
        for n in range(hub.queue):
            hub.publish("alert", {"n": n})
        assert hub.clients == 0 and hub.dropped == 1
        seen: list[str | None] = []
        while "missed" not in seen:
            seen += [f.event for f in await reader.events(1)]
        await trio.testing.wait_all_tasks_blocked()
        assert hub.clients == 1
        hub.publish("pause", {})
        while seen[-1] != "pause":
            seen += [f.event for f in await reader.events(1)]
    assert set(seen) == {"alert", "missed", "pause"}


async def test_an_open_stream_does_not_hold_up_shutdown(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as outer:
        ui = await start_ui(tmp_path, outer)
        browser = await signed_in(ui)
        (sid,) = [c.value for c in browser.client.cookie_jar or () if c.name == COOKIE]
        async with trio.open_nursery() as server:
            address = await server.start(lambda task_status: serve(
                ui.app, "127.0.0.1:0", token=TOKEN, task_status=task_status))
            host, port = address.rsplit(":", 1)
            sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            await sock.connect((host, int(port)))
            stream = trio.SocketStream(sock)
            await stream.send_all(f"GET /ui/events HTTP/1.1\r\nHost: {host}\r\n"
                                  f"Cookie: {COOKIE}={sid}\r\n\r\n".encode())
            data = b""
            with trio.fail_after(10):
                while b"retry: 3000" not in data:
                    data += await stream.receive_some(65536)
            assert data.startswith(b"HTTP/1.1 200")
            stopping = trio.current_time()
            server.cancel_scope.cancel()
        assert trio.current_time() - stopping <= GRACE_S + 0.1
        with trio.fail_after(10), contextlib.suppress(trio.BrokenResourceError):
            while await stream.receive_some(65536):  # the connection ends
                pass
        await stream.aclose()
        assert ui.env.hub.clients == 0
        outer.cancel_scope.cancel()

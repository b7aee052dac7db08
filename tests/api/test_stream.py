"""The event stream: the hub on its own, then GET /stream through the test client."""

from __future__ import annotations

from contextlib import aclosing

import orjson
import pytest
import trio
import trio.testing
from api_support import AUTH, TOKEN, light_view, open_stream

from linnix.api.app import create_app
from linnix.api.stream import StreamHub, counted


def drain(client: object) -> list[tuple[int, str, object]]:
    """Everything queued for a hub client now, without waiting."""
    out = []
    receive = client._receive  # type: ignore[attr-defined]
    while True:
        try:
            event = receive.receive_nowait()
        except (trio.WouldBlock, trio.EndOfChannel):
            return out
        out.append((event.id, event.kind, event.data))


# ---- the hub ----------------------------------------------------------------------------

def test_ids_increase_and_frames_are_named_events() -> None:
    hub = StreamHub()
    client = hub.subscribe()
    hub.publish("alert", {"rule": "r", "state": "firing"})
    hub.publish("action", {"id": 3, "status": "pending"})
    assert drain(client) == [(1, "alert", {"rule": "r", "state": "firing"}),
                             (2, "action", {"id": 3, "status": "pending"})]
    assert hub.last_id == 2


def test_frames_are_one_data_line_of_json() -> None:
    hub = StreamHub()
    client = hub.subscribe()
    hub.publish("alert", {"message": "two\nlines", "ts": 1.5})
    event = client._receive.receive_nowait()  # type: ignore[attr-defined]
    assert event.frame == b'id: 1\nevent: alert\ndata: {"message":"two\\nlines","ts":1.5}\n\n'


def test_invalid_kinds_are_refused() -> None:
    hub = StreamHub()
    for kind in ("", "Alert", "a b", "x\ndata: y"):
        with pytest.raises(ValueError, match="invalid event kind"):
            hub.publish(kind, {})


def test_subscribing_without_an_id_starts_with_new_events() -> None:
    hub = StreamHub()
    hub.publish("alert", {"n": 1})
    client = hub.subscribe()
    hub.publish("alert", {"n": 2})
    assert [e[0] for e in drain(client)] == [2]


def test_resuming_replays_what_came_after_the_id() -> None:
    hub = StreamHub(backlog=10)
    for n in range(5):
        hub.publish("alert", {"n": n})
    assert [e[0] for e in drain(hub.subscribe(2))] == [3, 4, 5]
    assert drain(hub.subscribe(5)) == []
    assert [e[0] for e in drain(hub.subscribe(0))] == [1, 2, 3, 4, 5]


def test_resuming_from_beyond_the_backlog_starts_with_a_reset() -> None:
    hub = StreamHub(backlog=3)
    for n in range(10):
        hub.publish("alert", {"n": n})
    events = drain(hub.subscribe(2))
    assert [(i, k) for i, k, _ in events] == [(7, "reset"), (8, "alert"), (9, "alert"),
                                              (10, "alert")]
    reset = events[0][2]
    assert isinstance(reset, dict)
    assert reset["missed"] == 5 and reset["resume_from"] == 8
    assert "missed" in reset["reason"]
    # the id just before the oldest kept one still needs no reset
    assert [e[1] for e in drain(hub.subscribe(7))] == ["alert"] * 3


def test_an_id_from_a_previous_run_starts_with_a_reset() -> None:
    hub = StreamHub()
    hub.publish("alert", {"n": 1})
    events = drain(hub.subscribe(500))
    assert [(i, k) for i, k, _ in events] == [(0, "reset"), (1, "alert")]
    assert "restarted" in events[0][2]["reason"]  # type: ignore[index]


def test_a_full_client_is_dropped_and_nobody_else_notices() -> None:
    hub = StreamHub(backlog=100, queue=4)
    slow, fast = hub.subscribe(), hub.subscribe()
    seen = []
    for n in range(20):
        hub.publish("alert", {"n": n})  # synchronous: the publisher can never wait
        seen += drain(fast)
    assert [e[0] for e in seen] == list(range(1, 21))
    assert slow.dropped and not fast.dropped
    assert (hub.clients, hub.dropped) == (1, 1)
    # the slow client still gets what was queued before it was dropped, then the end
    assert [e[0] for e in drain(slow)] == [1, 2, 3, 4]
    with pytest.raises(trio.EndOfChannel):
        slow._receive.receive_nowait()  # type: ignore[attr-defined]


def test_a_replay_longer_than_the_queue_is_not_dropped() -> None:
    hub = StreamHub(backlog=50, queue=2)
    for n in range(30):
        hub.publish("alert", {"n": n})
    client = hub.subscribe(0)
    hub.publish("alert", {"n": 30})
    assert len(drain(client)) == 31
    assert hub.dropped == 0


def test_a_closed_client_is_forgotten_without_counting_as_dropped() -> None:
    hub = StreamHub()
    with hub.subscribe() as client:
        assert hub.clients == 1
    assert hub.clients == 0
    client._receive.close()  # type: ignore[attr-defined]
    hub.publish("alert", {})
    assert hub.dropped == 0


async def test_counted_says_only_which_kinds_came_and_how_many() -> None:
    """What the dashboard's push stream sends: a count per kind of what was queued, a
    frame per kind for a burst; a dropped subscription is replaced and says so."""
    hub = StreamHub(backlog=10, queue=50)
    send, receive = trio.open_memory_channel[bytes](0)

    async def pump() -> None:
        async with aclosing(counted(hub, ("alert", "action"), 15.0)) as frames:
            async for frame in frames:
                await send.send(frame)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(pump)
        await trio.testing.wait_all_tasks_blocked()  # subscribed, waiting
        for n in range(30):
            hub.publish("alert", {"secret": n})
        hub.publish("process", {"pid": 1})
        hub.publish("action", {"id": 1})
        assert await receive.receive() == (b"event: alert\ndata: 30\n\n"
                                           b"event: action\ndata: 1\n\n")
        await trio.testing.wait_all_tasks_blocked()
        for n in range(60):  # more than the queue: dropped
            hub.publish("alert", {"n": n})
        # one handed straight to the waiting reader, the queue's 50, then the drop
        assert await receive.receive() == (b"event: alert\ndata: 51\n\n"
                                           b"event: missed\ndata: 1\n\n")
        assert (hub.dropped, hub.clients) == (1, 1)  # subscribed again
        nursery.cancel_scope.cancel()
    assert hub.clients == 0


def test_hub_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        StreamHub(backlog=0)


# ---- GET /stream -------------------------------------------------------------------------

async def test_stream_sends_named_events_with_ids() -> None:
    view = light_view()
    app = create_app(view, token=TOKEN, max_body=1024)  # type: ignore[arg-type]
    async with open_stream(app) as reader:
        (hello,) = await reader.frames(1)
        assert hello.retry == 3000
        await trio.testing.wait_all_tasks_blocked()
        assert view.hub.clients == 1
        view.hub.publish("alert", {"rule": "cpu_spike", "state": "firing"})
        view.hub.publish("action", {"id": 1, "status": "pending"})
        view.hub.publish("process", {"pid": 10})
        events = await reader.events(3)
        headers = reader.conn.headers
    assert [(e.id, e.event) for e in events] == [(1, "alert"), (2, "action"), (3, "process")]
    assert orjson.loads(events[0].data or "") == {"rule": "cpu_spike", "state": "firing"}
    assert headers["Content-Type"].startswith("text/event-stream")
    assert headers["Cache-Control"] == "no-cache"
    await trio.testing.wait_all_tasks_blocked()
    assert view.hub.clients == 0  # the client left: unsubscribed


async def test_stream_keep_alive_every_15_seconds(autojump_clock: trio.testing.MockClock) -> None:
    view = light_view()
    app = create_app(view, token=TOKEN, max_body=1024)  # type: ignore[arg-type]
    async with open_stream(app) as reader:
        start = trio.current_time()
        await reader.frames(1)  # retry
        comments = []
        for _ in range(6):  # 90 s: longer than Quart's default response timeout
            (frame,) = await reader.frames(1)
            comments.append((frame.comment, round(trio.current_time() - start)))
        view.hub.publish("alert", {"late": True})
        (event,) = await reader.events(1)
    assert comments == [("keep-alive", 15 * (n + 1)) for n in range(6)]
    assert event.event == "alert"


async def test_keep_alive_waits_for_quiet(autojump_clock: trio.testing.MockClock) -> None:
    view = light_view()
    app = create_app(view, token=TOKEN, max_body=1024)  # type: ignore[arg-type]
    async with open_stream(app) as reader:
        await reader.frames(1)
        start = trio.current_time()
        await trio.sleep(10)
        view.hub.publish("alert", {"n": 1})
        (event,) = await reader.frames(1)
        assert event.event == "alert"
        (frame,) = await reader.frames(1)
        assert frame.comment == "keep-alive"
        assert trio.current_time() - start == pytest.approx(25)


@pytest.mark.parametrize("how", ["header", "query"])
async def test_stream_resumes_after_last_event_id(how: str) -> None:
    view = light_view()
    app = create_app(view, token=TOKEN, max_body=1024)  # type: ignore[arg-type]
    for n in range(5):
        view.hub.publish("alert", {"n": n})
    headers = {"Last-Event-ID": "3"} if how == "header" else {}
    query = "?last_event_id=3" if how == "query" else ""
    async with open_stream(app, headers, query) as reader:
        events = await reader.events(2)
        view.hub.publish("alert", {"n": 5})
        events += await reader.events(1)
    assert [e.id for e in events] == [4, 5, 6]


async def test_the_header_wins_over_the_query() -> None:
    view = light_view()
    app = create_app(view, token=TOKEN, max_body=1024)  # type: ignore[arg-type]
    for n in range(5):
        view.hub.publish("alert", {"n": n})
    async with open_stream(app, {"Last-Event-ID": "4"}, "?last_event_id=1") as reader:
        (event,) = await reader.events(1)
    assert event.id == 5


async def test_stream_resume_from_a_lost_id_starts_with_reset() -> None:
    view = light_view(StreamHub(backlog=5, queue=8))
    app = create_app(view, token=TOKEN, max_body=1024)  # type: ignore[arg-type]
    for n in range(20):
        view.hub.publish("alert", {"n": n})
    async with open_stream(app, {"Last-Event-ID": "2"}) as reader:
        events = await reader.events(6)
    assert [(e.id, e.event) for e in events] == [(15, "reset")] + [
        (n, "alert") for n in range(16, 21)]
    assert orjson.loads(events[0].data or "")["missed"] == 13


@pytest.mark.parametrize("value", ["abc", "-1", "1.5"])
async def test_an_invalid_last_event_id_is_400(value: str) -> None:
    view = light_view()
    app = create_app(view, token=TOKEN, max_body=1024)  # type: ignore[arg-type]
    response = await app.test_client().get("/stream", headers={"Last-Event-ID": value, **AUTH})
    assert response.status_code == 400
    body = await response.get_json()
    assert body["error"] == "bad request"
    assert view.hub.clients == 0


async def test_a_slow_client_is_dropped_without_stalling_anyone() -> None:
    hub = StreamHub(backlog=500, queue=8)
    view = light_view(hub)
    app = create_app(view, token=TOKEN, max_body=1024)  # type: ignore[arg-type]
    total = 200
    async with open_stream(app) as slow, open_stream(app) as fast:
        await slow.frames(1)
        await fast.frames(1)
        await trio.testing.wait_all_tasks_blocked()
        assert hub.clients == 2
        received = []
        for n in range(total):
            hub.publish("alert", {"n": n, "pad": "x" * 100})
            # the fast client reads as events come; the slow one never reads
            received += await fast.events(1)
        assert [e.id for e in received] == list(range(1, total + 1))
        assert hub.dropped == 1 and hub.clients == 1
        # the slow client receives what was queued for it, then its response ends ...
        got = [f for f in await slow.rest() if f.event is not None]
        assert slow.ended
        ids = [f.id for f in got]
        assert ids == list(range(1, len(ids) + 1)) and len(ids) < total
    # ... and it resumes where it stopped, from the backlog
    async with open_stream(app, {"Last-Event-ID": str(ids[-1])}) as again:
        rest = await again.events(total - len(ids))
    assert [e.id for e in rest] == list(range(len(ids) + 1, total + 1))
    response = await app.test_client().get("/metrics")
    text = (await response.get_data()).decode()
    assert "linnix_api_sse_dropped_clients_total 1.0" in text


def test_values_json_cannot_hold_natively_never_break_publishing() -> None:
    hub = StreamHub()
    client = hub.subscribe()
    hub.publish("alert", {"big": 2**80, "when": object.__name__, 3: "non-string key"})
    event = client._receive.receive_nowait()  # type: ignore[attr-defined]
    assert orjson.loads(event.frame.split(b"data: ", 1)[1]) == {
        "big": 2**80, "when": "object", "3": "non-string key"}

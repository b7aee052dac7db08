"""Fuzzing the API's request parsing: arbitrary requests against the real app.

Paths (real routes with odd segments, and anything else), query strings,
headers (tokens of every role, Host names, Last-Event-ID, content types) and
bodies (JSON of every shape, bytes) go to the real app over a real store and
action manager, in the ASGI scope hypercorn builds from a request line (Quart's
test client parses the path itself and refuses some a server takes, such as
"//%5B").  Whatever comes in, the answer is never a 500 and nothing is logged
as an internal error; every error is the API's JSON; each request is answered
within EXAMPLE_S.  `make fuzz` runs more examples (LINNIX_FUZZ_EXAMPLES).
"""

from __future__ import annotations

import json
import logging
import os
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest
import trio
from api_support import (
    MAX_BODY,
    PID_A,
    PID_B,
    TOKEN,
    FakeView,
    RecordingManager,
    inline,
)
from hypothesis import event, example, given, settings
from hypothesis import strategies as st
from proc_support import FakeProc

from linnix.actions import ActionPolicy, Guards, Target
from linnix.actions.store import AsyncStore, Store
from linnix.api.app import create_app
from linnix.api.stream import StreamHub
from linnix.api.tokens import TokenBook, add_token
from linnix.plan import CompiledAction

EXAMPLES = int(os.environ.get("LINNIX_FUZZ_EXAMPLES", "100"))
EXAMPLE_S = 10.0  # one request never takes this long; past it, the app hangs: a bug


@attrs.define
class World:
    """What every example shares: a store with actions and incidents, the tokens."""

    store: Store
    astore: AsyncStore  # for setting up, in its own trio run
    guards: Guards
    book: TokenBook
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("fuzz")
    proc = FakeProc(root / "proc")
    proc.add(PID_A, "python3")
    proc.add(PID_B, "worker")
    store = Store(os.fspath(root / "linnix.db"))
    guards = Guards(frozenset({"sshd"}), frozenset(), own=set(), root=os.fspath(proc.root))
    path = os.fspath(root / "api.tokens")
    tokens = {name: add_token(path, name, role)
              for name, role in (("rita", "reader"), ("alice", "approver"))}
    book = TokenBook(TOKEN, path)
    world = World(store, AsyncStore(store), guards, book, tokens)
    trio.run(_furnish, world)
    yield world
    store.close()


async def _furnish(world: World) -> None:
    """Tokens read, a few pending actions and an incident to find."""
    await world.book.refresh(inline)
    world.store.open_incident(rule="r", severity="warning", scope="process", pid=PID_A,
                              comm="python3", start=1.0, message="m", labels={},
                              history=[], subtree=[], host={})
    async with trio.open_nursery() as nursery:
        manager = _manager(world, world.astore, StreamHub())
        await nursery.start(manager.run)
        for n, (pid, comm) in enumerate(((PID_A, "python3"), (PID_B, "worker")) * 3):
            # a rule each: a rule firing again for a process only counts on its action
            await manager.propose(rule=f"r{n // 2}", action=CompiledAction("kill", True),
                                  target=Target(pid, comm, None), incident_id=None,
                                  monitor_only=False)
        nursery.cancel_scope.cancel()


def _manager(world: World, astore: AsyncStore, hub: StreamHub) -> RecordingManager:
    manager = RecordingManager(astore, world.guards, ActionPolicy(rate_limit=1000),
                               publish=hub.publish)
    manager.executed = []
    return manager


# ---- what a request may be --------------------------------------------------------------

_ROUTE_WORDS = ("health", "ready", "metrics", "openapi.json", "processes", "graph", "alerts",
                "rules", "reload", "stream", "incidents", "actions", "approve", "reject",
                "audit", "pause", "resume")
_NUMBERS = st.integers(-2**70, 2**70).map(str) | st.sampled_from(
    ["1", "2", "0", "-1", "007", "1e3", "0x10", str(PID_A), str(2**63 - 1), str(2**63)])
_TEXT = st.text(max_size=40)
_SEGMENT = st.one_of(
    st.sampled_from(_ROUTE_WORDS), _NUMBERS,
    _TEXT.map(lambda t: urllib.parse.quote(t, safe="")),
    st.sampled_from(["%00", "%ff", "%2f", "%", "%zz", "..", ".", "", "%E2%80%AE"]))
_TEMPLATES = ("/processes/{}", "/graph/{}", "/incidents/{}", "/actions/{}",
              "/actions/{}/approve", "/actions/{}/reject", "/actions/{}/approve",
              "/actions/{}/reject")
_PATH = st.one_of(
    st.sampled_from(["/" + w for w in _ROUTE_WORDS] + ["/rules/reload"] * 3 + ["/"]
                    + ["/actions/pause", "/actions/resume"] * 3),
    st.tuples(st.sampled_from(_TEMPLATES), _SEGMENT).map(lambda t: t[0].format(t[1])),
    st.lists(_SEGMENT, min_size=1, max_size=5).map(lambda s: "/" + "/".join(s)))
_QUERY_KEYS = st.sampled_from(["limit", "before", "open", "history", "status", "action",
                               "actor", "last_event_id"]) | _TEXT
_QUERY_VALUES = _NUMBERS | _TEXT | st.sampled_from(["", "1", "true", "no", "pending", "all"])
_QUERY = st.one_of(
    st.lists(st.tuples(_QUERY_KEYS, _QUERY_VALUES), max_size=4).map(urllib.parse.urlencode),
    st.text(alphabet="abcdefilmnorstu=&%0123456789+;", max_size=30))
# What a header value may hold on the wire (h11 refuses CR, LF and NUL).
_HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF,
                                     blacklist_characters="\x7f"), max_size=60)


@st.composite
def _headers(draw: st.DrawFn) -> dict[str, str]:
    headers: dict[str, str] = {}
    who = draw(st.sampled_from(["admin", "admin", "alice", "alice", "rita", "none",
                                "garbage"]))
    # a named token's secret is made when the world is: "<name>" stands for it here
    secret = {"admin": TOKEN, "none": None, "garbage": draw(_HEADER_TEXT)}.get(
        who, f"<{who}>")
    if secret is not None:
        scheme = draw(st.sampled_from(["Bearer "] * 4 + ["bearer  ", "Basic ", "", "Bearer"]))
        headers["Authorization"] = scheme + secret
    # mostly a name the API answers to, else nothing gets past the Host check
    if draw(st.integers(0, 9)) < 8:
        headers["Host"] = draw(st.sampled_from(["127.0.0.1:9333", "localhost", "[::1]"]))
    elif draw(st.booleans()):
        headers["Host"] = draw(st.sampled_from(["evil.example", "", "[::1"]) | _HEADER_TEXT)
    if draw(st.booleans()):
        headers["Last-Event-ID"] = draw(_NUMBERS | _HEADER_TEXT)
    if draw(st.booleans()):
        headers["Content-Type"] = draw(st.sampled_from(
            ["application/json", "text/plain", "application/json; charset=latin-1"]))
    for name, value in draw(st.dictionaries(
            st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E,
                                  blacklist_characters=':()<>@,;\\"/[]?={}'),
                    min_size=1, max_size=20),
            _HEADER_TEXT, max_size=3)).items():
        headers.setdefault(name, value)
    return headers


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
    | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=10)
def _dumps(value: object) -> bytes:
    return json.dumps(value).encode("utf-8")  # integers of any size, unlike orjson


_FIELDS = st.sampled_from(["note", "approver", "reason", "actor", "for"]) | _TEXT
_BODY = st.one_of(
    st.dictionaries(_FIELDS, _JSON, max_size=4).map(_dumps),
    _JSON.map(_dumps),
    st.binary(max_size=64),
    st.just(b"x" * (MAX_BODY + 1)))
_METHOD = st.sampled_from(["GET"] * 4 + ["POST"] * 4 + ["HEAD", "PUT", "DELETE", "OPTIONS",
                                                           "PATCH"])


@attrs.frozen
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@st.composite
def requests(draw: st.DrawFn) -> Request:
    path = draw(_PATH)
    query = draw(_QUERY)
    return Request(draw(_METHOD), f"{path}?{query}" if query else path,
                   draw(_headers()), draw(_BODY))


def _as(who: str, method: str, path: str, body: object = None) -> Request:
    """A request every run makes, whatever Hypothesis draws."""
    secret = TOKEN if who == "admin" else f"<{who}>"
    return Request(method, path, {"Host": "127.0.0.1:9333",
                                  "Authorization": f"Bearer {secret}"},
                   b"" if body is None else _dumps(body))


# ---- one exchange ---------------------------------------------------------------------------

async def _exchange(world: World, req: Request) -> tuple[int, bytes, str]:
    """(status, body, content type) of one request; a stream's first chunk only."""
    hub = StreamHub()
    async with trio.open_nursery() as nursery:
        astore = AsyncStore(world.store)
        manager = _manager(world, astore, hub)
        await nursery.start(manager.run)
        view = FakeView(astore, manager, hub)
        app = create_app(view, tokens=world.book, max_body=MAX_BODY)  # type: ignore[arg-type]
        with trio.fail_after(EXAMPLE_S):
            answer = await _asgi(app, req)
        nursery.cancel_scope.cancel()
    return answer


async def _asgi(app: Any, req: Request) -> tuple[int, bytes, str]:
    """One request, in the scope hypercorn builds from the bytes of a request line."""
    target = req.path.encode("ascii")
    path, _, query = target.partition(b"?")
    scope = {
        "type": "http", "asgi": {"spec_version": "2.1", "version": "3.0"},
        "http_version": "1.1", "method": req.method, "scheme": "http",
        "path": urllib.parse.unquote(path.decode("ascii")), "raw_path": path,
        "query_string": query, "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1"))
                    for k, v in req.headers.items()],
        "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 9333), "extensions": {},
        "state": {},
    }
    answered = trio.Event()
    sent: dict[str, Any] = {"status": None, "kind": "", "body": b""}
    chunks = [{"type": "http.request", "body": req.body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if chunks:
            return chunks.pop()
        await answered.wait()  # the client stays until the whole answer came
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            sent["status"] = message["status"]
            sent["kind"] = next((v.decode("latin-1") for k, v in message["headers"]
                                 if k.lower() == b"content-type"), "")
        elif message["type"] == "http.response.body":
            sent["body"] += message.get("body", b"")
            # a stream lasts as long as its client: its start will do
            if not message.get("more_body") or sent["kind"].startswith("text/event-stream"):
                answered.set()

    await app(scope, receive, send)
    assert sent["status"] is not None
    return sent["status"], sent["body"], sent["kind"]


class _Errors(logging.Handler):
    """What the API logs as errors (an internal error is logged, then answered 500)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def errors() -> Iterator[_Errors]:
    handler = _Errors()
    logging.getLogger("linnix").addHandler(handler)
    yield handler
    logging.getLogger("linnix").removeHandler(handler)


@settings(max_examples=EXAMPLES)
@given(req=requests())
@example(req=_as("alice", "POST", "/actions/1/approve", {"note": "on call", "reason": "x"}))
@example(req=_as("alice", "POST", "/actions/2/reject", {"approver": "old client"}))
@example(req=_as("alice", "POST", "/actions/1/approve", {}))  # decided already: 409
@example(req=_as("rita", "POST", "/actions/3/approve"))
@example(req=_as("admin", "POST", "/rules/reload", {"actor": "x\u202e"}))
@example(req=_as("alice", "POST", "/actions/pause", {"for": "30m", "reason": "window"}))
@example(req=_as("alice", "POST", "/actions/pause", {"for": 1e308}))
@example(req=_as("alice", "POST", "/actions/pause", {"for": "9" * 32}))
@example(req=_as("alice", "POST", "/actions/resume", {"note": "x"}))  # not paused: 409
@example(req=_as("admin", "GET", "/stream?last_event_id=0"))
@example(req=_as("rita", "GET", "/audit?limit=1000&before=9223372036854775808"))
def test_no_request_makes_the_api_fail(world: World, errors: _Errors, req: Request) -> None:
    for name, secret in world.tokens.items():
        req = attrs.evolve(req, headers={k: v.replace(f"<{name}>", secret)
                                         for k, v in req.headers.items()})
    errors.records.clear()
    status, body, kind = trio.run(_exchange, world, req)
    event(f"{req.method} answered {status}")  # --hypothesis-show-statistics shows the spread
    assert status < 500, (status, body)
    assert errors.records == [], [r.getMessage() for r in errors.records]
    if status >= 400 and req.method != "HEAD":
        assert kind == "application/json", (status, kind, body)
        answer = orjson.loads(body)
        assert isinstance(answer["error"], str) and isinstance(answer["detail"], str)


def test_the_world_has_pending_actions(world: World) -> None:
    """The fuzzing reaches decisions: there are actions to decide on."""
    assert len(world.store.actions(status="pending", limit=100)) >= 1
    assert Path(world.book.path or "").exists()

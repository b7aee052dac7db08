"""Shared pieces of the API tests: a fake daemon view over a real store and action
manager, a fake /proc for the safety guards, and a reader of server-sent events."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import orjson
import trio
from proc_support import FakeProc
from prometheus_client import CollectorRegistry
from quart_trio import QuartTrio

from linnix.actions import ActionManager, ActionPolicy, Guards, Target
from linnix.actions.executors import Outcome
from linnix.actions.guards import Identity
from linnix.actions.store import AsyncStore, Store
from linnix.api.app import create_app
from linnix.api.stream import StreamHub
from linnix.api.tokens import TokenBook, add_token
from linnix.plan import CompiledAction

TOKEN = "test-token-0123456789abcdef"  # the admin's
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# The named tokens of every test environment, by name and role.
NAMED = (("alice", "approver"), ("bob", "approver"), ("carol", "approver"),
         ("rita", "reader"))
MAX_BODY = 2048

# Pids above the kernel's PID_MAX_LIMIT (2**22): no real process can ever have them,
# so nothing a test does can reach a real process even by mistake.
PID_A, PID_B, PID_C = 5_000_001, 5_000_002, 5_000_003


class RecordingManager(ActionManager):
    """The real action manager, except that executing only records what it would do."""

    executed: list[int]

    async def _run(self, row: dict[str, Any], ident: Identity,
                   tree: list[Identity]) -> Outcome:
        self.executed.append(int(row["id"]))
        return Outcome(True, f"{row['kind']} done to {ident.comm}[{ident.pid}]")


class FakeView:
    """A DaemonView whose live parts are plain attributes a test can change."""

    def __init__(self, store: Any, actions: Any, hub: StreamHub) -> None:
        self.store = store
        self.actions = actions
        self.hub = hub
        self.registry = CollectorRegistry()
        self.is_ready: tuple[bool, str] = (True, "fake")
        self.procs: dict[int, dict[str, Any]] = {
            PID_A: _proc(PID_A, "python3", 1), PID_B: _proc(PID_B, "worker", PID_A)}
        self.active: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []
        self.rule_list: list[dict[str, Any]] = []
        self.reload_answer: tuple[bool, list[dict[str, Any]]] = (True, [])
        self.reloads: list[tuple[str, str | None]] = []
        self.fail_with: Exception | None = None
        self.model = False  # whether a model is configured (and its queue has room)
        self.asked: list[int] = []  # incidents queued for the model

    def ready(self) -> tuple[bool, str]:
        return self.is_ready

    async def processes(self) -> list[dict[str, Any]]:
        if self.fail_with is not None:
            raise self.fail_with
        return [self.procs[p] for p in sorted(self.procs)]

    async def process(self, pid: int) -> dict[str, Any] | None:
        return self.procs.get(pid)

    async def graph(self, pid: int) -> dict[str, Any] | None:
        p = self.procs.get(pid)
        if p is None:
            return None
        kids = [{**k, "subtree_cpu_pct": k["cpu_pct"], "subtree_rss_mb": k["rss_mb"],
                 "subtree_fds": k["fds"], "subtree_procs": 1, "children": []}
                for k in self.procs.values() if k["ppid"] == pid]
        members = [p, *kids]
        return {"process": p, "ancestors": [], "truncated": False,
                "subtree": {**p, "subtree_cpu_pct": sum(m["cpu_pct"] for m in members),
                            "subtree_rss_mb": sum(m["rss_mb"] for m in members),
                            "subtree_fds": sum(m["fds"] for m in members),
                            "subtree_procs": len(members), "children": kids}}

    def alerts(self) -> list[dict[str, Any]]:
        return self.active

    def alert_history(self, limit: int) -> list[dict[str, Any]]:
        return self.history[-limit:]

    def rules(self) -> list[dict[str, Any]]:
        return self.rule_list

    async def reload(self, actor: str,
                     note: str | None = None) -> tuple[bool, list[dict[str, Any]]]:
        self.reloads.append((actor, note))
        return self.reload_answer

    async def ask_model(self, incident_id: int) -> bool:
        if self.model:
            self.asked.append(incident_id)
        return self.model


def _proc(pid: int, comm: str, ppid: int) -> dict[str, Any]:
    return {"pid": pid, "ppid": ppid, "comm": comm, "exe": f"/usr/bin/{comm}",
            "cmdline": comm, "uid": 1000, "start": 1.0, "age_s": 10.0, "cpu_pct": 12.5,
            "rss_mb": 30.0, "fds": 8, "fd_limit": 1024, "fd_pct": 0.8, "threads": 1,
            "children": 0}


@attrs.define
class Env:
    """Everything one API test works with."""

    view: FakeView
    app: QuartTrio
    store: Store
    manager: RecordingManager
    hub: StreamHub
    proc: FakeProc
    tokens: dict[str, str]  # name -> token, besides the admin's TOKEN
    book: TokenBook  # over tmp_path/api.tokens

    def auth(self, name: str) -> dict[str, str]:
        """The Authorization header of the token named ``name``."""
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    async def propose(self, pid: int = PID_A, comm: str = "python3",
                      kind: str = "kill") -> int:
        """A new pending action against a process of the fake /proc."""
        self.proc.add(pid, comm)
        row = await self.manager.propose(
            rule="cpu_spike", action=CompiledAction(kind, True), target=Target(pid, comm, None),
            incident_id=None, monitor_only=False)
        assert row["status"] == "pending", row
        return int(row["id"])

    async def wait_status(self, action_id: int, *statuses: str) -> dict[str, Any]:
        """Wait for the action to reach one of ``statuses``, as the manager publishes it
        (replayed from the hub's backlog, so nothing published earlier is missed)."""
        with trio.fail_after(10), self.hub.subscribe(0) as client:
            while True:
                event = await client.receive()
                row = event.data
                if event.kind == "action" and row["id"] == action_id \
                        and row["status"] in statuses:
                    return dict(row)


async def start_env(tmp_path: Path, nursery: trio.Nursery, *, rate_limit: int = 10,
                    max_body: int = MAX_BODY, token: str = TOKEN,
                    public_reads: bool = False) -> Env:
    proc = FakeProc(tmp_path / "proc")
    proc.add(PID_A, "python3")
    store = Store(os.fspath(tmp_path / "linnix.db"))
    astore = AsyncStore(store)
    hub = StreamHub(backlog=1000, queue=1000)
    guards = Guards(frozenset({"sshd"}), frozenset(), own=set(), root=os.fspath(proc.root))
    manager = RecordingManager(astore, guards, ActionPolicy(rate_limit=rate_limit),
                               publish=hub.publish)
    manager.executed = []
    await nursery.start(manager.run)
    view = FakeView(astore, manager, hub)
    path = os.fspath(tmp_path / "api.tokens")
    tokens = {name: add_token(path, name, role) for name, role in NAMED}
    book = TokenBook(token, path)
    assert await book.refresh(inline) and book.problem is None
    app = create_app(view, tokens=book, max_body=max_body,  # type: ignore[arg-type]
                     public_reads=public_reads)
    return Env(view, app, store, manager, hub, proc, tokens, book)


async def call(env: Env, method: str, path: str, *, body: Any = None, raw: bytes | None = None,
               headers: dict[str, str] | None = None,
               auth: bool = True) -> tuple[int, Any, Any]:
    """(status, decoded JSON body, headers) of one request, with the token unless not ``auth``."""
    client = env.app.test_client()
    data = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
    sent = {**(AUTH if auth else {}), **(headers or {})}
    response = await client.open(path, method=method, data=data, headers=sent)
    payload = await response.get_data()
    decoded = orjson.loads(payload) if response.mimetype == "application/json" else payload
    return response.status_code, decoded, response.headers


def assert_error(payload: Any, error: str) -> None:
    assert set(payload) >= {"error", "detail"}
    assert payload["error"] == error
    assert isinstance(payload["detail"], str) and payload["detail"]


async def inline(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` right here: a test's file reads need no worker thread."""
    return fn()


def light_view(hub: StreamHub | None = None) -> FakeView:
    """A view without store or action manager, for tests of reads and the stream."""
    return FakeView(None, None, hub or StreamHub(backlog=100, queue=8))


# ---- server-sent events ---------------------------------------------------------------

@attrs.define
class Frame:
    """One block of a server-sent-events body."""

    id: int | None
    event: str | None
    data: str | None
    comment: str | None
    retry: int | None


def parse_frames(raw: bytes) -> list[Frame]:
    frames = []
    for block in raw.decode().split("\n\n"):
        if not block:
            continue
        fields: dict[str, str] = {}
        comment = None
        for line in block.split("\n"):
            if line.startswith(":"):
                comment = line[1:].strip()
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
        frames.append(Frame(int(fields["id"]) if "id" in fields else None,
                            fields.get("event"), fields.get("data"), comment,
                            int(fields["retry"]) if "retry" in fields else None))
    return frames


class SseReader:
    """Reads whole frames from a streaming test connection."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.buffer = b""
        self.ended = False

    async def frames(self, n: int) -> list[Frame]:
        """The next ``n`` frames (keep-alive comments and the retry line included)."""
        while self.buffer.count(b"\n\n") < n:
            try:
                chunk = await self.conn.receive()
            except trio.EndOfChannel:
                self.ended = True
                break
            self.buffer += chunk
        cut = 0
        for _ in range(n):
            at = self.buffer.find(b"\n\n", cut)
            if at < 0:
                break
            cut = at + 2
        taken, self.buffer = self.buffer[:cut], self.buffer[cut:]
        return parse_frames(taken)

    async def events(self, n: int) -> list[Frame]:
        """The next ``n`` named events, skipping comments and the retry line."""
        out: list[Frame] = []
        while len(out) < n:
            got = await self.frames(1)
            if not got:
                break
            out += [f for f in got if f.event is not None]
        return out

    async def rest(self) -> list[Frame]:
        """Every frame until the server ends the response."""
        while not self.ended:
            try:
                self.buffer += await self.conn.receive()
            except trio.EndOfChannel:
                self.ended = True
        taken, self.buffer = self.buffer, b""
        return parse_frames(taken)


@asynccontextmanager
async def open_stream(app: QuartTrio, headers: dict[str, str] | None = None,
                      query: str = "") -> AsyncIterator[SseReader]:
    """A GET /stream on the test client; the connection is cut when the block ends."""
    client = app.test_client()
    with trio.CancelScope() as scope:
        async with client.request(f"/stream{query}", headers={**AUTH, **(headers or {})}) as conn:
            await conn.send_complete()
            yield SseReader(conn)
            scope.cancel()  # the response never ends by itself: cut it

"""A fake OpenAI-compatible server for the model backend's tests: a trio app on loopback.

It records every request (method, path, headers, JSON body) and answers as its
``answer`` says: a chat completion whose message is some text (a good answer,
one citing unknown facts, one that is not JSON), an HTTP status with no
completion, or a stall longer than any timeout (under ``autojump_clock`` the
test does not wait for it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Any

import attrs
import h11
import trio

from linnix.config import AnalysisConfig

STALL_S = 30.0

# The answer a model should give about facts F1..F3.
GOOD = {"summary": "A shell loop forks without end.",
        "hypotheses": [{"hypothesis": "the parent shell runs a fork loop", "facts": ["F1", "F3"]},
                       {"hypothesis": "a build spawns compilers", "facts": ["F2"]}]}
UNKNOWN = {"summary": "Two guesses, one about nothing we know.",
           "hypotheses": [{"hypothesis": "cites F99", "facts": ["F1", "F99"]},
                          {"hypothesis": "cites nothing", "facts": []},
                          {"hypothesis": "sound", "facts": ["F2"]}]}


def completion(content: str) -> bytes:
    return json.dumps({"id": "c1", "object": "chat.completion", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": content},
         "finish_reason": "stop"}]}).encode()


@attrs.define
class FakeModel:
    """What the server answers (``answer``: ``"stall"``, an int status, or message text)
    and what it was asked."""

    answer: Any = attrs.field(factory=lambda: json.dumps(GOOD))
    requests: list[dict[str, Any]] = attrs.field(factory=list)
    port: int = 0

    def config(self, **changes: Any) -> AnalysisConfig:
        return AnalysisConfig(**{"backend": "openai", "endpoint":
                                 f"http://127.0.0.1:{self.port}/v1", "model": "fake-7b",
                                 **changes})

    async def handle(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        request, body = await _read(conn, stream)
        self.requests.append({
            "method": request.method.decode(), "path": request.target.decode(),
            "headers": {k.decode().lower(): v.decode() for k, v in request.headers},
            "json": json.loads(body) if body else None})
        answer = self.answer(self.requests[-1]) if callable(self.answer) else self.answer
        if answer == "stall":
            await trio.sleep(STALL_S)
            return
        status, data = (answer, b'{"error": "broken"}') if isinstance(answer, int) \
            else (200, completion(answer))
        await stream.send_all(
            conn.send(h11.Response(status_code=status, headers=[
                ("Content-Type", "application/json"), ("Content-Length", str(len(data))),
                ("Connection", "close")])) + conn.send(h11.Data(data=data))
            + conn.send(h11.EndOfMessage()))

    async def serve(self, nursery: trio.Nursery) -> FakeModel:
        listeners: list[Any] = await nursery.start(
            partial(trio.serve_tcp, self.handle, 0, host="127.0.0.1"))
        self.port = int(listeners[0].socket.getsockname()[1])
        return self

    def user_document(self, index: int = -1) -> dict[str, Any]:
        """The facts document the model was sent in request ``index``."""
        messages = self.requests[index]["json"]["messages"]
        loaded: dict[str, Any] = json.loads(messages[1]["content"])
        return loaded


async def _read(conn: h11.Connection, stream: trio.SocketStream) -> tuple[h11.Request, bytes]:
    request: h11.Request | None = None
    body = b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(65536))
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            assert request is not None
            return request, body


Answer = Callable[[dict[str, Any]], Any]

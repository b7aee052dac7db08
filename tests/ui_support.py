"""Shared pieces of the dashboard's tests: a fake dashboard view, the app with the
dashboard mounted on it, a clock the tests move, and a browser-like client that keeps
its cookie and reads the CSRF token from the pages."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import attrs
import trio
from api_support import MAX_BODY, TOKEN, Env, FakeView, light_view, start_env
from quart_trio import QuartTrio

from linnix.api.app import create_app
from linnix.api.tokens import TokenBook
from linnix.runtime.hostring import SERIES
from linnix.ui import dashboard

ORIGIN = "http://localhost"  # what the test client's requests name as their host
WALL = 1_800_000_000.0  # the Unix time the fake wall clock starts at
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
# what process_table gives of each process (the fake's procs records may hold more)
TABLE_FIELDS = ("pid", "ppid", "comm", "uid", "user", "unit", "container", "cpu_pct", "rss_mb",
                "fds")


class Clock:
    """Time that moves only when a test says so."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class DashView(FakeView):
    """The API's fake view, with the dashboard's reads."""

    def __init__(self, store: Any, actions: Any, hub: Any) -> None:
        super().__init__(store, actions, hub)
        self.status: dict[str, Any] = {
            "mode": "monitor", "source": "fake", "events": 1234, "lost": 0,
            "processes": 2, "rules": 7, "paused": {"actions": "active"}}
        self.host: dict[str, Any] = {"t": [], **{name: [] for name in SERIES}}
        self.histories: dict[int, dict[str, Any]] = {}  # pid: process_history's answer
        self.sources: dict[str, dict[str, Any]] = {}  # rule name: rule_source's answer
        self.firings: dict[str, dict[str, Any]] = {}  # rule name: its last firing
        self.table_reads = 0  # process_table calls

    def dashboard_status(self) -> dict[str, Any]:
        return self.status

    def host_history(self) -> dict[str, Any]:
        return self.host

    def process_table(self) -> list[dict[str, Any]]:
        self.table_reads += 1
        return [{k: p.get(k) for k in TABLE_FIELDS} for p in self.procs.values()]

    def process_history(self, pid: int) -> dict[str, Any] | None:
        return self.histories.get(pid)

    def rule_source(self, name: str) -> dict[str, Any] | None:
        return self.sources.get(name)

    def last_firings(self) -> dict[str, Any]:
        return self.firings


@attrs.define
class UiEnv:
    """An API test environment with the dashboard mounted, and the dashboard's clocks."""

    env: Env
    view: DashView
    app: QuartTrio
    clock: Clock
    wall: Clock

    def browser(self, address: str = "127.0.0.1") -> Browser:
        return Browser(self.app, address)


async def start_ui(tmp_path: Path, nursery: trio.Nursery) -> UiEnv:
    env = await start_env(tmp_path, nursery)
    view = DashView(env.view.store, env.manager, env.hub)
    clock, wall = Clock(), Clock(WALL)
    board = dashboard(view, env.book, clock=clock, wall=wall)  # type: ignore[arg-type]
    app = create_app(view, tokens=env.book, max_body=MAX_BODY,  # type: ignore[arg-type]
                     blueprints=(board,))
    return UiEnv(env, view, app, clock, wall)


def fake_app(store: Any) -> tuple[DashView, QuartTrio]:
    """The app with the dashboard over a fake view whose store is ``store`` (a fake with
    the reads the pages make), no action manager, and the admin's ``TOKEN``: cheap
    enough to render pages many times over (Hypothesis)."""
    view = DashView(store, None, light_view().hub)
    app = create_app(view, token=TOKEN, max_body=4096,  # type: ignore[arg-type]
                     blueprints=(dashboard(view, TokenBook(TOKEN)),))  # type: ignore[arg-type]
    return view, app


class Browser:
    """A client that keeps its cookies, like a browser, and sends what a browser sends
    with a form: its Origin and Sec-Fetch-Site."""

    def __init__(self, app: QuartTrio, address: str) -> None:
        self.client = app.test_client()
        self.address = address
        self.csrf: str | None = None

    async def get(self, path: str, **headers: str) -> tuple[int, str, Any]:
        response = await self.client.get(path, headers=headers,
                                         scope_base={"client": (self.address, 50000)})
        body = (await response.get_data()).decode()
        found = _CSRF.search(body)
        if found:
            self.csrf = found.group(1)
        return response.status_code, body, response.headers

    async def post(self, path: str, form: dict[str, str], *, origin: str | None = ORIGIN,
                   site: str | None = "same-origin",
                   headers: dict[str, str] | None = None) -> tuple[int, str, Any]:
        sent = dict(headers or {})
        if origin is not None:
            sent["Origin"] = origin
        if site is not None:
            sent["Sec-Fetch-Site"] = site
        response = await self.client.post(path, form=form, headers=sent,
                                          scope_base={"client": (self.address, 50000)})
        return (response.status_code, (await response.get_data()).decode(),
                response.headers)

    async def sign_in(self, token: str) -> tuple[int, str, Any]:
        return await self.post("/ui/signin", {"token": token})

    async def with_csrf(self, path: str, form: dict[str, str]) -> tuple[int, str, Any]:
        """Post ``form`` with the CSRF token of the last page that had one."""
        assert self.csrf is not None, "no page with a form was read yet"
        return await self.post(path, {**form, "csrf": self.csrf})

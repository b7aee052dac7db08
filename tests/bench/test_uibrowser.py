"""bench/uibrowser.py: the static files it copies with a page, and its copy served apart
from the agent.  (Its Chromium sessions run only in bench/dashboard.py.)"""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

import pytest
import trio
from api_support import TOKEN
from bench_support import load_bench
from support import ROOT
from ui_support import start_ui

uibrowser = load_bench("uibrowser")
STATIC = Path(ROOT) / "linnix" / "ui" / "static"
OVERVIEW = (b'<link rel="stylesheet" href="/ui/static/dash.css">'
            b'<script src="/ui/static/charts.js" defer></script><div id="live">x</div>')


class FakeClient:
    """The daemon's answers from a table: path -> (status, body)."""

    def __init__(self, pages: dict[str, tuple[int, bytes]]) -> None:
        self.pages = pages

    def call(self, method: str, path: str, *_: Any) -> tuple[int, bytes, float, Any]:
        status, body = self.pages.get(path, (404, b"Not Found"))
        return status, body, 0.004, {}


async def test_the_static_files_of_the_overview_are_those_it_loads(
        tmp_path: Path, nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    browser = ui.browser()
    await browser.sign_in(TOKEN)
    status, page, _ = await browser.get("/ui/")
    assert status == 200
    found = uibrowser.static_paths(page)
    assert "/ui/static/charts.js" in found and "/ui/static/vendor/htmx.min.js" in found
    assert all((STATIC / p.removeprefix("/ui/static/")).is_file() for p in found)


def test_the_copy_serves_the_overview_its_files_and_its_polls() -> None:
    client = FakeClient({"/ui/": (200, OVERVIEW), "/ui/static/dash.css": (200, b"body{}"),
                         "/ui/static/charts.js": (200, b"//js"),
                         "/ui/fragments/live": (200, b"<p>live</p>"),
                         "/ui/host.json": (200, b'{"t":[]}')})
    mirror = uibrowser.Mirror(client, "/ui/", ("/ui/fragments/live", "/ui/host.json"))
    try:
        for path, body in (("/ui/", OVERVIEW), ("/ui/static/charts.js", b"//js"),
                           ("/ui/fragments/live", b"<p>live</p>"),
                           ("/ui/host.json", b'{"t":[]}')):
            with urllib.request.urlopen(mirror.base + path, timeout=10) as got:
                assert got.read() == body
    finally:
        mirror.stop()
    assert not Path(mirror.root).exists()


def test_a_copy_of_a_page_that_fails_leaves_nothing_behind(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uibrowser.tempfile, "tempdir", str(tmp_path))
    client = FakeClient({"/ui/": (200, OVERVIEW)})  # its static files are missing
    with pytest.raises(SystemExit, match=r"GET /ui/static/charts\.js answered HTTP 404"):
        uibrowser.Mirror(client, "/ui/", ())
    assert list(tmp_path.iterdir()) == []

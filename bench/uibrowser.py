"""What bench/dashboard.py drives: headless Chromium sessions (selenium and Debian's
chromium and chromedriver) signed in to the dashboard, and a static copy of a page
served apart from the agent."""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

COOKIE = "linnix_session"
WAIT_S = 30.0
_STATIC = re.compile(r'(?:src|href)="(/ui/static/[^"]*)"')
# set in every document before its own scripts run: when the overview's three charts
# have their canvases (uPlot draws into them as it makes them)
CHARTS_PROBE = """
(function () {
  function check(obs) {
    if (document.querySelectorAll('[data-chart] canvas').length >= 3) {
      window.__benchCharts = performance.now();
      if (obs) { obs.disconnect(); }
    }
  }
  new MutationObserver(function (m, obs) { check(obs); })
    .observe(document, {childList: true, subtree: true});
})();
"""
TIMINGS = """
var n = performance.getEntriesByType('navigation')[0];
var p = performance.getEntriesByName('first-contentful-paint')[0];
if (!n || !n.loadEventEnd) { return null; }
return {status: n.responseStatus || null, fcp: p ? p.startTime : null,
        dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd,
        charts: window.__benchCharts || null};
"""
POLLS = """
var out = {};
performance.getEntriesByType('resource').forEach(function (e) {
  var path = new URL(e.name).pathname;
  out[path] = (out[path] || 0) + 1;
});
return out;
"""


def static_paths(page: str) -> list[str]:
    """The dashboard's static files a page loads (its scripts and styles)."""
    return sorted(set(_STATIC.findall(page)))


class Fetcher(Protocol):
    """What answers a GET of the agent: (status, body, seconds, headers)."""

    def call(self, method: str, path: str) -> tuple[int, bytes, float, Any]: ...


class Browser:
    """A headless Chromium driven through chromedriver, signed in to the dashboard."""

    def __init__(self, base: str, session: str) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                    "--disable-gpu", "--window-size=1280,900", "--no-first-run",
                    "--disable-extensions", "--disable-background-networking"):
            options.add_argument(arg)
        service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
        self.base = base
        self.driver: Any = webdriver.Chrome(options=options, service=service)
        self.driver.set_page_load_timeout(WAIT_S)
        self.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                                    {"source": CHARTS_PROBE})
        # the session's cookie, as the sign-in form sets it, set from a page of the same
        # origin that loads nothing: the first navigation to the overview finds its
        # scripts and styles not yet cached
        self.driver.get(base + "/health")
        self.driver.add_cookie({"name": COOKIE, "value": session, "path": "/ui/",
                                "httpOnly": True, "sameSite": "Strict"})
        self.blank()

    def wait(self, check: Callable[[], Any], what: str) -> Any:
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, WAIT_S, poll_frequency=0.05).until(
            lambda _: check(), message=f"waiting for {what}")

    def blank(self) -> None:
        self.driver.get("about:blank")

    def render(self, path: str, charts: bool) -> dict[str, float | None] | None:
        """Navigation timings of opening ``path`` (ms from its start); None: a 404."""
        self.driver.get(self.base + path)
        got = self.wait(lambda: self.driver.execute_script(TIMINGS), "the load event")
        if got["status"] == 404:
            return None
        if charts:
            got["charts"] = self.wait(
                lambda: self.driver.execute_script("return window.__benchCharts || null"),
                "the charts")
        return {k: got[k] for k in ("fcp", "dcl", "load", "charts")}

    def open(self, url: str) -> None:
        self.driver.get(url)
        self.driver.execute_script("performance.setResourceTimingBufferSize(100000);")

    def polls(self) -> dict[str, int]:
        """Requests made since the last :meth:`forget`, by path."""
        return dict(self.driver.execute_script(POLLS))

    def forget(self) -> None:
        self.driver.execute_script("performance.clearResourceTimings();")

    def quit(self) -> None:
        self.driver.quit()


class Mirror:
    """A static copy of a page (with its scripts, styles and the answers to the requests
    it repeats, as the agent gave them), served by this process on another port:
    browsers on it do the page's work and poll at its rate, but the agent serves none
    of it.  The control for what busy browsers cost the agent through the CPUs they
    share."""

    def __init__(self, client: Fetcher, page: str, polled: Sequence[str]) -> None:
        self.root = tempfile.mkdtemp(prefix="linnix-bench-mirror-")
        try:
            body = self._copy(client, page)
            for path in [*static_paths(body.decode()), *polled]:
                self._copy(client, path)
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise
        handler = functools.partial(_Quiet, directory=self.root)
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _copy(self, client: Fetcher, path: str) -> bytes:
        status, body, _, _ = client.call("GET", path)
        if status != 200:
            raise SystemExit(f"GET {path} answered HTTP {status}")
        file = os.path.join(self.root, path.strip("/"))
        if path.endswith("/"):
            file = os.path.join(file, "index.html")
        os.makedirs(os.path.dirname(file), exist_ok=True)
        with open(file, "wb") as f:
            f.write(body)
        return body

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        shutil.rmtree(self.root, ignore_errors=True)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # kept alive, as the agent's connections are

    def log_message(self, format: str, *args: Any) -> None:
        pass



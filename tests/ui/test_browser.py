"""The dashboard in a real Chromium, against a real daemon.

One daemon (eBPF source, monitor mode) with a rule that proposes to kill any process
named like the hostile name below, and one headless Chromium driven through the
system's chromedriver, both shared by the module's tests, which run in order: sign-in
(refused, redirected, accepted), the alert pushed in without a reload (and the page
saying so when its push stream is refused, then recovering), approving one
proposed kill (and analysing its incident on the incident page) and rejecting another,
CSRF, the alerts page (pushed, filtered, linking to an incident) and the incidents
list, the rules page (a broken rule file refused on reload, the running rule kept, then
mended) and a rule's page, the audit page filtered by the approver, the process tree
(filtered, a collapsed branch fetched when opened) and a process's page, hostile text,
the console.  Each page is
saved as a screenshot at 1280 and 390 pixels wide under the module's temporary folder
(printed).  Needs root, eBPF, chromium and chromium-driver: skipped with the reason
otherwise, mandatory in CI as root.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from live_support import (
    Api,
    Daemon,
    free_port,
    require_ebpf,
    require_module,
    require_program,
    require_root,
    wait_for,
)

from linnix.ui.push import STREAMS_MAX

pytestmark = [pytest.mark.root, pytest.mark.ebpf, pytest.mark.slow]

HOSTILE = "<img src=x onerror=alert(1)>"  # a file name: no slash in it
COMM = HOSTILE[:15]  # what the kernel keeps of it as the process's name
RULE = f"""
rule hostile_name {{
    when comm == "{COMM}" and exe == "PROGRAM" and age_s >= 0
    severity critical
    message "{{comm}}[{{pid}}] is here"
    action kill(grace = 1s)
}}
"""
WIDTHS = (1280, 390)
WAIT_S = 30.0


class Lab:
    """The daemon, the browser and the processes of the module."""

    def __init__(self, tmp: Path) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.tmp = tmp
        self.shots = tmp / "screenshots"
        self.shots.mkdir()
        self.children: list[subprocess.Popen[bytes]] = []
        rules = tmp / "rules"
        rules.mkdir()
        # its own program's processes only: another run of this module on the machine
        # starts processes of the same name, which the eBPF source sees too
        (rules / "ui.lnx").write_text(RULE.replace("PROGRAM", str(tmp / "bin" / HOSTILE)))
        config = tmp / "linnix.toml"
        config.write_text(f'[api]\nbind = "127.0.0.1:{free_port()}"\n[actions]\nttl = "10m"\n')
        self.daemon = Daemon(tmp / "state", "--source", "ebpf", "--config", str(config),
                             rules=[str(rules)])
        self.driver: Any = None
        self.daemon.wait_ready()
        self.api = Api(tmp / "state")
        wait_for(lambda: self.api.get("/health"), 10, "the API")
        self.base = self.api.base
        # the hostile name is a copy of sleep's executable: comm and exe both carry it
        self.program = tmp / "bin" / HOSTILE
        self.program.parent.mkdir()
        shutil.copy(shutil.which("sleep") or "/bin/sleep", self.program)
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                    "--disable-gpu", "--window-size=1280,900", "--no-first-run",
                    "--disable-extensions", "--disable-background-networking"):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
        self.driver = webdriver.Chrome(options=options, service=service)
        self.driver.set_page_load_timeout(WAIT_S)

    def target(self) -> subprocess.Popen[bytes]:
        p = subprocess.Popen([str(self.program), "600"])
        self.children.append(p)
        return p

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def wait(self, check: Any, what: str) -> Any:
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, WAIT_S, poll_frequency=0.2).until(
            lambda _: check(), message=f"waiting for {what}")

    def text(self, selector: str) -> str:
        """The rendered text of the first match, read in one step: htmx may replace the
        element between finding it and reading it."""
        found = self.driver.execute_script(
            "var e = document.querySelector(arguments[0]); return e ? e.innerText : '';",
            selector)
        return str(found).strip()

    def act(self, do: Any, what: str) -> None:
        """Do ``do()`` to an element of the live part, again if htmx replaced it
        meanwhile (a stale element)."""
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.support.ui import WebDriverWait

        def attempt(_: Any) -> bool:
            do()
            return True

        WebDriverWait(self.driver, WAIT_S, poll_frequency=0.2,
                      ignored_exceptions=(StaleElementReferenceException,)).until(
            attempt, message=f"waiting to {what}")

    def shoot(self, name: str) -> None:
        """Screenshots of the page at each width (the whole page's height)."""
        for width in WIDTHS:
            self.driver.set_window_size(width, 900)
            height = self.driver.execute_script("return document.body.scrollHeight")
            self.driver.set_window_size(width, max(600, min(int(height) + 100, 4000)))
            self.driver.save_screenshot(str(self.shots / f"{name}-{width}.png"))
        self.driver.set_window_size(1280, 900)

    def console(self) -> list[dict[str, Any]]:
        return list(self.driver.get_log("browser"))

    def no_dialog(self) -> None:
        from selenium.common.exceptions import NoAlertPresentException

        with pytest.raises(NoAlertPresentException):
            self.driver.switch_to.alert.text  # noqa: B018 -- reading it is the probe

    def close(self) -> None:
        if self.driver is not None:
            self.driver.quit()
        for p in self.children:
            if p.poll() is None:
                p.kill()
            p.wait()
        self.daemon.stop()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    require_root()
    require_ebpf()
    require_module("selenium", "selenium")
    require_program("chromium", "chromium")
    require_program("chromedriver", "chromium-driver")
    lab = Lab(tmp_path_factory.mktemp("browser"))
    print(f"screenshots in {lab.shots}")
    try:
        yield lab
    finally:
        lab.close()


def _errors(entries: list[dict[str, Any]], allowed: tuple[str, ...] = ()) -> list[str]:
    """The console's errors, but a refusal the test asked for (by its status line)."""
    return [e["message"] for e in entries if e["level"] == "SEVERE"
            and not any(a in e["message"] for a in allowed)]


def test_a_page_without_a_session_goes_to_sign_in(lab: Lab) -> None:
    lab.open("/ui/")
    assert lab.driver.current_url == lab.base + "/ui/signin"
    lab.shoot("signin")
    assert _errors(lab.console()) == []


def test_a_wrong_token_is_refused(lab: Lab) -> None:
    from selenium.webdriver.common.by import By

    lab.driver.find_element(By.ID, "token").send_keys("not-the-token-0123456789")
    lab.driver.find_element(By.ID, "signin-submit").click()
    lab.wait(lambda: lab.text("#signin-problem"), "the refusal")
    assert "That token is not valid" in lab.text("#signin-problem")
    assert lab.driver.get_cookies() == []
    lab.shoot("signin-refused")
    assert _errors(lab.console(), ("status of 401",)) == []


def test_sign_in_with_the_token_sets_a_strict_cookie(lab: Lab) -> None:
    from selenium.webdriver.common.by import By

    lab.open("/ui/signin")
    lab.driver.find_element(By.ID, "token").send_keys(lab.api.token)
    lab.driver.find_element(By.ID, "signin-submit").click()
    lab.wait(lambda: lab.text("#mode"), "the overview")
    assert lab.driver.current_url == lab.base + "/ui/"
    assert lab.api.token not in lab.driver.current_url
    (cookie,) = lab.driver.get_cookies()
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/ui/" and cookie["secure"] is False  # plain HTTP here
    assert lab.text("#mode") == "MONITOR mode"
    assert lab.text("#alerts-empty") == "No alerts firing; 1 rule loaded."
    assert lab.text("#count-source") == "ebpf"
    assert _errors(lab.console()) == []


def test_the_alert_appears_without_a_reload_and_stays_text(lab: Lab) -> None:
    from selenium.webdriver.common.by import By

    marker = lab.driver.execute_script("return window.performance.timeOrigin")
    # each swap of the live part, with what caused it: a push or the slow poll
    lab.driver.execute_script(
        "window.swapped = []; document.body.addEventListener('htmx:afterSwap', function (e) {"
        " var cause = (e.detail.requestConfig || {}).triggeringEvent;"
        " var alerts = document.getElementById('alerts');"
        " window.swapped.push([cause ? cause.type : 'poll', alerts ? alerts.innerText : '']);"
        " });")
    assert lab.driver.find_element(By.ID, "live-status").is_displayed() is False
    target = lab.target()
    lab.wait(lambda: f"{COMM} [{target.pid}]" in lab.text("#alerts"), "the alert")
    lab.wait(lambda: f"{COMM} [{target.pid}]" in lab.text("#actions"), "the proposed kill")
    # the same document: htmx swapped the alert in, nothing reloaded the page
    assert lab.driver.execute_script("return window.performance.timeOrigin") == marker
    # pushed: the swap that first showed it was asked for by /ui/events, not the poll
    swapped = lab.driver.execute_script("return window.swapped")
    assert next(cause for cause, text in swapped if f"{COMM} [{target.pid}]" in text) == \
        "linnix-live"
    assert lab.driver.find_elements(By.CSS_SELECTOR, "main img") == []
    assert f"{COMM}[{target.pid}] is here" in lab.text("#alerts")
    lab.wait(lambda: lab.text("#alerts a.incident").startswith("Incident "),
             "the link to the alert's incident")
    lab.no_dialog()
    # the charts drew the host ring's samples
    lab.wait(lambda: lab.driver.find_elements(By.CSS_SELECTOR, "[data-chart=cpu] canvas"),
             "the CPU chart")
    assert lab.text("#host-cpu_pct").endswith("%")
    lab.shoot("overview")
    assert _errors(lab.console()) == []


def test_a_burst_of_pushes_is_one_fetch(lab: Lab) -> None:
    """A thousand pushes at once (as a burst of alerts would come) make one fetch of the
    live part."""
    lab.driver.execute_script(
        "window.fetches = 0; window.swaps = 0;"
        " var live = document.getElementById('live');"
        " live.addEventListener('htmx:beforeRequest', function () { window.fetches += 1; });"
        " live.addEventListener('htmx:afterSwap', function () { window.swaps += 1; });"
        " for (var i = 0; i < 1000; i++) {"
        "   document.dispatchEvent(new CustomEvent('linnix-push', {detail: 'alert'})); }")
    lab.wait(lambda: lab.driver.execute_script("return window.swaps") >= 1, "the fetch")
    # one for the burst; a real event from the shared machine may have added another
    assert 1 <= lab.driver.execute_script("return window.fetches") <= 2
    assert _errors(lab.console()) == []


def _hold_streams(lab: Lab, cookie: dict[str, Any]) -> list[socket.socket]:
    """Open /ui/events with the browser's session until the daemon refuses one (503)."""
    host, port = lab.base.removeprefix("http://").rsplit(":", 1)
    held: list[socket.socket] = []
    for _ in range(STREAMS_MAX + 1):
        conn = socket.create_connection((host, int(port)), timeout=WAIT_S)
        conn.sendall(f"GET /ui/events HTTP/1.1\r\nHost: {host}:{port}\r\n"
                     f"Cookie: {cookie['name']}={cookie['value']}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += conn.recv(4096)
        if head.startswith(b"HTTP/1.1 503"):
            conn.close()
            return held
        assert head.startswith(b"HTTP/1.1 200"), head
        held.append(conn)
    raise AssertionError(f"more than {STREAMS_MAX} streams were served")


def test_with_every_stream_taken_the_page_says_paused_then_recovers(lab: Lab) -> None:
    from selenium.webdriver.common.by import By

    (cookie,) = lab.driver.get_cookies()
    lab.driver.get("about:blank")  # the page's stream ends
    held = _hold_streams(lab, cookie)
    try:
        lab.open("/ui/")  # its stream is refused: it says so, and polls meanwhile
        status = lab.driver.find_element(By.ID, "live-status")
        lab.wait(status.is_displayed, "the paused note")
        assert status.text.startswith("Live updates paused: reconnecting")
        lab.shoot("overview-paused")
    finally:
        for conn in held:
            conn.close()
    lab.wait(lambda: not status.is_displayed(), "the stream to reconnect by itself")
    assert _errors(lab.console(), ("/ui/events",)) == []


def _decide(lab: Lab, verb: str, reason: str) -> None:
    from selenium.webdriver.common.by import By

    lab.driver.find_element(By.ID, "reason").send_keys(reason)
    lab.driver.find_element(By.ID, verb).click()


def test_approve_the_proposed_kill(lab: Lab) -> None:
    from selenium.webdriver.common.by import By

    target = lab.children[-1]
    lab.act(lambda: lab.driver.find_element(By.CSS_SELECTOR, "#actions a.approve").click(),
            "click Approve…")
    lab.wait(lambda: lab.driver.find_elements(By.ID, "reason"), "the decision page")
    assert HOSTILE in lab.driver.find_element(By.CSS_SELECTOR, ".facts").text  # the exe
    assert lab.text("#status-value") == "pending"
    lab.shoot("action")
    _decide(lab, "approve", "ui test: a hostile name")
    lab.wait(lambda: lab.text("#status-value") == "succeeded", "the kill to succeed")
    assert target.wait(timeout=WAIT_S) is not None  # gone
    assert "Decided by admin: ui test: a hostile name" in lab.text("#action-status")
    lab.shoot("action-succeeded")
    lab.no_dialog()
    assert _errors(lab.console()) == []


def test_the_incident_page_of_the_approved_kill(lab: Lab) -> None:
    from selenium.webdriver.common.by import By

    lab.driver.find_element(By.ID, "action-incident").click()
    lab.wait(lambda: lab.text("#incident-target"), "the incident page")
    assert lab.text("#incident-target").startswith(f"{COMM} [")
    assert HOSTILE in lab.text("#incident-exe")
    assert lab.text("#analysis-none").startswith("No analysis: the rule has no analyze")
    lab.driver.find_element(By.ID, "analyze").click()  # the admin may: "Analyse now"
    lab.wait(lambda: lab.text("#analysis-facts"), "the analysis")
    facts = lab.text("#analysis-facts")
    assert facts.startswith("F1") and COMM in facts  # the hostile name, as text
    # the rule (its text once the daemon gives it), a chart of the number its condition
    # read, the snapshot and the timeline with the approval and its reason
    assert lab.text("#source-where").endswith("ui.lnx:2")
    assert lab.text("#rule-source").startswith("rule hostile_name {")
    lab.wait(lambda: lab.driver.find_elements(By.CSS_SELECTOR, "[data-values=age_s] canvas"),
             "the chart of age_s")
    assert lab.text("#values-texts").startswith(f"comm\n{COMM}")
    assert lab.text("#subtree th[scope=row]").endswith(f"{COMM} [{lab.children[0].pid}]")
    timeline = lab.text("#timeline")
    opened, approved = timeline.index("firing: the incident opened"), timeline.index(
        "approved by admin\nui test: a hostile name")
    assert opened < approved < timeline.index("analysed")
    assert lab.driver.find_elements(By.CSS_SELECTOR, "main img") == []
    lab.no_dialog()
    lab.shoot("incident")
    assert _errors(lab.console()) == []


def test_reject_another_by_keyboard(lab: Lab) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    lab.open("/ui/")
    target = lab.target()
    lab.wait(lambda: f"{COMM} [{target.pid}]" in lab.text("#actions"), "the second kill")
    # by keyboard: the focused button keeps the focus through the live part's refresh
    # (one made now, as a push of an action makes it)
    focused, href = lab.driver.execute_script(
        "var a = document.querySelector('#actions a.reject'); window.swaps = 0;"
        " document.body.addEventListener('htmx:afterSwap', function () { window.swaps += 1; });"
        " a.focus(); document.dispatchEvent(new CustomEvent('linnix-push', {detail: 'action'}));"
        " return [a.id, a.getAttribute('href')];")
    lab.wait(lambda: lab.driver.execute_script("return window.swaps") >= 1, "a refresh")
    assert focused and lab.driver.execute_script(
        "var a = document.activeElement; return [a.id, a.getAttribute('href')];") == \
        [focused, href]
    lab.act(lambda: lab.driver.switch_to.active_element.send_keys(Keys.ENTER), "press Enter")
    lab.wait(lambda: lab.driver.find_elements(By.ID, "reason"), "the decision page")
    _decide(lab, "reject", "ui test: keep it")
    lab.wait(lambda: lab.text("#status-value") == "rejected", "the rejection")
    assert target.poll() is None  # still running
    assert _errors(lab.console()) == []


def test_a_post_without_the_csrf_token_is_refused(lab: Lab) -> None:
    (cookie,) = lab.driver.get_cookies()
    target = lab.target()

    def pending() -> int | None:
        rows = lab.api.get("/actions?status=pending&limit=10")["actions"]
        return next((int(a["id"]) for a in rows if a["pid"] == target.pid), None)

    action_id = wait_for(pending, WAIT_S, "a third proposed kill")

    def post(path: str, form: str) -> int:
        request = urllib.request.Request(
            lab.base + path, data=form.encode(), method="POST",
            headers={"Cookie": f"{cookie['name']}={cookie['value']}",
                     "Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as err:
            return int(err.code)

    assert post(f"/ui/actions/{action_id}", "verb=approve&reason=x") == 403
    assert post("/ui/signout", "") == 403
    assert lab.api.get(f"/actions/{action_id}")["status"] == "pending"
    assert target.poll() is None
    lab.open("/ui/")  # the session is still open
    assert lab.driver.current_url == lab.base + "/ui/"


def test_the_alerts_page_is_live_filters_and_links_to_the_incident(lab: Lab) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    lab.open("/ui/alerts")
    lab.driver.execute_script(
        "window.swapped = []; document.body.addEventListener('htmx:afterSwap', function (e) {"
        " var cause = (e.detail.requestConfig || {}).triggeringEvent;"
        " window.swapped.push(cause ? cause.type : 'poll'); });")
    target = lab.target()
    lab.wait(lambda: f"{COMM} [{target.pid}]" in lab.text("#active-alerts"), "the new alert")
    assert lab.driver.execute_script("return window.swapped")[0] == "linnix-live"  # pushed
    assert lab.driver.find_elements(By.CSS_SELECTOR, "main img") == []
    lab.no_dialog()
    lab.shoot("alerts")
    # the killed process's alert resolved (other processes of this name may come and go
    # on a shared machine: only the module's own are looked for)
    killed = lab.children[0].pid
    Select(lab.driver.find_element(By.ID, "f-state")).select_by_value("resolved")
    lab.driver.find_element(By.ID, "filter").click()
    lab.wait(lambda: "state=resolved" in lab.driver.current_url, "the filtered page")
    assert lab.text("#active-empty").startswith("No active alert matches these filters")
    assert any("resolved (exited)" in r.text and f"{COMM} [{killed}]" in r.text
               for r in lab.driver.find_elements(By.CSS_SELECTOR, "#history li"))
    lab.shoot("alerts-resolved")
    # by keyboard: the text filter, found ignoring case, submitted with Enter
    text = lab.driver.find_element(By.ID, "f-text")
    text.send_keys(f"SRC=X ONER[{killed}]" + Keys.ENTER)  # as its message says it
    lab.wait(lambda: "q=SRC" in lab.driver.current_url, "the text filter")
    (row,) = lab.driver.find_elements(By.CSS_SELECTOR, "#history li")
    assert f"{COMM} [{killed}]" in row.text
    # its transition links to its incident
    row.find_element(By.CSS_SELECTOR, "a.incident").click()
    lab.wait(lambda: lab.text("#incident-target"), "the incident page")
    assert lab.text("#incident-target") == f"{COMM} [{killed}]"
    assert lab.text("#incident-state") == "resolved"
    assert _errors(lab.console()) == []


def test_the_incidents_page_lists_filters_and_links(lab: Lab) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    def listed() -> dict[int, str]:
        """The incidents listed of the module's own processes, by pid: their state."""
        rows = [" ".join(r.text.split())
                for r in lab.driver.find_elements(By.CSS_SELECTOR, "#incidents li")]
        return {p.pid: next((r for r in rows if f"{COMM} [{p.pid}]" in r), "")
                for p in lab.children}

    killed, *running = (p.pid for p in lab.children)
    lab.open("/ui/incidents")
    rows = listed()
    assert " resolved " in rows[killed] and "(exited)" in rows[killed]
    assert all(" open " in rows[pid] for pid in running)
    assert lab.driver.find_elements(By.CSS_SELECTOR, "main img") == []
    lab.shoot("incidents")
    Select(lab.driver.find_element(By.ID, "f-state")).select_by_value("open")
    lab.driver.find_element(By.ID, "filter").click()
    lab.wait(lambda: "state=open" in lab.driver.current_url, "the open incidents")
    rows = listed()
    assert rows[killed] == "" and all(" open " in rows[pid] for pid in running)
    link = lab.driver.find_element(
        By.XPATH, f"//ul[@id='incidents']/li[contains(., '[{running[0]}]')]/a")
    link.click()
    lab.wait(lambda: lab.text("#incident-state"), "the incident page")
    assert (lab.text("#incident-state"), lab.text("#incident-target")) == (
        "open", f"{COMM} [{running[0]}]")
    lab.no_dialog()


def test_rules_page_and_a_refused_reload_that_keeps_the_rules(lab: Lab) -> None:
    from selenium.webdriver.common.by import By

    lab.open("/ui/rules")
    lab.wait(lambda: lab.text("#rules"), "the rules page")
    assert "Last fired" in lab.text("#rules") and f"{COMM} [" in lab.text("#rules")
    def running() -> list[tuple[str, str, str]]:
        return [(r["name"], r["path"], r["condition"]) for r in lab.api.get("/rules")["rules"]]

    before = running()
    broken = lab.tmp / "rules" / "broken.lnx"
    broken.write_text(f'rule broken {{\n    when comm == "{HOSTILE}" and nosuch > 1\n}}\n')
    try:
        lab.driver.find_element(By.ID, "reload-note").send_keys("ui test: broken")
        lab.driver.find_element(By.ID, "reload").click()
        lab.wait(lambda: lab.text("#reload-refused"), "the refusal")
        assert lab.text("#reload-summary") == \
            "The rules have 1 error: the running rules are kept."
        assert f"{broken}:2:53 unknown name 'nosuch'" in lab.text("#reload-diagnostics")
        assert lab.text("#reload-diagnostics pre") == \
            f'when comm == "{HOSTILE}" and nosuch > 1\n{" " * 52}^^^^^^'  # innerText: trimmed
        assert lab.driver.find_elements(By.CSS_SELECTOR, "main img") == []
        lab.no_dialog()
        lab.shoot("rules-refused")
        assert running() == before  # the old rule runs on:
        target = lab.target()  # a new hostile process still gets its alert
        wait_for(lambda: any(a["pid"] == target.pid for a in lab.api.get("/alerts")["alerts"]),
                 WAIT_S, "the alert of the rule kept")
    finally:
        broken.unlink()
    lab.driver.find_element(By.ID, "reload").click()  # mended: taken, later tests unaffected
    lab.wait(lambda: lab.text("#reload-done"), "the reload")
    assert lab.text("#reload-summary") == \
        "The new rules run: 1 rule loaded (1 active), 0 warnings."
    assert _errors(lab.console(), ("status of 422",)) == []


def test_a_rule_page_shows_its_text_as_text(lab: Lab) -> None:
    from selenium.webdriver.common.by import By

    lab.driver.find_element(By.LINK_TEXT, "hostile_name").click()
    lab.wait(lambda: lab.text("#rule-source"), "the rule's page")
    assert f'when comm == "{COMM}"' in lab.text("#rule-source")
    assert lab.text("#rule-explain").startswith("rule hostile_name  (")
    assert lab.text("#rule-last").startswith("20") and f"{COMM} [" in lab.text("#rule-last")
    assert lab.driver.find_elements(By.CSS_SELECTOR, "main img") == []
    lab.no_dialog()
    lab.shoot("rule")
    assert _errors(lab.console()) == []


def test_the_audit_page_filters_by_the_approver(lab: Lab) -> None:
    from selenium.webdriver.common.by import By

    lab.open("/ui/audit")
    lab.wait(lambda: lab.text("#audit"), "the audit page")
    lab.driver.find_element(By.ID, "filter-actor").send_keys("admin")
    lab.driver.find_element(By.ID, "audit-filter").click()
    lab.wait(lambda: "actor=admin" in lab.driver.current_url, "the filtered page")
    who = {e.text for e in lab.driver.find_elements(By.CSS_SELECTOR, "#audit td.actor")}
    assert who == {"admin"}
    records = lab.text("#audit")
    assert "action.approved" in records and "ui test: a hostile name" in records
    assert "rules.reload" in records and "ui test: broken" in records
    lab.driver.find_element(By.ID, "chain-verify").click()
    lab.wait(lambda: lab.text("#chain-verdict"), "the chain's check")
    assert lab.text("#chain-verdict").startswith("The chain holds: ")
    assert {e.text for e in lab.driver.find_elements(By.CSS_SELECTOR, "#audit td.actor")} == \
        {"admin"}  # the same page, still filtered
    lab.no_dialog()
    lab.shoot("audit")


def _until(lab: Lab, check: Any, what: str) -> Any:
    """Wait for ``check()``, reloading the page between tries (what it waits for is on
    the server, not pushed to this page)."""
    return lab.wait(lambda: check() or lab.driver.refresh(), what)


def test_the_process_tree_filtered_by_the_hostile_name(lab: Lab) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    target = lab.target()
    lab.open("/ui/processes")
    assert lab.text("#tree-summary").endswith("Expand all · Collapse all")
    field = lab.driver.find_element(By.ID, "filter-name")
    field.send_keys(COMM)
    field.send_keys(Keys.ENTER)  # a GET form: the filter is in the page's address
    link = f'#tree a[href="/ui/processes/{target.pid}"]'
    _until(lab, lambda: lab.driver.find_elements(By.CSS_SELECTOR, link), "the process")
    assert "name=%3Cimg" in lab.driver.current_url
    assert lab.text(link) == COMM  # the hostile name, as text
    assert lab.driver.find_elements(By.CSS_SELECTOR, "main img") == []
    # its ancestors are listed, open; a branch closes and opens again by keyboard
    summary = lab.driver.find_element(By.CSS_SELECTOR, "#tree summary")
    details = summary.find_element(By.XPATH, "..")
    assert details.get_property("open") is True
    lab.driver.execute_script("arguments[0].focus();", summary)
    lab.driver.switch_to.active_element.send_keys(Keys.ENTER)
    assert details.get_property("open") is False
    lab.driver.switch_to.active_element.send_keys(Keys.SPACE)
    assert details.get_property("open") is True
    lab.no_dialog()
    lab.shoot("processes")
    assert _errors(lab.console()) == []


def test_the_page_of_the_hostile_process(lab: Lab) -> None:
    from selenium.webdriver.common.by import By

    target = lab.children[-1]
    lab.driver.find_element(By.CSS_SELECTOR, f'#tree a[href="/ui/processes/{target.pid}"]') \
        .click()
    lab.wait(lambda: lab.text("#proc-comm"), "the process page")
    assert lab.text("#proc-comm") == COMM
    assert lab.text("#proc-exe") == str(lab.program)
    assert lab.text("#proc-cmdline") == f"{lab.program} 600"
    assert lab.driver.find_elements(By.CSS_SELECTOR, "main img") == []
    lab.wait(lambda: lab.driver.find_elements(By.CSS_SELECTOR,
                                              "[data-chart=process_cpu] canvas"),
             "the CPU chart")
    # the rule's alert and its proposed kill: this process's (its pid and its start)
    _until(lab, lambda: "hostile_name" in lab.text("#proc-alerts")
           and "kill" in lab.text("#proc-actions"), "its alert and action")
    assert f"{COMM}[{target.pid}] is here" in lab.text("#proc-alerts")
    lab.no_dialog()
    lab.shoot("process")
    assert _errors(lab.console()) == []


def test_a_collapsed_branch_is_fetched_when_opened_by_keyboard(lab: Lab) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    target = lab.children[-1]  # a child of this process, like the daemon and the driver
    lab.open(f"/ui/processes?root={os.getpid()}&open=0")
    link = f'#tree a[href="/ui/processes/{target.pid}"]'
    assert lab.driver.find_elements(By.CSS_SELECTOR, link) == []  # not in the page yet
    summary = lab.driver.find_element(By.CSS_SELECTOR, "#tree > li > details > summary")
    lab.driver.execute_script("arguments[0].focus();", summary)
    lab.driver.switch_to.active_element.send_keys(Keys.ENTER)
    lab.wait(lambda: lab.driver.find_elements(By.CSS_SELECTOR, link), "the branch's children")
    assert lab.text(link) == COMM  # the hostile name, as text
    assert lab.driver.find_elements(By.CSS_SELECTOR, "main img") == []
    assert lab.driver.find_elements(By.CSS_SELECTOR, "#tree > li > details > ul > li.lazy") \
        == []  # its placeholder replaced
    lab.no_dialog()
    lab.shoot("processes-branch")
    assert _errors(lab.console()) == []


def test_sign_out_ends_the_session(lab: Lab) -> None:
    from selenium.webdriver.common.by import By

    lab.driver.find_element(By.CSS_SELECTOR, ".signout button").click()
    lab.wait(lambda: lab.driver.current_url.endswith("/ui/signin?out=1"), "the sign-out")
    lab.open("/ui/")
    assert lab.driver.current_url == lab.base + "/ui/signin"
    assert _errors(lab.console()) == []
    audit = json.dumps(lab.api.audit())
    assert "ui test: a hostile name" in audit and "ui test: keep it" in audit

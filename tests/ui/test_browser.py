"""The dashboard in a real Chromium, against a real daemon.

One daemon (eBPF source, monitor mode) with a rule that proposes to kill any process
named like the hostile name below, and one headless Chromium driven through the
system's chromedriver, both shared by the module's tests, which run in order: sign-in
(refused, redirected, accepted), the alert appearing without a reload, approving one
proposed kill (and analysing its incident on the incident page) and rejecting another,
CSRF, hostile text, the console.  Each page is
saved as a screenshot at 1280 and 390 pixels wide under the module's temporary folder
(printed).  Needs root, eBPF, chromium and chromium-driver: skipped with the reason
otherwise, mandatory in CI as root.
"""

from __future__ import annotations

import json
import shutil
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

pytestmark = [pytest.mark.root, pytest.mark.ebpf, pytest.mark.slow]

HOSTILE = "<img src=x onerror=alert(1)>"  # a file name: no slash in it
COMM = HOSTILE[:15]  # what the kernel keeps of it as the process's name
RULE = f"""
rule hostile_name {{
    when comm == "{COMM}"
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
        (rules / "ui.lnx").write_text(RULE)
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
    target = lab.target()
    lab.wait(lambda: f"{COMM} [{target.pid}]" in lab.text("#alerts"), "the alert")
    lab.wait(lambda: f"{COMM} [{target.pid}]" in lab.text("#actions"), "the proposed kill")
    # the same document: htmx swapped the alert in, nothing reloaded the page
    assert lab.driver.execute_script("return window.performance.timeOrigin") == marker
    assert lab.driver.find_elements(By.CSS_SELECTOR, "main img") == []
    assert f"{COMM}[{target.pid}] is here" in lab.text("#alerts")
    lab.no_dialog()
    # the charts drew the host ring's samples
    lab.wait(lambda: lab.driver.find_elements(By.CSS_SELECTOR, "[data-chart=cpu] canvas"),
             "the CPU chart")
    assert lab.text("#host-cpu_pct").endswith("%")
    lab.shoot("overview")
    assert _errors(lab.console()) == []


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
    focused, href = lab.driver.execute_script(
        "var a = document.querySelector('#actions a.reject'); window.swaps = 0;"
        " document.body.addEventListener('htmx:afterSwap', function () { window.swaps += 1; });"
        " a.focus(); return [a.id, a.getAttribute('href')];")
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


def test_sign_out_ends_the_session(lab: Lab) -> None:
    from selenium.webdriver.common.by import By

    lab.driver.find_element(By.CSS_SELECTOR, ".signout button").click()
    lab.wait(lambda: lab.driver.current_url.endswith("/ui/signin?out=1"), "the sign-out")
    lab.open("/ui/")
    assert lab.driver.current_url == lab.base + "/ui/signin"
    assert _errors(lab.console()) == []
    audit = json.dumps(lab.api.audit())
    assert "ui test: a hostile name" in audit and "ui test: keep it" in audit

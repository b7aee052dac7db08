"""The rules page through the real app: the list with its filters and last firings, a
rule's page (its text as loaded, its explanation), and the reload button, refused
with the checker's diagnostics by a real daemon's reload while its rules run on,
refused to a reader and without the CSRF token; hostile text stays text."""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

import trio
from api_support import MAX_BODY, TOKEN, start_env
from htmltext_support import TEMPLATE_TAGS, parse
from hypothesis import example, given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from support import write
from ui_support import Browser, Clock, UiEnv, fake_app, start_ui

from linnix.actions.store import AsyncStore
from linnix.api.app import create_app
from linnix.engine.core import Core
from linnix.procfs import Clock as BootClock
from linnix.runtime import daemon as d
from linnix.runtime.live import LiveEngine
from linnix.runtime.view import History, LiveView
from linnix.ui import dashboard
from linnix.ui.ruledata import DIAGNOSTICS_SHOWN, RULES_SHOWN

HOSTILE = "<img src=x onerror=alert(1)>"


def _rule(name: str, tags: tuple[str, ...] = (), *, enabled: bool = True,
          firing: int = 0) -> dict[str, Any]:
    return {"name": name, "path": f"/etc/linnix/rules/{name}.lnx", "line": 3,
            "scope": "process", "severity": "warning", "enabled": enabled, "tags": list(tags),
            "condition": "cpu_pct > 90", "for_s": 0.0, "actions": [],
            "counts": {"pending": 1, "firing": firing}}


async def signed_in(ui: UiEnv, token: str = TOKEN) -> Browser:
    browser = ui.browser()
    assert (await browser.sign_in(token))[0] == 303
    status, body, _ = await browser.get("/ui/rules")
    assert status == 200, body
    return browser


# ---- the list and a rule's page ---------------------------------------------------------

async def test_every_rule_is_listed_with_its_last_firing(tmp_path: Path,
                                                         nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    ui.view.rule_list = [_rule("cpu_hog", ("cpu", "noisy"), firing=2),
                         _rule("fd_leak", ("fds",), enabled=False)]
    ui.view.firings = {"cpu_hog": {"time": "2027-01-15T08:00:00.000Z", "pid": 42,
                                   "comm": "python3", "message": "busy"}}
    browser = await signed_in(ui)
    status, body, _ = await browser.get("/ui/rules")
    assert status == 200
    assert '<a href="/ui/rules" aria-current="page">Rules</a>' in body
    assert "2 rules loaded" in body
    assert '<a class="rule" href="/ui/rules/cpu_hog">cpu_hog</a>' in body
    assert "/etc/linnix/rules/cpu_hog.lnx:3" in body and "2 firing · 1 pending" in body
    assert 'Last fired 2027-01-15T08:00:00.000Z: <span class="target">python3 [42]</span>' \
        in body
    assert "Never fired since the daemon started." in body  # fd_leak
    assert '<span class="badge disabled">disabled</span>' in body
    assert '<a href="/ui/rules?tag=noisy">noisy</a>' in body


async def test_the_list_filters_by_name_and_tag(tmp_path: Path, nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    ui.view.rule_list = [_rule("cpu_hog", ("cpu",)), _rule("cpu_spike", ("cpu", "page")),
                         _rule("fd_leak", ("fds",))]
    browser = await signed_in(ui)

    async def names(query: str) -> list[str]:
        status, body, _ = await browser.get(f"/ui/rules?{query}")
        assert status == 200
        return [r["name"] for r in ui.view.rule_list if f'">{r["name"]}</a>' in body]

    assert await names("name=CPU") == ["cpu_hog", "cpu_spike"]  # any case
    assert await names("tag=page") == ["cpu_spike"]
    assert await names("name=hog&tag=cpu") == ["cpu_hog"]
    assert await names("tag=pag") == []  # a tag matches exactly
    status, body, _ = await browser.get("/ui/rules?name=nothing&tag=fds")
    assert status == 200 and "0 of 3 rules" in body
    assert "No rule matches a name containing “nothing” with the tag “fds”; 3 rules loaded." \
        in html.unescape(body)
    assert '<option value="fds" selected>fds</option>' in body


async def test_a_long_list_is_cut_and_says_so(tmp_path: Path, nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    ui.view.rule_list = [_rule(f"r{i}") for i in range(RULES_SHOWN + 3)]
    browser = await signed_in(ui)
    _, body, _ = await browser.get("/ui/rules")
    assert body.count('class="rule-row') == RULES_SHOWN
    assert "3 more: narrow the list with the filters." in body


async def test_no_rule_loaded_says_what_that_means(tmp_path: Path,
                                                   nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    browser = await signed_in(ui)
    _, body, _ = await browser.get("/ui/rules")
    assert "No rule is loaded: the daemon watches nothing until a reload takes some." in body


async def test_a_rule_page_shows_its_text_explanation_and_newest_incident(
        tmp_path: Path, nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    ui.view.rule_list = [_rule("cpu_hog", ("cpu",)), _rule("quiet")]
    ui.view.sources["cpu_hog"] = {"name": "cpu_hog", "path": "/r.lnx", "line": 3,
                                  "source": 'rule cpu_hog {\n    when comm == "<b>"\n}',
                                  "explain": "rule cpu_hog  (/r.lnx:3)\n  scope  process\n"}
    ui.view.firings = {"cpu_hog": {"time": "T", "pid": None, "comm": None,
                                   "cgroup": "/system.slice/x.service", "message": "m<i>"}}
    incident = ui.env.store.open_incident(
        rule="cpu_hog", severity="warning", scope="process", pid=1, comm="c", start=1.0,
        message="m", labels={}, history=[], subtree=[], host={})
    browser = await signed_in(ui)
    status, body, _ = await browser.get("/ui/rules/cpu_hog")
    assert status == 200
    assert ('<pre class="source" id="rule-source" tabindex="0" aria-label="The rule\'s '
            'text, from /etc/linnix/rules/cpu_hog.lnx:3">rule cpu_hog {\n    when comm == '
            '&#34;&lt;b&gt;&#34;\n}</pre>') in body
    assert "rule cpu_hog  (/r.lnx:3)\n  scope  process\n</pre>" in body
    assert "T: <span class=\"target\">/system.slice/x.service</span> — " \
           "<span class=\"message\">m&lt;i&gt;</span>" in body
    assert f'<a href="/ui/incidents/{incident}">Incident {incident}</a> (open)' in body
    assert '<a href="/ui/rules" aria-current="page">Rules</a>' in body
    _, body, _ = await browser.get("/ui/rules/quiet")
    assert "Never fired since the daemon started." in body
    assert "None kept in the store." in body and "The rule's text is not known." in body
    status, body, _ = await browser.get("/ui/rules/nosuch")
    assert status == 404 and "No loaded rule is named &#39;nosuch&#39;." in body


# ---- reloading --------------------------------------------------------------------------

async def test_a_reader_or_an_approver_may_not_reload(tmp_path: Path,
                                                      nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    for name in ("rita", "alice"):
        browser = await signed_in(ui, ui.env.tokens[name])
        _, body, _ = await browser.get("/ui/rules")
        assert 'id="reload-not-allowed"' in body and 'action="/ui/rules/reload"' not in body
        status, body, _ = await browser.with_csrf("/ui/rules/reload", {})
        assert status == 403, body
        assert f"The token &#39;{name}&#39; has the role" in body
        assert "reloading the rules needs admin." in body
    assert ui.view.reloads == []


async def test_a_reload_note_must_be_plain_text(tmp_path: Path, nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    browser = await signed_in(ui)
    status, body, _ = await browser.with_csrf("/ui/rules/reload", {"note": "a\u202eb"})
    assert status == 400 and ui.view.reloads == []
    assert "Not reloaded: &#39;note&#39; must be plain text: it has U+202E" in body
    status, body, _ = await browser.with_csrf("/ui/rules/reload", {"note": " new disk rules "})
    assert status == 200 and ui.view.reloads == [("admin", "new disk rules")]
    assert "The new rules run: 0 rules loaded (7 active), 0 warnings." in body


def live_daemon(rules: Path, state: Path, store: AsyncStore, env: Any) -> LiveView:
    """The view of a real daemon whose engine and store are built but not running:
    reloads read, check and swap rules as ``linnix run`` does."""
    daemon = d.Daemon(d.DaemonOptions(rules=[str(rules)], state_dir=str(state)),
                      out=io.StringIO(), err=io.StringIO())
    daemon.core = core = Core(daemon.build().require_plan(), 0.5)
    daemon.engine = LiveEngine(core, BootClock(), lambda out: None)
    daemon.astore, daemon.action_manager = store, env.manager
    daemon.hub, daemon.registry, daemon.history = env.hub, CollectorRegistry(), History()
    return LiveView(daemon)


async def test_a_refused_reload_shows_the_diagnostics_and_the_old_rules_run_on(
        tmp_path: Path, nursery: trio.Nursery) -> None:
    env = await start_env(tmp_path, nursery)
    rules = write(tmp_path / "rules", {"a.lnx": "rule a {\n    when cpu_pct > 50\n}\n"})
    view = live_daemon(rules, tmp_path / "state", env.view.store, env)
    board = dashboard(view, env.book, clock=Clock(), wall=Clock(1.8e9))  # type: ignore[arg-type]
    app = create_app(view, tokens=env.book, max_body=MAX_BODY,  # type: ignore[arg-type]
                     blueprints=(board,))
    browser = Browser(app, "127.0.0.1")
    assert (await browser.sign_in(TOKEN))[0] == 303
    assert (await browser.get("/ui/rules"))[0] == 200
    write(rules, {"b.lnx": f'rule b {{\n    when comm == "{HOSTILE}" and nosuch > 1\n}}\n'})
    status, body, _ = await browser.with_csrf("/ui/rules/reload", {"note": "add b"})
    assert status == 422
    text = html.unescape(body)
    assert "Reload refused" in text and "The rules have 1 error: the running rules are kept." \
        in text
    assert '<span class="badge">error[E201]</span>' in body
    assert f"{rules / 'b.lnx'}:2:53" in text and "unknown name 'nosuch'" in text
    excerpt = f'    when comm == "{HOSTILE}" and nosuch > 1\n{" " * 52}^^^^^^'
    assert f'aria-label="Where, in {rules / "b.lnx"}:2:53">{excerpt}</pre>' in text
    assert "<img" not in body
    assert [r["name"] for r in view.rules()] == ["a"]  # the old rules still run
    assert '<a class="rule" href="/ui/rules/a">a</a>' in body  # and the page lists them
    assert 'href="/ui/rules/b"' not in body
    [audited] = await env.view.store.audit_log(event="rules.reload")
    assert audited["actor"] == "admin" and audited["detail"]["accepted"] is False
    assert audited["detail"]["note"] == "add b"
    write(rules, {"b.lnx": "rule b: rss_mb > 1\n"})  # mended: taken
    status, body, _ = await browser.with_csrf("/ui/rules/reload", {})
    assert status == 200 and [r["name"] for r in view.rules()] == ["a", "b"]
    assert "The new rules run: 2 rules loaded (2 active), 0 warnings." in body


# ---- hostile text -----------------------------------------------------------------------

class _Store:
    """The store's read the rule page makes."""

    def __init__(self) -> None:
        self.incidents: list[dict[str, Any]] = []

    async def earlier_incidents(self, rule: str, before: int,
                                limit: int = 50) -> list[dict[str, Any]]:
        return self.incidents[:limit]


VIEW, APP = fake_app(_Store())
BROWSER = Browser(APP, "127.0.0.1")
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)


async def _render(comm: str, message: str, text: str) -> list[str]:
    VIEW.rule_list = [{**_rule("r", (text,)), "path": text}]
    VIEW.firings = {"r": {"time": message, "pid": 7, "comm": comm, "message": message}}
    VIEW.sources = {"r": {"source": text, "explain": message}}
    VIEW.reload_answer = (False, [
        {"level": "error", "code": "E201", "path": text, "line": 1, "col": 2,
         "message": message, "excerpt": f"{text}\n  ^^", "hint": comm}] * 2)
    browser = BROWSER  # signed in once: the examples need not open a session each
    if browser.csrf is None:
        assert (await browser.sign_in(TOKEN))[0] == 303
    bodies = []
    for path in ("/ui/rules", "/ui/rules/r"):
        status, body, _ = await browser.get(path)
        assert status == 200, body
        bodies.append(body)
    status, body, _ = await browser.with_csrf("/ui/rules/reload", {})
    assert status == 422, body
    return [*bodies, body]


@given(comm=texts, message=texts, text=texts)
@example(comm=HOSTILE, message="<script>alert(1)</script>", text='"><svg onload=alert(1)>')
@example(comm="{{ 7*7 }}", message="&lt;b&gt;", text="' onmouseover='x")
def test_hostile_text_is_rendered_as_text(comm: str, message: str, text: str) -> None:
    listing, page, refused = trio.run(_render, comm, message, text)
    for body in (listing, page, refused):
        parsed = parse(body)
        assert parsed.tags <= TEMPLATE_TAGS, parsed.tags - TEMPLATE_TAGS
        assert not any(name.startswith("on") for name in parsed.attributes)
    assert f"{comm} [7]".strip() in parse(listing).text
    shown = parse(page).text
    for value in (f"{comm} [7]", message, text):
        assert value.strip() in shown
    assert message.strip() in parse(refused).text


def test_the_refused_reload_shows_at_most_so_many_diagnostics() -> None:
    async def render() -> str:
        VIEW.reload_answer = (False, [{"level": "error", "code": "E1", "path": "p",
                                       "line": 1, "col": 1, "message": "m"}] * 105)
        browser = Browser(APP, "127.0.0.1")
        assert (await browser.sign_in(TOKEN))[0] == 303
        await browser.get("/ui/rules")
        return (await browser.with_csrf("/ui/rules/reload", {}))[1]

    body = trio.run(render)
    assert body.count('<li class="diag diag-error">') == DIAGNOSTICS_SHOWN
    assert "The rules have 105 errors" in body and "… and 5 more" in body

"""The dashboard's process tree and process page through the real app and a fake view:
sign-in, the tree's totals, sort, filter and collapsed branches, what an empty tree or
filter says, the page of one process (its place in the tree, its alerts and actions, its
charts' samples, its connections), an exited pid, and hostile text kept as text."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import trio
from api_support import TOKEN
from htmltext_support import parse
from hypothesis import example, given
from hypothesis import strategies as st
from markupsafe import escape
from ui_support import Browser, UiEnv, fake_app, start_ui

from linnix.procfs import HZ
from linnix.ui import processpages
from linnix.ui.proctree import build
from linnix.ui.security import CSP

HOSTILE = "<img src=x onerror=alert(1)>"
_ROW = re.compile(r'<span class="pn( match)?"><a href="/ui/processes/(\d+)"(?: autofocus)?>'
                  r'([^<]*)</a> \d+</span>((?:<span>[^<]*</span>)+)'
                  r'(?:<span><a href="[^"]*" class="from">([\d,]+ below)<span)?')
_DETAILS = re.compile(r'<details( open)?(?: hx-get="[^"]*"[^>]*)?><summary><span class="pn[^"]*">'
                      r'<a href="/ui/processes/(\d+)"')


def record(pid: int, ppid: int, comm: str, cpu: float | None = None,
           rss: float | None = None, fds: int | None = None, **more: Any) -> dict[str, Any]:
    """A process as the view's ``process(pid)`` gives it."""
    return {"pid": pid, "ppid": ppid, "comm": comm, "exe": more.get("exe", f"/usr/bin/{comm}"),
            "cmdline": more.get("cmdline", f"{comm} --serve"), "uid": more.get("uid", 0),
            "user": more.get("user", "root"), "cgroup": more.get("cgroup"),
            "unit": more.get("unit"), "container": more.get("container"),
            "start": more.get("start", 5.0), "age_s": more.get("age_s", 3725.0),
            "cpu_pct": cpu, "rss_mb": rss, "fds": fds, "fd_limit": more.get("fd_limit", 1024),
            "fd_pct": None, "threads": more.get("threads", 1), "children": 0,
            "connections": more.get("connections")}


#  1 init ─┬─ 10 sshd ── 11 sshd ── 12 bash ── 13 needle (alice, in a container)
#          └─ 20 cron (never measured) ── 21 job
#  2 kthreadd ── 3 kworker
PROCS = [
    record(1, 0, "init", 0.5, 10.0, 50, unit="init.scope"),
    record(10, 1, "sshd", 1.0, 5.0, 10, unit="ssh.service"),
    record(11, 10, "sshd", 0.0, 4.0, 8, unit="ssh.service"),
    record(12, 11, "bash", 2.0, 3.0, 4, uid=1000, user="alice", unit="session-3.scope"),
    record(13, 12, "needle", 50.0, 100.0, None, uid=1000, user="alice",
           container="abc123def456", unit="docker-abc123def456.scope",
           cgroup="/system.slice/docker-abc123def456.scope", cmdline="needle --deep 1"),
    record(20, 1, "cron", None, None, None, unit="cron.service"),
    record(21, 20, "job", 3.0, 1.0, 5, unit="cron.service"),
    record(2, 0, "kthreadd", 0.0, None, None),
    record(3, 2, "kworker", 0.25, None, None),
]


async def tree_ui(tmp_path: Path, nursery: trio.Nursery) -> tuple[UiEnv, Browser]:
    """The app over the tree above, and a browser signed in as the admin."""
    ui = await start_ui(tmp_path, nursery)
    ui.view.procs = {p["pid"]: dict(p) for p in PROCS}
    browser = ui.browser()
    assert (await browser.sign_in(TOKEN))[0] == 303
    return ui, browser


def rows(body: str) -> dict[int, list[str]]:
    """The tree's rows by pid: the name, then each value as shown."""
    return {int(m.group(2)): [html.unescape(m.group(3)),
                              *map(html.unescape, re.findall(r"<span>([^<]*)</span>",
                                                             m.group(4))),
                              *([m.group(5)] if m.group(5) else [])]
            for m in _ROW.finditer(body)}


def order(body: str) -> list[int]:
    return [int(m.group(2)) for m in _ROW.finditer(body)]


def opened(body: str) -> dict[int, bool]:
    return {int(m.group(2)): bool(m.group(1)) for m in _DETAILS.finditer(body)}


async def test_each_row_has_its_own_and_its_subtrees_values(tmp_path: Path,
                                                            nursery: trio.Nursery) -> None:
    ui, browser = await tree_ui(tmp_path, nursery)
    status, body, headers = await browser.get("/ui/processes?open=all")
    assert status == 200 and headers["Content-Security-Policy"] == CSP
    assert '<a href="/ui/processes" aria-current="page">Processes</a>' in body  # the nav
    shown = rows(body)
    # name, user, unit or container, CPU, memory, fds, subtree CPU, memory, fds, below
    assert shown[1] == ["init", "root", "init.scope", "0.5%", "10.0 MB", "50", "56.5%",
                        "123.0 MB", "77", "6 below"]
    assert shown[20] == ["cron", "root", "cron.service", "—", "—", "—", "3.0%", "1.0 MB",
                         "5", "1 below"]  # not measured: "—", never 0
    assert shown[13] == ["needle", "alice", "container abc123def456", "50.0%", "100.0 MB",
                         "—", "50.0%", "100.0 MB", "—"]
    assert shown[3][2] == "—"  # no unit or container known
    assert "9 live processes." in body
    assert ui.view.table_reads == 1  # one snapshot for the whole tree


async def test_the_tree_reads_no_process_record(tmp_path: Path,
                                                nursery: trio.Nursery) -> None:
    ui, browser = await tree_ui(tmp_path, nursery)

    async def refused(*args: Any) -> Any:
        raise AssertionError("the tree read a process record (a /proc read in the daemon)")

    ui.view.processes = refused  # type: ignore[method-assign]
    ui.view.process = refused  # type: ignore[method-assign]
    ui.view.graph = refused  # type: ignore[method-assign]
    status, body, _ = await browser.get("/ui/processes?open=all&name=s")
    assert status == 200 and set(rows(body)) == {1, 10, 11, 12}  # sshd, sshd, bash


async def test_one_snapshot_is_linked_once_for_the_page_and_its_branches(
        tmp_path: Path, nursery: trio.Nursery, monkeypatch: Any) -> None:
    ui, browser = await tree_ui(tmp_path, nursery)
    snapshot = ui.view.process_table()
    monkeypatch.setattr(ui.view, "process_table", lambda: snapshot)  # the table holds still
    built = []
    monkeypatch.setattr(processpages, "build", lambda rows: built.append(rows) or build(rows))
    for path in ("/ui/processes", "/ui/processes/11/children?at=3", "/ui/processes?name=x"):
        assert (await browser.get(path))[0] == 200
    assert len(built) == 1
    changed = [*snapshot, record(99, 1, "new")]  # the view's next snapshot
    monkeypatch.setattr(ui.view, "process_table", lambda: changed)
    _, body, _ = await browser.get("/ui/processes?open=all")
    assert len(built) == 2 and 99 in rows(body)


async def test_sort_is_a_link_that_survives_a_reload(tmp_path: Path,
                                                     nursery: trio.Nursery) -> None:
    ui, browser = await tree_ui(tmp_path, nursery)
    ui.view.procs[30] = record(30, 1, "hog", 90.0, 2.0, 1)
    _, body, _ = await browser.get("/ui/processes?open=all")
    assert [p for p in order(body) if ui.view.procs[p]["ppid"] == 1] == [30, 10, 20]  # CPU
    assert '<a href="/ui/processes?open=all" id="sort-cpu" aria-current="true">CPU</a>' in body
    assert '<a href="/ui/processes?sort=name&amp;open=all" id="sort-name">name</a>' in body
    for sort, expected in (("fds", [10, 20, 30]), ("memory", [10, 30, 20]),
                           ("pid", [10, 20, 30]), ("name", [20, 30, 10])):
        status, body, _ = await browser.get(f"/ui/processes?sort={sort}&open=all")
        assert status == 200
        assert [p for p in order(body) if ui.view.procs[p]["ppid"] == 1] == expected, sort
        assert f'id="sort-{sort}" aria-current="true"' in body
        # the filter's form keeps the sort and how far the tree is open
        assert f'<input type="hidden" name="sort" value="{sort}">' in body
        assert '<input type="hidden" name="open" value="all">' in body


async def test_a_filter_that_matches_a_deep_child_keeps_its_ancestors(
        tmp_path: Path, nursery: trio.Nursery) -> None:
    _, browser = await tree_ui(tmp_path, nursery)
    status, body, _ = await browser.get("/ui/processes?name=NEEDLE")
    assert status == 200
    assert order(body) == [1, 10, 11, 12, 13]
    assert [int(m.group(2)) for m in _ROW.finditer(body) if m.group(1)] == [13]  # marked
    assert opened(body) == {1: True, 10: True, 11: True, 12: True}  # all open to show it
    assert 'id="expand-all"' not in body  # nothing a filtered tree could open or close
    assert "1 of 9 live processes match name “NEEDLE”, shown with their 4 ancestors." in body
    assert 'value="NEEDLE"' in body and 'id="filter-clear"' in body
    for query, expected in (("user=alice", [1, 10, 11, 12, 13]), ("user=1000", [1, 10, 11, 12, 13]),
                            ("unit=cron", [1, 20, 21]), ("container=ABC123", [1, 10, 11, 12, 13]),
                            ("name=sshd&unit=ssh", [1, 10, 11]), ("name=+kworker+", [2, 3])):
        _, body, _ = await browser.get(f"/ui/processes?{query}")
        assert order(body) == expected, query


async def test_an_empty_filter_result_or_table_explains_itself(tmp_path: Path,
                                                               nursery: trio.Nursery) -> None:
    ui, browser = await tree_ui(tmp_path, nursery)
    status, body, _ = await browser.get("/ui/processes?name=nothing&user=bob")
    assert status == 200 and order(body) == []
    assert ('id="tree-empty">No process matches name “nothing”, user “bob” among 9 live '
            'processes. <a href="/ui/processes">Clear the filter</a>.') in body
    ui.view.procs = {1: record(1, 0, "init"), 2: record(2, 1, "sshd")}
    _, body, _ = await browser.get("/ui/processes?name=sshd")
    assert "1 of 2 live processes match name “sshd”, shown with their 1 ancestor." in body
    _, body, _ = await browser.get("/ui/processes?name=init")
    assert "1 of 2 live processes match name “init”." in body
    ui.view.procs = {1: record(1, 0, "init")}
    _, body, _ = await browser.get("/ui/processes")
    assert "1 live process." in body and "in collapsed branches" not in body
    ui.view.procs = {}
    _, body, _ = await browser.get("/ui/processes")
    assert ('id="tree-empty">No live processes are known: the daemon has not read the '
            'process table yet.') in body


async def test_branches_expand_and_collapse_without_script(tmp_path: Path,
                                                           nursery: trio.Nursery) -> None:
    _, browser = await tree_ui(tmp_path, nursery)
    _, body, _ = await browser.get("/ui/processes?sort=pid")
    # two levels open; below them a branch is collapsed, its processes not in the page
    assert opened(body) == {1: True, 10: True, 11: False, 20: True, 2: True}
    assert set(rows(body)) == {1, 10, 11, 20, 21, 2, 3}
    assert "7 listed; 2 more in collapsed branches or behind “more…”." in body
    assert '<a href="/ui/processes?sort=pid&amp;open=all" id="expand-all">' in body
    assert '<a href="/ui/processes?sort=pid&amp;open=0" id="collapse-all">' in body
    # the collapsed branch fetches its children when opened; without script, its
    # contents (and the count of what is below it) link to the tree from it
    assert ('<details hx-get="/ui/processes/11/children?at=3&amp;sort=pid" '
            'hx-trigger="toggle once" hx-target="find ul" hx-swap="innerHTML">') in body
    assert ('<ul><li class="lazy"><a href="/ui/processes?root=11&amp;sort=pid">The tree '
            'from process 11</a> (2 below)</li></ul>') in body
    assert rows(body)[11][-1] == "2 below"
    assert '<script src="/ui/static/tree.js" defer></script>' in body
    _, body, _ = await browser.get("/ui/processes?sort=pid&open=all")
    assert set(opened(body).values()) == {True} and "in collapsed branches" not in body
    _, body, _ = await browser.get("/ui/processes?sort=pid&open=0")
    assert opened(body) == {1: False, 2: False}
    assert "2 listed; 7 more in collapsed branches or behind “more…”." in body
    # a leaf has no disclosure; every branch is closed after its children
    _, body, _ = await browser.get("/ui/processes?sort=pid&open=all")
    assert body.count("<details") == body.count("</details>") == 6
    assert '<li><div class="row"><span class="pn"><a href="/ui/processes/13">' in body


async def test_a_query_the_page_cannot_follow_says_why(tmp_path: Path,
                                                       nursery: trio.Nursery) -> None:
    _, browser = await tree_ui(tmp_path, nursery)
    for query, said in (("sort=rss", "Sort by one of cpu, memory, fds, pid, name, not 'rss'."),
                        ("open=49", "'open' is a number of levels from 0 to 48, or 'all', "
                                    "not '49'."),
                        ("open=-1", "not '-1'"), ("open=%C2%B2", "not '²'"),
                        ("name=" + "x" * 201, "A filter's name has at most 200 characters.")):
        status, body, _ = await browser.get(f"/ui/processes?{query}")
        assert status == 400, query
        assert str(escape(said)) in body, body


async def test_a_branch_is_fetched_when_it_is_opened(tmp_path: Path,
                                                    nursery: trio.Nursery) -> None:
    ui, browser = await tree_ui(tmp_path, nursery)
    reads = ui.view.table_reads
    status, body, headers = await browser.get("/ui/processes/11/children?at=3&sort=pid")
    assert status == 200 and headers["Content-Security-Policy"] == CSP
    assert "<html" not in body and ui.view.table_reads == reads + 1  # one snapshot
    assert set(rows(body)) == {12} and opened(body) == {12: False}  # collapsed in turn
    assert 'hx-get="/ui/processes/12/children?at=4&amp;sort=pid"' in body
    assert "autofocus" not in body  # focus stays on the branch opened
    _, body, _ = await browser.get("/ui/processes/11/children?at=3&sort=pid&open=all")
    assert set(rows(body)) == {12, 13} and opened(body) == {12: True}
    assert body.count("<details") == body.count("</details>") == 1
    # a filter's matches and their ancestors only, every branch open
    _, body, _ = await browser.get("/ui/processes/1/children?at=1&name=needle")
    assert order(body) == [10, 11, 12, 13]
    assert [int(m.group(2)) for m in _ROW.finditer(body) if m.group(1)] == [13]
    _, body, _ = await browser.get("/ui/processes/0/children?at=0&open=0&sort=pid")
    assert order(body) == [1, 2]  # pid 0: the roots


async def test_a_long_list_of_siblings_is_cut_with_a_more_link(tmp_path: Path,
                                                              nursery: trio.Nursery) -> None:
    ui, browser = await tree_ui(tmp_path, nursery)
    for pid in range(100, 220):  # 120 more children of init
        ui.view.procs[pid] = record(pid, 1, f"w{pid}", 0.0, 1.0, 1)
    _, body, _ = await browser.get("/ui/processes?sort=pid&open=1")
    assert [p for p in order(body) if ui.view.procs[p]["ppid"] == 1] == \
        [10, 20, *range(100, 148)]  # 50 of 122
    more = ('<li class="more"><a href="/ui/processes?root=1&amp;skip=50&amp;sort=pid&amp;'
            'open=1" hx-get="/ui/processes/1/children?at=1&amp;skip=50&amp;sort=pid&amp;'
            'open=1" hx-target="closest li" hx-swap="outerHTML">72 more…<span '
            'class="visually-hidden"> at this level</span></a></li>')
    assert more in body
    assert "53 listed; 76 more in collapsed branches or behind “more…”." in body
    status, body, _ = await browser.get("/ui/processes/1/children?at=1&skip=50&sort=pid"
                                        "&open=1")
    assert status == 200 and order(body) == list(range(148, 198))
    assert body.count("autofocus") == 1 and '<a href="/ui/processes/148" autofocus>' in body
    assert "skip=100" in body and "22 more…" in body
    _, body, _ = await browser.get("/ui/processes/1/children?at=1&skip=100&sort=pid&open=1")
    assert order(body) == list(range(198, 220)) and "more…" not in body
    # without script, the same link opens the tree from init with its next children
    _, body, _ = await browser.get("/ui/processes?root=1&skip=50&sort=pid&open=1")
    assert order(body) == [1, *range(148, 198)]
    assert ('<a href="/ui/processes?root=1&amp;skip=100&amp;sort=pid&amp;open=1" '
            'hx-get="/ui/processes/1/children?at=1&amp;skip=100&amp;sort=pid&amp;open=1"') \
        in body and "22 more…" in body
    _, body, _ = await browser.get("/ui/processes?root=1&skip=500&sort=pid&open=1")
    assert order(body) == [1] and opened(body) == {1: False}  # none of its children left


async def test_the_tree_from_one_process(tmp_path: Path, nursery: trio.Nursery) -> None:
    _, browser = await tree_ui(tmp_path, nursery)
    status, body, _ = await browser.get("/ui/processes?root=10&sort=pid")
    assert status == 200 and order(body) == [10, 11, 12]
    assert opened(body) == {10: True, 11: True, 12: False}
    assert ('<p id="tree-root">The tree from <a href="/ui/processes/10">sshd</a> 10, under '
            '<a href="/ui/processes?sort=pid&amp;root=1">init 1</a>. <a href="/ui/processes'
            '?sort=pid" id="tree-whole">The whole tree</a></p>') in body
    assert "4 processes in this tree, of 9 live processes." in body
    assert '<input type="hidden" name="root" value="10">' in body  # a filter stays in it
    _, body, _ = await browser.get("/ui/processes?root=10&name=bash")
    assert order(body) == [10, 11, 12]
    assert "1 of 4 processes match name “bash”, shown with their 2 ancestors." in body
    _, body, _ = await browser.get("/ui/processes?root=10&name=cron")
    assert 'id="tree-empty">No process matches name “cron” among 4 processes.' in body


async def test_a_branch_or_tree_of_an_exited_process_is_a_404(tmp_path: Path,
                                                              nursery: trio.Nursery) -> None:
    _, browser = await tree_ui(tmp_path, nursery)
    for pid in (424242, 2**31, 10**30):
        status, body, _ = await browser.get(f"/ui/processes/{pid}/children?at=1")
        assert status == 404 and "<html" not in body, pid
        assert (f'<li class="gone" id="tree-gone-{pid}">Process {pid} has exited: <a '
                'href="/ui/processes">reload the tree</a>.</li>') in body
    status, body, _ = await browser.get("/ui/processes?root=424242")
    assert status == 404 and "No live process has pid 424242" in body


async def test_a_branch_without_a_session_sends_the_page_to_sign_in(
        tmp_path: Path, nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    ui.view.procs = {p["pid"]: dict(p) for p in PROCS}
    status, body, headers = await ui.browser().get("/ui/processes/1/children?at=1")
    assert (status, headers["HX-Redirect"], body) == (401, "/ui/signin", "")
    assert ui.view.table_reads == 0


async def test_a_branch_query_the_fragment_cannot_follow_says_why(
        tmp_path: Path, nursery: trio.Nursery) -> None:
    _, browser = await tree_ui(tmp_path, nursery)
    for query, said in (("at=49", "'at' is a number from 0 to 48, not '49'."),
                        ("at=x", "not 'x'"), ("at=%C2%B2", "not '²'"), ("at=-1", "not '-1'"),
                        ("skip=99999999999", "'skip' is a number from 0 to 2,147,483,648"),
                        ("sort=rss", "Sort by one of"), ("open=all&root=x", "'root' is"),
                        ("name=" + "x" * 201, "at most 200 characters")):
        status, body, _ = await browser.get(f"/ui/processes/1/children?{query}")
        assert status == 400, query
        assert str(escape(said)) in body, (query, body)
    status, body, _ = await browser.get("/ui/processes?root=-5")
    assert status == 400 and "&#39;root&#39; is a number from 0" in body


async def test_a_process_page_shows_the_process_and_its_place(tmp_path: Path,
                                                             nursery: trio.Nursery) -> None:
    _, browser = await tree_ui(tmp_path, nursery)
    status, body, headers = await browser.get("/ui/processes/13")
    assert status == 200 and headers["Content-Security-Policy"] == CSP
    assert 'id="proc-comm">needle</span> [13]' in body
    assert 'id="proc-exe">/usr/bin/needle<' in body
    assert '<code class="cmdline" id="proc-cmdline">needle --deep 1</code>' in body
    assert 'id="proc-user">alice (uid 1000)<' in body
    # the wall clock reads 1,800,000,000: started 3,725 s before it
    assert 'id="proc-started">2027-01-15T06:57:55.000Z (1h 02m ago)<' in body
    assert 'id="proc-unit">docker-abc123def456.scope<' in body
    assert 'id="proc-container">abc123def456<' in body
    assert 'id="proc-cpu">50.0%<' in body and 'id="proc-fds">—<' in body
    ancestors = re.findall(r'<li><a href="/ui/processes/(\d+)">', body.split(
        'id="proc-ancestors"')[1].split("</ol>")[0])
    assert ancestors == ["12", "11", "10", "1"]  # nearest first, each a link
    assert 'id="proc-children-none">No children.' in body
    assert "<dt>Subtree (1 process)</dt>" in body
    _, body, _ = await browser.get("/ui/processes/1")
    assert 'id="proc-ancestors-none">None: no parent' in body
    children = body.split('id="proc-children"')[1].split("</ul>")[0]
    assert re.findall(r'href="/ui/processes/(\d+)"', children) == ["10", "20"]
    assert ('<a href="/ui/processes/10">sshd [10]</a> <span class="help">subtree of 4:'
            '</span> 53.0% CPU · 112.0 MB · 22 fds') in children
    assert '<dt>Subtree (7 processes)</dt><dd id="proc-subtree">56.5% CPU · 123.0 MB · 77 fds<' \
        in body
    assert 'id="proc-fds">50 of 1,024<' in body


async def test_an_exited_pid_is_a_404_page_that_links_to_the_tree(
        tmp_path: Path, nursery: trio.Nursery) -> None:
    _, browser = await tree_ui(tmp_path, nursery)
    for pid in (424242, 0, 2**31, 10**30):
        status, body, headers = await browser.get(f"/ui/processes/{pid}")
        assert status == 404, pid
        assert f"No live process has pid {pid}: it has exited (or never ran)." in body
        assert '<a href="/ui/processes" id="back-to-tree">' in body
        assert headers["Content-Security-Policy"] == CSP
        status, body, _ = await browser.get(f"/ui/processes/{pid}/history.json")
        assert status == 404 and '"not_found"' in body


async def test_the_charts_draw_the_process_history(tmp_path: Path,
                                                   nursery: trio.Nursery) -> None:
    ui, browser = await tree_ui(tmp_path, nursery)
    _, body, _ = await browser.get("/ui/processes/13")  # the view keeps no samples of it
    assert '<div class="charts" data-chart-source="">' in body
    assert 'id="proc-charts-note" data-chart-note>No recent samples of this process' in body
    history = {"t": [1.8e9 - 2, 1.8e9 - 1], "cpu_pct": [12.5, None], "rss_mb": [30.0, 31.0],
               "fds": [None, 8]}
    ui.view.histories[13] = history
    _, body, _ = await browser.get("/ui/processes/13")
    assert '<div class="charts" data-chart-source="/ui/processes/13/history.json">' in body
    assert 'data-chart="process_cpu"' in body and 'data-chart="process_rss"' in body
    assert '<script src="/ui/static/charts.js" defer></script>' in body
    status, text, headers = await browser.get("/ui/processes/13/history.json")
    assert (status, headers["Content-Type"]) == (200, "application/json")
    assert headers["Cache-Control"] == "no-store"
    assert text == ('{"t":[1799999998.0,1799999999.0],"cpu_pct":[12.5,null],'
                    '"rss_mb":[30.0,31.0],"fds":[null,8]}')


async def test_the_connections_or_why_there_are_none(tmp_path: Path,
                                                     nursery: trio.Nursery) -> None:
    ui, browser = await tree_ui(tmp_path, nursery)
    _, body, _ = await browser.get("/ui/processes/13")  # null: nothing is captured
    assert ('id="proc-net-none">Connections are not captured: no rule reads a network '
            'name.<') in body
    ui.view.procs[13]["connections"] = []
    _, body, _ = await browser.get("/ui/processes/13")
    assert 'id="proc-net-none">No connections seen.<' in body
    # start 5.0 + age 3,725 s: the engine's clock reads 3,730 now
    ui.view.procs[13]["connections"] = [
        {"ts": 3700.0, "kind": "listen", "family": "inet", "addr": "0.0.0.0", "port": 8080},
        {"ts": 3729.5, "kind": "connect", "family": "unix", "addr": f"/tmp/{HOSTILE}",
         "port": None}]
    _, body, _ = await browser.get("/ui/processes/13")
    table = body.split('id="proc-net"')[1].split("</table>")[0]
    assert re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td><td class=\"target\">"
                      r"(.*?)</td><td>(.*?)</td></tr>", table) == [
        ("2027-01-15T07:59:59.500Z", "connect", "unix", "/tmp/" + html.escape(HOSTILE), "—"),
        ("2027-01-15T07:59:30.000Z", "listen", "inet", "0.0.0.0", "8080")]  # newest first


async def test_the_alerts_and_actions_of_this_process_only(tmp_path: Path,
                                                           nursery: trio.Nursery) -> None:
    ui, browser = await tree_ui(tmp_path, nursery)
    _, body, _ = await browser.get("/ui/processes/13")
    assert 'id="proc-alerts-none">No alert is pending or firing for this process.' in body
    assert 'id="proc-actions-none">No action was proposed for this process.' in body
    alert = {"rule": "hot", "state": "firing", "severity": "critical", "pid": 13,
             "comm": "needle", "start": 5.0, "message": "needle is hot", "time": "t0"}
    ui.view.active = [alert, {**alert, "pid": 12, "message": "bash is hot"},
                      {**alert, "start": 1.0, "message": "an earlier needle"}]
    ui.env.manager.boot_offset = lambda: 100.0  # the engine's clock began 100 s after boot

    def add(pid: int, start: float | None, kind: str = "kill") -> int:
        return ui.env.store.add_action(
            incident_id=None, rule="hot", kind=kind, params={}, pid=pid,
            start_ticks=None if start is None else round((start + 100.0) * HZ),
            comm="needle", exe=None, status="pending", mode="monitor", expires_at=None)

    mine = [add(13, 5.0), add(13, 5.0, "renice")]
    add(13, 2.0)  # an earlier process with the same pid
    add(13, None)  # its start unknown: not known to be this one
    add(12, 5.0)
    _, body, _ = await browser.get("/ui/processes/13")
    alerts = body.split('id="proc-alerts"')[1].split("</ul>")[0]
    assert "needle is hot" in alerts and "bash is hot" not in alerts
    assert "an earlier needle" not in alerts
    actions = body.split('id="proc-actions"')[1].split("</ul>")[0]
    assert re.findall(r'<a href="/ui/actions/(\d+)">', actions) == [str(i) for i in mine[::-1]]
    assert f'Action {mine[1]}: renice</a>' in actions


async def test_a_live_process_named_elsewhere_links_to_its_page(
        tmp_path: Path, nursery: trio.Nursery) -> None:
    ui, browser = await tree_ui(tmp_path, nursery)
    ui.view.active = [{"rule": "hot", "state": "firing", "severity": "critical", "pid": 13,
                       "comm": "needle", "start": 5.0, "message": "m", "time": "t0"}]
    action_id = ui.env.store.add_action(
        incident_id=None, rule="hot", kind="kill", params={}, pid=13, start_ticks=1,
        comm="needle", exe=None, status="pending", mode="monitor", expires_at=None)
    incident_id = ui.env.store.open_incident(
        rule="hot", severity="critical", scope="process", pid=13, comm="needle", start=5.0,
        message="m", labels={}, history=[], subtree=[], host={})
    link = '<a href="/ui/processes/13">needle [13]</a>'
    _, body, _ = await browser.get("/ui/fragments/live")
    assert body.count(link) == 2  # the alert, and the action waiting for approval
    _, body, _ = await browser.get(f"/ui/actions/{action_id}")
    assert '<a href="/ui/processes/13" id="action-target">needle [13]</a>' in body
    _, body, _ = await browser.get(f"/ui/incidents/{incident_id}")
    assert link in body


# ---- hostile text ------------------------------------------------------------------------

class _Store:
    """The reads the process page makes of the store."""

    async def actions(self, status: str | None = None, pid: int | None = None,
                      limit: int = 100, before: int | None = None) -> list[dict[str, Any]]:
        return [{"id": 7, "kind": "kill", "rule": "r", "status": "pending", "pid": pid,
                 "comm": "x", "time": "t", "expires_at": None, "start_ticks": 1}]


VIEW, APP = fake_app(_Store())
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
# every element and attribute the process templates write; anything else came from the data
TAGS = {"html", "head", "meta", "title", "link", "script", "body", "a", "header", "form",
        "input", "span", "button", "nav", "ul", "li", "main", "h1", "h2", "h3", "section",
        "label", "div", "p", "details", "summary", "dl", "dt", "dd", "code", "ol", "strong",
        "time", "figure", "figcaption", "table", "thead", "tbody", "tr", "th", "td"}


async def _pages(comm: str, text: str, query: str) -> list[str]:
    VIEW.procs = {
        1: record(1, 0, "init", 1.0, 1.0, 1),
        4242: record(4242, 1, comm, 1.0, 2.0, 3, exe=text, cmdline=text, user=text,
                     unit=text, container=text, cgroup=text,
                     connections=[{"ts": 1.0, "kind": "connect", "family": "unix",
                                   "addr": text, "port": None}])}
    VIEW.active = [{"rule": "r", "state": "firing", "severity": "critical", "pid": 4242,
                    "comm": comm, "start": 5.0, "message": text, "time": "now"}]
    browser = Browser(APP, "127.0.0.1")
    assert (await browser.sign_in(TOKEN))[0] == 303
    bodies = []
    for path in ("/ui/processes?open=all", f"/ui/processes?name={query}",
                 "/ui/processes/4242", "/ui/processes/1/children?at=1&open=0",
                 "/ui/processes?root=4242"):
        status, body, _ = await browser.get(path)
        assert status in (200, 400), body
        bodies.append(body)
    return bodies


@given(comm=texts, text=texts, query=st.sampled_from(["", "%3Cimg", "%22%3E", "x"]))
@example(comm=HOSTILE, text='"><svg onload=alert(1)>', query="%3Cimg")
@example(comm="{{ 7*7 }}", text="&lt;b&gt;\n\t<script>alert(1)</script>", query="")
def test_hostile_text_is_rendered_as_text(comm: str, text: str, query: str) -> None:
    for body in trio.run(_pages, comm, text, query):
        page = parse(body)
        assert page.tags <= TAGS, page.tags - TAGS
        assert not any(name.startswith("on") for name in page.attributes)
    tree, _, page, branch, rooted = trio.run(_pages, comm, text, "")
    for body in (tree, branch, rooted):
        shown = parse(body).text
        assert (comm.strip() or "?") in shown or not comm.strip()
    text_of_page = parse(page).text
    for value in (comm, text):
        assert value.strip() in text_of_page or not value.strip()


def test_the_hostile_name_is_shown_whole() -> None:
    tree, found, page, branch, rooted = trio.run(_pages, HOSTILE, HOSTILE, "%3Cimg")
    for body in (tree, found, page, branch, rooted):
        assert "&lt;img src=x onerror=alert(1)&gt;" in body and "<img" not in body
    for body in (found, branch, rooted):
        assert '<a href="/ui/processes/4242">&lt;img src=x onerror=alert(1)&gt;</a>' in body
    assert 'value="&lt;img"' in found

"""bench/dashboard.py: its tree's size, its arithmetic, what it reads from the daemon's
answers, and its tables (a page not built yet shows as such).  The bench itself (a
daemon, 5,000 processes, five browsers) is not run here: it takes minutes."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from bench_support import load_bench
from quart import Response

from linnix.ui.security import COOKIE, set_session_cookie

bench = load_bench("dashboard")


def _size(shape: tuple[int, ...]) -> int:
    """Processes in bench/proctree's tree of this fan-out, its root included."""
    size, level = 1, 1
    for n in shape:
        level *= n
        size += level
    return size


def test_the_tree_is_the_smallest_10_by_10_by_k_that_holds_enough() -> None:
    assert bench.fanout(5000) == (10, 10, 49)
    assert _size((10, 10, 49)) == 5011
    for wanted in (1, 111, 112, 5011, 5012, 20_000):
        a, b, k = bench.fanout(wanted)
        assert _size((a, b, k)) >= wanted
        assert k == 1 or _size((a, b, k - 1)) < wanted


def test_medians_leave_out_what_was_not_measured() -> None:
    assert bench.median([3.0, None, 1.0, 2.0]) == 2.0
    assert bench.median([None, None]) is None
    assert bench.ms(None) == "—" and bench.ms(1234.56) == "1,234.6 ms"


def test_differences_pair_the_rounds() -> None:
    assert bench.differences([20.0, 22.0], [21.5, 21.0]) == [1.5, -1.0]
    with pytest.raises(ValueError):
        bench.differences([20.0], [21.0, 22.0])


def test_cpu_per_request_subtracts_what_the_agent_uses_idle() -> None:
    # 10 s of requests used 1.2 s of CPU; idle, the agent uses 0.1 s a second
    assert bench.per_request(1.2, 10.0, 0.5, 5.0, 100) == pytest.approx(0.002)
    assert bench.cpu_pct(0.25, 10.0) == pytest.approx(2.5)


def test_a_target_is_met_missed_or_not_measured() -> None:
    assert bench.verdict(2.0, 2.0) == "met"
    assert bench.verdict(2.01, 2.0) == "**missed**"
    assert bench.verdict(None, 500.0) == "not measured"
    assert bench.verdict(1.0, None) == ""


def test_the_session_id_is_read_from_the_cookie_the_dashboard_sets() -> None:
    response = Response("")
    set_session_cookie(response, "s3ss10n-id", False)
    assert bench.COOKIE == COOKIE
    assert bench.cookie_of(response.headers["Set-Cookie"]) == "s3ss10n-id"
    assert bench.cookie_of("other=1; Path=/") is None
    assert bench.cookie_of(None) is None


def test_the_live_processes_and_the_churn_are_read_from_the_metrics() -> None:
    text = ("# HELP linnix_processes Live processes in the process table\n"
            "# TYPE linnix_processes gauge\nlinnix_processes 5123.0\n"
            "linnix_processes_total_x 1\n"
            'linnix_events_total{kind="exec"} 10.0\n'
            'linnix_events_total{kind="exit"} 7.0\n'
            'linnix_events_total{kind="fork"} 12.0\n'
            'linnix_events_total{kind="sample"} 90000.0\n')
    assert bench.processes_of(text) == 5123
    assert bench.processes_of("linnix_events_total 3\n") is None
    assert bench.churn_of(text) == 29.0  # forks, execs and exits, not samples
    assert bench.churn_of("") == 0.0


class FakeClient:
    """The daemon's answers from a table: path -> (status, body), a redirect's body
    being its Location."""

    def __init__(self, pages: dict[str, tuple[int, bytes]]) -> None:
        self.pages = pages
        self.asked: list[str] = []

    def call(self, method: str, path: str, *_: Any) -> tuple[int, bytes, float, Any]:
        self.asked.append(path)
        status, body = self.pages.get(path, (404, b"Not Found"))
        headers = {"Location": body.decode()} if 300 <= status < 400 else {}
        return status, body, 0.004, headers


OVERVIEW = (b'<link rel="stylesheet" href="/ui/static/dash.css">'
            b'<script src="/ui/static/charts.js" defer></script><div id="live">x</div>')


def test_a_page_not_built_yet_is_said_so(capsys: pytest.CaptureFixture[str]) -> None:
    client = FakeClient({"/ui/": (200, OVERVIEW), "/ui/fragments/live": (200, b"<p></p>"),
                         "/ui/host.json": (200, b"{}")})
    server = bench.server_times(client, 3)
    assert server["/ui/processes"] == {"built": False}
    assert client.asked.count("/ui/processes") == 1  # not asked again after the 404
    assert server["/ui/"] == {"built": True, "first": 4.0, "bytes": len(OVERVIEW),
                              "median": 4.0, "max": 4.0}
    bench.print_server(server)
    rows = capsys.readouterr().out.splitlines()
    assert "| overview (`/ui/`) | 4.0 ms | 4.0 ms | 4.0 ms | 122 B |  |" in rows
    assert "| process tree (`/ui/processes`) | not built yet | | | | <= 500 ms |" in rows
    # a branch's fragment is timed, but the target is the page's
    server = bench.server_times(client, 3, [("/ui/processes/1/children?at=1", "a branch")])
    bench.print_server(server, [("/ui/processes/1/children?at=1", "a branch")])
    assert "| a branch (`/ui/processes/1/children?at=1`) | not built yet | | | |  |" in \
        capsys.readouterr().out.splitlines()
    assert bench.is_tree("/ui/processes?name=x") and not bench.is_tree("/ui/processes/1")


def test_a_page_is_timed_through_its_redirects_as_a_browser_gets_it() -> None:
    client = FakeClient({"/ui/processes": (303, b"/ui/processes?sort=cpu"),
                         "/ui/processes?sort=cpu": (200, b"<ul></ul>")})
    assert bench.get(client, "/ui/processes") == (200, b"<ul></ul>", 0.008)
    # not off the dashboard, and not for ever
    away = FakeClient({"/ui/": (303, b"http://elsewhere/"),
                       "/ui/a": (302, b"/ui/b"), "/ui/b": (302, b"/ui/a")})
    assert bench.get(away, "/ui/")[0] == 303
    assert bench.get(away, "/ui/a")[0] == 302 and len(away.asked) == 1 + bench.MAX_REDIRECTS


def test_a_page_that_fails_stops_the_bench() -> None:
    with pytest.raises(SystemExit, match="GET /ui/ answered HTTP 500"):
        bench.server_times(FakeClient({"/ui/": (500, b"")}), 3)


class FakeBrowser:
    """Navigation timings from a table; the tree's page is a 404."""

    def __init__(self) -> None:
        self.loads = iter([300.0, 120.0, 100.0, 140.0])

    def render(self, path: str, charts: bool) -> dict[str, float | None] | None:
        if path.startswith(bench.TREE):
            return None
        load = next(self.loads)
        return {"fcp": load - 20, "dcl": load - 5, "load": load,
                "charts": load + 30 if charts else None}

    def blank(self) -> None:
        pass


def test_browser_timings_are_the_first_and_the_medians(
        capsys: pytest.CaptureFixture[str]) -> None:
    got = bench.browser_times(FakeBrowser(), 3)
    assert got[bench.TREE] == {"built": False}
    assert got[bench.OVERVIEW]["first"]["load"] == 300.0
    assert got[bench.OVERVIEW]["median"] == {"fcp": 100.0, "dcl": 115.0, "load": 120.0,
                                             "charts": 150.0}
    bench.print_browser(got, 3)
    rows = capsys.readouterr().out.splitlines()
    assert ("| overview | 280.0 ms; 100.0 ms | 295.0 ms; 115.0 ms | 300.0 ms; 120.0 ms | "
            "330.0 ms; 150.0 ms |  |") in rows
    assert "| process tree | not built yet | | | | <= 500 ms (load event) |" in rows
    assert "| process tree, filtered | not built yet | | | | <= 500 ms (load event) |" in rows


def test_the_cpu_table_gives_each_difference_round_by_round(
        capsys: pytest.CaptureFixture[str]) -> None:
    cpu = {"cpu": {"blank": [20.0, 22.0], "mirror": [21.0, 22.5], "overview": [21.5, 23.5]},
           "loop": {"blank": [3.0, 3.0], "mirror": [3.0, 3.2], "overview": [4.0, 3.8]},
           "churn": {"blank": [10.0, 30.0], "mirror": [12.5, 12.5], "overview": [1.0, 2.0]},
           "procs": {"blank": [5100, 5102], "mirror": [None, None], "overview": [5100, 5100]},
           "rates": [3.5, 3.7], "walls": [30.0, 30.0], "loads": [1.0, 2.0],
           "polls": {"/ui/fragments/live": 150, "/ui/host.json": 60}}
    args = bench.argparse.Namespace(browsers=5, rounds=2, seconds=30.0)
    bench.print_cpu(cpu, args)
    bench.print_costs({"/ui/fragments/live": 2.0, "/ui/host.json": 1.0}, cpu, args)
    out = capsys.readouterr().out
    rows = out.splitlines()
    assert "| on `about:blank` | 21.00 % | 20.00, 22.00 | 3.00 % | 3.00, 3.00 | 20.0 | 5,101 |" \
        in rows
    assert rows[rows.index("|---|---|---|---|---|---|---|") + 2].endswith("| 12.5 | — |")
    assert ("| **the dashboard's cost**: on the overview less on `about:blank` | 1.50 % | "
            "1.50, 1.50 | 0.90 % | 1.00, 0.80 | | |") in rows
    assert ("| the agent's serving alone: on the overview less on the copy | 0.75 % | "
            "0.50, 1.00 | 0.80 % | 1.00, 0.60 | | |") in rows
    assert "Target: the dashboard adds at most 2 % of one core: met (1.50 %" in out
    # 150 live parts and 60 chart data in 60 s: 2.5/s x 2 ms + 1/s x 1 ms = 0.6 %
    assert "| `/ui/fragments/live` | 2.00 ms | 2.50 /s | 0.50 % |" in rows
    assert "| all | | 3.50 /s | **0.60 %** |" in rows


def test_the_branches_opened_are_the_trees_root_and_a_grandchild() -> None:
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        assert bench.first_child(sleeper.pid) is None  # no children
        rows = bench.branches(sleeper.pid)
        assert rows == ((f"/ui/processes/{sleeper.pid}/children?at=1",
                         "a branch opened: the bench tree's root"),)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert bench.first_child(2**31) is None  # no such process

#!/usr/bin/env python3
"""The dashboard with 5,000 live processes: first render, and the agent's CPU with five
browsers open on the overview (issue 15).

    sudo .venv/bin/python bench/dashboard.py
    sudo .venv/bin/python bench/dashboard.py --renders 5 --rounds 1 --seconds 10   # quick

Starts a tree of sleeping processes (bench/proctree.c, at least ``--processes``), then
``linnix run`` (eBPF, the shipped rules, monitor mode, the API on a free loopback port),
waits for its process table to hold them, signs in with the admin's token and measures:

(a) server time: each page's response fully received over one kept-alive connection,
    with the session cookie; the first request after the start, then the median of
    ``--renders`` (also the overview's two parts fetched again, which set its steady
    cost, the process tree filtered to the bench's processes, and two of its branches
    opened: the fragments htmx fetches);
(b) in a headless Chromium (Debian's chromium and chromedriver, via selenium): from the
    navigation's start to its first contentful paint, DOMContentLoaded and the load
    event, and for the overview to its three charts drawn (their canvases in the
    document); the first navigation to each page (the overview's with nothing cached),
    then the median of ``--renders``;
(c) the agent's CPU (utime + stime of /proc/PID/stat, and of its event loop's thread)
    over ``--rounds`` rounds of ``--seconds`` in each state, the states' order rotating:
    ``--browsers`` Chromium sessions (a driver each), each signed in, on ``about:blank``,
    on a static copy of the overview served by this script (the same work in the
    browsers, none in the agent: a control for the CPUs the browsers take from the
    agent on a loaded host), and on ``/ui/``; the dashboard's cost is the overview's
    less ``about:blank``'s, in % of one core (the median of the rounds' differences),
    with the requests the browsers made each second (their resource timings) and, as
    the agent watches the whole host, the fork, exec and exit events it applied each
    second in each state (others' work, which moves its CPU too);
(d) the agent's CPU per request of each polled part, apart: 1 s of requests back to
    back, then 1 s idle, 10 times; at the browsers' rates, the cost they imply.

A page that is not in this checkout (a 404) shows as "not built yet".  Results are
printed as Markdown for bench/RESULTS.md; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterable, Sequence
from http.cookies import SimpleCookie
from typing import Any

from common import Agent, ProcTree, cpu_seconds, machine  # bench/common.py
from uibrowser import COOKIE, WAIT_S, Browser, Mirror  # bench/uibrowser.py

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OVERVIEW, TREE = "/ui/", "/ui/processes"
TREE_FILTERED = TREE + "?name=proctree"  # the bench's 5,000 match: the filter's worst
# (path, what it is): the server's rows, in order
POLLED = ("/ui/fragments/live", "/ui/host.json")  # what an open overview asks again
PAGES = ((OVERVIEW, "overview"), (TREE, "process tree"),
         (TREE_FILTERED, "process tree, filtered to the bench's processes"),
         (POLLED[0], "overview's live part (pushed; fetched at least every 30 s)"),
         (POLLED[1], "overview's chart data (polled every 5 s)"))
TREES = ((TREE, "process tree"), (TREE_FILTERED, "process tree, filtered"))  # in Chromium
TREE_TARGET_MS = 500.0  # the issue's: the tree rendered within 500 ms
CHURN = ("fork", "exec", "exit")  # the host's process churn, whoever makes it
MAX_REDIRECTS = 3
CPU_TARGET_PCT = 2.0  # the issue's: the dashboard adds at most 2 % of one core
# -- pure helpers (tests/bench/test_dashboard.py)

def fanout(processes: int) -> tuple[int, int, int]:
    """A tree three levels under its root, 10 x 10 x K, with at least ``processes``
    processes in all (the root too)."""
    leaves = max(1, -(-(processes - 111) // 100))  # ceil, the first 111 are 1 + 10 + 100
    return 10, 10, leaves


def median(values: Iterable[float | None]) -> float | None:
    """The median of the values measured (None: none was)."""
    got = [v for v in values if v is not None]
    return statistics.median(got) if got else None


def cpu_pct(used_s: float, wall_s: float) -> float:
    """CPU seconds over a wall interval, in % of one core."""
    return 100.0 * used_s / wall_s


def differences(base: Sequence[float], other: Sequence[float]) -> list[float]:
    """Round by round, ``other``'s value less ``base``'s."""
    return [o - b for b, o in zip(base, other, strict=True)]


def per_request(busy_cpu: float, busy_wall: float, idle_cpu: float, idle_wall: float,
                requests: int) -> float:
    """The agent's CPU seconds per request: the busy spans' CPU less what it uses idle
    over as long (its own sampling goes on in both)."""
    return (busy_cpu - idle_cpu * busy_wall / idle_wall) / requests


def ms(value: float | None) -> str:
    """Milliseconds as a table shows them; "—" when not measured."""
    return "—" if value is None else f"{value:,.1f} ms"


def figure(value: float | None, digits: int) -> str:
    """A number with thousands separators; "—" when not measured."""
    return "—" if value is None else f"{value:,.{digits}f}"


def verdict(value: float | None, target: float | None) -> str:
    """Whether ``value`` is within ``target`` (smaller is better)."""
    if target is None:
        return ""
    if value is None:
        return "not measured"
    return "met" if value <= target else "**missed**"


def cookie_of(set_cookie: str | None) -> str | None:
    """The session id in a ``Set-Cookie`` header, if it sets the session's cookie."""
    if not set_cookie:
        return None
    jar: SimpleCookie = SimpleCookie()
    jar.load(set_cookie)
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None and morsel.value else None


def churn_of(metrics: str) -> float:
    """The fork, exec and exit events the engine has applied, from the Prometheus text."""
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("linnix_events_total{") and any(
                f'kind="{kind}"' in line for kind in CHURN):
            total += float(line.rsplit(None, 1)[1])
    return total


def processes_of(metrics: str) -> int | None:
    """The daemon's live processes, from its Prometheus text."""
    for line in metrics.splitlines():
        if line.startswith("linnix_processes "):
            return int(float(line.split()[1]))
    return None


# -- the daemon over HTTP

class Client:
    """One kept-alive HTTP connection to the daemon, signed in to the dashboard."""

    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=WAIT_S)
        self.cookie: str | None = None

    def call(self, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, bytes, float, Any]:
        """(status, body, seconds from sending to the whole body read, headers)."""
        sent = dict(headers or {})
        if self.cookie is not None:
            sent["Cookie"] = f"{COOKIE}={self.cookie}"
        try:
            return self._once(method, path, body, sent)
        except (http.client.RemoteDisconnected, ConnectionError):
            # the server closed the idle connection (its keep-alive timeout): again on a
            # new one, timed from there
            self.conn.close()
            return self._once(method, path, body, sent)

    def _once(self, method: str, path: str, body: bytes | None,
              headers: dict[str, str]) -> tuple[int, bytes, float, Any]:
        started = time.perf_counter()
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        return response.status, data, time.perf_counter() - started, response.headers

    def sign_in(self, token: str) -> None:
        status, _, _, headers = self.call(
            "POST", "/ui/signin", urllib.parse.urlencode({"token": token}).encode(),
            {"Content-Type": "application/x-www-form-urlencoded"})
        self.cookie = cookie_of(headers.get("Set-Cookie"))
        if status != 303 or self.cookie is None:
            raise SystemExit(f"signing in to the dashboard failed (HTTP {status})")

    def close(self) -> None:
        self.conn.close()


def session(address: str, token: str) -> str:
    """A new dashboard session's id, opened by signing in with ``token``."""
    client = Client(address)
    try:
        client.sign_in(token)
    finally:
        client.close()
    assert client.cookie is not None
    return client.cookie


def wait_for_processes(client: Client, wanted: int) -> int:
    """The daemon's live processes, once its table holds ``wanted`` of them."""
    deadline = time.monotonic() + 120
    while True:
        status, body, _, _ = client.call("GET", "/metrics")
        count = processes_of(body.decode()) if status == 200 else None
        if count is not None and count >= wanted:
            return count
        if time.monotonic() > deadline:
            raise SystemExit(f"the daemon's table holds {count} processes, not {wanted}")
        time.sleep(0.5)


def first_child(pid: int) -> int | None:
    """The lowest pid of a process's children (None: it has none, or has gone)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = [int(k) for k in f.read().split()]
    except OSError:
        return None
    return min(kids) if kids else None


def branches(root: int) -> tuple[tuple[str, str], ...]:
    """The server's rows for opening two branches of the bench's tree: its root's (10
    children, each collapsed) and one of its 100 grandchildren's (49 processes)."""
    child = first_child(root)
    grandchild = first_child(child) if child is not None else None
    rows = [(f"{TREE}/{root}/children?at=1", "a branch opened: the bench tree's root")]
    if grandchild is not None:
        rows.append((f"{TREE}/{grandchild}/children?at=3",
                     "a branch opened: 49 processes"))
    return tuple(rows)


def is_tree(path: str) -> bool:
    """Whether ``path`` is a page of the tree (the target's: drawn within 500 ms)."""
    return path == TREE or path.startswith(TREE + "?")


def get(client: Client, path: str) -> tuple[int, bytes, float]:
    """A page as a browser gets it: (status, body, seconds), through the dashboard's own
    redirects (a page may send a bare URL on to its default query), their time added."""
    spent = 0.0
    for _ in range(MAX_REDIRECTS):
        status, body, seconds, headers = client.call("GET", path)
        spent += seconds
        location = headers.get("Location") if 300 <= status < 400 else None
        if location is None or not location.startswith("/ui/"):
            break
        path = location
    return status, body, spent


def server_times(client: Client, renders: int,
                 pages: Sequence[tuple[str, str]] = PAGES) -> dict[str, dict[str, Any]]:
    """Each page's first request and ``renders`` more: seconds to the whole answer."""
    out: dict[str, dict[str, Any]] = {}
    for path, _ in pages:
        status, body, first = get(client, path)
        if status == 404:
            out[path] = {"built": False}
            continue
        if status != 200:
            raise SystemExit(f"GET {path} answered HTTP {status}")
        times = [get(client, path)[2] for _ in range(renders)]
        out[path] = {"built": True, "first": 1000 * first, "bytes": len(body),
                     "median": 1000 * statistics.median(times),
                     "max": 1000 * max(times)}
    return out


def request_cpu(client: Client, pid: int, path: str, pairs: int = 10,
                span_s: float = 1.0) -> float:
    """The agent's CPU per request of ``path``, in ms: ``pairs`` times, a span of
    requests back to back, then a span idle."""
    busy_cpu = busy_wall = idle_cpu = idle_wall = 0.0
    requests = 0
    for _ in range(pairs):
        c0, t0 = cpu_seconds(pid), time.monotonic()
        while time.monotonic() - t0 < span_s:
            client.call("GET", path)
            requests += 1
        c1, t1 = cpu_seconds(pid), time.monotonic()
        time.sleep(span_s)
        busy_cpu, busy_wall = busy_cpu + c1 - c0, busy_wall + t1 - t0
        idle_cpu, idle_wall = idle_cpu + cpu_seconds(pid) - c1, \
            idle_wall + time.monotonic() - t1
    return 1000 * per_request(busy_cpu, busy_wall, idle_cpu, idle_wall, requests)


def browser_times(browser: Browser, renders: int) -> dict[str, dict[str, Any]]:
    """The first navigation to each page and the medians of ``renders`` more."""
    out: dict[str, dict[str, Any]] = {}
    for path, charts in ((OVERVIEW, True), *((p, False) for p, _ in TREES)):
        first = browser.render(path, charts)
        if first is None:
            out[path] = {"built": False}
            continue
        runs = [browser.render(path, charts) for _ in range(renders)]
        out[path] = {"built": True, "first": first,
                     "median": {k: median(r[k] for r in runs if r) for k in first}}
        browser.blank()
    return out


# -- the agent's CPU

def loop_seconds(pid: int) -> float:
    """CPU time of the process's first thread, the one trio's event loop runs on (what
    serves the dashboard; the samplers' /proc reads run in worker threads)."""
    return cpu_seconds(pid, pid)


def scrape(client: Client) -> tuple[float, int | None]:
    """The engine's fork, exec and exit events so far, and its live processes now."""
    text = client.call("GET", "/metrics")[1].decode()
    return churn_of(text), processes_of(text)


def cpu_rounds(pid: int, client: Client, browsers: list[Browser], states: dict[str, str],
               rounds: int, seconds: float) -> dict[str, Any]:
    """The agent's CPU (% of one core, the whole process and its event loop's thread) in
    each round of each state (a URL the browsers sit on), the states' order rotating
    from round to round; the requests the browsers made in each round; the host's
    process churn (the agent's work that no browser makes) and live processes."""
    got: dict[str, Any] = {key: {s: [] for s in states}
                           for key in ("cpu", "loop", "churn", "procs")}
    got.update({"rates": [], "walls": [], "polls": {}, "loads": []})
    names = list(states)
    for r in range(rounds):
        for state in names[r % len(names):] + names[:r % len(names)]:
            print(f"  round {r + 1}/{rounds}: {state}", file=sys.stderr)
            for b in browsers:
                b.open(states[state])
            time.sleep(3.0)  # past the pages' own loads: only their polls are counted
            for b in browsers:
                b.forget()
            e0, _ = scrape(client)  # outside the CPU measured
            c0, l0, t0 = cpu_seconds(pid), loop_seconds(pid), time.monotonic()
            time.sleep(seconds)
            wall = time.monotonic() - t0
            got["cpu"][state].append(cpu_pct(cpu_seconds(pid) - c0, wall))
            got["loop"][state].append(cpu_pct(loop_seconds(pid) - l0, wall))
            e1, procs = scrape(client)
            got["churn"][state].append((e1 - e0) / wall)
            got["procs"][state].append(procs)
            got["loads"].append(os.getloadavg()[0])
            if state == "overview":
                made = [b.polls() for b in browsers]
                for counted in made:
                    for path, n in counted.items():
                        got["polls"][path] = got["polls"].get(path, 0) + n
                got["rates"].append(sum(sum(c.values()) for c in made) / wall)
                got["walls"].append(wall)
    return got


# -- the report

def rounds_cell(values: Sequence[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def print_server(server: dict[str, dict[str, Any]],
                 pages: Sequence[tuple[str, str]] = PAGES) -> None:
    print("Server time, the whole answer received (signed in, one kept-alive connection):\n")
    print("| page | first request | median | max | size | target |\n|---|---|---|---|---|---|")
    for path, name in pages:
        got = server[path]
        target = TREE_TARGET_MS if is_tree(path) else None
        goal = f"<= {TREE_TARGET_MS:g} ms" if target else ""
        if not got["built"]:
            print(f"| {name} (`{path}`) | not built yet | | | | {goal} |")
            continue
        judged = f"{goal}: {verdict(got['median'], target)}" if target else ""
        print(f"| {name} (`{path}`) | {ms(got['first'])} | {ms(got['median'])} | "
              f"{ms(got['max'])} | {got['bytes']:,} B | {judged} |")


def print_browser(browser: dict[str, dict[str, Any]], renders: int) -> None:
    print(f"\nIn headless Chromium, from the navigation's start: the first navigation to the "
          f"page (the overview's with nothing cached); the median of {renders} more:\n")
    print("| page | first contentful paint | DOMContentLoaded | load event | charts drawn | "
          "target |\n|---|---|---|---|---|---|")
    for path, name in ((OVERVIEW, "overview"), *TREES):
        got = browser[path]
        target = TREE_TARGET_MS if is_tree(path) else None
        goal = f"<= {TREE_TARGET_MS:g} ms (load event)" if target else ""
        if not got["built"]:
            print(f"| {name} | not built yet | | | | {goal} |")
            continue
        cells = " | ".join(f"{ms(got['first'][k])}; {ms(got['median'][k])}"
                           for k in ("fcp", "dcl", "load", "charts"))
        judged = f"{goal}: {verdict(got['median']['load'], target)}" if target else ""
        print(f"| {name} | {cells} | {judged} |")


CPU_ROWS = (("blank", "on `about:blank`"),
            ("mirror", "on a static copy of the overview served by another process"),
            ("overview", "on the overview"))
DIFF_ROWS = (("overview", "blank", "**the dashboard's cost**: on the overview less on "
              "`about:blank`"),
             ("overview", "mirror", "the agent's serving alone: on the overview less on "
              "the copy"),
             ("mirror", "blank", "the browsers' own work (shared CPUs): on the copy less on "
              "`about:blank`"))


def print_cpu(cpu: dict[str, Any], args: argparse.Namespace) -> None:
    n = args.browsers
    print(f"\nThe agent's CPU, % of one core, {args.rounds} rounds of {args.seconds:g} s in each "
          f"state, their order rotating; {n} browsers, each signed in, open throughout.  The "
          "agent watches the whole host: the last columns are the fork, exec and exit events "
          "it applied each second (others' work on the host) and the live processes:\n")
    print("| the browsers | whole agent (median) | all rounds | event-loop thread (median) | "
          "all rounds | fork+exec+exit /s (median) | processes (median) |\n"
          "|---|---|---|---|---|---|---|")
    for key, label in CPU_ROWS:
        whole, loop = cpu["cpu"][key], cpu["loop"][key]
        churn, procs = median(cpu["churn"][key]), median(cpu["procs"][key])
        print(f"| {label} | {median(whole):.2f} % | {rounds_cell(whole)} | "
              f"{median(loop):.2f} % | {rounds_cell(loop)} | {figure(churn, 1)} | "
              f"{figure(procs, 0)} |")
    for a, b, label in DIFF_ROWS:
        whole = differences(cpu["cpu"][b], cpu["cpu"][a])
        loop = differences(cpu["loop"][b], cpu["loop"][a])
        print(f"| {label} | {median(whole):.2f} % | {rounds_cell(whole)} | "
              f"{median(loop):.2f} % | {rounds_cell(loop)} | | |")
    diff = median(differences(cpu["cpu"]["blank"], cpu["cpu"]["overview"]))
    polls = ", ".join(f"`{p}` {k}" for p, k in sorted(cpu["polls"].items()))
    print(f"\nTarget: the dashboard adds at most {CPU_TARGET_PCT:g} % of one core: "
          f"{verdict(diff, CPU_TARGET_PCT)} ({diff:.2f} %, the median of the rounds' "
          f"differences).  The {n} browsers on the overview made {median(cpu['rates']):.2f} "
          f"requests a second (median of the rounds; in all: {polls}).")


def print_costs(costs: dict[str, float], cpu: dict[str, Any], args: argparse.Namespace) -> None:
    seconds = sum(cpu["walls"])  # the overview's rounds, all told
    rates = {path: cpu["polls"].get(path, 0) / seconds for path in POLLED}
    print("\nThe agent's CPU per request, measured apart: 1 s of requests back to back, then "
          "1 s idle, 10 times (the idle seconds' CPU subtracted):\n")
    print("| request | agent CPU per request | the browsers' rate | % of one core |\n"
          "|---|---|---|---|")
    for path in POLLED:
        print(f"| `{path}` | {costs[path]:.2f} ms | {rates[path]:.2f} /s | "
              f"{cpu_pct(costs[path] * rates[path], 1000):.2f} % |")
    total = sum(cpu_pct(costs[p] * rates[p], 1000) for p in POLLED)
    print(f"| all | | {sum(rates.values()):.2f} /s | **{total:.2f} %** |")


def print_report(args: argparse.Namespace, size: int, counted: int,
                 pages: Sequence[tuple[str, str]],
                 server: dict[str, dict[str, Any]], browser: dict[str, dict[str, Any]],
                 cpu: dict[str, Any], costs: dict[str, float],
                 load_before: tuple[float, float, float]) -> None:
    print(f"\n## The dashboard with {size:,} processes (bench/dashboard.py) — "
          f"{time.strftime('%Y-%m-%d')}\n")
    print(f"Machine: {machine()} (`nproc` {os.cpu_count()}); load average "
          f"{load_before[0]:.2f} / {load_before[1]:.2f} / {load_before[2]:.2f} (1 / 5 / 15 "
          f"min) before, {min(cpu['loads']):.2f}-{max(cpu['loads']):.2f} (1 min) during the "
          "CPU rounds.\n")
    print(f"Command: `sudo .venv/bin/python bench/dashboard.py --processes {args.processes} "
          f"--renders {args.renders} --rounds {args.rounds} --seconds {args.seconds:g}"
          f"{'' if args.browsers == 5 else f' --browsers {args.browsers}'}`; {size:,} "
          f"sleeping processes in bench/proctree's tree, {counted:,} in the daemon's table, "
          "the shipped rules, monitor mode, the eBPF source.\n")
    print_server(server, pages)
    print_browser(browser, args.renders)
    print_cpu(cpu, args)
    print_costs(costs, cpu, args)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--processes", type=int, default=5000, help="live processes at least")
    ap.add_argument("--renders", type=int, default=20, help="renders of each page (medians)")
    ap.add_argument("--rounds", type=int, default=4, help="CPU rounds in each state")
    ap.add_argument("--seconds", type=float, default=30.0, help="length of a CPU round")
    ap.add_argument("--browsers", type=int, default=5, help="browsers open on the overview")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/dashboard.py needs root (eBPF)", file=sys.stderr)
        return 2
    for program in ("chromium", "chromedriver"):
        if shutil.which(program) is None:
            print(f"bench/dashboard.py needs {program}", file=sys.stderr)
            return 2
    load_before = os.getloadavg()
    state = tempfile.mkdtemp(prefix="linnix-bench-ui-")
    tree = ProcTree(fanout(args.processes))
    print(f"  {tree.size:,} sleeping processes", file=sys.stderr)
    agent: Agent | None = None
    browsers: list[Browser] = []
    client: Client | None = None
    mirror: Mirror | None = None
    try:
        agent = Agent(state)
        with open(os.path.join(state, "daemon.json")) as f:
            address = json.load(f)["api"]
        with open(os.path.join(state, "api.token")) as f:
            token = f.read().strip()
        client = Client(address)
        counted = wait_for_processes(client, tree.size)
        client.sign_in(token)
        print("  server times", file=sys.stderr)
        pages = (*PAGES, *branches(tree.proc.pid))
        server = server_times(client, args.renders, pages)
        print("  CPU per request", file=sys.stderr)
        costs = {path: request_cpu(client, agent.proc.pid, path) for path in POLLED}
        print(f"  {args.browsers} browsers", file=sys.stderr)
        browsers = [Browser(f"http://{address}", session(address, token))
                    for _ in range(args.browsers)]
        print("  browser times", file=sys.stderr)
        rendered = browser_times(browsers[0], args.renders)
        mirror = Mirror(client, OVERVIEW, POLLED)
        states = {"blank": "about:blank", "mirror": mirror.base + OVERVIEW,
                  "overview": f"http://{address}{OVERVIEW}"}
        cpu = cpu_rounds(agent.proc.pid, client, browsers, states, args.rounds, args.seconds)
    finally:
        for b in browsers:
            b.quit()
        if mirror is not None:
            mirror.stop()
        if client is not None:
            client.close()
        if agent is not None:
            agent.stop()
        tree.stop()
        shutil.rmtree(state, ignore_errors=True)
    print_report(args, tree.size, counted, pages, server, rendered, cpu, costs, load_before)
    return 0


if __name__ == "__main__":
    sys.exit(main())

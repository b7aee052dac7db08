"""The process tree's layout from one snapshot: links by ppid, subtree totals summed once
(exact, None when no member was measured), sorting, a filter that keeps the matches'
ancestors, collapsed branches counted and fetched apart, what one answer lays out
bounded (children of a parent, processes in all) with "more" rows for the rest, and
hostile snapshots (cycles, a chain deeper than any page should nest, duplicate rows)
handled without recursion."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from linnix.ui import proctree
from linnix.ui.proctree import CHILDREN_MAX, DEPTH_MAX, ROWS_MAX, Filter, build, children, view


def proc(pid: int, ppid: int, comm: str, cpu: float | None = None, rss: float | None = None,
         fds: int | None = None, **more: Any) -> dict[str, Any]:
    return {"pid": pid, "ppid": ppid, "comm": comm, "uid": more.get("uid", 0),
            "user": more.get("user", "root"), "unit": more.get("unit"),
            "container": more.get("container"), "cpu_pct": cpu, "rss_mb": rss, "fds": fds}


#  1 init ─┬─ 10 sshd ── 11 sshd ── 12 bash ── 13 needle (alice, in a container)
#          └─ 20 cron (never measured) ── 21 job
#  2 kthreadd ── 3 kworker
ROWS = [
    proc(1, 0, "init", 0.5, 10.0, 50, unit="init.scope"),
    proc(10, 1, "sshd", 1.0, 5.0, 10, unit="ssh.service"),
    proc(11, 10, "sshd", 0.0, 4.0, 8, unit="ssh.service"),
    proc(12, 11, "bash", 2.0, 3.0, 4, uid=1000, user="alice", unit="session-3.scope"),
    proc(13, 12, "needle", 50.0, 100.0, None, uid=1000, user="alice",
         container="abc123def456"),
    proc(20, 1, "cron", None, None, None, unit="cron.service"),
    proc(21, 20, "job", 3.0, 1.0, 5, unit="cron.service"),
    proc(2, 0, "kthreadd", 0.0, None, None),
    proc(3, 2, "kworker", 0.25, None, None),
]


def pids(tree: Any) -> list[int]:
    return [r["pid"] for r in tree.rows if "pid" in r]


def kinds(tree: Any) -> dict[int, str]:
    return {r["pid"]: r["kind"] for r in tree.rows if "pid" in r}


def balanced(tree: Any) -> bool:
    """Each open row is closed after its descendants: the markup nests as the tree."""
    depth = 0
    for r in tree.rows:
        depth += {"open": 1, "close": -1}.get(r["kind"], 0)
        if depth < 0:
            return False
    return depth == 0


def test_subtree_totals_are_summed_once_and_none_when_nothing_was_measured() -> None:
    forest = build(ROWS)
    n = forest.nodes
    assert (n[1].cpu, n[1].rss, n[1].fds, n[1].procs) == (56.5, 123.0, 77, 7)
    assert (n[12].cpu, n[12].rss, n[12].fds, n[12].procs) == (52.0, 103.0, 4, 2)
    assert (n[13].cpu, n[13].rss, n[13].fds) == (50.0, 100.0, None)  # fds never measured
    assert (n[20].cpu, n[20].rss, n[20].fds) == (3.0, 1.0, 5)  # its own unknown: the job's
    assert (n[2].cpu, n[2].rss, n[2].fds) == (0.25, None, None)
    assert [x.pid for x in n[13].lineage()] == [12, 11, 10, 1]
    assert [r.pid for r in forest.roots] == [1, 2]


def test_a_row_shows_its_own_values_and_its_subtrees_formatted() -> None:
    rows = {r["pid"]: r for r in view(build(ROWS), open_depth=None).rows if "pid" in r}
    init, cron, needle = rows[1], rows[20], rows[13]
    assert (init["cpu"], init["rss"], init["fds"]) == ("0.5%", "10.0 MB", "50")
    assert (init["sub_cpu"], init["sub_rss"], init["sub_fds"]) == ("56.5%", "123.0 MB", "77")
    assert init["below"] == "6" and init["kind"] == "open"
    assert (cron["cpu"], cron["rss"], cron["fds"]) == ("—", "—", "—")  # never 0
    assert cron["sub_cpu"] == "3.0%"
    assert (needle["kind"], needle["below"], needle["fds"], needle["sub_fds"]) == \
        ("leaf", None, "—", "—")
    assert needle["where"] == "container abc123def456" and needle["user"] == "alice"
    assert rows[2]["where"] == "—" and rows[1]["where"] == "init.scope"


def test_siblings_sort_by_subtree_totals_pid_or_name() -> None:
    forest = build(ROWS)
    assert pids(view(forest, "cpu", open_depth=None)) == [1, 10, 11, 12, 13, 20, 21, 2, 3]
    assert pids(view(forest, "pid", open_depth=None)) == [1, 10, 11, 12, 13, 20, 21, 2, 3]
    assert pids(view(forest, "name", open_depth=None)) == [1, 20, 21, 10, 11, 12, 13, 2, 3]
    # memory: init's 123 MB, then the kernel's (not measured: last); under init, sshd's
    # branch (112 MB) before cron's (1 MB)
    assert pids(view(forest, "memory", open_depth=None)) == [1, 10, 11, 12, 13, 20, 21, 2, 3]
    # a hog (90%) beside sshd's branch (53% in all) and cron's (3%): first by CPU, last
    # by fds (1 against 22 and 5), between them by memory (2 MB against 112 and 1)
    extra = build([*ROWS, proc(30, 1, "hog", 90.0, 2.0, 1)])

    def under_init(sort: str) -> list[int]:
        return [p for p in pids(view(extra, sort, open_depth=None))
                if extra.nodes[p].proc["ppid"] == 1]

    assert under_init("cpu") == [30, 10, 20]
    assert under_init("fds") == [10, 20, 30]
    assert under_init("memory") == [10, 30, 20]
    assert under_init("pid") == [10, 20, 30]
    assert under_init("name") == [20, 30, 10]


def test_a_filter_keeps_the_matches_and_their_ancestors_only() -> None:
    forest = build(ROWS)
    tree = view(forest, chosen=Filter(name="NEEDLE"))
    assert pids(tree) == [1, 10, 11, 12, 13]
    assert (tree.total, tree.kept, tree.matched, tree.listed) == (9, 5, 1, 5)
    assert [r["pid"] for r in tree.rows if r.get("match")] == [13]
    assert kinds(tree) == {1: "open", 10: "open", 11: "open", 12: "open", 13: "leaf"}
    assert [r["below"] for r in tree.rows if r["kind"] == "open"] == ["4", "3", "2", "1"]
    assert pids(view(forest, chosen=Filter(user="alice"))) == [1, 10, 11, 12, 13]
    assert pids(view(forest, chosen=Filter(user="1000"))) == [1, 10, 11, 12, 13]  # the uid
    assert pids(view(forest, chosen=Filter(unit="cron"))) == [1, 20, 21]
    assert pids(view(forest, chosen=Filter(container="abc1"))) == [1, 10, 11, 12, 13]
    assert pids(view(forest, chosen=Filter(name="sshd", unit="ssh"))) == [1, 10, 11]
    nothing = view(forest, chosen=Filter(name="sshd", user="alice"))
    assert (nothing.rows, nothing.matched, nothing.total) == ([], 0, 9)
    assert Filter(name="a", container="b").said() == "name “a”, container “b”"


def test_a_filter_is_plain_text_not_a_pattern() -> None:
    rows = [proc(1, 0, "a.b"), proc(2, 0, "axb"), proc(3, 0, "[x]*")]
    assert pids(view(build(rows), "pid", Filter(name="a.b"))) == [1]
    assert pids(view(build(rows), "pid", Filter(name="[x]*"))) == [3]


def test_branches_open_to_a_depth_and_the_rest_are_counted() -> None:
    forest = build(ROWS)
    tree = view(forest, "pid", open_depth=2)
    # two levels open; below them a branch is collapsed and its processes not laid out
    assert kinds(tree) == {1: "open", 10: "open", 11: "closed", 20: "open", 21: "leaf",
                           2: "open", 3: "leaf"}
    assert (tree.kept, tree.listed) == (9, 7)  # 12 and 13, inside 11, are not listed
    assert [r["below"] for r in tree.rows if r.get("pid") == 11] == ["2"]
    assert view(forest, "pid", open_depth=0).listed == 2
    assert view(forest, "pid", open_depth=None).listed == 9
    assert balanced(tree) and [r["kind"] for r in tree.rows].count("close") == 4


def test_a_collapsed_branchs_children_are_laid_out_apart() -> None:
    forest = build(ROWS)
    # 11 is at level 2 of the page: its children at level 3, collapsed in turn
    part = children(forest, forest.nodes[11], "pid", open_depth=2, at=3)
    assert [(r["pid"], r["kind"], r["at"]) for r in part.rows] == [(12, "closed", 3)]
    part = children(forest, forest.nodes[11], "pid", open_depth=None, at=3)
    assert kinds(part) == {12: "open", 13: "leaf"} and balanced(part)
    assert pids(children(forest, None, "pid", open_depth=0, at=0)) == [1, 2]  # the roots
    # while a filter is on, only its matches and their ancestors
    part = children(forest, forest.nodes[1], "pid", Filter(name="job"), at=1)
    assert kinds(part) == {20: "open", 21: "leaf"} and part.matched == 1
    assert children(forest, forest.nodes[10], "pid", Filter(name="job"), at=1).rows == []


def test_a_page_lays_out_a_bounded_part_of_a_big_table() -> None:
    # 1 ─ 100 children ─ 49 grandchildren each: 5,001 processes
    table = [proc(1, 0, "init", 1.0)]
    for a in range(100):
        table.append(proc(1000 + a, 1, f"p{a}", float(a)))
        table.extend(proc(10_000 + 49 * a + b, 1000 + a, "leaf", 0.5) for b in range(49))
    forest = build(table)
    tree = view(forest, open_depth=1)  # init, and its first 50 children by CPU
    assert tree.listed == 1 + CHILDREN_MAX and (tree.total, tree.kept) == (5001, 5001)
    assert pids(tree)[1:4] == [1099, 1098, 1097]  # the busiest first
    assert set(kinds(tree).values()) == {"open", "closed"}  # init; the 50 collapsed
    more = [r for r in tree.rows if r["kind"] == "more"]
    assert more == [{"kind": "more", "parent": 1, "skip": 50, "count": "50", "at": 1}]
    # two levels open: breadth first, each of the 50 listed before any grandchild, then
    # grandchildren until ROWS_MAX; a child none of whose children fit is collapsed
    tree = view(forest)
    shown = kinds(tree)
    assert tree.listed == ROWS_MAX and balanced(tree)
    assert [p for p in shown if 1000 <= p < 1100] == list(range(1099, 1049, -1))
    assert [p for p in shown if shown[p] == "open" and p != 1] == list(range(1099, 1095, -1))
    assert {shown[p] for p in range(1050, 1096)} == {"closed"}
    assert [r for r in tree.rows if r["kind"] == "more"] == [
        {"kind": "more", "parent": 1096, "skip": 2, "count": "47", "at": 2}, more[0]]
    # the next 50: the last of them, no more after
    rest = children(forest, forest.nodes[1], open_depth=1, at=1, skip=50)
    assert pids(rest) == list(range(1049, 999, -1))
    assert not [r for r in rest.rows if r["kind"] == "more"]
    # every level open: ROWS_MAX processes at most, the rest behind "more" rows
    tree = view(forest, open_depth=None)
    assert tree.listed == ROWS_MAX and balanced(tree)
    assert sum(r["kind"] == "more" for r in tree.rows) >= 1
    # a filter that matches nearly all: counted, bounded the same way
    tree = view(forest, chosen=Filter(name="leaf"))
    assert (tree.matched, tree.kept, tree.listed) == (4900, 5001, ROWS_MAX)


def test_only_the_rows_laid_out_are_formatted(monkeypatch: Any) -> None:
    table = [proc(1, 0, "init", 1.0)] + [proc(i, 1 + (i - 2) // 50, "p", 1.0)
                                         for i in range(2, 5002)]
    forest = build(table)
    made = []
    real = proctree.row

    def counted(*args: Any) -> Any:
        made.append(args[0].pid)
        return real(*args)

    monkeypatch.setattr(proctree, "row", counted)
    tree = view(forest)
    assert len(made) == tree.listed == ROWS_MAX  # not 5,001
    made.clear()
    children(forest, forest.nodes[2], at=2)
    assert len(made) <= CHILDREN_MAX


def test_a_tree_from_one_process() -> None:
    forest = build(ROWS)
    tree = view(forest, "pid", open_depth=None, root=forest.nodes[10])
    assert pids(tree) == [10, 11, 12, 13] and (tree.scope, tree.total) == (4, 9)
    tree = view(forest, "pid", Filter(name="bash"), root=forest.nodes[10])
    assert pids(tree) == [10, 11, 12] and (tree.matched, tree.kept) == (1, 3)
    assert view(forest, "pid", Filter(name="cron"), root=forest.nodes[10]).rows == []
    # the root's children from the skip-th on
    tree = view(forest, "pid", open_depth=None, root=forest.nodes[1], skip=1)
    assert pids(tree) == [1, 20, 21]
    tree = view(forest, "pid", open_depth=None, root=forest.nodes[1], skip=5)
    assert kinds(tree) == {1: "closed"} and tree.listed == 1  # none left to list


def test_a_cycle_of_ppids_is_cut_and_every_process_is_listed_once() -> None:
    rows = [proc(5, 7, "a", 1.0), proc(6, 5, "b", 1.0), proc(7, 6, "c", 1.0),
            proc(8, 8, "self", 1.0)]
    forest = build(rows)
    assert sorted(pids(view(forest, open_depth=None))) == [5, 6, 7, 8]
    assert [r.pid for r in forest.roots] == [8, 5]  # cut at the lowest pid of the cycle
    assert forest.nodes[5].procs == 3 and forest.nodes[5].cpu == 3.0


def test_a_chain_deeper_than_a_page_nests_goes_on_in_a_tree_of_its_own() -> None:
    chain = [proc(1, 0, "p", 1.0)] + [proc(i, i - 1, "p", 1.0) for i in range(2, 5001)]
    forest = build(chain)  # no recursion: 5,000 levels
    assert forest.nodes[1].procs == 5000 and forest.nodes[1].cpu == 5000.0
    tree = view(forest, open_depth=None)
    assert [r["kind"] for r in tree.rows].count("open") == DEPTH_MAX and balanced(tree)
    deepest = tree.rows[DEPTH_MAX]  # a leaf here, counting what is below it
    assert (deepest["pid"], deepest["kind"], deepest["below"]) == \
        (DEPTH_MAX + 1, "leaf", f"{5000 - DEPTH_MAX - 1:,}")
    assert pids(view(forest, open_depth=None, root=forest.nodes[DEPTH_MAX + 1]))[:2] == \
        [DEPTH_MAX + 1, DEPTH_MAX + 2]


def test_a_pid_listed_twice_is_one_process() -> None:
    forest = build([proc(1, 0, "old"), proc(1, 0, "new", 2.0)])
    assert pids(view(forest)) == [1] and forest.nodes[1].proc["comm"] == "new"


_ROWS = st.lists(st.builds(proc, st.integers(1, 40), st.integers(0, 40), st.text(max_size=5),
                           st.none() | st.floats(0, 100), st.none() | st.floats(0, 1000),
                           st.none() | st.integers(0, 100)), max_size=60)


@given(rows=_ROWS, sort=st.sampled_from(["cpu", "memory", "fds", "pid", "name"]),
       depth=st.none() | st.integers(0, 3), name=st.text(max_size=2))
def test_any_snapshot_is_a_tree_that_lists_each_kept_process_once(
        rows: list[dict[str, Any]], sort: str, depth: int | None, name: str) -> None:
    forest = build(rows)
    chosen = Filter(name=name)
    tree = view(forest, sort, chosen, depth)
    listed = pids(tree)
    assert len(listed) == len(set(listed)) == tree.listed and balanced(tree)
    matches = {pid for pid, n in forest.nodes.items() if chosen.matches(n.proc)}
    kept = {a.pid for m in matches for a in [forest.nodes[m], *forest.nodes[m].lineage()]}
    assert tree.matched == len(matches) and tree.kept == len(kept if name else forest.nodes)
    if name or depth is None:  # nothing collapsed, and fewer than the bounds: all of it
        assert set(listed) == (kept if name else set(forest.nodes))
    for pid in listed:  # every listed process's ancestors are listed before it
        assert all(a.pid in listed[:listed.index(pid)] for a in forest.nodes[pid].lineage())
    assert sum(r.procs for r in forest.roots) == len(forest.nodes)

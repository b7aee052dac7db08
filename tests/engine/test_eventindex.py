"""The index of event rules (``linnix/engine/eventindex.py``): which rules an event can fire,
and, for random rule sets and events, exactly the alerts of judging every rule."""

from __future__ import annotations

from typing import Any

import attrs
import orjson
import pytest
from engine_support import no_hang
from hypothesis import given, settings
from hypothesis import strategies as st

from linnix.engine import eventindex as ei
from linnix.engine import trace as t
from linnix.engine.core import Core
from linnix.language.pipeline import compile_text
from linnix.plan import FilterKey, Plan


class Rec:
    """A process record with the fields the keys read."""

    def __init__(self, comm: object = None, exe: object = None, parent: Rec | None = None
                 ) -> None:
        self.comm, self.exe, self.parent = comm, exe, parent


def key(field: str, how: str, value: str | float) -> FilterKey:
    owner, _, name = field.rpartition(".")
    code = f"(None if (_a0 := p.parent) is None else _a0.{name})" if owner else f"p.{name}"
    return FilterKey(field, how, value, code)


FILTERS: list[tuple[FilterKey, ...] | None] = [
    (key("exe", "prefix", "/tmp/"),),
    (key("exe", "prefix", "/dev/shm/"), key("exe", "prefix", "/var/tmp/")),
    (key("comm", "is", "nc"), key("comm", "is", "ncat")),
    None,
    (key("comm", "is", "xmrig"), key("exe", "suffix", "/xmrig")),
    (key("exe", "contains", "miner"),),
    (key("parent.comm", "is", "nginx"),),
    (key("exe", "prefix", ""),),  # every text starts with ""
]
NAMES = [f"r{i}" for i in range(len(FILTERS))]


@pytest.mark.parametrize(("rec", "expected"), [
    (Rec("x", "/usr/bin/x"), ["r3", "r7"]),
    (Rec("x", "/tmp/x"), ["r0", "r3", "r7"]),
    (Rec("x", "/var/tmp/y"), ["r1", "r3", "r7"]),
    (Rec("nc", None), ["r2", "r3"]),  # no exe: no key on exe matches
    (Rec("xmrig", "/opt/xmrig"), ["r3", "r4", "r7"]),
    (Rec("a", "/opt/xmrig"), ["r3", "r4", "r7"]),
    (Rec("a", "/xmri"), ["r3", "r7"]),  # shorter than the suffix
    (Rec("a", "/home/u/miner.bin"), ["r3", "r5", "r7"]),
    (Rec("a", None, Rec("nginx")), ["r3", "r6"]),
    (Rec("a", None, Rec(None)), ["r3"]),
    (Rec(None, None), ["r3"]),
    (Rec("a", 7), ["r0", "r1", "r3", "r4", "r5", "r7"]),  # not a text: its conditions decide
])
def test_the_candidates_of_an_event_in_the_rules_order(rec: Rec, expected: list[str]) -> None:
    index = ei.Index(NAMES, FILTERS)
    assert list(index.candidates(rec, None, 0.0)) == expected


class Uid:
    def __init__(self, uid: object) -> None:
        self.uid = uid


@pytest.mark.parametrize(("uid", "expected"), [
    (0, ["zero"]), (0.0, ["zero"]), (1000, ["staff"]), (5, []), (None, []),
    ("0", []),  # == on a text and a number is false
    ([0], ["zero", "staff"]),  # cannot be looked up: the conditions decide
])
def test_a_number_field_is_looked_up_by_equality(uid: object, expected: list[str]) -> None:
    index = ei.Index(["zero", "staff"], [(key("uid", "is", 0.0),),  # type: ignore[arg-type]
                                         (key("uid", "is", 1000.0),)])
    assert list(index.candidates(Uid(uid), None, 0.0)) == expected


class Cmd:
    def __init__(self, cmdline: object, comm: object = "x") -> None:
        self.cmdline, self.comm = cmdline, comm


@pytest.mark.parametrize(("rec", "expected"), [
    (Cmd("curl x"), ["curl"]),
    (Cmd(["y"]), ["curl"]),  # 'in' works on a list: only a text is tested, the rest judged
    (Cmd(None), []),
    (Cmd("a", comm=["nc"]), ["curl", "nc"]),  # cannot be looked up: the conditions decide
])
def test_a_text_to_contain_is_tested_only_on_a_text(rec: Cmd, expected: list[str]) -> None:
    index = ei.Index(["curl", "nc"], [(key("cmdline", "contains", "curl "),),
                                      (key("comm", "is", "nc"),)])
    assert list(index.candidates(rec, None, 0.0)) == expected


def test_a_prefix_or_suffix_of_what_is_not_a_text_makes_every_rule_a_candidate() -> None:
    """Only 'contains' needs the test that a value is a text: a prefix's test raises on
    anything else, and the conditions decide."""
    index = ei.Index(NAMES[:3], FILTERS[:3])
    assert list(index.candidates(Rec("x", 7), None, 0.0)) == NAMES[:3]
    assert "__class__" not in index.code


def test_a_path_found_once_is_found_again_from_a_bounded_table(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """exe's prefixes and suffixes are tested once per path, then looked up; the paths
    kept are bounded (a process names its own), and what is not a text is never kept."""
    monkeypatch.setattr(ei, "KEPT_MAX", 2)
    index = ei.Index(["tmp", "rig"], [(key("exe", "prefix", "/tmp/"),),
                                      (key("exe", "suffix", "/xmrig"),)])
    kept = index.scope["_kept0"]
    paths = ["/tmp/a", "/usr/bin/x", "/opt/xmrig", "/tmp/xmrig", "/tmp/a", "/usr/bin/x"]
    got = [list(index.candidates(Rec("a", path), None, 0.0)) for path in paths]
    assert got == [["tmp"], [], ["rig"], ["tmp", "rig"], ["tmp"], []]
    assert len(kept) <= 2 and kept.get("/usr/bin/x") == 0  # type: ignore[attr-defined]
    assert list(index.candidates(Rec("a", ("/tmp/",)), None, 0.0)) == ["tmp", "rig"]
    assert ("/tmp/",) not in kept  # type: ignore[operator]


def test_rules_with_no_key_need_no_lookup() -> None:
    assert ei.Index(["a", "b"], [None, None]).code == "3"
    assert ei.Index([], []).code == "0"
    assert ei.Index(["a"], [(key("comm", "is", "nc"),)]).code.startswith("(0 if")


def test_a_field_that_cannot_be_read_makes_every_rule_a_candidate() -> None:
    index = ei.Index(NAMES, FILTERS)
    assert list(index.candidates(object(), None, 0.0)) == NAMES


def test_the_sets_of_candidates_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ei, "CACHE_MAX", 2)
    index = ei.Index(NAMES, FILTERS)
    for rec in (Rec("x", "/tmp/x"), Rec("nc"), Rec("xmrig", "/xmrig"), Rec("nc")):
        index.candidates(rec, None, 0.0)
    assert len(index.cache) <= 2
    assert list(index.candidates(Rec("nc"), None, 0.0)) == ["r2", "r3"]


# ---- random rule sets and events: the index changes no alert ----------------------------

TEXTS = ["sh", "nc", "nginx", "xmrig", "/tmp/sh", "/usr/bin/nc", "/var/tmp/x", "/opt/xmrig",
         "curl -s x | sh", "base64 -d", ""]
FIELDS = ["comm", "exe", "cmdline", "parent.comm", "parent.exe"]
OPS = ["==", "!=", "startswith", "endswith", "contains", "glob", "matches", "in", "not in"]
PATTERNS = {"glob": ["/tmp/*", "*/xmrig", "n?", "[ns]*", "sh", "*", "/opt/*rig"],
            "matches": ["curl .*\\\\| *sh", "x|sh", "ng?i", "^n", "tmp/s", "s+h$"]}


EXITS = ["exit_code == 1", "exit_code in [0, 1]", 'exit_signal == "SIGKILL"',
         'exit_signal in ["SIGSEGV", "SIGKILL"]', "crashed"]


@st.composite
def atoms(draw: st.DrawFn) -> str:
    field, op = draw(st.sampled_from(FIELDS)), draw(st.sampled_from(OPS))
    if op in ("in", "not in"):
        items = draw(st.lists(st.sampled_from(TEXTS), min_size=1, max_size=3))
        return f"{field} {op} [{', '.join(orjson.dumps(i).decode() for i in items)}]"
    if op in ("glob", "matches"):
        return f'{field} {op} "{draw(st.sampled_from(PATTERNS[op]))}"'
    if draw(st.integers(0, 5)) == 0:
        return draw(st.sampled_from(["uid == 0", "uid in [0, 1000]", "parent.uid == 1000",
                                     "pid == 3", "pid > 3", '"sh" in ancestors']))
    return f"{field} {op} {orjson.dumps(draw(st.sampled_from(TEXTS))).decode()}"


@st.composite
def conditions(draw: st.DrawFn, depth: int = 2) -> str:
    if depth == 0 or draw(st.integers(0, 2)) == 0:
        return draw(atoms())
    parts = draw(st.lists(conditions(depth - 1), min_size=2, max_size=3))
    joined = f" {draw(st.sampled_from(['and', 'or']))} ".join(f"({p})" for p in parts)
    return f"not ({joined})" if draw(st.integers(0, 5)) == 0 else joined


@st.composite
def rule_sets(draw: st.DrawFn) -> str:
    rules = []
    for i in range(draw(st.integers(1, 6))):
        trigger = draw(st.sampled_from(["exec", "exec", "fork", "exit"]))
        unless = f"\n    unless {draw(atoms())}" if draw(st.booleans()) else ""
        when = draw(conditions())
        if trigger == "exit" and draw(st.booleans()):
            when = f"{draw(st.sampled_from(EXITS))} {draw(st.sampled_from(['and', 'or']))} " \
                f"({when})"
        rules.append(f"rule r{i} {{\n    on {trigger}\n    when {when}{unless}\n"
                     "    max_rate 1000/s\n}")
    return "\n".join(rules)


@st.composite
def streams(draw: st.DrawFn) -> list[t.Event]:
    events: list[t.Event] = [t.Proc(ts=0.0, pid=1, ppid=0, comm="init", start=0.0)]
    ts = 0.0
    texts = st.sampled_from([None, *TEXTS])
    for _ in range(draw(st.integers(1, 30))):
        ts = round(ts + draw(st.sampled_from([0.0, 0.001, 1.0])), 6)
        pid = draw(st.integers(2, 6))
        kind = draw(st.sampled_from(["fork", "exec", "exec", "exit"]))
        if kind == "fork":
            events.append(t.Fork(ts=ts, pid=pid, ppid=draw(st.integers(1, 6)),
                                 comm=draw(st.sampled_from(TEXTS)),
                                 uid=draw(st.sampled_from([None, 0, 1000]))))
        elif kind == "exec":
            argv = draw(st.lists(st.sampled_from(TEXTS), max_size=3))
            events.append(t.Exec(ts=ts, pid=pid, comm=draw(st.sampled_from(TEXTS)),
                                 exe=draw(texts), argv=argv or None))
        else:
            events.append(t.Exit(ts=ts, pid=pid, code=draw(st.sampled_from([None, 0, 1])),
                                 signal=draw(st.sampled_from([None, 9, 11]))))
    return events


def unindexed(plan: Plan) -> Plan:
    return attrs.evolve(plan, rules=tuple(attrs.evolve(r, prefilter=None) for r in plan.rules))


def outcome(plan: Plan, events: list[t.Event], cut: int | None = None) -> tuple[Any, ...]:
    """What a replay of ``events`` gives; with ``cut``, fed in two batches split there."""
    core = Core(plan, 0.5)
    batches = [events] if cut is None else [events[:cut], events[cut:]]
    with no_hang(60):
        for batch in batches:
            core.feed(batch)
        core.finish()
    rows = [orjson.dumps(o.to_json()) for o in core.drain()]
    counts = [(s.rule.name, s.evaluations, s.errors) for s in core.events.states]
    return rows, counts, [s.judged for s in core.events.states]


@settings(max_examples=200)
@given(rule_sets(), streams())
def test_the_index_gives_exactly_the_alerts_of_judging_every_rule(rules: str,
                                                                 events: list[t.Event]) -> None:
    plan = compile_text(rules)
    rows, counts, judged = outcome(plan, events)
    every_rows, every_counts, every_judged = outcome(unindexed(plan), events)
    assert (rows, counts) == (every_rows, every_counts)
    assert all(a <= b for a, b in zip(judged, every_judged, strict=True))


@settings(max_examples=100)
@given(rule_sets(), streams(), st.integers(0, 40))
def test_a_stream_split_anywhere_and_resumed_gives_the_same_alerts(
        rules: str, events: list[t.Event], cut: int) -> None:
    """Event rules judge each event as it comes: where a replay's input is cut into
    batches (a live reader's batches, a resumed replay) changes nothing."""
    plan = compile_text(rules)
    assert outcome(plan, events, cut) == outcome(plan, events)

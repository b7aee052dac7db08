"""Properties of the engine and the trace reader, checked with Hypothesis.

* Random valid event streams (pids from a small pool, so that pid reuse,
  orphans and re-parenting happen all the time) never make ``Core.feed``
  raise, with the shipped rules or with random simple rules, and leave the
  process tree consistent.
* The engine is a deterministic function of its input: the same stream split
  into batches anywhere (mid-tick included) gives byte-identical output, event
  rules (judged at each event, with cooldowns and rate caps) included.
* The trace reader given arbitrary lines or bytes raises only TraceError, or
  with ``skip_invalid`` never raises; its result does not depend on where
  block boundaries fall.

The profile (tests/conftest.py) is derandomized: the same examples every run.
"""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Sequence
from typing import TypeVar

import orjson
from engine_support import no_hang
from hypothesis import given, settings
from hypothesis import strategies as st
from support import RULES

from linnix.engine import trace as t
from linnix.engine.core import Core, Output
from linnix.engine.proctable import ProcTable
from linnix.errors import TraceError
from linnix.language.pipeline import build, compile_text
from linnix.names import EXIT_NAMES, METRICS, NET_NAMES, Scope, Type
from linnix.plan import Plan

KINDS_OF_EVENTS = ("proc", "fork", "fork", "exec", "exit", "exit", "sample", "sample", "sample",
                   "system", "lost", "connect", "accept", "listen")
COMMS = ("init", "bash", "make", "cc", "spin")
NUMS: tuple[float | None, ...] = (None, 0.0, 0.5, 10.0, 55.0, 95.0, 180.0, 1e6)
COUNTS: tuple[int | None, ...] = (None, 0, 1, 3, 12, 950, 1024)
STEPS = (0.0, 0.0, 0.001, 0.1, 0.25, 0.5, 0.5, 0.7, 1.0, 1.3, 3.0)
T = TypeVar("T")


class _Code:
    """Reads choices off one big integer: one Hypothesis draw per event keeps generation fast."""

    def __init__(self, code: int) -> None:
        self.code = code

    def pick(self, options: Sequence[T]) -> T:
        self.code, i = divmod(self.code, len(options))
        return options[i]

    def int(self, low: int, high: int) -> int:
        self.code, i = divmod(self.code, high - low + 1)
        return low + i


def decode_event(code: int, ts: float) -> t.Event:
    c = _Code(code)
    kind = c.pick(KINDS_OF_EVENTS)
    pid, ppid, comm = c.int(1, 9), c.int(0, 9), c.pick(COMMS)
    if kind == "proc":
        return t.Proc(ts=ts, pid=pid, ppid=ppid, comm=comm, start=c.pick((None, ts, 0.0)))
    if kind == "fork":
        return t.Fork(ts=ts, pid=pid, ppid=ppid, comm=comm)
    if kind == "exec":
        return t.Exec(ts=ts, pid=pid, comm=comm, argv=c.pick((None, ["x", "-y"])))
    if kind == "exit":
        return t.Exit(ts=ts, pid=pid, code=c.pick((None, 0, 1, 255)),
                      signal=c.pick((None, None, 6, 11, 13, 99)))
    if kind == "sample":
        return t.Sample(ts=ts, pid=pid, cpu_pct=c.pick(NUMS), rss_kb=c.pick(NUMS),
                        fds=c.pick(COUNTS), fd_limit=c.pick(COUNTS), threads=c.pick(COUNTS),
                        comm=c.pick((None, comm)))
    if kind == "system":
        return t.System(ts=ts, cpu_pct=c.pick(NUMS), ncpu=c.pick((None, 2)),
                        mem_total_kb=c.pick(NUMS), mem_available_kb=c.pick(NUMS),
                        psi_cpu_some=c.pick(NUMS), psi_mem_some=c.pick(NUMS))
    if kind == "connect":
        return t.Connect(ts=ts, pid=pid, family=c.pick(("inet", "unix")),
                         remote_addr=c.pick((None, "10.0.0.1", "/run/x")),
                         remote_port=c.pick((None, 22, 443)))
    if kind == "accept":
        return t.Accept(ts=ts, pid=pid, family="inet6", remote_addr="::1", local_port=22)
    if kind == "listen":
        return t.Listen(ts=ts, pid=pid, family="inet", local_port=c.pick((None, 22, 80)))
    return t.Lost(ts=ts, count=c.int(0, 50))


CODES = st.integers(0, 2**64)


@st.composite
def streams(draw: st.DrawFn, max_size: int = 80) -> list[t.Event]:
    ts = draw(st.sampled_from([0.0, 0.3, 12.5]))
    out: list[t.Event] = []
    size = draw(st.integers(0, max_size))
    for code in draw(st.lists(CODES, min_size=size, max_size=size)):
        c = _Code(code)
        ts = round(ts + c.pick(STEPS), 6)
        out.append(decode_event(c.code, ts))
    return out


# ---- random rules ---------------------------------------------------------------------

# cgroup metrics are not mixed with process names (E403): tests/engine/test_cgrules.py
# runs random cgroup streams
NUMERIC = sorted(name for name, m in METRICS.items()
                 if m.type is Type.NUM and name not in EXIT_NAMES and name not in NET_NAMES
                 and m.scope is not Scope.CGROUP)


@st.composite
def rule_text(draw: st.DrawFn, index: int) -> str:
    metric = draw(st.sampled_from(NUMERIC))
    term = metric
    if draw(st.booleans()):
        func = draw(st.sampled_from(["avg", "min", "max", "delta", "rate"]))
        term = f"{func}({metric}, {draw(st.sampled_from(['500ms', '1s', '3s']))})"
    op = draw(st.sampled_from([">", ">=", "<", "=="]))
    threshold = draw(st.sampled_from([0, 1, 2, 50]))
    when = f"{term} {op} {threshold}"
    if draw(st.booleans()):
        when += draw(st.sampled_from([' and comm != "init"', " or procs > 3",
                                      " and not (threads > 2)"]))
    lines = [f"rule r{index} {{", f"    when {when}{draw(st.sampled_from(['', ' for 1s']))}"]
    if draw(st.booleans()):
        lines.append(f"    clear when {metric} < 1{draw(st.sampled_from(['', ' for 1s']))}")
    for clause in ("keep_firing_for", "cooldown"):
        if draw(st.booleans()):
            lines.append(f"    {clause} {draw(st.sampled_from(['500ms', '2s']))}")
    if draw(st.booleans()):
        lines.append("    action kill(target = top(cpu_pct))"
                     if METRICS[metric].scope is Scope.SYSTEM else "    action kill")
    return "\n".join([*lines, "}"])


@st.composite
def rule_sets(draw: st.DrawFn) -> str:
    return "\n".join(draw(rule_text(i)) for i in range(draw(st.integers(1, 3))))


# conditions of event rules, by trigger (exit rules also read what the exit says)
EVENT_WHENS = {
    "exec": ['comm == "make"', 'exe startswith "/"', '"bash" in ancestors',
             'parent.comm in ["bash", "init"]', "cpu_pct > 50", "true"],
    "fork": ['parent.comm == "bash"', "children == 0", "uid == 0 or pid > 3"],
    "exit": ["crashed", "failed and lifetime_s < 1s", "exit_code == 1",
             'exit_signal == "SIGPIPE"', "rss_mb > 0 or not crashed"],
}


@st.composite
def event_rule_sets(draw: st.DrawFn) -> str:
    """Random event rules, with and without a cooldown (keyed or not) and a max_rate, with
    a tick rule beside them at times."""
    lines = []
    for i in range(draw(st.integers(1, 4))):
        trigger = draw(st.sampled_from(sorted(EVENT_WHENS)))
        lines += [f"rule e{i} {{", f"    on {trigger}",
                  f"    when {draw(st.sampled_from(EVENT_WHENS[trigger]))}"]
        lines.append(draw(st.sampled_from(["", "    cooldown 1s", "    cooldown 2s by comm",
                                           "    cooldown 500ms by uid, exe"])))
        lines.append(draw(st.sampled_from(["", "    max_rate 1/s", "    max_rate 3/m"])))
        if trigger != "exit" and draw(st.booleans()):
            lines.append("    action kill")
        lines.append("}")
    if draw(st.booleans()):
        lines.append("rule ticked: cpu_pct > 50 for 1s")
    return "\n".join(lines)


@functools.cache
def shipped() -> Plan:
    return build([str(RULES)]).require_plan()


@functools.cache
def compiled(text: str) -> Plan:
    return compile_text(text)


def run_batches(plan: Plan, batches: Sequence[list[t.Event]], tick: float = 0.5) -> bytes:
    core = Core(plan, tick)
    out: list[Output] = []
    with no_hang():
        for batch in batches:
            core.feed(batch)
            out.extend(core.drain())
        core.finish()
        out.extend(core.drain())
        check_table(core.table)
    return b"\n".join(orjson.dumps(o.to_json()) for o in out)


def check_table(table: ProcTable) -> None:
    """The tree is acyclic and its links agree; every subtree total is exact."""
    for pid, p in table.procs.items():
        assert p.pid == pid and p.alive
        seen = set()
        for node in p.lineage(inclusive=True):
            assert id(node) not in seen, "cycle"
            seen.add(id(node))
            assert node.alive
        if p.parent is not None:
            assert p.parent.kids[pid] is p and p.ppid == p.parent.pid
        for kid in p.kids.values():
            assert kid.parent is p
        if table.subtree:
            members = [p, *p.descendants()]
            assert p.sub_procs == len(members)
            if table.sum_cpu:
                assert p.sub_cpu_pct == sum(round((m.cpu_pct or 0) * 1000)
                                            for m in members) / 1000
    assert table.host.procs == len(table.procs)


def split(events: list[t.Event], cuts: list[int]) -> list[list[t.Event]]:
    points = sorted({min(c, len(events)) for c in cuts})
    out, last = [], 0
    for c in points:
        out.append(events[last:c])
        last = c
    out.append(events[last:])
    return out


# ---- the engine -----------------------------------------------------------------------------

@given(streams())
def test_random_streams_never_crash_the_shipped_rules(events: list[t.Event]) -> None:
    run_batches(shipped(), [events])


@given(streams(), rule_sets())
def test_random_streams_never_crash_random_rules(events: list[t.Event], rules: str) -> None:
    run_batches(compiled(rules), [events], tick=0.25)


@given(streams(), st.lists(st.integers(0, 80), max_size=6))
def test_batching_never_changes_the_output_of_the_shipped_rules(
        events: list[t.Event], cuts: list[int]) -> None:
    plan = shipped()
    assert run_batches(plan, split(events, cuts)) == run_batches(plan, [events])


@given(streams(), rule_sets(), st.lists(st.integers(0, 80), max_size=6))
def test_batching_never_changes_the_output_of_random_rules(
        events: list[t.Event], rules: str, cuts: list[int]) -> None:
    plan = compiled(rules)
    assert run_batches(plan, split(events, cuts)) == run_batches(plan, [events])


@given(streams(), event_rule_sets())
def test_random_streams_never_crash_event_rules(events: list[t.Event], rules: str) -> None:
    plan = compiled(rules)
    core = Core(plan, 0.25)
    with no_hang():
        core.feed(events)
        core.finish()
    assert all(s.errors == 0 for s in core.events.states)
    check_table(core.table)


@given(streams(), event_rule_sets(), st.lists(st.integers(0, 80), max_size=6))
def test_batching_never_changes_the_output_of_event_rules(
        events: list[t.Event], rules: str, cuts: list[int]) -> None:
    """A replay split anywhere and resumed gives the same alerts, at the same times."""
    plan = compiled(rules)
    assert run_batches(plan, split(events, cuts)) == run_batches(plan, [events])


@settings(max_examples=40)
@given(st.one_of(st.sampled_from([1, 2, 7, 100]), st.integers(1, 4096)),
       st.lists(st.integers(0, 400), max_size=4))
def test_a_fixture_replayed_in_pieces_gives_the_same_output(block: int,
                                                             cuts: list[int]) -> None:
    """The same trace read with any block size and fed in any batches: same bytes."""
    path = str(RULES.parent / "fixtures" / "fork_storm.jsonl")
    _, events = t.read_trace(path)
    whole = run_batches(shipped(), [events])
    assert whole.count(b'"state":"firing"') == 1
    reader = t.TraceReader(path, block_size=block)
    with open(path, "rb") as f:
        batches = list(reader.batches(f))
    assert [ev for b in batches for ev in b] == events
    assert run_batches(shipped(), batches) == whole
    assert run_batches(shipped(), split(events, cuts)) == whole


# ---- the trace reader -----------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 2**70), st.floats(allow_nan=False),
              st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=6)
FIELDS = st.sampled_from(["ts", "kind", "pid", "ppid", "comm", "count", "cpu_pct", "version",
                          "argv", "fds", "start"])
KINDS = st.sampled_from(["header", "proc", "fork", "exec", "exit", "sample", "system", "lost",
                         "bogus", ""])


@st.composite
def trace_line(draw: st.DrawFn) -> bytes:
    choice = draw(st.integers(0, 6))
    if choice == 0:  # a valid event
        ts = draw(st.sampled_from([0.0, 1.0, 2.5, 7.0]))
        return t.encode_event(decode_event(draw(CODES), ts))
    if choice == 1:  # a near-miss object
        obj = draw(st.dictionaries(FIELDS, JSON_VALUES, max_size=5))
        obj["kind"] = draw(st.one_of(KINDS, JSON_VALUES))
        return json.dumps(obj).encode()
    if choice == 2:
        return draw(st.sampled_from([b"", b"   ", b"\t\r", b"\r"]))
    if choice == 3:
        return b'{"kind":"header","version":1}'
    if choice == 4:
        ts = draw(st.sampled_from([0.0, 1.0, 2.5, 7.0]))
        one = t.encode_event(decode_event(draw(CODES), ts))
        return one + draw(st.sampled_from([b" ", b"", b"\r"])) + one  # two on one line
    if choice == 5:
        return draw(st.binary(max_size=40)).replace(b"\n", b"")
    return json.dumps(draw(JSON_VALUES)).encode()


def read_all(data: bytes, skip: bool, block: int) -> tuple[t.TraceReader, list[t.Event]]:
    reader = t.TraceReader("fuzz.jsonl", skip, block_size=block)
    events = [ev for batch in reader.batches(io.BytesIO(data)) for ev in batch]
    return reader, events


@given(st.lists(trace_line(), max_size=12), st.integers(1, 64), st.booleans())
def test_the_reader_raises_only_trace_errors(lines: list[bytes], block: int,
                                             newline_at_end: bool) -> None:
    data = b"\n".join(lines) + (b"\n" if newline_at_end else b"")
    n_lines = data.count(b"\n") + (0 if not data or data.endswith(b"\n") else 1)
    blank = sum(1 for line in data.split(b"\n")[:n_lines] if not line.strip())

    skipped, kept = read_all(data, True, block)
    header = skipped.header is not None
    # every line is a header, an event, skipped as invalid, or blank
    assert len(kept) + skipped.invalid + header + blank == n_lines == skipped.lines
    assert [e.ts for e in kept] == sorted(e.ts for e in kept)
    assert read_all(data, True, 1 << 20)[1] == kept  # block boundaries do not matter

    try:
        strict, events = read_all(data, False, block)
    except TraceError as err:
        assert err.path == "fuzz.jsonl" and 1 <= err.line <= n_lines
        assert skipped.first_error == str(err)
    else:
        assert skipped.invalid == 0 and events == kept and strict.lines == n_lines


@given(st.binary(max_size=200), st.integers(1, 64))
def test_the_reader_given_random_bytes(data: bytes, block: int) -> None:
    skipped, _ = read_all(data, True, block)
    try:
        read_all(data, False, block)
    except TraceError as err:
        assert skipped.first_error == str(err)
    else:
        assert skipped.invalid == 0


@settings(max_examples=30)
@given(st.binary(max_size=120), st.sampled_from(["plain", "gz", "corrupt gz"]))
def test_random_files_raise_only_trace_errors(data: bytes, mode: str) -> None:
    import gzip
    import tempfile

    if mode == "corrupt gz":  # a real gzip stream with a damaged middle
        packed = gzip.compress(b'{"ts":0,"kind":"lost","count":1}\n' * 50, mtime=0)
        data = packed[:12] + data + packed[12 + len(data):]
    with tempfile.TemporaryDirectory() as d:
        path = f"{d}/x.jsonl" + (".gz" if mode != "plain" else "")
        with open(path, "wb") as f:
            f.write(data)
        try:
            t.read_trace(path, skip_invalid=True)
        except TraceError as err:
            assert err.path == path

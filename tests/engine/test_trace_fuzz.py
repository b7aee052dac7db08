"""The fuzzing target of the trace reader: hostile input never escapes as anything but TraceError.

Arbitrary bytes and arbitrary JSON-ish lines (valid events, near misses, JSON
nested 100,000 deep, numbers out of every range, NaN and Infinity, very long
lines, headers in the wrong place, two values on a line, stray carriage
returns) are read with random block sizes:

* strictly, the reader raises nothing but :class:`TraceError`, naming a line
  of the input;
* with ``skip_invalid`` it never raises, and every line is accounted for
  (an event, the header, a blank line or a counted invalid line);
* what it keeps is in time order and in range, and the engine runs it with
  the shipped rules;
* nothing hangs: each example runs under an alarm.

In the unit suite this runs the default profile; ``make fuzz`` (part of
``make test``) runs it with the ``fuzz`` profile: ten times the examples, still
derandomized so that a run never fails on luck, the reproducing blob printed
on failure, and the whole run under ``timeout``.  ``HYPOTHESIS_PROFILE=thorough``
explores fresh random input by hand.
"""

from __future__ import annotations

import functools
import io
import json

from engine_support import no_hang
from hypothesis import given
from hypothesis import strategies as st
from support import RULES

from linnix.engine import trace as t
from linnix.engine.core import Core
from linnix.errors import TraceError
from linnix.language.pipeline import build, compile_text
from linnix.plan import Plan

ALARM_S = 20  # one example, however hostile, reads in well under a second

TIMES = st.one_of(st.sampled_from([0.0, 1.0, 2.5, 1e10, 1e10 + 1, -1.0, 1e300, 1e-320]),
                  st.floats(0, 1e10))
NUMBERS = st.one_of(TIMES, st.integers(-2**70, 2**70), st.floats(allow_nan=False))
TEXT = st.text(st.characters(codec="utf-8"), max_size=12)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
JSON = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=3)), max_leaves=8)
FIELDS = st.sampled_from(["ts", "kind", "pid", "ppid", "comm", "count", "cpu_pct", "rss_kb",
                          "version", "argv", "exe", "fds", "start", "code", "signal", "x",
                          "family", "remote_addr", "remote_port", "local_port", "local_addr",
                          "error", "sockets"])
KINDS = st.sampled_from(["header", "proc", "fork", "exec", "exit", "sample", "system", "lost",
                         "connect", "accept", "listen", "bogus", "", "HEADER"])
NET = ("connect", "accept", "listen")
# what a network event may carry: good values, and ones out of every range
FAMILIES = st.sampled_from(["inet", "inet6", "unix", "INET", "", "bogus"])
PORTS = st.one_of(st.none(), st.integers(0, 65535), st.sampled_from([-1, 65536, 2**64]))
ADDRS = st.one_of(st.none(), TEXT, st.sampled_from(
    ["10.0.0.1", "::ffff:10.0.0.1", "fe80::1%eth0", "1.2.3.4.5", "/run/x.sock", "x" * 5000]))
DEPTHS = st.sampled_from([1, 2, 50, 900, 1100, 5000, 100_000])
NUMBER_TEXT = st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999", b"-0.0",
                               b"1E+10", b"0x10", b"01", b"1.", b".5", b"1e-400",
                               b"99999999999999999999999"])


@st.composite
def event_line(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["proc", "fork", "exec", "exit", "sample", "system", "lost",
                                 *NET]))
    ts, pid = draw(TIMES), draw(st.integers(1, 9))
    fields: dict[str, object] = {"ts": ts, "kind": kind}
    if kind in ("proc", "fork", "exec", "exit", "sample", *NET):
        fields["pid"] = pid
    if kind in NET:
        fields["family"] = draw(FAMILIES)
        addr = "local_addr" if kind == "listen" else "remote_addr"
        port = "remote_port" if kind == "connect" else "local_port"
        fields |= {addr: draw(ADDRS), port: draw(PORTS)}
        if kind == "accept":
            fields["remote_port"] = draw(PORTS)
    if kind in ("proc", "fork"):
        fields |= {"ppid": draw(st.integers(0, 9)), "comm": draw(TEXT)}
    if kind == "proc":
        fields["start"] = draw(st.one_of(st.none(), TIMES, st.just(-1e10)))
    if kind == "exec":
        fields |= {"comm": draw(TEXT), "argv": draw(st.lists(TEXT, max_size=3))}
    if kind == "sample":
        fields |= {"cpu_pct": draw(st.one_of(st.none(), NUMBERS)), "fds": draw(st.integers(0, 99))}
    if kind == "system":
        fields["cpu_pct"] = draw(st.floats(0, 100))
    if kind == "lost":
        fields["count"] = draw(st.integers(0, 5))
    return json.dumps(fields).encode()


@st.composite
def nested(draw: st.DrawFn) -> bytes:
    depth = draw(DEPTHS)
    shape = draw(st.integers(0, 3))
    if shape == 0:
        return b"[" * depth
    if shape == 1:
        return b'{"a":' * depth + b"1" + b"}" * depth
    inner = b"[" * depth + b"]" * depth
    if shape == 2:  # valid JSON: an extra field the decoder must walk to skip
        return b'{"ts":1,"kind":"lost","count":1,"x":' + inner + b"}"
    return b'{"kind":"header","version":1,"x":' + inner + b"}"


@st.composite
def odd_number(draw: st.DrawFn) -> bytes:
    field = draw(st.sampled_from([b"ts", b"count", b"pid", b"start", b"cpu_pct"]))
    line = b'{"ts":1,"kind":"proc","pid":2,"ppid":1,"comm":"x","start":0,"count":1}'
    return line.replace(b'"' + field + b'":', b'"' + field + b'":' + draw(NUMBER_TEXT) + b",", 1)


@st.composite
def json_ish_line(draw: st.DrawFn) -> bytes:
    choice = draw(st.integers(0, 9))
    if choice <= 2:
        return draw(event_line())
    if choice == 3:  # a near miss
        obj = draw(st.dictionaries(FIELDS, JSON, max_size=6))
        obj["kind"] = draw(st.one_of(KINDS, JSON))
        return json.dumps(obj).encode()
    if choice == 4:
        return draw(nested())
    if choice == 5:
        return draw(odd_number())
    if choice == 6:  # a long line (the one over LINE_MAX is in test_trace.py: 16 MiB)
        return b'{"ts":1,"kind":"exec","pid":3,"comm":"' + b"x" * draw(
            st.sampled_from([4097, 70_000])) + b'"}'
    if choice == 7:
        return draw(st.sampled_from([b"", b"   ", b"\t\r", b"\r", b'{"kind":"header","version":1}',
                                     b'{"ts":1,"kind":"lost","count":1} {"ts":1}']))
    if choice == 8:
        return draw(st.binary(max_size=60)).replace(b"\n", b"")
    return json.dumps(draw(JSON)).encode()


def read(data: bytes, skip: bool, block: int) -> tuple[t.TraceReader, list[t.Event]]:
    reader = t.TraceReader("fuzz.jsonl", skip, block_size=block)
    return reader, [ev for batch in reader.batches(io.BytesIO(data)) for ev in batch]


@functools.cache
def shipped() -> Plan:
    return build([str(RULES)]).require_plan()


@functools.cache
def networked() -> Plan:
    """Rules over every network name, so that what the reader keeps reaches them."""
    return compile_text(
        'rule c on connect: remote_addr in_cidr "10.0.0.0/8" or remote_addr is_private\n'
        "rule a on accept: local_port == 22 or remote_port > 1024\n"
        'rule l on listen: family == "inet6" or local_port < 1024\n'
        "rule p: connects_per_sec + accepts_per_sec > 1 or 22 in listen_ports\n"
        "rule s { when subtree_connects_per_sec > 1\n scope subtree }\n")


def check(data: bytes, block: int) -> None:
    lines = data.count(b"\n") + (0 if not data or data.endswith(b"\n") else 1)
    with no_hang(ALARM_S):
        skipped, kept = read(data, True, block)
        blank = sum(1 for line in data.split(b"\n")[:lines] if not line.strip())
        assert len(kept) + skipped.invalid + (skipped.header is not None) + blank == lines
        assert skipped.lines == lines
        stamps = [e.ts for e in kept]
        assert stamps == sorted(stamps) and all(0 <= ts <= t.TS_MAX for ts in stamps)
        try:
            _, strict = read(data, False, block)
        except TraceError as err:
            assert err.path == "fuzz.jsonl" and 1 <= err.line <= lines
            assert skipped.first_error == str(err)
        else:
            assert skipped.invalid == 0 and strict == kept
        for plan in (shipped(), networked()):
            core = Core(plan)
            core.feed(kept)
            core.finish()


@given(st.lists(json_ish_line(), max_size=12), st.sampled_from([1, 7, 64, 4096, 1 << 20]),
       st.booleans())
def test_json_ish_lines(lines: list[bytes], block: int, newline_at_end: bool) -> None:
    check(b"\n".join(lines) + (b"\n" if newline_at_end else b""), block)


@given(st.lists(st.one_of(st.binary(max_size=80), json_ish_line()), max_size=8).map(
    b"".join), st.integers(1, 128))
def test_arbitrary_bytes(data: bytes, block: int) -> None:
    check(data, block)

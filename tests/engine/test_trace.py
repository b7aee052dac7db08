"""The trace reader: typed events, exact error messages naming file and line, options."""

from __future__ import annotations

import gzip
import io
import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from engine_support import no_hang
from hypothesis import given
from hypothesis import strategies as st

from linnix.engine import trace as t
from linnix.errors import TraceError

GOOD = b'{"ts":0.0,"kind":"lost","count":1}'
BLOCKS = [1, 7, 64, 1 << 20]  # tiny blocks put boundaries inside lines


def read(data: bytes, *, skip: bool = False, block: int = 1 << 20,
         path: str = "t.jsonl") -> tuple[t.TraceReader, list[t.Event]]:
    reader = t.TraceReader(path, skip, block_size=block)
    events = [ev for batch in reader.batches(io.BytesIO(data)) for ev in batch]
    return reader, events


def error(data: bytes, block: int = 1 << 20) -> str:
    with pytest.raises(TraceError) as info:
        read(data, block=block)
    return str(info.value)


# ---- decoding ----------------------------------------------------------------------------

def test_every_kind_decodes_to_its_typed_event() -> None:
    data = b"\n".join([
        b'{"kind":"header","version":1,"host":"web-1","ncpu":2,"mem_total_kb":24576000}',
        b'{"ts":0.0,"kind":"proc","pid":1,"ppid":0,"comm":"init","exe":"/sbin/init","uid":0,'
        b'"start":0.0}',
        b'{"ts":1.25,"kind":"fork","pid":101,"ppid":100,"comm":"bash"}',
        b'{"ts":1.26,"kind":"exec","pid":101,"comm":"sleep","exe":"/usr/bin/sleep",'
        b'"argv":["sleep","1"]}',
        b'{"ts":2.30,"kind":"exit","pid":101,"code":0}',
        b'{"ts":3.00,"kind":"sample","pid":100,"cpu_pct":12.5,"rss_kb":10240,"fds":12,'
        b'"fd_limit":1024,"threads":1}',
        b'{"ts":3.00,"kind":"system","cpu_pct":45.0,"mem_available_kb":20000000,'
        b'"psi_cpu_some":3.2}',
        b'{"ts":3,"kind":"lost","count":12,"extra":"ignored"}',
    ]) + b"\n"
    reader, events = read(data)
    assert reader.header == t.Header(version=1, host="web-1", ncpu=2, mem_total_kb=24576000)
    assert events == [
        t.Proc(ts=0.0, pid=1, ppid=0, comm="init", exe="/sbin/init", uid=0, start=0.0),
        t.Fork(ts=1.25, pid=101, ppid=100, comm="bash"),
        t.Exec(ts=1.26, pid=101, comm="sleep", exe="/usr/bin/sleep", argv=["sleep", "1"]),
        t.Exit(ts=2.3, pid=101, code=0),
        t.Sample(ts=3.0, pid=100, cpu_pct=12.5, rss_kb=10240, fds=12, fd_limit=1024,
                 threads=1),
        t.System(ts=3.0, cpu_pct=45.0, mem_available_kb=20000000, psi_cpu_some=3.2),
        t.Lost(ts=3.0, count=12),
    ]
    assert (reader.lines, reader.events, reader.invalid) == (8, 7, 0)
    assert isinstance(events[-1].ts, float)


def test_encode_event_round_trips_and_omits_unknown_fields() -> None:
    ev = t.Sample(ts=1.5, pid=3, cpu_pct=2.0)
    assert t.encode_event(ev) == b'{"kind":"sample","ts":1.5,"pid":3,"cpu_pct":2.0}'
    assert read(t.encode_event(ev) + b"\n")[1] == [ev]


def test_exec_and_exit_fields_from_the_kernel_round_trip() -> None:
    events = [t.Exec(ts=1.0, pid=3, comm="x", exe="/tmp/x", argv=["x", "y"], argv_truncated=True),
              t.Exec(ts=1.0, pid=4, comm="x", argv=["x"]),
              t.Exit(ts=2.0, pid=3, signal=11), t.Exit(ts=2.0, pid=4, code=1)]
    lines = [t.encode_event(ev) for ev in events]
    assert lines[0] == (b'{"kind":"exec","ts":1.0,"pid":3,"comm":"x","exe":"/tmp/x",'
                        b'"argv":["x","y"],"argv_truncated":true}')
    assert lines[1] == b'{"kind":"exec","ts":1.0,"pid":4,"comm":"x","argv":["x"]}'  # not cut
    assert lines[2] == b'{"kind":"exit","ts":2.0,"pid":3,"signal":11}'
    assert read(b"\n".join(lines) + b"\n")[1] == events
    assert [(e.cmdline(), e.argv_truncated) for e in events[:2]] == [  # type: ignore[union-attr]
        ("x y ...", True), ("x", False)]
    assert [(e.signal_name(), e.crashed()) for e in events[2:]] == [  # type: ignore[union-attr]
        ("SIGSEGV", True), (None, False)]
    assert (t.Exit(ts=0.0, pid=1, signal=13).signal_name(),
            t.Exit(ts=0.0, pid=1, signal=13).crashed()) == ("SIGPIPE", False)


def test_equal_timestamps_are_fine() -> None:
    assert len(read(GOOD + b"\n" + GOOD + b"\n")[1]) == 2


def test_blank_lines_are_skipped_but_counted() -> None:
    data = b"\n" + GOOD + b"\n   \n\t\r\n" + GOOD + b"\n\n"
    for block in BLOCKS:
        reader, events = read(data, block=block)
        assert (len(events), reader.lines, reader.invalid) == (2, 6, 0)
    assert error(b"\n\n" + GOOD + b"\n{}\n") == "t.jsonl:4: missing required field 'kind'"


def test_crlf_line_endings_and_a_last_line_without_newline() -> None:
    data = GOOD + b"\r\n" + GOOD.replace(b"0.0", b"1.0")
    for block in BLOCKS:
        reader, events = read(data, block=block)
        assert [e.ts for e in events] == [0.0, 1.0]
        assert reader.lines == 2


# ---- errors --------------------------------------------------------------------------------

@pytest.mark.parametrize(("line", "message"), [
    (b'{"ts":1,"kind":"bogus"}',
     "unknown kind 'bogus' (expected one of: header, proc, fork, exec, exit, sample, system, "
     "lost, cgroup, cgroup_gone, connect, accept, listen)"),
    (b'{"ts":1,"kind":"lost","count":1', "invalid JSON: the line ends too early"),
    (b"not json", "invalid JSON: invalid character (byte 4)"),
    (GOOD + b" " + GOOD, "invalid JSON: trailing characters (byte 36)"),  # two on one line
    (b'{"kind":"lost","count":1}', "missing required field 'ts'"),
    (b'{"ts":1,"count":1}', "missing required field 'kind'"),
    (b'{"ts":1,"kind":"fork","pid":7,"comm":"x"}', "missing required field 'ppid'"),
    (b'{"ts":1,"kind":"fork","pid":"12","ppid":1,"comm":"x"}',
     "field 'pid': expected int, got str"),
    (b'{"ts":1,"kind":"fork","pid":0,"ppid":1,"comm":"x"}', "field 'pid': expected int >= 1"),
    (b'{"ts":-1,"kind":"lost","count":1}', "field 'ts': expected float >= 0.0"),
    (b'{"ts":1e300,"kind":"lost","count":1}', "field 'ts': expected float <= 10000000000.0"),
    (b'{"ts":1e999,"kind":"lost","count":1}', "field 'ts': Number out of range"),
    (b'{"ts":NaN,"kind":"lost","count":1}', "invalid JSON: invalid character (byte 6)"),
    (b'{"ts":1,"kind":"proc","pid":2,"ppid":1,"comm":"x","start":-1e11}',
     "field 'start': expected float >= -10000000000.0"),
    (b'{"ts":true,"kind":"lost","count":1}', "field 'ts': expected float, got bool"),
    (b'{"ts":1,"kind":"lost","count":1.5}', "field 'count': expected int, got float"),
    (b'{"ts":1,"kind":"sample","pid":3,"cpu_pct":"x"}',
     "field 'cpu_pct': expected float | null, got str"),
    (b'{"ts":1,"kind":"exec","pid":3,"comm":"x","argv":"ls -l"}',
     "field 'argv': expected array | null, got str"),
    (b"[1,2]", "expected a JSON object, got array"),
    (b'{"kind":"header","version":1}', "a header is only allowed on the first line"),
])
@pytest.mark.parametrize("block", BLOCKS)
def test_each_error_names_file_line_and_reason(line: bytes, message: str, block: int) -> None:
    data = GOOD + b"\n\n" + GOOD + b"\n" + line + b"\n" + GOOD + b"\n"
    assert error(data, block) == f"t.jsonl:4: {message}"


def test_ts_going_backwards() -> None:
    data = (b'{"ts":13.0,"kind":"lost","count":1}\n' * 6
            + b'{"ts":12.5,"kind":"lost","count":1}\n')
    for block in BLOCKS:
        assert error(data, block) == "t.jsonl:7: 'ts' went backwards (12.5 after 13.0)"


def test_ts_going_backwards_shows_full_precision() -> None:
    data = (b'{"ts":1234567.891,"kind":"lost","count":1}\n'
            b'{"ts":1234567.89,"kind":"lost","count":1}\n')
    assert error(data) == "t.jsonl:2: 'ts' went backwards (1234567.89 after 1234567.891)"


@pytest.mark.parametrize(("header", "message"), [
    (b'{"kind":"header"}', "header: missing required field 'version'"),
    (b'{"kind":"header","version":"1"}', "header: field 'version': expected int, got str"),
    (b'{"kind":"header","version":1,"ncpu":"x"}',
     "header: field 'ncpu': expected int | null, got str"),
])
def test_a_bad_header(header: bytes, message: str) -> None:
    assert error(header + b"\n" + GOOD + b"\n") == f"t.jsonl:1: {message}"


def test_a_header_after_a_blank_first_line_is_not_on_line_1() -> None:
    assert error(b'\n{"kind":"header","version":1}\n') == (
        "t.jsonl:2: a header is only allowed on the first line")


def test_a_lone_carriage_return_inside_a_line_is_whitespace() -> None:
    # valid JSON on line 2; the bad line 3 sends the block to the line-by-line path,
    # which must not split line 2 at the \r
    data = GOOD + b'\n{"ts":1.0,\r"kind":"lost","count":1}\n{"ts":2.0}\n'
    assert error(data) == "t.jsonl:3: missing required field 'kind'"
    reader, events = read(data, skip=True)
    assert ([e.ts for e in events], reader.invalid) == ([0.0, 1.0], 1)


def test_the_range_of_times() -> None:
    """0 to TS_MAX for ts; a process may have started up to TS_MAX before the recording."""
    data = (b'{"ts":0,"kind":"proc","pid":2,"ppid":1,"comm":"x","start":-1e10}\n'
            b'{"ts":1e10,"kind":"lost","count":1}\n')
    events = read(data)[1]
    assert [e.ts for e in events] == [0.0, t.TS_MAX]
    assert events[0].start == -t.TS_MAX  # type: ignore[union-attr]


def test_times_out_of_range_are_skipped_and_counted() -> None:
    data = (GOOD + b'\n{"ts":1e300,"kind":"lost","count":1}\n'
            + GOOD.replace(b"0.0", b"5.0") + b"\n")
    for block in BLOCKS:
        reader, events = read(data, skip=True, block=block)
        assert ([e.ts for e in events], reader.invalid) == ([0.0, 5.0], 1)
        assert reader.first_error == "t.jsonl:2: field 'ts': expected float <= 10000000000.0"


DEEP = 100_000  # far beyond any recursion limit


@pytest.mark.parametrize(("line", "message"), [
    (b"[" * DEEP, "invalid JSON: nested too deeply"),
    (b'{"a":' * DEEP, "invalid JSON: nested too deeply"),
    (b'{"ts":1,"kind":"lost","count":1,"x":' + b"[" * DEEP + b"]" * DEEP + b"}",
     "invalid JSON: nested too deeply"),  # valid JSON, but an extra field too deep to skip
    (b'{"x":' + b'{"y":' * DEEP + b"1" + b"}" * DEEP + b',"ts":1,"kind":"lost","count":1}',
     "invalid JSON: nested too deeply"),
])
@pytest.mark.parametrize("block", [64, 1 << 20])
def test_deeply_nested_json_is_an_invalid_line(line: bytes, message: str, block: int) -> None:
    data = GOOD + b"\n\n" + GOOD + b"\n" + line + b"\n" + GOOD + b"\n"
    assert error(data, block) == f"t.jsonl:4: {message}"
    reader, events = read(data, skip=True, block=block)
    assert (len(events), reader.invalid, reader.lines) == (3, 1, 5)
    assert reader.first_error == f"t.jsonl:4: {message}"


def test_a_deeply_nested_first_line_is_not_taken_for_a_header() -> None:
    data = b'{"kind":"header","version":1,"x":' + b"[" * DEEP + b"]" * DEEP + b"}\n" + GOOD
    assert error(data) == "t.jsonl:1: invalid JSON: nested too deeply"
    reader, events = read(data, skip=True)
    assert (reader.header, len(events), reader.invalid) == (None, 1, 1)


def long_exec(chars: int, ts: float = 1.0) -> bytes:
    return b'{"ts":%g,"kind":"exec","pid":3,"comm":"' % ts + b"x" * chars + b'"}'


def test_a_line_longer_than_the_limit_is_invalid_whatever_the_blocks() -> None:
    over = long_exec(t.LINE_MAX)  # the limit plus the JSON around the text
    assert len(long_exec(t.LINE_MAX - 40)) <= t.LINE_MAX  # at the limit: fine
    data = b"\n".join([GOOD, long_exec(t.LINE_MAX - 40), over, GOOD.replace(b"0.0", b"2.0")])
    for block in (4096, 1 << 20, 1 << 25):  # the line ends in a later block, or in this one
        with no_hang(20):
            assert error(data, block) == f"t.jsonl:3: line longer than {t.LINE_MAX} bytes"
            reader, events = read(data, skip=True, block=block)
        assert [e.ts for e in events] == [0.0, 1.0, 2.0]
        assert (reader.invalid, reader.lines, reader.bytes_read) == (1, 4, len(data))


def test_a_line_too_long_is_not_kept_while_it_is_read() -> None:
    class Endless(io.RawIOBase):
        """A first line that never ends (what a pipe from a broken writer may send)."""

        served = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buf: Any) -> int:
            if self.served > 4 * t.LINE_MAX:
                return 0
            buf[:] = b"x" * len(buf)
            self.served += len(buf)
            return len(buf)

    reader = t.TraceReader("t.jsonl", True, block_size=1 << 20)
    tracemalloc.start()
    try:
        with no_hang(20):
            source = Endless()
            stream = io.BufferedReader(source)
            assert [ev for batch in reader.batches(stream) for ev in batch] == []
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2.5 * t.LINE_MAX  # the line so far and its last block, never all 64 MiB
    assert (reader.invalid, reader.lines, reader.bytes_read) == (1, 1, source.served)
    assert reader.first_error == f"t.jsonl:1: line longer than {t.LINE_MAX} bytes"


def test_a_long_line_read_in_small_blocks_costs_its_length() -> None:
    data = GOOD + b"\n" + long_exec(4 << 20) + b"\n" + GOOD.replace(b"0.0", b"2.0") + b"\n"
    with no_hang(20):  # re-joining the line at every block would copy terabytes
        _, events = read(data, block=64)
    assert [e.ts for e in events] == [0.0, 1.0, 2.0]
    assert len(events[1].comm) == 4 << 20  # type: ignore[union-attr]


# ---- skip_invalid -----------------------------------------------------------------------

def test_skip_invalid_counts_bad_lines_and_keeps_the_rest() -> None:
    data = b"\n".join([
        b'{"kind":"header","version":1}',
        b'{"ts":1.0,"kind":"lost","count":1}',
        b'{"ts":2.0,"kind":"bogus"}',
        b'{"ts":0.5,"kind":"lost","count":1}',  # backwards: skipped, does not move the clock
        b'{"ts":1.5,"kind":"lost","count":2}',
        b"garbage",
        b'{"ts":3.0,"kind":"lost","count":3}',
    ]) + b"\n"
    for block in BLOCKS:
        reader, events = read(data, skip=True, block=block)
        assert [(e.ts, e.count) for e in events] == [(1.0, 1), (1.5, 2), (3.0, 3)]  # type: ignore[union-attr]
        assert (reader.invalid, reader.lines, reader.events) == (3, 7, 3)
        assert reader.first_error == ("t.jsonl:3: unknown kind 'bogus' (expected one of: "
                                      "header, proc, fork, exec, exit, sample, system, lost, "
                                      "cgroup, cgroup_gone, connect, accept, listen)")


# ---- blocks -----------------------------------------------------------------------------

def test_block_boundaries_inside_lines_change_nothing() -> None:
    lines = [b'{"kind":"header","version":1,"ncpu":4}']
    lines += [b'{"ts":%d.5,"kind":"fork","pid":%d,"ppid":1,"comm":"w"}' % (i, i + 2)
              for i in range(40)]
    data = b"\n".join(lines) + b"\n"
    expected = read(data)[1]
    assert len(expected) == 40
    for block in (1, 2, 3, 5, 17, 41, 100):
        reader, events = read(data, block=block)
        assert events == expected
        assert reader.header == t.Header(version=1, ncpu=4)
        assert (reader.lines, reader.bytes_read) == (41, len(data))


def test_an_error_far_into_the_file_has_the_right_line_number() -> None:
    data = GOOD + b"\n" + (b'{"ts":1.0,"kind":"lost","count":1}\n' * 500) + b"oops\n"
    for block in (3, 100, 4096):
        assert error(data, block) == "t.jsonl:502: invalid JSON: invalid character (byte 0)"


# ---- files ------------------------------------------------------------------------------

def test_read_trace_reads_gz_transparently(tmp_path: Path) -> None:
    data = b'{"kind":"header","version":1}\n' + GOOD + b"\n" + GOOD + b"\n"
    plain, packed = tmp_path / "a.jsonl", tmp_path / "a.jsonl.gz"
    plain.write_bytes(data)
    packed.write_bytes(gzip.compress(data, mtime=0))
    r1, e1 = t.read_trace(str(plain))
    r2, e2 = t.read_trace(str(packed))
    assert e1 == e2 == [t.Lost(ts=0.0, count=1)] * 2
    assert r1.header == r2.header == t.Header(version=1)


def test_errors_in_gz_traces_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl.gz"
    path.write_bytes(gzip.compress(GOOD + b"\n{}\n", mtime=0))
    with pytest.raises(TraceError, match=r"a\.jsonl\.gz:2: missing required field 'kind'$"):
        t.read_trace(str(path))


def test_an_unreadable_gz_file_is_a_trace_error(tmp_path: Path) -> None:
    packed = gzip.compress(GOOD + b"\n" * 2000, mtime=0)
    path = tmp_path / "a.jsonl.gz"
    path.write_bytes(packed[:10] + bytes(b ^ 0x5A for b in packed[10:30]) + packed[30:])
    with pytest.raises(TraceError, match=r"a\.jsonl\.gz: cannot read: "):
        t.read_trace(str(path))
    path.write_bytes(b"this is not gzip")
    with pytest.raises(TraceError, match=r"a\.jsonl\.gz: cannot read: Not a gzipped file"):
        t.read_trace(str(path))


def test_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.jsonl"
    with pytest.raises(TraceError) as info:
        t.read_trace(str(path))
    assert str(info.value) == f"{path}: cannot open: No such file or directory"
    assert info.value.line == 0


# ---- cgroup samples ------------------------------------------------------------------------

def test_cgroup_samples_decode_with_every_value_optional() -> None:
    data = (b'{"ts":1,"kind":"cgroup","cgroup":"/system.slice/x.service","id":1234,"procs":2,'
            b'"cpu_pct":150.5,"mem_mb":10,"mem_max_mb":20,"swap_mb":0,"psi_cpu_some":1.5,'
            b'"psi_mem_some":2,"psi_mem_full":1,"psi_io_some":0.5,"oom_kills":3}\n'
            b'{"ts":2,"kind":"cgroup","cgroup":"/","id":1}\n'
            b'{"ts":3,"kind":"cgroup_gone","id":1234}\n')
    _, events = read(data)
    assert events == [
        t.Cgroup(ts=1.0, cgroup="/system.slice/x.service", id=1234, procs=2, cpu_pct=150.5,
                 mem_mb=10.0, mem_max_mb=20.0, swap_mb=0.0, psi_cpu_some=1.5,
                 psi_mem_some=2.0, psi_mem_full=1.0, psi_io_some=0.5, oom_kills=3),
        t.Cgroup(ts=2.0, cgroup="/", id=1),
        t.CgroupGone(ts=3.0, id=1234),
    ]
    assert t.encode_event(events[1]) == b'{"kind":"cgroup","ts":2.0,"cgroup":"/","id":1}'


@pytest.mark.parametrize(("line", "message"), [
    (b'{"ts":1,"kind":"cgroup","id":1}', "missing required field 'cgroup'"),
    (b'{"ts":1,"kind":"cgroup","cgroup":"/a"}', "missing required field 'id'"),
    (b'{"ts":1,"kind":"cgroup","cgroup":"a","id":1}', "field 'cgroup': expected str matching"),
    (b'{"ts":1,"kind":"cgroup","cgroup":"","id":1}', "field 'cgroup': expected str of length"),
    (b'{"ts":1,"kind":"cgroup","cgroup":"/' + b"a" * 4096 + b'","id":1}',
     "field 'cgroup': expected str of length <= 4096"),
    (b'{"ts":1,"kind":"cgroup","cgroup":"/a","id":-1}', "field 'id': expected int >= 0"),
    (b'{"ts":1,"kind":"cgroup","cgroup":"/a","id":1e3}', "field 'id': expected int, got float"),
    (b'{"ts":1,"kind":"cgroup","cgroup":"/a","id":1,"psi_mem_full":101}',
     "field 'psi_mem_full': expected float <= 100.0"),
    (b'{"ts":1,"kind":"cgroup","cgroup":"/a","id":1,"mem_mb":"5"}',
     "field 'mem_mb': expected float | null, got str"),
    (b'{"ts":1,"kind":"cgroup","cgroup":"/a","id":1,"procs":-2}',
     "field 'procs': expected int >= 0"),
    (b'{"ts":1,"kind":"cgroup_gone"}', "missing required field 'id'"),
])
def test_a_bad_cgroup_sample_is_a_trace_error(line: bytes, message: str) -> None:
    assert error(GOOD + b"\n" + line + b"\n").startswith(f"t.jsonl:2: {message}")


def test_network_events_decode_and_add_no_process_to_the_table(tmp_path: Path) -> None:
    from linnix.engine.proctable import ProcTable
    data = (b'{"ts":0,"kind":"proc","pid":5,"ppid":0,"comm":"web"}\n'
            b'{"ts":1,"kind":"listen","pid":5,"family":"inet","local_port":8080}\n'
            b'{"ts":2,"kind":"accept","pid":5,"family":"inet6","remote_addr":"::1",'
            b'"remote_port":40000,"local_port":8080}\n'
            b'{"ts":3,"kind":"connect","pid":5,"family":"unix","remote_addr":"/run/x.sock"}\n')
    (tmp_path / "t.jsonl").write_bytes(data)
    _, events = t.read_trace(str(tmp_path / "t.jsonl"))
    assert [type(ev).__name__ for ev in events] == ["Proc", "Listen", "Accept", "Connect"]
    assert events[2] == t.Accept(ts=2.0, pid=5, family="inet6", remote_addr="::1",
                                 remote_port=40000, local_port=8080)
    table = ProcTable()
    for ev in events:
        table.apply(ev)
    assert list(table.procs) == [5]
    assert table.procs[5].listen_ports() == (8080,)  # what they say is the process's


# ---- network events: every valid one round-trips ----------------------------------------

PORTS = st.one_of(st.none(), st.integers(0, 65535))
ADDRS = st.one_of(st.none(), st.text(max_size=40), st.ip_addresses().map(str))
FAMILY = st.sampled_from(["inet", "inet6", "unix"])
TS = st.floats(0, t.TS_MAX)
NET_EVENTS = st.one_of(
    st.builds(t.Connect, ts=TS, pid=st.integers(1, 2**31), family=FAMILY, remote_addr=ADDRS,
              remote_port=PORTS, error=st.one_of(st.none(), st.integers(0, 4095))),
    st.builds(t.Accept, ts=TS, pid=st.integers(1, 2**31), family=FAMILY, remote_addr=ADDRS,
              remote_port=PORTS, local_port=PORTS),
    st.builds(t.Listen, ts=TS, pid=st.integers(1, 2**31), family=FAMILY, local_port=PORTS,
              local_addr=ADDRS),
)


@given(st.lists(NET_EVENTS, max_size=8))
def test_valid_network_events_round_trip(events: list[t.Event]) -> None:
    events = sorted(events, key=lambda ev: ev.ts)
    data = b"".join(t.encode_event(ev) + b"\n" for ev in events)
    reader = t.TraceReader("t.jsonl")
    got = [ev for batch in reader.batches(io.BytesIO(data)) for ev in batch]
    assert got == events


@given(st.sampled_from(["connect", "accept", "listen"]),
       st.dictionaries(st.sampled_from(["ts", "pid", "family", "remote_addr", "remote_port",
                                        "local_port", "local_addr", "error"]),
                       st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                                 st.floats(allow_nan=False), st.text(max_size=8),
                                 st.lists(st.integers(), max_size=2)), max_size=8))
def test_network_events_with_any_field_values_are_read_or_refused_as_trace_errors(
        kind: str, fields: dict[str, object]) -> None:
    line = json.dumps({"kind": kind, **fields}).encode()
    reader = t.TraceReader("t.jsonl")
    try:
        got = [ev for batch in reader.batches(io.BytesIO(line)) for ev in batch]
    except TraceError as err:
        assert err.line == 1
        return
    (ev,) = got
    assert type(ev) in t.NET_TYPES and 0 <= ev.ts <= t.TS_MAX and ev.pid > 0
    assert ev.family in ("inet", "inet6", "unix")
    ports = [getattr(ev, name, None) for name in ("remote_port", "local_port")]
    assert all(p is None or 0 <= p <= 65535 for p in ports)

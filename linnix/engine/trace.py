"""The trace format (JSON Lines, v1): typed events, reading and writing.

Each line decodes straight into a typed, validated event (:class:`Fork`,
:class:`Sample`, ...), so a wrong type or a missing field is caught by the
decoder itself, and the engine reads attributes instead of dict keys.  The
same event classes are produced by the live sources, so the engine never
knows whether it is replaying or running.

:func:`read_trace` yields events in batches, checks that ``ts`` never goes
backwards, reads ``.gz`` files transparently, and either raises
:class:`~linnix.errors.TraceError` naming file and line or, with
``skip_invalid``, counts bad lines and goes on.

A line nested deeper than the decoder can follow (its recursion limit, a
few hundred levels; an event needs two) is invalid JSON like any other, never
an internal error: every decode here treats :class:`RecursionError` as a
decoding failure.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator
from typing import Annotated, Any, BinaryIO, Literal

import attrs
import msgspec

from ..errors import TraceError
from ..signals import CRASH_SIGNALS, signal_name

__all__ = [
    "CGROUP_PATH_MAX", "EVENT_TYPES", "LINE_MAX", "NET_TYPES", "TS_MAX", "Accept", "Cgroup",
    "CgroupGone", "Connect", "Event", "Exec", "Exit", "Fork", "Header", "Listen", "Lost", "Proc",
    "Sample", "System", "TraceReader", "encode_event",
    "open_trace", "read_trace",
]

# The largest time a trace may hold, in seconds (about 317 years): room for any
# boot-time clock and for Unix times, and small enough that tick arithmetic
# (first_ts + k * tick) stays precise.  A larger value, like 1e300, is an error
# rather than an instruction to run for ever.  JSON has no NaN or infinity, and
# msgspec refuses a number too large for a float, so every time is finite.
TS_MAX = 1e10

Pid = Annotated[int, msgspec.Meta(gt=0)]
PPid = Annotated[int, msgspec.Meta(ge=0)]
Count = Annotated[int, msgspec.Meta(ge=0)]
Time = Annotated[float, msgspec.Meta(ge=0, le=TS_MAX)]
Start = Annotated[float, msgspec.Meta(ge=-TS_MAX, le=TS_MAX)]  # before the recording: < 0
Num = Annotated[float, msgspec.Meta(ge=0)]
# The longest cgroup path a trace may name, in characters (the kernel's PATH_MAX): a
# longer one is an error, so that one sample cannot make the table keep megabytes.
CGROUP_PATH_MAX = 4096
CgPath = Annotated[str, msgspec.Meta(min_length=1, max_length=CGROUP_PATH_MAX, pattern="^/")]
CgId = Annotated[int, msgspec.Meta(ge=0)]  # the directory's inode
Pct = Annotated[float, msgspec.Meta(ge=0, le=100)]

_OPTS: dict[str, Any] = {"tag_field": "kind", "gc": False, "omit_defaults": True}


class Header(msgspec.Struct, tag="header", **_OPTS):
    """Optional first line: format version and facts about the host."""

    version: int
    host: str | None = None
    ncpu: int | None = None
    mem_total_kb: int | None = None


class Proc(msgspec.Struct, tag="proc", **_OPTS):
    """A process that existed when recording began."""

    ts: Time
    pid: Pid
    ppid: PPid
    comm: str
    exe: str | None = None
    cmdline: str | None = None
    uid: int | None = None
    start: Start | None = None
    cgroup: str | None = None
    user: str | None = None


class Fork(msgspec.Struct, tag="fork", **_OPTS):
    """A new process (never a thread).

    ``cgroup`` and ``user`` are optional: absent, the child has its parent's
    (the kernel starts a child in its parent's cgroup, and with its uid).
    """

    ts: Time
    pid: Pid
    ppid: PPid
    comm: str
    uid: int | None = None
    cgroup: str | None = None
    user: str | None = None


class Exec(msgspec.Struct, tag="exec", **_OPTS):
    """The process replaced its image.

    ``argv_truncated`` (an optional extension) says that ``argv`` holds only the
    first arguments, or a cut last one: the source keeps a bounded number of bytes.
    ``cgroup`` (optional) is the cgroup the process is in after the exec; absent,
    it is still the one it was in (an exec never moves a process).
    """

    ts: Time
    pid: Pid
    comm: str
    exe: str | None = None
    argv: list[str] | None = None
    argv_truncated: bool = False
    cgroup: str | None = None

    def cmdline(self) -> str | None:
        """``argv`` joined by spaces; one its source cut ends with `` ...``."""
        if self.argv is None:
            return None
        text = " ".join(self.argv)
        return text + " ..." if self.argv_truncated else text


class Exit(msgspec.Struct, tag="exit", **_OPTS):
    """The process ended: with exit ``code`` 0-255, or killed by ``signal`` (its number)."""

    ts: Time
    pid: Pid
    code: int | None = None
    signal: int | None = None

    def signal_name(self) -> str | None:
        """The fatal signal's name (``"SIGSEGV"``), None when none is known."""
        return None if self.signal is None else signal_name(self.signal)

    def crashed(self) -> bool:
        """Whether a signal ended it because the program went wrong (it dumps core)."""
        return self.signal is not None and signal_name(self.signal) in CRASH_SIGNALS


class Sample(msgspec.Struct, tag="sample", **_OPTS):
    """Per-process telemetry; absent fields are unknown, not zero.

    ``comm`` is an optional extension: the command name as sampled, which
    catches a process renaming itself (prctl) without an exec.  ``sockets``
    (optional) is the number of its open sockets, sampled only while a rule reads it.
    """

    ts: Time
    pid: Pid
    cpu_pct: Num | None = None
    rss_kb: Num | None = None
    fds: Count | None = None
    fd_limit: Count | None = None
    threads: Count | None = None
    comm: str | None = None
    sockets: Count | None = None


class System(msgspec.Struct, tag="system", **_OPTS):
    """Host telemetry: cpu 0-100 over all CPUs, PSI avg10 percentages."""

    ts: Time
    cpu_pct: Num | None = None
    ncpu: int | None = None
    mem_total_kb: Num | None = None
    mem_available_kb: Num | None = None
    psi_cpu_some: Num | None = None
    psi_mem_some: Num | None = None
    psi_mem_full: Num | None = None
    psi_io_some: Num | None = None
    psi_io_full: Num | None = None


class Lost(msgspec.Struct, tag="lost", **_OPTS):
    """The kernel dropped ``count`` events."""

    ts: Time
    count: Count


class Cgroup(msgspec.Struct, tag="cgroup", **_OPTS):
    """One sample of one cgroup: its v2 ``cgroup`` path and ``id`` (the directory's inode).

    Unlike a process ``sample``, it is whole: an absent field has no value until the
    next sample of the cgroup says otherwise.  ``cpu_pct`` is percent of one CPU since
    its previous sample; sizes are MiB; the ``psi_*`` values avg10 percentages of its
    own pressure files; ``oom_kills`` the count in its ``memory.events``.
    """

    ts: Time
    cgroup: CgPath
    id: CgId
    procs: Count | None = None
    cpu_pct: Num | None = None
    mem_mb: Num | None = None
    mem_max_mb: Num | None = None
    swap_mb: Num | None = None
    psi_cpu_some: Pct | None = None
    psi_mem_some: Pct | None = None
    psi_mem_full: Pct | None = None
    psi_io_some: Pct | None = None
    oom_kills: Count | None = None


class CgroupGone(msgspec.Struct, tag="cgroup_gone", **_OPTS):
    """The cgroup ``id`` was removed (or is no longer sampled)."""

    ts: Time
    id: CgId


Family = Literal["inet", "inet6", "unix"]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
# An address as text: an IPv4 or IPv6 address, or a unix socket's path (hostile, bounded).
Addr = Annotated[str, msgspec.Meta(max_length=CGROUP_PATH_MAX)]


class Connect(msgspec.Struct, tag="connect", **_OPTS):
    """Process ``pid`` (the thread group, not the thread) asked to connect a socket.

    ``error`` is the errno the call failed with, absent when it succeeded or is
    in progress (a non-blocking connect's ``EINPROGRESS`` counts as made).
    """

    ts: Time
    pid: Pid
    family: Family
    remote_addr: Addr | None = None
    remote_port: Port | None = None
    error: Count | None = None


class Accept(msgspec.Struct, tag="accept", **_OPTS):
    """Process ``pid`` accepted a connection from ``remote_addr``, on its ``local_port``."""

    ts: Time
    pid: Pid
    family: Family
    remote_addr: Addr | None = None
    remote_port: Port | None = None
    local_port: Port | None = None


class Listen(msgspec.Struct, tag="listen", **_OPTS):
    """Process ``pid`` started listening on ``local_port`` (``local_addr`` when known)."""

    ts: Time
    pid: Pid
    family: Family
    local_port: Port | None = None
    local_addr: Addr | None = None


Event = (Proc | Fork | Exec | Exit | Sample | System | Lost | Cgroup | CgroupGone | Connect
         | Accept | Listen)
EVENT_TYPES = (Proc, Fork, Exec, Exit, Sample, System, Lost, Cgroup, CgroupGone, Connect, Accept,
               Listen)
NET_TYPES = (Connect, Accept, Listen)
_KINDS = ("header", "proc", "fork", "exec", "exit", "sample", "system", "lost", "cgroup",
          "cgroup_gone", "connect", "accept", "listen")

_any_decoder = msgspec.json.Decoder(Header | Event)
_body_decoder = msgspec.json.Decoder(Event)
_encoder = msgspec.json.Encoder()
# what a decode raises on bad input: msgspec's own errors, and RecursionError for
# values nested deeper than the interpreter's recursion limit allows
_DECODE_FAILURES = (msgspec.DecodeError, RecursionError)
_TOO_DEEP = "invalid JSON: nested too deeply"
# The longest line kept, in bytes (its newline aside): far above any event (a
# command line is at most a few MiB), and a bound on the memory one line takes.
LINE_MAX = 16 << 20


def encode_event(event: Event | Header) -> bytes:
    """One trace line (without the newline)."""
    return _encoder.encode(event)


_AT = re.compile(r"^(.*?) - at `\$\.?(.*)`$")


def _reason(err: msgspec.DecodeError) -> str:
    """A short, human explanation of a decoding failure."""
    text = str(err)
    if text.startswith("Object missing required field"):
        return "missing required field '" + text.split("`")[1] + "'"
    if text.startswith("JSON is malformed"):
        return "invalid JSON: " + text.split(": ", 1)[1]
    if text == "Input data was truncated":
        return "invalid JSON: the line ends too early"
    m = _AT.match(text)
    if m is None:
        return text.replace("`", "").replace("Expected object", "expected a JSON object")
    what, field = m.group(1), m.group(2)
    if field == "kind" and what.startswith("Invalid value"):
        kind = what.removeprefix("Invalid value ")
        return f"unknown kind {kind} (expected one of: {', '.join(_KINDS)})"
    return f"field '{field}': " + what.replace("`", "").replace("Expected", "expected")


@attrs.define
class TraceReader:
    """Reads one trace; counts what it skipped.  Iterate :meth:`batches`.

    The fast path decodes a whole block of lines at once and checks that
    timestamps never decrease with one C-level sort; only a block with a
    problem is decoded again line by line, to name the offending line.
    """

    path: str
    skip_invalid: bool = False
    block_size: int = 1 << 20
    header: Header | None = None
    lines: int = 0
    events: int = 0
    invalid: int = 0
    first_error: str | None = None
    bytes_read: int = 0
    _last: float = -1.0

    def batches(self, stream: BinaryIO) -> Iterator[list[Event]]:
        for chunk, more in self._chunks(stream):
            data = self._header(chunk) if chunk and self.lines == 0 else chunk  # line 1
            lines = data.count(b"\n") + (0 if not data or data.endswith(b"\n") else 1)
            events = self._decode(data, lines)
            self.lines += lines
            if events:
                self.events += len(events)
                yield events
            if not more:
                return

    def _chunks(self, stream: BinaryIO) -> Iterator[tuple[bytes, bool]]:
        """Runs of whole lines, and whether more may follow; linear in the input.

        The start of a line whose end is not read yet is kept as a list of
        blocks, joined once its end comes, so that a long line costs its
        length, not its length squared.  A line that grows past
        :data:`LINE_MAX` is invalid: it is reported (or counted) at once and
        the rest of it is read without being kept, so memory stays bounded.
        """
        pending: list[bytes] = []  # the start of the next line
        size = 0
        skipping = False  # inside a line too long to keep: read on to its end
        while True:
            block = stream.read(self.block_size)
            if skipping and block:
                end = block.find(b"\n")
                self.bytes_read += len(block) if end < 0 else end + 1
                if end < 0:
                    continue
                block, skipping = block[end + 1:], False
                if not block:
                    continue
            if not block:
                data = b"".join(pending)
                self.bytes_read += len(data)
                yield data, False
                return
            cut = block.rfind(b"\n") + 1
            if cut == 0:
                pending.append(block)
                size += len(block)
                if size > LINE_MAX:
                    self.bytes_read += size
                    pending, size, skipping = [], 0, True
                    self._bad(self.lines + 1, f"line longer than {LINE_MAX} bytes")
                    self.lines += 1
                continue
            data = b"".join([*pending, block[:cut]]) if pending else block[:cut]
            pending = [block[cut:]] if cut < len(block) else []
            size = len(block) - cut
            self.bytes_read += len(data)
            yield data, True

    def _header(self, data: bytes) -> bytes:
        """Consume a header on the first line, if there is one."""
        end = data.find(b"\n")
        line = data if end < 0 else data[: end + 1]
        if len(line.rstrip(b"\n")) > LINE_MAX:
            return data
        try:
            header = _any_decoder.decode(line)
        except _DECODE_FAILURES:  # the line is judged again with the body
            return data
        if type(header) is not Header:
            return data
        self.header = header
        self.lines += 1
        return data[len(line):]

    def _decode(self, data: bytes, lines: int) -> list[Event]:
        if len(data) > LINE_MAX:  # it may hold a line too long: line by line
            return self._slow(data)
        try:
            events: list[Event] = _body_decoder.decode_lines(data)
        except _DECODE_FAILURES:
            return self._slow(data)
        if events:
            if not _one_per_line(data, lines, len(events)):
                return self._slow(data)
            stamps = [e.ts for e in events]
            if stamps[0] < self._last or stamps != sorted(stamps):
                return self._slow(data)
            self._last = stamps[-1]
        return events

    def _slow(self, data: bytes) -> list[Event]:
        """Line by line, to report (or skip) exactly the bad lines."""
        out: list[Event] = []
        lineno = self.lines
        for raw in data.split(b"\n"):  # not splitlines(): a lone \r is JSON whitespace
            lineno += 1
            if len(raw) > LINE_MAX:
                self._bad(lineno, f"line longer than {LINE_MAX} bytes")
                continue
            if not raw.strip():
                continue
            try:
                ev = _body_decoder.decode(raw)
            except msgspec.DecodeError as err:
                self._bad(lineno, self._explain(raw, err, lineno == 1))
                continue
            except RecursionError:
                self._bad(lineno, _TOO_DEEP)
                continue
            if ev.ts < self._last:
                self._bad(lineno, f"'ts' went backwards ({ev.ts!r} after {self._last!r})")
                continue
            self._last = ev.ts
            out.append(ev)
        return out

    @staticmethod
    def _explain(raw: bytes, err: msgspec.DecodeError, first: bool) -> str:
        try:
            kind = msgspec.json.decode(raw).get("kind")
        except RecursionError:  # the typed decoder stopped early; the line is too deep
            return _TOO_DEEP
        except (msgspec.DecodeError, AttributeError):
            kind = None
        if kind == "header":
            if not first:
                return "a header is only allowed on the first line"
            try:
                _any_decoder.decode(raw)
            except msgspec.DecodeError as header_err:
                return "header: " + _reason(header_err)
        return _reason(err)

    def _bad(self, lineno: int, reason: str) -> None:
        if not self.skip_invalid:
            raise TraceError(self.path, lineno, reason)
        self.invalid += 1
        if self.first_error is None:
            self.first_error = f"{self.path}:{lineno}: {reason}"


_BLANK_LINE = re.compile(rb"\n[ \t\r]*\n")


def _one_per_line(data: bytes, lines: int, values: int) -> bool:
    """Whether ``values`` decoded values came one from each of the ``lines`` lines.

    ``decode_lines`` skips blank lines and accepts several values on one line
    (``{...} {...}``), which the format forbids; when the count does not
    prove one value per line, the block is read again line by line.
    """
    if values != lines:
        return False
    # equal counts with a blank line would mean a line holding two values
    end = data.find(b"\n")
    if not (data if end < 0 else data[:end]).strip():
        return False
    if not data.endswith(b"\n") and not data[data.rfind(b"\n") + 1:].strip():
        return False
    # a blank line starts right after a newline with one of these: test cheaply first
    if not any(mark in data for mark in (b"\n\n", b"\n ", b"\n\t", b"\n\r")):
        return True
    return _BLANK_LINE.search(data) is None


def open_trace(path: str) -> BinaryIO:
    """Open a trace for reading; ``.gz`` files are decompressed on the fly."""
    try:
        if path.endswith(".gz"):
            return gzip.open(path, "rb")  # type: ignore[return-value]
        return open(path, "rb", buffering=1 << 20)
    except OSError as err:
        raise TraceError(path, 0, f"cannot open: {err.strerror or err}") from None


def read_trace(path: str, skip_invalid: bool = False) -> tuple[TraceReader, list[Event]]:
    """Read a whole trace into memory (for tests and small traces)."""
    reader = TraceReader(path, skip_invalid)
    with open_trace(path) as stream:
        try:
            events = [ev for batch in reader.batches(stream) for ev in batch]
        except (OSError, EOFError, zlib.error) as err:  # unreadable or corrupt .gz
            raise TraceError(path, reader.lines, f"cannot read: {err}") from None
    return reader, events


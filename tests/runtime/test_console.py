"""The daemon's console: a bounded queue and a writer thread, so that a stdout nobody reads
never stops the caller; lines that do not fit are dropped, counted and told of.

A write that waited would hang the test thread (pytest-timeout fails it): every pipe here is
filled before the console writes to it, so its writer thread is stuck for certain and what
fits in the queue is exact, whatever the thread's timing.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import logging
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from linnix.runtime.console import Console, consoles

NOTE = "linnix: {lines:,} line(s) dropped\n"
LINE = "x" * 99 + "\n"  # 100 bytes
LIMIT = 16 * 1024  # 163 lines of 100 bytes


@pytest.fixture
def full_pipe() -> Iterator[tuple[int, int]]:
    """(read end, write end) of a pipe already full; both closed after the test."""
    r, w = os.pipe()
    os.set_blocking(w, False)
    with pytest.raises(BlockingIOError):
        while True:
            os.write(w, b"-" * 4096)
    os.set_blocking(w, True)  # as stdout is: a write waits for the reader
    yield r, w
    close(r, w)


def close(*fds: int) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):  # closed by the test already
            os.close(fd)


def drain_filler(r: int) -> bytes:
    """Read the filler, and what follows it up to a read's end."""
    data = b""
    while not data.rstrip(b"-"):
        data += os.read(r, 65536)
    return data.lstrip(b"-")


def read_until(r: int, data: bytes, end: bytes) -> bytes:
    while end not in data:
        chunk = os.read(r, 65536)
        assert chunk, data[-200:]
        data += chunk
    return data


def test_writes_to_a_pipe_nobody_reads_return_at_once_and_drops_are_counted_then_told(
        full_pipe: tuple[int, int]) -> None:
    r, w = full_pipe
    console = Console(w, "utf-8", NOTE, name="test", limit=LIMIT)
    for _ in range(1000):  # 100 kB: the old synchronous write would wait here forever
        console.write(LINE)
    assert console.dropped == 1000 - LIMIT // len(LINE) == 837
    data = read_until(r, drain_filler(r), b"dropped\n")  # the reader reads at last
    assert data.decode() == LINE * 163 + "linnix: 837 line(s) dropped\n"
    console.write("after\n")
    assert read_until(r, b"", b"after\n") == b"after\n"  # told once only
    assert console.close(timeout=60)
    assert (console.dropped, console.ended) == (837, None)


def test_the_note_comes_where_the_lines_were_lost(
        full_pipe: tuple[int, int]) -> None:
    r, w = full_pipe
    console = Console(w, "utf-8", NOTE, name="test", limit=len(LINE) * 2)
    console.write(LINE * 2 + "lost 1\nlost 2\n")
    data = drain_filler(r)
    data = read_until(r, data, LINE.encode() * 2)
    # the writer thread frees the room of what it wrote once its write returns: the
    # reader may see the bytes a moment before (else "next" would be dropped too)
    deadline = time.monotonic() + 30
    while console.waiting and time.monotonic() < deadline:
        time.sleep(0.001)
    console.write("next\n")
    assert read_until(r, data, b"next\n").decode() == (
        LINE * 2 + "linnix: 2 line(s) dropped\nnext\n")
    assert console.close(timeout=60)


def test_a_closed_pipe_ends_the_output_quietly(full_pipe: tuple[int, int]) -> None:
    r, w = full_pipe
    console = Console(w, "utf-8", NOTE, name="test", limit=LIMIT)
    console.write("one\ntwo\n")
    os.close(r)  # the reader went away: the stuck write fails with EPIPE
    assert console.close(timeout=60)  # the thread ended on its own
    assert console.ended == os.strerror(32)  # EPIPE
    console.write("three\n")  # no error, nothing written: counted
    assert console.dropped == 3


def test_close_gives_up_on_a_stream_that_never_takes_anything(
        full_pipe: tuple[int, int]) -> None:
    r, w = full_pipe
    console = Console(w, "utf-8", NOTE, name="test", limit=LIMIT)
    console.write("stuck\n")
    assert console.close(timeout=0.05) is False  # returns, though nothing could be written
    console.write("later\n")  # after close: dropped, never queued
    assert console.dropped == 1
    os.close(r)  # the stuck thread meets a closed pipe and ends
    console._thread.join(60)
    assert not console._thread.is_alive()


def test_what_the_encoding_lacks_is_written_as_escapes_and_lines_are_kept_whole() -> None:
    r, w = os.pipe()
    try:
        console = Console(w, "ascii", NOTE, name="test")
        console.write("\u65e5\u672c[42] busy\nsecond")
        console.write(" half\n")
        assert console.close(timeout=60)
        os.close(w)
        with os.fdopen(r, "rb") as f:
            assert f.read() == b"\\u65e5\\u672c[42] busy\nsecond half\n"
    finally:
        close(r, w)


def test_a_descriptor_made_non_blocking_by_someone_else_is_waited_on(
        full_pipe: tuple[int, int]) -> None:
    r, w = full_pipe
    os.set_blocking(w, False)  # the open file is shared: another process may do this
    console = Console(w, "utf-8", NOTE, name="test", limit=LIMIT)
    console.write("waits\n")
    data = read_until(r, drain_filler(r), b"waits\n")
    assert data == b"waits\n"
    assert console.close(timeout=60)
    assert (console.dropped, console.ended) == (0, None)
    assert fcntl.fcntl(w, fcntl.F_GETFL) & os.O_NONBLOCK  # left as it was found


def test_the_daemons_consoles_take_the_streams_with_a_descriptor_and_the_loggers_warnings(
        full_pipe: tuple[int, int]) -> None:
    r, w = full_pipe
    err = os.fdopen(w, "w", encoding="ascii", closefd=False)
    resort = logging.lastResort
    log = logging.getLogger("linnix.test.console")
    log.propagate = False  # no handler up the tree either (pytest puts one on the root)
    with consoles(io.StringIO(), err) as made:  # a StringIO has no descriptor: written as is
        assert list(made) == ["stderr"]
        log.info("not a warning")
        log.warning("GET /\x1b[2J\u65e5 refused")
        data = read_until(r, drain_filler(r), b"refused\n")
    assert logging.lastResort is resort
    assert data == b"GET /\\x1b[2J\\u65e5 refused\n"  # shown as data, in the stream's encoding


def test_the_daemons_consoles_give_up_on_a_stuck_stream_at_the_end(
        full_pipe: tuple[int, int]) -> None:
    r, w = full_pipe
    out = os.fdopen(w, "w", closefd=False)
    with consoles(out, None) as made:
        made["stdout"].write("never read\n")
    # back here, though the line could not be written: the writer thread is left behind
    assert made["stdout"].close(timeout=0) is False
    os.close(r)  # and ends at the closed pipe
    made["stdout"]._thread.join(60)


def test_each_write_is_of_whole_lines_a_pipe_takes_in_one_piece(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """stdout and stderr on one pipe (2>&1, a journal) must not cut each other's lines: a
    pipe writes up to PIPE_BUF bytes at once, so no write is longer, unless one line is."""
    r, w = os.pipe()
    sizes: list[int] = []
    real = os.write

    def spy(fd: int, data: Any) -> int:
        if fd == w:
            sizes.append(len(data))
        return real(fd, data)

    monkeypatch.setattr(os, "write", spy)
    try:
        console = Console(w, "utf-8", NOTE, name="test")
        line, long = "a" * 1999 + "\n", "b" * 5999 + "\n"
        console.write(line * 3 + long + "c\n")  # queued at once: the thread sees all five
        assert console.close(timeout=60)
        assert sizes == [4000, 2000, 6000, 2]
        os.close(w)
        with os.fdopen(r, "rb") as f:
            assert f.read() == (line * 3 + long + "c\n").encode()
    finally:
        close(r, w)


def test_a_stream_whose_reader_left_before_the_start_is_taken_quietly() -> None:
    r, w = os.pipe()
    out = os.fdopen(w, "w", closefd=False)
    out.write("held in its buffer")
    os.close(r)  # flushing it now fails with EPIPE
    try:
        console = Console.of(out, NOTE, "stdout")
        assert console is not None
        console.write("one\n")
        assert console.close(timeout=60)
        assert (console.ended, console.dropped) == (os.strerror(32), 1)
    finally:
        with contextlib.suppress(OSError):
            out.close()  # tries its buffer once more
        close(w)

"""The daemon's stdout and stderr: bounded, and never a wait for the event loop.

A terminal that nobody reads is common: ``linnix run | less`` left paused, a
terminal stopped with Ctrl-S, journald restarting.  A write to it waits until
the reader reads; on the trio thread that wait would stop the engine, the API
and the watchdog.  :class:`Console` takes text from the loop into a bounded
queue and returns at once; a thread of its own does the writes that wait.
When the queue is full, lines are dropped and counted, and once there is room
again one line says how many were lost and where everything is.  A closed pipe
(or any other error of the stream) ends the output for good, quietly.
:meth:`Console.close` waits a bounded time for what is queued, then gives up.

Why a thread, not trio's non-blocking streams: the open file behind stdout is
shared (with the shell, with ``less``), and making it non-blocking would change
it for them too; a regular file on a slow disk is always "ready" and waits
anyway.  A thread writes to any kind of stdout as before, goes on writing after
``trio.run`` has returned (the last lines of a shutdown), and can be left behind
when stuck.  It writes to the file descriptor, never through ``sys.stdout``:
a thread stuck holding that stream's lock makes the interpreter abort at exit.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import select
import threading
import time
from collections.abc import Iterator

from ..terminal import TextOut, encode_safely, printable_lines

__all__ = ["CLOSE_WAIT_S", "LIMIT_BYTES", "Console", "consoles"]

LIMIT_BYTES = 256 * 1024  # queued for one stream: 1,500 alert lines of 170 bytes
CLOSE_WAIT_S = 1.0  # at stop: what is queued gets this long to be written
_POLL_MS = 1000  # a descriptor someone made non-blocking: how long a wait for room lasts
NOTES = {"stdout": "linnix: {lines:,} line(s) dropped: the terminal did not keep up; "
                   "alerts.jsonl and the API have everything\n",
         "stderr": "linnix: {lines:,} line(s) dropped: stderr did not keep up\n"}


@contextlib.contextmanager
def consoles(out: TextOut, err: TextOut | None) -> Iterator[dict[str, Console]]:
    """For a daemon's run: a console for each of ``out`` and ``err`` that has a file
    descriptor, by name (``stdout``, ``stderr``); logging's last resort (what loggers
    without a handler say, such as the API's) goes to the stderr one.  At the end,
    what is queued gets :data:`CLOSE_WAIT_S` in all to be written."""
    made: dict[str, Console] = {}
    for name, stream in (("stdout", out), ("stderr", err)):
        console = Console.of(stream, NOTES[name], name) if stream is not None else None
        if console is not None:
            made[name] = console
    resort = logging.lastResort
    if "stderr" in made:
        logging.lastResort = handler = logging.StreamHandler(made["stderr"])
        handler.setLevel(logging.WARNING)  # as the last resort's own
        handler.setFormatter(_Printable())
    try:
        yield made
    finally:
        logging.lastResort = resort
        deadline = time.monotonic() + CLOSE_WAIT_S
        for console in made.values():
            console.close(deadline - time.monotonic())


class _Printable(logging.Formatter):
    """A log record's text shown as data: a request's path comes from a network peer."""

    def format(self, record: logging.LogRecord) -> str:
        return "\n".join(printable_lines(super().format(record)))


class Console:
    """Lines for one file descriptor, written by a thread; :meth:`write` never waits.

    ``note`` (a format with ``{lines}``) is the line written where lines were dropped.
    """

    def __init__(self, fd: int, encoding: str, note: str, *, name: str = "console",
                 limit: int = LIMIT_BYTES) -> None:
        self.fd = fd
        self.encoding = encoding
        self.note = note
        self.limit = limit
        self.dropped = 0  # lines never written: the queue was full, or the stream ended
        self.ended: str | None = None  # why the stream ended (a closed pipe), if it did
        self._unsaid = 0  # dropped lines that no note has told of yet
        self._queue: collections.deque[bytes] = collections.deque()
        self._held = 0  # bytes queued or being written
        self._stopping = False
        self._lock = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=f"linnix {name}", daemon=True)
        self._thread.start()

    @classmethod
    def of(cls, stream: TextOut, note: str, name: str) -> Console | None:
        """A console writing to ``stream``'s descriptor; None if it has none (a StringIO)."""
        try:
            fd = int(stream.fileno())  # type: ignore[attr-defined]
        except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
            return None
        with contextlib.suppress(OSError, ValueError):  # a stream closed already: not ours
            stream.flush()  # what it holds goes first (before the loop: nothing waits on it)
        return cls(fd, getattr(stream, "encoding", None) or "utf-8", note, name=name)

    @property
    def waiting(self) -> int:
        """Bytes queued or being written: the room :meth:`write` cannot use yet."""
        with self._lock:
            return self._held

    # ---- the loop's side ---------------------------------------------------------------
    def write(self, text: str, /) -> int:
        """Queue the lines of ``text``; those that do not fit are dropped and counted."""
        lines = [encode_safely(line, self.encoding) for line in _lines(text)]
        with self._lock:
            for line in lines:
                self._put(line)
            self._lock.notify()
        return len(text)

    def flush(self) -> None:
        """Nothing to do: the writer thread writes as soon as it can."""

    def _put(self, line: bytes) -> None:
        if self._stopping or self.ended is not None:
            self.dropped += 1
            return
        if self._held + len(line) > self.limit:
            self.dropped += 1
            self._unsaid += 1
            return
        self._tell_dropped()  # there is room again: first, what was lost
        self._queue.append(line)
        self._held += len(line)

    def _tell_dropped(self) -> None:
        """Queue the note on the lines dropped since the last one (under the lock).

        The note may take the queue past its limit by its own length, never more."""
        if self._unsaid:
            note = encode_safely(self.note.format(lines=self._unsaid), self.encoding)
            self._queue.append(note)
            self._held += len(note)
            self._unsaid = 0

    def close(self, timeout: float = CLOSE_WAIT_S) -> bool:
        """Write what is queued, waiting at most ``timeout`` seconds; True if all was.

        Later lines are dropped.  A thread still stuck on a write is left behind: it
        holds nothing the process needs to exit."""
        with self._lock:
            self._stopping = True
            self._lock.notify()
        self._thread.join(max(timeout, 0.0))
        return not self._thread.is_alive()

    # ---- the writer thread -------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._stopping:
                    self._lock.wait()
                if not self._queue:
                    return  # stopping, and everything is written
                chunk = self._take()
            if not self._write(chunk):
                return
            with self._lock:
                if not self._queue:  # caught up: say what was lost, if anything was
                    self._tell_dropped()

    def _take(self) -> bytes:
        """Whole lines from the queue's head, at most ``PIPE_BUF`` bytes (one line at least,
        whatever its length; under the lock).  A pipe takes that much in one piece: stdout
        and stderr on the same pipe (``2>&1``, a service's journal) never cut each other's
        lines, and a write left unfinished at exit leaves no half line."""
        size = 0
        lines: list[bytes] = []
        while self._queue and (not lines or size + len(self._queue[0]) <= select.PIPE_BUF):
            line = self._queue.popleft()
            lines.append(line)
            size += len(line)
        return b"".join(lines)

    def _write(self, chunk: bytes) -> bool:
        """Write all of ``chunk``, as long as it takes; False if the stream ended."""
        view = memoryview(chunk)
        while view:
            try:
                n = os.write(self.fd, view)
            except BlockingIOError:  # someone else made the descriptor non-blocking
                _wait_for_room(self.fd)
                continue
            except OSError as err:  # a closed pipe, a terminal gone, a full disk
                self._end(err, bytes(view).count(b"\n"))
                return False
            view = view[n:]
            with self._lock:
                self._held -= n
        return True

    def _end(self, err: OSError, unwritten: int) -> None:
        with self._lock:
            self.ended = err.strerror or str(err)
            self.dropped += unwritten + sum(line.count(b"\n") for line in self._queue)
            self._queue.clear()
            self._held = 0


def _lines(text: str) -> list[str]:
    """``text`` cut after each newline (a last piece without one is a line too)."""
    pieces = text.split("\n")
    lines = [piece + "\n" for piece in pieces[:-1]]
    if pieces[-1]:
        lines.append(pieces[-1])
    return lines


def _wait_for_room(fd: int) -> None:
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    poller.poll(_POLL_MS)

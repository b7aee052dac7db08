"""Recording to a file that cannot be written: clear errors, no traceback, no crash."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support import run_linnix

from linnix.engine import trace as t
from linnix.errors import LinnixError
from linnix.runtime.live import Recorder

HEADER = t.Header(version=1, host="test", ncpu=2, mem_total_kb=1024)
needs_dev_full = pytest.mark.skipif(not os.path.exists("/dev/full"),
                                    reason="/dev/full is not available here")


def test_a_path_that_cannot_be_created_is_a_linnix_error(tmp_path: Path) -> None:
    with pytest.raises(LinnixError, match=r"cannot record to .*/missing/x.jsonl: No such file"):
        Recorder(str(tmp_path / "missing" / "x.jsonl"), HEADER)


def test_events_are_written_in_the_trace_format(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    rec = Recorder(str(path), HEADER)
    rec.write([t.Fork(ts=1.0, pid=10, ppid=1, comm="sh"), t.Exit(ts=1.5, pid=10)])
    rec.close()
    rec.close()  # idempotent
    reader, events = t.read_trace(str(path))
    assert reader.header == HEADER
    assert events == [t.Fork(ts=1.0, pid=10, ppid=1, comm="sh"), t.Exit(ts=1.5, pid=10)]
    assert rec.events == 2 and rec.failed is None


@needs_dev_full
def test_a_full_disk_ends_the_recording_once_and_never_raises() -> None:
    told: list[str] = []
    rec = Recorder("/dev/full", HEADER, on_failure=told.append)
    big = [t.Exec(ts=float(i), pid=10 + i, comm="x", exe="/" + "y" * 200) for i in range(200)]
    rec.write(big)  # more than the buffer: the write reaches the device and fails
    rec.write(big)
    rec.flush()
    rec.close()
    assert rec.events == 0
    assert len(told) == 1
    assert told[0] == "recording to /dev/full stopped after 0 events: No space left on device"
    assert rec.failed == told[0]


def test_record_command_names_the_bad_path() -> None:
    out = run_linnix("record", "/nonexistent-dir/x.jsonl", "--duration", "1s",
                     "--source", "poll")
    assert out.returncode == 1
    assert out.stderr.strip() == ("linnix: cannot record to /nonexistent-dir/x.jsonl: "
                                  "No such file or directory")
    assert "Traceback" not in out.stderr


@needs_dev_full
def test_record_command_stops_on_a_full_disk() -> None:
    out = run_linnix("record", "/dev/full", "--duration", "20s", "--source", "poll")
    assert out.returncode == 1, out.stderr
    assert "linnix: recording to /dev/full stopped after" in out.stderr
    assert "No space left on device" in out.stderr
    assert "Traceback" not in out.stderr

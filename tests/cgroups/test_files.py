"""The small readers: a key's integer, a pressure line's avg10, the pids of cgroup.procs,
over any bytes."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linnix.cgroups import files
from linnix.cgroups.files import GoneError


@given(st.binary(max_size=200), st.sampled_from([b"usage_usec", b"oom_kill", b"x"]))
def test_keyed_reads_any_bytes(data: bytes, key: bytes) -> None:
    value = files.keyed(data, key)
    assert value is None or (value >= 0 and (key + b" " + str(value).encode()) in data)


@given(st.binary(max_size=200))
def test_pressure_reads_any_bytes(data: bytes) -> None:
    for line in (b"some", b"full"):
        value = files.pressure(data, line)
        assert value is None or line + b" avg10=" in data


def test_keyed_matches_whole_keys_at_line_starts() -> None:
    text = b"oom_kill_disable 1\nunder_oom 0\nxoom_kill 5\noom_kill 2\n"
    assert files.keyed(text, b"oom_kill") == 2
    assert files.keyed(b"usage_usec 12", b"usage_usec") == 12
    assert files.keyed(b"usage_usec -1\n", b"usage_usec") is None


def test_pressure_reads_avg10_of_the_line_asked_for() -> None:
    text = b"some avg10=1.25 avg60=0.00 avg300=0.00 total=9\nfull avg10=0.50 avg60=0 total=1\n"
    assert (files.pressure(text, b"some"), files.pressure(text, b"full")) == (1.25, 0.5)
    assert files.pressure(b"xsome avg10=3.00 total=1\n", b"some") is None
    assert files.pressure(b"some avg10=nan? total=1\n", b"some") is None
    assert files.pressure(None, b"some") is None


def test_read_ints_is_bounded_and_says_when_the_cgroup_is_gone(tmp_path: Path) -> None:
    (tmp_path / "cgroup.procs").write_text("".join(f"{p}\n" for p in range(1, 100_001)))
    dir_fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert files.read_ints("cgroup.procs", dir_fd, 5) == [1, 2, 3, 4, 5]
        assert len(files.read_ints("cgroup.procs", dir_fd, 1_000_000) or []) == 100_000
        with pytest.raises(GoneError):  # a core file missing: the cgroup is gone
            files.read_ints("absent", dir_fd, 5)
    finally:
        os.close(dir_fd)
    assert errno.ENODEV in files.GONE and errno.ENOENT in files.GONE

"""The daemon's alerts.jsonl: bounded by rotation, and a full disk never stops the daemon."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from linnix.runtime.live import AlertFile


class Record:
    """Stands for an alert or a proposal: all the file reads is ``to_json``."""

    def __init__(self, n: int) -> None:
        self.n = n

    def to_json(self) -> dict[str, Any]:
        return {"type": "alert", "ts": float(self.n), "rule": "r", "pad": "x" * 80}


def records(path: Path) -> list[int]:
    return [int(json.loads(line)["ts"]) for line in path.read_text().splitlines()]


def test_records_are_appended_one_json_object_a_line(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    path.write_text(json.dumps({"type": "alert", "ts": 0.0}) + "\n")  # a previous run's
    f = AlertFile(str(path))
    f([Record(1), Record(2)])
    f([Record(3)])
    f.close()
    assert records(path) == [0, 1, 2, 3]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", json.loads(line)["time"])
               for line in path.read_text().splitlines()[1:])  # RFC 3339, UTC


def test_the_file_rotates_past_its_size_and_keeps_one_old_file(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    told: list[str] = []
    f = AlertFile(str(path), max_bytes=1000, on_problem=told.append)
    for n in range(40):  # about 130 bytes a record: several rotations
        f([Record(n)])
    f.close()
    old, new = records(Path(f"{path}.1")), records(path)
    assert f.rotations >= 4
    assert old + new == list(range(old[0], 40))  # the latest history, nothing in between lost
    assert path.stat().st_size < 1000 <= Path(f"{path}.1").stat().st_size < 1200
    assert sorted(os.listdir(tmp_path)) == ["alerts.jsonl", "alerts.jsonl.1"]
    assert told == []


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="/dev/full is not available here")
def test_a_full_disk_drops_records_and_says_so_once(tmp_path: Path) -> None:
    told: list[str] = []
    f = AlertFile("/dev/full", on_problem=told.append)
    for n in range(5):
        f([Record(n), Record(n)])  # never raises
    assert f.dropped == 10
    assert told == ["cannot write alerts to /dev/full: No space left on device; they still "
                    "reach the log and the API"]
    f.path = str(tmp_path / "alerts.jsonl")  # the disk has room again
    f([Record(9)])
    f.close()
    assert told[1:] == [f"writing alerts to {f.path} again (10 record(s) could not be written)"]
    assert records(Path(f.path)) == [9]


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    """Sets the process's umask for one test, then puts the previous one back."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield os.umask
    os.umask(previous)


@pytest.mark.parametrize("mask", [0o000, 0o077], ids=["umask-000", "umask-077"])
def test_the_file_and_its_successors_are_0640_whatever_the_umask(
        tmp_path: Path, umask: Callable[[int], None], mask: int) -> None:
    umask(mask)
    path = tmp_path / "alerts.jsonl"
    sink = AlertFile(str(path), max_bytes=200)
    sink([Record(1), Record(2)])  # past max_bytes: rotated, and a new file started
    sink([Record(3)])
    sink.close()
    assert sink.rotations == 1
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in tmp_path.iterdir()} == {
        "alerts.jsonl": "0o640", "alerts.jsonl.1": "0o640"}


def test_an_existing_file_keeps_the_mode_it_has(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    path.write_text("")
    path.chmod(0o600)  # an operator's choice
    AlertFile(str(path))([Record(1)])
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert records(path) == [1]

"""Fixtures of the action manager's tests: a fake /proc, recorded executions, the
autojump clock and a builder of managers over a real store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from actions_support import Executions, Make, fake_proc, harnesses
from proc_support import FakeProc
from trio.testing import MockClock


@pytest.fixture
def proc(tmp_path: Path) -> FakeProc:
    return fake_proc(tmp_path / "proc")


@pytest.fixture
def executions(monkeypatch: pytest.MonkeyPatch) -> Executions:
    e = Executions()
    e.install(monkeypatch)
    return e


@pytest.fixture
def clock(autojump_clock: MockClock) -> MockClock:
    """The autojump clock; pytest-trio runs a test on it when the test takes it itself."""
    return autojump_clock


@pytest.fixture
def make(tmp_path: Path, proc: FakeProc) -> Iterator[Make]:
    with harnesses(tmp_path / "linnix.db", proc) as build:
        yield build

"""The daemon and its state database: what it says about a database it cannot use, or
one that was emptied.  The response stack (store, action manager, responder) is built
as ``linnix run`` builds it; no event source is opened, so no root is needed."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from linnix.config import Config
from linnix.errors import StoreError
from linnix.procfs import Clock
from linnix.runtime.daemon import Daemon, DaemonOptions


def daemon(state: Path) -> tuple[Daemon, io.StringIO]:
    err = io.StringIO()
    return Daemon(DaemonOptions(rules=[], state_dir=str(state)), out=io.StringIO(),
                  err=err), err


def test_an_emptied_database_is_announced_on_stderr_and_in_the_audit_log(
        tmp_path: Path) -> None:
    db = tmp_path / "linnix.db"
    db.write_bytes(b"")
    d, err = daemon(tmp_path)
    stack = d._response_stack(Config(), Clock())
    try:
        assert err.getvalue() == (
            f"linnix: the state database {db} was an empty file: the incidents, actions and "
            "audit log it held are gone; starting with an empty database\n")
        assert [e["event"] for e in stack.store.audit_log()] == ["store.emptied"]
    finally:
        stack.close()
    d, err = daemon(tmp_path)  # the next start has nothing to say
    d._response_stack(Config(), Clock()).close()
    assert err.getvalue() == ""


def test_a_database_path_that_is_a_directory_stops_the_start_with_a_clear_error(
        tmp_path: Path) -> None:
    (tmp_path / "linnix.db").mkdir()
    d, _ = daemon(tmp_path)
    with pytest.raises(StoreError, match="it is a directory; move it aside"):
        d._response_stack(Config(), Clock())

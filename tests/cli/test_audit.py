"""``linnix audit verify``: the audit log's chain checked from the state directory."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import run_cli

from linnix.actions.store import Store


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def store(state: Path) -> Iterator[Store]:
    state.mkdir()
    s = Store(str(state / "linnix.db"), clock=lambda: 1_000_000.0)
    yield s
    s.close()


def verify(capsys: pytest.CaptureFixture[str], state: Path,
           *more: str) -> tuple[int, str, str]:
    return run_cli(capsys, "audit", "verify", "--state-dir", str(state), *more)


def fill(store: Store, n: int) -> list[int]:
    return [store.audit("alice", "action.approved", action_id=i) for i in range(n)]


def test_a_chain_that_holds(capsys: pytest.CaptureFixture[str], state: Path,
                            store: Store) -> None:
    ids = fill(store, 3)
    head = store.chain_head
    assert verify(capsys, state) == (0, (
        f"audit log of {state}/linnix.db: the chain holds (3 record(s) checked, #{ids[0]} to "
        f"#{ids[-1]})\n"
        f"head: {head.hash} (#{head.id})\n"), "")


def test_an_empty_chain_holds(capsys: pytest.CaptureFixture[str], state: Path,
                              store: Store) -> None:
    assert verify(capsys, state) == (0, (
        f"audit log of {state}/linnix.db: the chain holds (0 record(s) checked)\n"
        f"head: {'0' * 64}\n"), "")


def test_where_the_chain_breaks(capsys: pytest.CaptureFixture[str], state: Path,
                                store: Store) -> None:
    ids = fill(store, 5)
    store.db.execute("DELETE FROM audit WHERE id = ?", (ids[2],))
    assert verify(capsys, state) == (1, (
        f"audit log of {state}/linnix.db: the chain breaks at record #{ids[3]}: it does not "
        f"follow the record before it (#{ids[1]}): records between them were removed, or it "
        "was inserted (2 record(s) before it hold)\n"), "")


def test_after_retention_the_chain_holds_from_its_anchor(
        capsys: pytest.CaptureFixture[str], state: Path, store: Store) -> None:
    ids = fill(store, 6)
    store.retain(max_age=10**9, max_incidents=100, max_audit=2)
    status, out, _ = verify(capsys, state)
    assert status == 0
    assert out.splitlines()[0] == (
        f"audit log of {state}/linnix.db: the chain holds (2 record(s) checked, #{ids[4]} to "
        f"#{ids[5]}, after the oldest ones, up to #{ids[3]}, were trimmed by retention)")


def test_a_head_kept_off_the_host_must_be_in_the_chain(
        capsys: pytest.CaptureFixture[str], state: Path, store: Store) -> None:
    ids = fill(store, 3)
    kept = store.chain_head.hash
    newer = fill(store, 1)
    status, out, _ = verify(capsys, state, "--head", kept.upper())  # any case
    assert status == 0
    assert out.splitlines()[-1] == (
        f"the head you kept is record #{ids[-1]}, and the chain goes on from there")
    status, out, _ = verify(capsys, state, "--head", store.chain_head.hash)
    assert (status, out.splitlines()[-1]) == (0, f"the head you kept is record #{newer[0]}, "
                                                 "the newest")
    store.db.execute("DELETE FROM audit WHERE id >= ?", (ids[-1],))  # the end cut off
    status, out, _ = verify(capsys, state, "--head", kept)
    assert status == 1
    assert out.splitlines() == [
        f"audit log of {state}/linnix.db: the chain holds (2 record(s) checked, #{ids[0]} to "
        f"#{ids[1]})",
        f"head: {store.verify_chain().head.hash} (#{ids[1]})",
        f"the head you kept ({kept}) is not in the chain: records were removed from its end "
        "or the chain was rewritten, unless retention has trimmed it since (then check "
        "against a newer head)"]


def test_the_anchor_is_a_head_that_was_kept(capsys: pytest.CaptureFixture[str], state: Path,
                                            store: Store) -> None:
    ids = fill(store, 4)
    kept = store.chain_head.hash
    fill(store, 2)
    store.retain(max_age=10**9, max_incidents=100, max_audit=2)
    status, out, _ = verify(capsys, state, "--head", kept)
    assert (status, out.splitlines()[-1]) == (0, (
        f"the head you kept is the anchor retention left (#{ids[-1]}): the records up to it "
        "were trimmed"))


def test_the_state_directory_comes_from_the_config(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path, state: Path,
                                                   store: Store) -> None:
    config = tmp_path / "linnix.toml"
    config.write_text(f'[runtime]\nstate_dir = "{state}"\n')
    status, out, _ = run_cli(capsys, "audit", "verify", "--config", str(config))
    assert status == 0 and out.startswith(f"audit log of {state}/linnix.db: the chain holds")


@pytest.mark.parametrize(("setup", "message"), [
    (lambda p: None, "there is no state database at {db}: has the daemon run with this state "
                     "directory?"),
    (lambda p: (p / "linnix.db").mkdir(),
     "cannot use the state database {db}: it is a directory; move it aside to start with an "
     "empty database, or choose another state directory"),
    (lambda p: (p / "linnix.db").write_bytes(b"not a database " * 100),
     "cannot read the state database {db}: file is not a database"),
    (lambda p: (p / "linnix.db").write_bytes(b""),
     "the state database {db} is empty: it holds no audit log"),
])
def test_a_database_it_cannot_read_is_a_clear_error(capsys: pytest.CaptureFixture[str],
                                                    state: Path, setup: object,
                                                    message: str) -> None:
    state.mkdir()
    setup(state)  # type: ignore[operator]
    assert verify(capsys, state) == (
        1, "", f"linnix: {message.format(db=state / 'linnix.db')}\n")


def test_a_database_from_before_the_chain_says_so(capsys: pytest.CaptureFixture[str],
                                                  state: Path) -> None:
    state.mkdir()
    db = sqlite3.connect(state / "linnix.db")
    db.execute("CREATE TABLE audit (id INTEGER PRIMARY KEY, at REAL)")
    db.close()
    assert verify(capsys, state) == (1, "", (
        f"linnix: the audit log in {state}/linnix.db has no hash chain yet: an older linnix "
        "made it, and the daemon chains it when it next starts\n"))


@pytest.mark.parametrize(("argv", "message"), [
    (["audit"], "the following arguments are required: verify"),
    (["audit", "check"], "argument verify: invalid choice: 'check' (choose from 'verify')"),
    (["audit", "verify", "--head", "abc"],
     "argument --head: expected a SHA-256 hash: 64 hexadecimal digits"),
])
def test_usage_errors(capsys: pytest.CaptureFixture[str], argv: list[str],
                      message: str) -> None:
    assert run_cli(capsys, *argv) == (2, "", f"linnix: {message}\nrun 'linnix --help' for "
                                             "usage\n")

"""API tokens: the admin's token file, the named tokens of api.tokens, whose token is it."""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trio
from api_support import inline

from linnix.api import tokens as tokens_module
from linnix.api.tokens import (
    WATCH_S,
    Principal,
    TokenBook,
    add_token,
    load_or_create_token,
    read_tokens,
    revoke_token,
)
from linnix.errors import ApiError, UsageError

ADMIN_TOKEN = "the-admins-token-0123456789"


# ---- the token file --------------------------------------------------------------------

def test_the_token_file_is_created_0600_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "state" / "api.token"
    old = os.umask(0o000)  # even a permissive umask must not widen the mode
    try:
        token = load_or_create_token(os.fspath(path))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(token) >= 40
    assert path.read_text().strip() == token
    assert load_or_create_token(os.fspath(path)) == token
    assert [p.name for p in path.parent.iterdir()] == ["api.token"]  # no temporary left


def test_two_fresh_tokens_differ(tmp_path: Path) -> None:
    a = load_or_create_token(os.fspath(tmp_path / "a"))
    b = load_or_create_token(os.fspath(tmp_path / "b"))
    assert a != b


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_a_token_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "api.token"
    path.write_text("a-perfectly-good-token-value\n")
    path.chmod(mode)
    with pytest.raises(ApiError) as err:
        load_or_create_token(os.fspath(path))
    message = str(err.value)
    assert os.fspath(path) in message
    assert f"chmod 600 {path}" in message
    assert f"{mode:04o}" in message


@pytest.mark.parametrize("content", ["", "   \n", "short", "has a space in it somewhere"])
def test_a_token_file_without_a_token_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "api.token"
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(ApiError, match="does not hold a token"):
        load_or_create_token(os.fspath(path))


def test_a_token_file_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "api.token"
    path.mkdir(mode=0o700)
    with pytest.raises(ApiError, match=r"api\.token"):
        load_or_create_token(os.fspath(path))


@contextlib.contextmanager
def fifo_at(path: Path) -> Iterator[None]:
    """A named pipe at ``path``; any reader left waiting on it is released at the end."""
    os.mkfifo(path, 0o600)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):  # ENXIO: nobody is waiting, as it should be
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


@pytest.mark.parametrize("read", [load_or_create_token, read_tokens])
async def test_a_fifo_is_refused_without_blocking(tmp_path: Path,
                                                  read: Callable[[str], object]) -> None:
    fifo = tmp_path / "api.token"
    with fifo_at(fifo), trio.fail_after(10), pytest.raises(ApiError) as err:
        await trio.to_thread.run_sync(read, os.fspath(fifo), abandon_on_cancel=True)
    assert str(err.value).endswith(f" {fifo} is not a regular file (a named pipe); it must "
                                   "be a file written by linnix")


def test_an_existing_token_is_read(tmp_path: Path) -> None:
    path = tmp_path / "api.token"
    path.write_text("  my-own-token-0123456789  \n")
    path.chmod(0o600)
    assert load_or_create_token(os.fspath(path)) == "my-own-token-0123456789"


# ---- named tokens ----------------------------------------------------------------------

def test_add_list_revoke(tmp_path: Path) -> None:
    path = os.fspath(tmp_path / "state" / "api.tokens")
    old = os.umask(0o000)  # even a permissive umask must not widen the mode
    try:
        ci = add_token(path, "ci", "reader", clock=lambda: 1000.0)
        alice = add_token(path, "alice@ops", "approver", clock=lambda: 2000.0)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert ci.startswith("lnx_") and len(ci) >= 4 + 43 and ci != alice
    text = Path(path).read_text()
    assert ci not in text and alice not in text  # only digests are kept
    assert [(t.name, t.role, t.created) for t in read_tokens(path)] == [
        ("ci", "reader", 1000.0), ("alice@ops", "approver", 2000.0)]
    revoke_token(path, "ci")
    assert [t.name for t in read_tokens(path)] == ["alice@ops"]
    assert sorted(p.name for p in Path(path).parent.iterdir()) == ["api.tokens",
                                                                   "api.tokens.lock"]


def test_no_file_no_named_tokens(tmp_path: Path) -> None:
    assert read_tokens(os.fspath(tmp_path / "api.tokens")) == []


@pytest.mark.parametrize(("name", "role", "says"), [
    ("", "reader", "must not be empty"),
    ("a b", "reader", "not ' '"),
    ("al\u202eice", "reader", "not '\\u202e'"),
    ("ops\x1b[31m", "reader", "not '\\x1b'"),
    ("x" * 65, "reader", "at most 64"),
    ("admin", "reader", "api.token"),
    ("ci", "root", "a role is one of reader, approver, admin"),
])
def test_bad_names_and_roles_are_refused(tmp_path: Path, name: str, role: str,
                                         says: str) -> None:
    path = os.fspath(tmp_path / "api.tokens")
    with pytest.raises(UsageError) as err:
        add_token(path, name, role)
    assert says in str(err.value)
    assert not os.path.exists(path)


def test_a_name_is_added_once_and_revoked_once(tmp_path: Path) -> None:
    path = os.fspath(tmp_path / "api.tokens")
    add_token(path, "ci", "reader")
    with pytest.raises(ApiError, match="a token named 'ci' exists already"):
        add_token(path, "ci", "admin")
    revoke_token(path, "ci")
    with pytest.raises(ApiError, match="no token is named 'ci'"):
        revoke_token(path, "ci")
    with pytest.raises(UsageError, match=r"api\.token"):
        revoke_token(path, "admin")


@pytest.mark.parametrize("content", [
    "", "{", "[]", '{"tokens": {}}', '{"tokens": [{"name": "a"}]}',
    '{"tokens": [{"name": "a", "role": "god", "sha256": "' + "0" * 64 + '", "created": 1}]}',
    '{"tokens": [{"name": "a b", "role": "reader", "sha256": "' + "0" * 64 + '", '
    '"created": 1}]}',
    '{"tokens": [{"name": "a", "role": "reader", "sha256": "xyz", "created": 1}]}',
    '{"tokens": [{"name": "a", "role": "reader", "sha256": "' + "0" * 64 + '", '
    '"created": true}]}',
])
def test_a_damaged_tokens_file_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "api.tokens"
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(ApiError, match="is damaged"):
        read_tokens(os.fspath(path))


def test_a_tokens_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = os.fspath(tmp_path / "api.tokens")
    add_token(path, "ci", "reader")
    os.chmod(path, 0o644)
    with pytest.raises(ApiError, match=f"chmod 600 {path}"):
        read_tokens(path)


def test_the_same_name_twice_is_refused(tmp_path: Path) -> None:
    path = os.fspath(tmp_path / "api.tokens")
    add_token(path, "ci", "reader")
    doc = json.loads(Path(path).read_text())
    doc["tokens"] *= 2
    Path(path).write_text(json.dumps(doc))
    with pytest.raises(ApiError, match="names a token twice"):
        read_tokens(path)


# ---- whose token is it -------------------------------------------------------------------

async def test_the_book_names_the_holder(tmp_path: Path) -> None:
    path = os.fspath(tmp_path / "api.tokens")
    ci = add_token(path, "ci", "reader")
    ops = add_token(path, "ops", "approver")
    book = TokenBook(ADMIN_TOKEN, path)
    assert await book.refresh(inline)
    assert book.identify(ADMIN_TOKEN) == Principal("admin", "admin")
    assert book.identify(ci) == Principal("ci", "reader")
    assert book.identify(ops) == Principal("ops", "approver")
    for wrong in ("", ci[:-1], ci + "x", ADMIN_TOKEN.upper(), "tökén"):
        assert book.identify(wrong) is None
    assert not await book.refresh(inline)  # unchanged: not read again


def test_roles_include_the_ones_below() -> None:
    reader, approver, admin = (Principal("x", r) for r in ("reader", "approver", "admin"))
    assert reader.may("reader") and not reader.may("approver") and not reader.may("admin")
    assert approver.may("reader") and approver.may("approver") and not approver.may("admin")
    assert admin.may("reader") and admin.may("approver") and admin.may("admin")


async def test_every_digest_is_compared_in_constant_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = os.fspath(tmp_path / "api.tokens")
    first = add_token(path, "first", "reader")
    for n in range(4):
        add_token(path, f"t{n}", "reader")
    book = TokenBook(ADMIN_TOKEN, path)
    await book.refresh(inline)
    calls: list[tuple[bytes, bytes]] = []
    compare = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(tokens_module.hmac, "compare_digest", counting)
    for secret in (ADMIN_TOKEN, first, "nobody's"):
        calls.clear()
        book.identify(secret)
        # the admin's and all five named ones, whichever matched; digests of one length
        assert len(calls) == 6 and {len(a) for a, _ in calls} == {32}


async def test_a_damaged_file_grants_nothing_until_fixed(tmp_path: Path) -> None:
    path = os.fspath(tmp_path / "api.tokens")
    ci = add_token(path, "ci", "reader")
    book = TokenBook(ADMIN_TOKEN, path)
    await book.refresh(inline)
    assert book.identify(ci) is not None
    text = Path(path).read_text()
    Path(path).write_text(text.replace('"tokens"', '"tokenz"'))
    assert await book.refresh(inline)
    assert book.problem is not None and "is damaged" in book.problem
    assert book.identify(ci) is None
    assert book.identify(ADMIN_TOKEN) == Principal("admin", "admin")
    Path(path).write_text(text)
    await book.refresh(inline)
    assert book.problem is None and book.identify(ci) == Principal("ci", "reader")


async def test_the_book_follows_the_file(tmp_path: Path, nursery: trio.Nursery,
                                         autojump_clock: trio.testing.MockClock) -> None:
    path = os.fspath(tmp_path / "api.tokens")
    book = TokenBook(ADMIN_TOKEN, path)
    await book.refresh(inline)
    nursery.start_soon(book.watch, WATCH_S, inline)
    ci = add_token(path, "ci", "reader")
    assert book.identify(ci) is None
    await trio.sleep(WATCH_S * 1.5)
    assert book.identify(ci) == Principal("ci", "reader")  # added: accepted
    revoke_token(path, "ci")
    await trio.sleep(WATCH_S * 1.5)
    assert book.identify(ci) is None  # revoked: refused
    os.unlink(path)
    await trio.sleep(WATCH_S * 1.5)
    assert book.identify(ADMIN_TOKEN) is not None and book.problem is None


async def test_the_watch_reads_on_a_worker_thread(tmp_path: Path,
                                                  nursery: trio.Nursery) -> None:
    path = os.fspath(tmp_path / "api.tokens")
    book = TokenBook(ADMIN_TOKEN, path)
    threads: list[bool] = []
    read = book._read_if_changed

    def spy() -> object:
        threads.append(trio.lowlevel.in_trio_run())
        return read()

    book._read_if_changed = spy  # type: ignore[method-assign]
    nursery.start_soon(book.watch, 0.01)
    ci = add_token(path, "ci", "reader")
    with trio.fail_after(10):
        while book.identify(ci) is None:
            await trio.sleep(0.01)
    assert threads and not any(threads)  # never on the event loop's thread

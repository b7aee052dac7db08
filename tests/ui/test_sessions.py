"""Sessions, one-time codes and failed sign-ins: bounded, expiring, single-use."""

from __future__ import annotations

from ui_support import Clock

from linnix.api.tokens import Principal
from linnix.ui.sessions import CODE_TTL_S, Codes, Failures, Sessions

ALICE = Principal("alice", "approver")
BOB = Principal("bob", "reader")


def test_a_session_is_found_by_its_id_and_only_its_id() -> None:
    sessions = Sessions(Clock())
    sid, session = sessions.open(ALICE)
    assert sessions.get(sid) is session and session.who == ALICE
    assert sessions.get(sid + "x") is None
    assert sessions.get("") is None and sessions.get(None) is None


def test_the_table_keeps_digests_not_ids() -> None:
    sessions = Sessions(Clock())
    sid, _ = sessions.open(ALICE)
    assert all(sid.encode() not in key for key in sessions._table)


def test_sessions_expire_when_idle_and_at_their_age() -> None:
    clock = Clock()
    sessions = Sessions(clock, idle_s=100, max_age_s=250)
    sid, _ = sessions.open(ALICE)
    clock.advance(99)
    assert sessions.get(sid) is not None  # used: the idle time starts again
    clock.advance(99)
    assert sessions.get(sid) is not None
    clock.advance(53)  # 251 s after sign-in, used 53 s ago
    assert sessions.get(sid) is None
    other, _ = sessions.open(BOB)
    clock.advance(100)
    assert sessions.get(other) is None
    assert len(sessions) == 0


def test_peek_finds_a_live_session_without_using_it() -> None:
    """What an open stream checks at each keep-alive: it must not keep the session alive
    nor move it up the table."""
    clock = Clock()
    sessions = Sessions(clock, idle_s=100, limit=2)
    sid, session = sessions.open(ALICE)
    clock.advance(60)
    other, _ = sessions.open(BOB)
    assert sessions.peek(sid) is session and session.used == 1000.0
    assert sessions.peek(sid + "x") is None and sessions.peek(None) is None
    sessions.open(BOB)  # the least recently used goes: peeked or not, that is sid
    assert sessions.peek(sid) is None and sessions.peek(other) is not None
    clock.advance(100)
    assert sessions.peek(other) is None  # idle: gone


def test_the_table_is_bounded_and_drops_the_least_recently_used() -> None:
    clock = Clock()
    sessions = Sessions(clock, limit=3)
    ids = []
    for _ in range(3):
        ids.append(sessions.open(ALICE)[0])
        clock.advance(1)
    assert sessions.get(ids[0]) is not None  # now the most recently used
    newest, _ = sessions.open(BOB)
    assert len(sessions) == 3
    assert sessions.get(ids[1]) is None
    assert all(sessions.get(s) is not None for s in (ids[0], ids[2], newest))


def test_close_ends_a_session() -> None:
    sessions = Sessions(Clock())
    sid, _ = sessions.open(ALICE)
    assert sessions.close(sid) is True
    assert sessions.get(sid) is None
    assert sessions.close(sid) is False and sessions.close(None) is False


def test_each_session_has_its_own_csrf_token() -> None:
    sessions = Sessions(Clock())
    _, one = sessions.open(ALICE)
    _, two = sessions.open(ALICE)
    assert one.csrf != two.csrf and len(one.csrf) >= 40
    assert one.csrf_ok(one.csrf)
    assert not one.csrf_ok(two.csrf)
    assert not one.csrf_ok(None) and not one.csrf_ok("") and not one.csrf_ok(one.csrf[:-1])
    assert not one.csrf_ok("\udcff")  # not even text: refused, no error


def test_a_code_works_once() -> None:
    codes = Codes(Clock())
    code = codes.make(ALICE)
    assert codes.take(code) == ALICE
    assert codes.take(code) is None
    assert codes.take("") is None and codes.take(None) is None


def test_a_code_expires() -> None:
    clock = Clock()
    codes = Codes(clock)
    early, late = codes.make(ALICE), None
    clock.advance(CODE_TTL_S - 1)
    late = codes.make(BOB)
    clock.advance(1)
    assert codes.take(early) is None
    assert codes.take(late) == BOB
    assert CODE_TTL_S == 60


def test_codes_are_bounded() -> None:
    codes = Codes(Clock(), limit=2)
    first = codes.make(ALICE)
    second, third = codes.make(ALICE), codes.make(BOB)
    assert codes.take(first) is None
    assert codes.take(second) == ALICE and codes.take(third) == BOB


def test_failures_make_a_client_wait_then_let_it_go() -> None:
    clock = Clock()
    failures = Failures(clock, limit=3, window_s=60)
    for _ in range(2):
        failures.failed("a")
        clock.advance(10)
    assert failures.wait("a") == 0
    failures.failed("a")  # the third, at t=20: the first was at t=0
    assert failures.wait("a") == 40
    assert failures.wait("b") == 0
    clock.advance(40)
    assert failures.wait("a") == 0


def test_failures_remember_a_bounded_number_of_clients() -> None:
    failures = Failures(Clock(), limit=1, clients=2)
    for client in ("a", "b", "c"):
        failures.failed(client)
    assert failures.wait("a") == 0  # forgotten: the oldest went first
    assert failures.wait("b") > 0 and failures.wait("c") > 0
    assert len(failures._seen) == 2

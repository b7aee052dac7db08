"""The sampler's pacing: busy processes every round, idle ones less and less often."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from linnix.runtime.sources.pacing import (
    QUIET_READS,
    WAKE_CPU,
    WAKE_MEM_KB,
    Pacing,
    Usage,
    rounds_between,
    woken,
)


def run(pacing: Pacing, rounds: int, value: Callable[[int, int], object],
        alive: Callable[[int], tuple[int, ...]] = lambda r: (1, 2),
        wakes: dict[int, set[int] | None] | None = None,
        lists: list[int] | None = None) -> dict[int, list[int]]:
    """The rounds at which each pid was read, of ``rounds`` run as the sampler does:
    ``alive(r)`` is what /proc holds at round r, ``value(pid, r)`` what a read finds,
    ``wakes`` the wake set of some rounds; ``lists`` gets the rounds that listed /proc."""
    read: dict[int, list[int]] = {}
    for r in range(1, rounds + 1):
        wake = (wakes or {}).get(r, set())
        listed = list(alive(r)) if pacing.lists(wake) else None
        if listed is not None and lists is not None:
            lists.append(r)
        for pid in pacing.due(listed, wake):
            if pid not in alive(r):
                pacing.gone(pid)
                continue
            read.setdefault(pid, []).append(r)
            pacing.found(pid, pacing.record(pid, 100), value(pid, r))
    return read


def test_a_busy_process_is_read_every_round_and_an_idle_one_ever_less_often() -> None:
    pacing = Pacing(max_gap=8)
    lists: list[int] = []
    read = run(pacing, 40, lambda pid, r: r if pid == 1 else "same", lists=lists)
    assert read[1] == list(range(1, 41))
    # new, then QUIET_READS reads finding the same, then gaps of 2, 4, 8, 8, ...
    assert QUIET_READS == 3
    assert read[2] == [1, 2, 3, 4, 6, 10, 18, 26, 34]
    assert lists == [1, 9, 17, 25, 33]  # /proc listed once in the longest gap
    assert pacing.skipped == 40 - len(read[2])


def test_the_bound_holds_and_one_round_means_every_round() -> None:
    for gap in (1, 2, 3, 5):
        read = run(Pacing(max_gap=gap), 60, lambda pid, r: "same")[1]
        assert max(b - a for a, b in itertools.pairwise(read)) == gap
        assert read[-1] > 60 - gap
    assert not Pacing(max_gap=1).on
    lists: list[int] = []
    assert run(Pacing(max_gap=1), 10, lambda pid, r: "same", lists=lists)[1] == \
        list(range(1, 11))
    assert lists == list(range(1, 11))


def test_a_change_brings_an_idle_process_back_to_every_round() -> None:
    read = run(Pacing(max_gap=8), 40, lambda pid, r: "before" if r < 20 else "after")[1]
    # read at 18 (gap 8 reached), next due at 26: the change is seen there, 6 rounds late,
    # then it is read at every round until it is quiet again
    assert read == [1, 2, 3, 4, 6, 10, 18, 26, 27, 28, 29, 31, 35]


def test_a_wake_reads_at_once_and_starts_the_pace_again() -> None:
    read = run(Pacing(max_gap=8), 40, lambda pid, r: "same", wakes={20: {1}})[1]
    # read at 20, found the same (its first quiet read again): 21, 22, then 2, 4, 8 apart
    assert read == [1, 2, 3, 4, 6, 10, 18, 20, 21, 22, 24, 28, 36]


def test_a_new_process_is_read_when_woken_else_at_the_next_listing() -> None:
    alive = lambda r: (1, 2, 3) if r >= 12 else (1, 2)  # noqa: E731
    read = run(Pacing(max_gap=8), 30, lambda pid, r: "same", alive=alive, wakes={12: {3}})
    assert read[3][:2] == [12, 13]  # its fork woke it
    read = run(Pacing(max_gap=8), 30, lambda pid, r: "same", alive=alive)
    assert read[3][:2] == [17, 18]  # no event said so: found when /proc is listed
    # woken but gone before the round (a fork loop's child): tried once, then forgotten
    pacing = Pacing(max_gap=8)
    read = run(pacing, 12, lambda pid, r: "same", wakes={5: {99}})
    assert 99 not in read and 99 not in pacing.seen


def test_a_process_gone_without_an_event_is_forgotten_at_the_next_listing() -> None:
    pacing = Pacing(max_gap=8)
    run(pacing, 10, lambda pid, r: "same", alive=lambda r: (1, 2))
    run(pacing, 5, lambda pid, r: "same", alive=lambda r: (1,))  # rounds 11-15: not listed
    assert 2 in pacing.seen
    run(pacing, 2, lambda pid, r: "same", alive=lambda r: (1,))  # round 17 lists
    assert 2 not in pacing.seen


def test_every_process_at_once_when_there_are_too_many_to_name() -> None:
    lists: list[int] = []
    read = run(Pacing(max_gap=8), 30, lambda pid, r: "same", wakes={20: None}, lists=lists)
    # read at 20, keeping its pace: its next read after the gap it had reached
    assert read[1] == read[2] == [1, 2, 3, 4, 6, 10, 18, 20, 28]
    assert lists == [1, 9, 17, 20, 28]


def test_a_reused_pid_is_a_new_process() -> None:
    pacing = Pacing(max_gap=8)
    run(pacing, 10, lambda pid, r: "same")
    assert pacing.pace(1) == 8
    old = pacing.seen[1]
    assert pacing.record(1, 100) is old
    new = pacing.record(1, 999)  # another start: the pid was reused
    assert new is not old and pacing.seen[1] is new and new.ticks is None
    pacing.found(1, new, "same")
    assert pacing.pace(1) == 1


def test_forgetting_reads_every_process_at_the_next_round() -> None:
    pacing = Pacing(max_gap=8)
    run(pacing, 10, lambda pid, r: "same")
    pacing.forget()
    assert pacing.lists(())
    assert pacing.due([1, 2], ()) == [1, 2]
    assert pacing.pace(1) is None


def test_what_the_host_used_beyond_the_reads_says_a_process_woke() -> None:
    read = Usage(cpu_s=0.30, mem_kb=1000.0)
    assert woken(Usage(0.30, 1000.0), read, 1.0) is None  # all accounted for
    assert woken(Usage(0.30 + WAKE_CPU - 0.01, 1000.0 + WAKE_MEM_KB - 1), read, 1.0) is None
    assert woken(Usage(0.30 + WAKE_CPU + 0.01, 1000.0), read, 1.0) == "cpu"
    assert woken(Usage(0.30 + WAKE_CPU + 0.01, 1000.0), read, 2.0) is None  # a longer round
    assert woken(Usage(0.30, 1000.0 + WAKE_MEM_KB + 1), read, 1.0) == "memory"
    assert woken(Usage(0.0, -5e6), read, 1.0) is None  # the host used less: nothing woke
    assert woken(Usage(None, None), read, 1.0) is None  # nothing known, nothing said
    assert woken(Usage(5.0, None), Usage(None, 0.0), 1.0) is None
    assert woken(Usage(5.0, 1e9), read, 0.0) == "memory"  # no span: CPU says nothing


def test_the_rest_of_a_round_is_every_process_not_read_yet() -> None:
    pacing = Pacing(max_gap=8)
    run(pacing, 10, lambda pid, r: "same" if pid == 1 else r)  # 1 idle, 2 busy
    assert pacing.due(None, {3}) == [2, 3]  # round 11: 1 is not due, 3 is new
    pacing.found(2, pacing.record(2, 100), "x")
    pacing.found(3, pacing.record(3, 100), "y")
    skipped = pacing.skipped
    # some process woke: /proc holds 1, 2, 3 and 4 (4 no event named); 5 left unseen
    pacing.seen[5] = pacing.record(5, 100)
    assert pacing.rest([1, 2, 3, 4]) == [1, 4]
    assert 5 not in pacing.seen
    assert pacing.skipped == skipped - 1  # 1 was counted skipped at this round; it is read
    assert pacing.rest([1, 2, 3, 4]) == []  # read at this round already


def test_rounds_between_reads_from_the_configured_seconds() -> None:
    assert rounds_between(8.0, 1.0) == 8
    assert rounds_between(8.0, 3.0) == 2
    assert rounds_between(0.5, 0.1) == 5
    assert rounds_between(0.3, 0.1) == 3  # not 2 for 0.3 / 0.1 = 2.9999999999999996
    for off in (0.0, 0.5, 1.0):
        assert rounds_between(off, 1.0) == 1


@given(changes=st.lists(st.booleans(), min_size=1, max_size=120),
       wakes=st.sets(st.integers(1, 120), max_size=10), gap=st.integers(1, 9))
def test_no_process_goes_unread_longer_than_the_bound_and_every_change_is_seen(
        changes: list[bool], wakes: set[int], gap: int) -> None:
    values: list[int] = []
    for changed in changes:  # the value a read would find at each round
        values.append((values[-1] if values else 0) + changed)
    read = run(Pacing(max_gap=gap), len(changes), lambda pid, r: values[r - 1],
               alive=lambda r: (7,), wakes={r: {7} for r in wakes})[7]
    rounds = [*read, len(changes) + 1]
    assert read[0] == 1
    assert max(b - a for a, b in itertools.pairwise(rounds)) <= gap
    assert all(r in read for r in wakes if r <= len(changes))
    for a, b in itertools.pairwise(read):  # a change is read at once the next round too
        if values[b - 1] != values[a - 1]:
            assert b + 1 in read or b == len(changes)

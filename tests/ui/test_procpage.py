"""A process page's helpers: lengths of time in words, and whether a stored action is about
this process or an earlier one that had its pid."""

from __future__ import annotations

from linnix.procfs import HZ
from linnix.ui.procpage import duration, same_process


def test_a_duration_in_words() -> None:
    assert [duration(s) for s in (0.0, 12.9, 60.0, 249.0, 3600.0, 7500.0, 86400.0,
                                  3 * 86400.0 + 4 * 3600.0 + 59.0)] == [
        "0s", "12s", "1m 00s", "4m 09s", "1h 00m", "2h 05m", "1d 00h", "3d 04h"]
    assert duration(None) == duration(float("nan")) == duration(-1.0) == "—"


def test_an_action_is_this_processs_when_its_start_is() -> None:
    offset = 100.0  # the engine's clock began 100 s after boot
    at = {"start_ticks": round((5.0 + offset) * HZ)}  # a process that started at 5.0
    assert same_process(at, 5.0, offset)
    assert same_process(at, 5.4, offset)  # within the tolerance of a /proc start time
    assert not same_process(at, 6.0, offset)  # an earlier process with this pid
    assert not same_process({"start_ticks": None}, 5.0, offset)  # not known to be it
    assert not same_process(at, None, offset)
    assert same_process({"start_ticks": None}, None, None)  # no daemon clock: the pid alone

"""Signal names for the numbers a trace carries."""

from __future__ import annotations

import signal

from linnix.signals import CORE_SIGNALS, CRASH_SIGNALS, signal_name


def test_names_match_this_linux_host() -> None:
    assert [signal_name(n) for n in range(1, 32)] == [signal.Signals(n).name for n in range(1, 32)]
    assert signal_name(signal.SIGRTMIN) == "SIGRTMIN"


def test_realtime_and_unknown_numbers() -> None:
    assert (signal_name(34), signal_name(36), signal_name(64)) == (
        "SIGRTMIN", "SIGRTMIN+2", "SIGRTMIN+30")
    assert (signal_name(0), signal_name(32), signal_name(65), signal_name(-1)) == (
        "SIG0", "SIG32", "SIG65", "SIG-1")


def test_a_crash_is_a_core_dump_the_program_caused() -> None:
    assert CRASH_SIGNALS < CORE_SIGNALS
    assert sorted(CORE_SIGNALS - CRASH_SIGNALS) == ["SIGQUIT", "SIGXCPU", "SIGXFSZ"]
    assert "SIGPIPE" not in CORE_SIGNALS and "SIGKILL" not in CORE_SIGNALS

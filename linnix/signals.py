"""Signal numbers and names: the trace carries the number, rules and people read the name.

The numbers are Linux's generic ones (x86, Arm, RISC-V and most others).
:data:`CRASH_SIGNALS` are those whose default action dumps core because the
program itself went wrong; SIGQUIT, SIGXCPU and SIGXFSZ dump core too, but a
user or a limit sent them, so they are not crashes.
"""

from __future__ import annotations

__all__ = ["CORE_SIGNALS", "CRASH_SIGNALS", "signal_name"]

_NAMES = (
    "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE",
    "SIGKILL", "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGSTKFLT",
    "SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU",
    "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO", "SIGPWR", "SIGSYS",
)
_RTMIN, _RTMAX = 34, 64

CRASH_SIGNALS = frozenset(
    {"SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGABRT", "SIGSYS", "SIGTRAP"})
CORE_SIGNALS = CRASH_SIGNALS | {"SIGQUIT", "SIGXCPU", "SIGXFSZ"}  # dump core by default


def signal_name(number: int) -> str:
    """``SIGSEGV`` for 11; ``SIGRTMIN+2`` for 36; ``SIG99`` for a number Linux does not use."""
    if 1 <= number <= len(_NAMES):
        return _NAMES[number - 1]
    if _RTMIN <= number <= _RTMAX:
        return "SIGRTMIN" if number == _RTMIN else f"SIGRTMIN+{number - _RTMIN}"
    return f"SIG{number}"

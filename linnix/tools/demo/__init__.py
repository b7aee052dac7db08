"""``linnix demo``: real, bounded workloads that trip each shipped rule.

The package is split by subject:

- :mod:`.scenarios`: the workloads, one per shipped rule, and :data:`SCENARIOS`;
- :mod:`.workload`: what every workload process knows (its plan, its deadline)
  and the pieces the workloads are built from;
- :mod:`.cgrouphog`: ``cgroup-hog``, which brings a cgroup rule and a daemon of its
  own (no shipped rule reads ``cg_*`` names) to show a freeze and the approval of a
  kill; described here by :data:`CGROUP_HOG`, run apart from the others (not in ``all``);
- :mod:`.supervisor`: the command's side, which starts each workload detached
  in a process group of its own, watches it, and stops the whole group at the
  end, on Ctrl-C, SIGTERM and SIGHUP, bounded in time.

:func:`run` runs scenarios in turn; it is what ``linnix demo`` calls.

The package uses the standard library only: no trio, quart or bcc.  The CLI
imports it to build its parser for every command, ``check`` included, so the
few heavier imports (the ``/proc`` readers) happen only when a demo runs;
:mod:`.cgrouphog` (the API client, the cgroup hierarchy) is imported only to run it.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from .scenarios import (
    FD_LIMIT,
    GROUPS,
    SCENARIOS,
    Scenario,
    default_leak_cap_mb,
    stall_spinners,
)
from .supervisor import Signals, run_one

__all__ = [
    "CGROUP_HOG", "FD_LIMIT", "GROUPS", "SCENARIOS", "Listed", "Scenario", "default_leak_cap_mb",
    "run", "stall_spinners",
]

PAUSE_S = 5.0  # between scenarios of `all`, so that the alerts resolve


@dataclass(frozen=True)
class Listed:
    """A scenario as ``linnix demo --list`` shows it."""

    name: str
    rule: str
    severity: str
    comm: str
    workload: str


CGROUP_HOG = Listed(
    "cgroup-hog", "cgroup_hog", "critical", "python3",
    "a CPU hog in a cgroup of its own, frozen by a daemon the demo starts, then killed "
    "once the demo approves it (needs root)")


def run(names: list[str], scale: float = 1.0, leak_cap_mb: int | None = None,
        out: TextIO | None = None) -> int:
    """Run scenarios in turn; the exit status of ``linnix demo``."""
    out = out or sys.stdout

    def say(text: str) -> None:
        out.write(text + "\n")
        out.flush()

    cap = default_leak_cap_mb() if leak_cap_mb is None else leak_cap_mb
    status = 0
    with Signals() as sigs:
        for i, name in enumerate(names):
            scenario = SCENARIOS[name]
            if i:
                pause = PAUSE_S * scale
                say(f"\n(pausing {pause:.1f}s so that the alerts resolve)\n")
                if (sig := sigs.wait(pause)) is not None:
                    say(f"got {signal.Signals(sig).name}: stopping")
                    return 128 + sig
            _announce(say, scenario, f"{i + 1}/{len(names)}", scale)
            rc = run_one(scenario, scale, cap, sigs, out)
            if rc >= 128:
                return rc
            status = max(status, rc)
    if len(names) > 1:
        say(f"\nall {len(names)} scenarios done")
    return status


def _announce(say: Callable[[str], None], scenario: Scenario, place: str,
              scale: float) -> None:
    """What is about to run, the rule it trips and when, and why it might not."""
    say(f"== {scenario.name} ({place}): trips {scenario.rule} ({scenario.severity}) ==")
    say(f"workload: {scenario.workload}; processes are named {scenario.comm}")
    say(f"expect: {scenario.rule} to fire {scenario.expect}")
    if scale != 1.0:
        say(f"note: durations scaled by {scale:g} (planned "
            f"{scenario.planned(scale):.1f}s); at this scale the rule may not fire")
    if scenario.name == "circuit-breaker" and not os.path.exists("/proc/pressure/cpu"):
        say("note: this kernel reports no CPU pressure (/proc/pressure/cpu), so "
            "circuit_breaker cannot fire here")

"""The ``demo`` command: real, bounded workloads that trip each shipped rule.

The function that adds its arguments to its parser and the one that runs it;
the workloads, and the supervision that keeps them bounded, are
:mod:`linnix.tools.demo`.  That package uses the standard library only, so
importing it to build the parser costs every command little.
"""

from __future__ import annotations

import argparse
import math
import sys

from ..errors import UsageError
from .argtypes import positive_int
from .exits import EXIT_OK

__all__ = ["cmd_demo", "demo_arguments"]


def _scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not math.isfinite(value) or value <= 0 or value > 100:
        raise argparse.ArgumentTypeError(f"'{text}' must be above 0 and at most 100")
    return value


def demo_arguments(p: argparse.ArgumentParser) -> None:
    # the scenario names are the choices, so the parser needs them up front
    from ..tools.demo import CGROUP_HOG, SCENARIOS

    p.add_argument("scenario", nargs="?", metavar="SCENARIO",
                   choices=[*SCENARIOS, CGROUP_HOG.name, "all"],
                   help="one of: " + ", ".join([*SCENARIOS, CGROUP_HOG.name]) + ", or all "
                        f"(every one but {CGROUP_HOG.name})")
    p.add_argument("--list", action="store_true",
                   help="list the scenarios and the rule each trips")
    p.add_argument("--duration-scale", type=_scale, default=1.0, metavar="FLOAT",
                   help="multiply every duration by this (default 1.0)")
    p.add_argument("--leak-cap", type=positive_int, default=None, metavar="MIB",
                   help="memory-leak stops growing after this many MiB (default: what "
                        "memory_leak needs on this host, about 3.4%% of its memory; a lower "
                        "cap may keep the rule from firing)")


def cmd_demo(args: argparse.Namespace) -> int:
    from ..tools.demo import CGROUP_HOG, SCENARIOS, Listed, Scenario, run

    if args.list:
        width = max(map(len, [*SCENARIOS, CGROUP_HOG.name]))
        listed: list[Scenario | Listed] = [*SCENARIOS.values(), CGROUP_HOG]
        for s in listed:
            sys.stdout.write(f"{s.name:<{width}}  {s.rule:<16} {s.severity:<8}  "
                             f"{s.comm:<11}  {s.workload}\n")
        sys.stdout.write(f"{'all':<{width}}  every scenario in turn but {CGROUP_HOG.name}\n")
        return EXIT_OK
    if args.scenario is None:
        raise UsageError("demo: name a scenario (or 'all'); 'linnix demo --list' lists them")
    if args.scenario == CGROUP_HOG.name:  # its own rule and daemon: see its module
        if args.duration_scale != 1.0 or args.leak_cap is not None:
            raise UsageError(f"demo: {CGROUP_HOG.name} takes neither --duration-scale nor "
                             "--leak-cap")
        from ..tools.demo.cgrouphog import run as run_cgroup_hog

        return run_cgroup_hog()
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    return run(names, args.duration_scale, args.leak_cap)

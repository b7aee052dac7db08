"""The two passes of `make unit`: which tests may share the machine, which must have it alone.

`make unit` runs the suite twice with ``--pass`` (tests/conftest.py): ``parallel`` on
several pytest-xdist workers, then ``serial`` in one process.  Every collected test is in
exactly one of them.  A test is serial when it is marked root, ebpf, slow or serial, or
when its module takes live_support's root or daemon helpers: such tests measure latency on
the real kernel, run demo workloads that must get their CPUs (or measure what CPU a
workload got), or start daemons, and a worker beside them would slow them into failing.
Looking at the module's imports as well as the markers puts a new root or daemon test in
the serial pass without anyone remembering a marker.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Protocol, TypeVar

import live_support

PASSES = ("all", "parallel", "serial")
SERIAL_MARKS = ("root", "ebpf", "slow", "serial")
SERIAL_HELPERS = ("require_root", "require_ebpf", "Daemon")


class Collected(Protocol):
    """What of a pytest item the split reads."""

    def get_closest_marker(self, name: str) -> object | None: ...


T = TypeVar("T", bound=Collected)


def takes_live_helpers(module: ModuleType | None) -> bool:
    """Whether a test module imported live_support's root or daemon helpers."""
    if module is None:
        return False
    return any(getattr(module, name, None) is getattr(live_support, name)
               for name in SERIAL_HELPERS)


def is_serial(item: Collected) -> bool:
    """Whether ``item`` runs in the serial pass."""
    if any(item.get_closest_marker(mark) is not None for mark in SERIAL_MARKS):
        return True
    return takes_live_helpers(getattr(item, "module", None))


def split(items: Sequence[T], wanted: str) -> tuple[list[T], list[T]]:
    """The items of pass ``wanted`` and the others, each in collection order."""
    if wanted not in PASSES:
        raise ValueError(f"unknown pass {wanted!r}")
    if wanted == "all":
        return list(items), []
    keep: list[T] = []
    drop: list[T] = []
    for item in items:
        (keep if is_serial(item) == (wanted == "serial") else drop).append(item)
    return keep, drop

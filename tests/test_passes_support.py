"""The split of `make unit` into its parallel and serial passes (tests/passes_support.py)."""

from __future__ import annotations

from types import ModuleType

import cli_support
import live_support
import pytest
from passes_support import is_serial, split


class Item:
    """A collected test as the split sees it: its markers and its module."""

    def __init__(self, name: str, *marks: str, module: ModuleType | None = None) -> None:
        self.name = name
        self.marks = set(marks)
        self.module = module

    def get_closest_marker(self, name: str) -> object | None:
        return name if name in self.marks else None

    def __repr__(self) -> str:
        return self.name


def module(**names: object) -> ModuleType:
    made = ModuleType("test_made")
    for name, value in names.items():
        setattr(made, name, value)
    return made


@pytest.mark.parametrize("mark", ["root", "ebpf", "slow", "serial"])
def test_a_marked_test_is_serial(mark: str) -> None:
    assert is_serial(Item("t", mark, module=module()))


@pytest.mark.parametrize("helper", ["require_root", "require_ebpf", "Daemon"])
def test_a_test_whose_module_takes_a_root_or_daemon_helper_is_serial(helper: str) -> None:
    assert is_serial(Item("t", module=module(**{helper: getattr(live_support, helper)})))


def test_other_tests_are_parallel() -> None:
    assert not is_serial(Item("t", "parametrize"))
    assert not is_serial(Item("t", module=module()))
    # live_support's harmless helpers, and another module's Daemon, do not count
    assert not is_serial(Item("t", module=module(free_port=live_support.free_port,
                                                 require_program=live_support.require_program,
                                                 Daemon=cli_support.Daemon)))


def test_every_test_is_in_exactly_one_pass_in_order() -> None:
    root = module(require_root=live_support.require_root)
    items = [Item("a"), Item("b", "slow"), Item("c", module=root), Item("d"),
             Item("e", "root", "ebpf")]
    parallel, not_parallel = split(items, "parallel")
    serial, not_serial = split(items, "serial")
    assert [i.name for i in parallel] == ["a", "d"]
    assert [i.name for i in serial] == ["b", "c", "e"]
    assert not_parallel == serial and not_serial == parallel
    assert split(items, "all") == (items, [])


def test_an_unknown_pass_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown pass 'fast'"):
        split([Item("a")], "fast")

"""Shared pytest configuration: the golden-file switch, the Hypothesis profiles and the
`--pass` option that splits `make unit` in two (tests/passes_support.py)."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings
from passes_support import PASSES, split

# Deterministic by default: the same examples on every run and every machine, a
# bounded number of them, no example database.  `HYPOTHESIS_PROFILE=thorough`
# explores more (and randomly) when hunting for bugs by hand.
settings.register_profile(
    "linnix",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=100,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough",
    derandomize=False,
    deadline=None,
    max_examples=5000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# `make fuzz`: ten times the examples of the unit run for the fuzzing targets, still
# derandomized so that CI never fails on luck (HYPOTHESIS_PROFILE=thorough explores fresh
# random input by hand); a failure prints the blob that reproduces it.
settings.register_profile(
    "fuzz",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=1000,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "linnix"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite the golden files (the *.expected files of fixtures/rules/bad and the "
        "replay outputs in fixtures/golden) from the current output instead of comparing "
        "against them",
    )
    parser.addoption(
        "--pass",
        dest="unit_pass",
        choices=PASSES,
        default="all",
        help="run only the tests that may share the machine (parallel: `make unit` runs "
        "them on several workers) or only those that must have it to themselves (serial: "
        "marked root, ebpf, slow or serial, or in a module that takes live_support's "
        "require_root, require_ebpf or Daemon; tests/passes_support.py); all (the default) "
        "runs both",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep, drop = split(items, config.getoption("unit_pass"))
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))

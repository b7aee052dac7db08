"""The argument types every sub-command shares."""

from __future__ import annotations

import argparse

import pytest

from linnix.cli.argtypes import duration, positive_duration, positive_int


@pytest.mark.parametrize(("text", "seconds"), [("500ms", 0.5), ("30s", 30.0), ("2m", 120.0),
                                               ("1.5", 1.5), ("0s", 0.0)])
def test_duration(text: str, seconds: float) -> None:
    assert duration(text) == seconds


@pytest.mark.parametrize(("parse", "text", "message"), [
    (duration, "abc", "'abc' is not a duration (e.g. 500ms, 30s, 2m)"),
    (positive_duration, "0", "'0' must be longer than zero"),
    (positive_duration, "0ms", "'0ms' must be longer than zero"),
    (positive_int, "x", "'x' is not a whole number"),
    (positive_int, "1.5", "'1.5' is not a whole number"),
    (positive_int, "0", "'0' must be at least 1"),
    (positive_int, "-3", "'-3' must be at least 1"),
])
def test_bad_values_name_the_text(parse: object, text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as err:
        parse(text)  # type: ignore[operator]
    assert str(err.value) == message


def test_positive_int() -> None:
    assert positive_int("1") == 1
    assert positive_int("250") == 250

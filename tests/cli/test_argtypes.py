"""The argument types every sub-command shares, and their one duration grammar with linnix.toml."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

import pytest

from linnix.cli import main
from linnix.cli.argtypes import duration, positive_duration, positive_int
from linnix.config import ConfigFileError, parse_config, parse_duration
from linnix.names import DURATION_UNITS, UNITS, Dim


@pytest.mark.parametrize(("text", "seconds"), [("500ms", 0.5), ("30s", 30.0), ("2m", 120.0),
                                               ("1.5", 1.5), ("0s", 0.0)])
def test_duration(text: str, seconds: float) -> None:
    assert duration(text) == seconds


@pytest.mark.parametrize(("parse", "text", "message"), [
    (duration, "abc", "'abc' is not a duration (e.g. 500ms, 30s, 2m)"),
    (positive_duration, "0", "'0' must be longer than zero"),
    (positive_duration, "0ms", "'0ms' must be longer than zero"),
    (duration, "-5s", "'-5s': a duration cannot be negative"),
    (positive_duration, "-1", "'-1': a duration cannot be negative"),
    (duration, "-x", "'-x' is not a duration (e.g. 500ms, 30s, 2m)"),
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


# ---- one duration grammar for the command line and linnix.toml -------------------------------

# text -> seconds, or None where the text is not a duration
DURATIONS: list[tuple[str, float | None]] = [
    ("500ms", 0.5), ("30s", 30.0), ("5m", 300.0), ("2h", 7200.0), ("2d", 172800.0),
    ("30d", 2592000.0), ("1.5h", 5400.0), ("10", 10.0), ("0.25", 0.25), ("007s", 7.0),
    (" 5 m ", 300.0), ("5 ms", 0.005), ("0", 0.0), ("0ms", 0.0),
    ("", None), (" ", None), ("ms", None), ("d", None), ("5 minutes", None), ("1w", None),
    ("5M", None), ("5H", None), ("5D", None), ("5%", None), ("5MiB", None), ("5KB", None),
    ("1h30m", None), ("-1s", None), ("+1s", None), ("1e3", None), ("1e3s", None), (".5s", None),
    ("5.s", None), ("inf", None), ("nan", None), ("1_000s", None), ("\u0663s", None),
    ("9" * 400, None), ("9" * 400 + "d", None),
    *((f"3{suffix}", 3 * factor) for suffix, factor in DURATION_UNITS.items()),
    *((f"3{u.suffix}", None) for u in UNITS.values() if u.dim is not Dim.DURATION),
]


def outcome(parse: Callable[[str], object], text: str) -> object:
    try:
        return parse(text)
    except (ValueError, argparse.ArgumentTypeError):
        return None


@pytest.mark.parametrize(("text", "seconds"), DURATIONS)
def test_the_command_line_and_the_file_read_the_same_durations(text: str,
                                                                seconds: float | None) -> None:
    assert outcome(duration, text) == outcome(parse_duration, text) == seconds


@pytest.mark.parametrize(("text", "seconds"), DURATIONS)
def test_positive_durations_agree_with_the_file(text: str, seconds: float | None) -> None:
    def in_the_file(text: str) -> float:
        toml = f"[telemetry]\ntick = {json.dumps(text)}\n"
        try:
            return parse_config(toml, "linnix.toml").telemetry.tick
        except ConfigFileError as err:
            raise ValueError(str(err)) from None

    expected = seconds if seconds else None
    assert outcome(positive_duration, text) == outcome(in_the_file, text) == expected


def test_days_are_for_files_and_flags_only() -> None:
    rules = {u.suffix: u.factor for u in UNITS.values() if u.dim is Dim.DURATION}
    assert "d" not in UNITS
    assert dict(DURATION_UNITS) == {**rules, "d": 86400.0}


@pytest.mark.parametrize("argv", [
    ["replay", "--until", "-5s", "t.jsonl"],
    ["replay", "t.jsonl", "--until", "-5s"],
    ["replay", "--until=-5s", "t.jsonl"],
])
def test_a_negative_duration_after_its_option_is_refused_by_name(
        argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith(
        "linnix: argument --until: '-5s': a duration cannot be negative\n")


def test_a_dashed_value_is_attached_only_to_an_option_that_takes_one(
        capsys: pytest.CaptureFixture[str]) -> None:
    # --strict takes no value: -5 stays an argument of its own (a path here)
    assert main(["check", "--strict", "-5"]) == 2
    assert capsys.readouterr().err.startswith("linnix: -5: no such file or directory\n")

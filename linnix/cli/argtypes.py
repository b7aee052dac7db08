"""Argument types shared by every sub-command's parser.

Each one turns a command-line string into a value or raises
:class:`argparse.ArgumentTypeError` with a message naming the string, which
the CLI prints as a usage error (exit 2).
"""

from __future__ import annotations

import argparse

from ..names import duration_seconds

__all__ = ["duration", "positive_duration", "positive_int"]


def duration(text: str) -> float:
    """``500ms``, ``30s``, ``2m``, ``2h``, ``30d`` (a bare number is seconds).

    The grammar is :func:`linnix.names.duration_seconds`, the same as in
    ``linnix.toml``.
    """
    try:
        return duration_seconds(text)
    except ValueError as err:
        if text.startswith("-") and _is_duration(text[1:]):
            raise argparse.ArgumentTypeError(
                f"'{text}': a duration cannot be negative") from None
        raise argparse.ArgumentTypeError(str(err)) from None


def _is_duration(text: str) -> bool:
    try:
        duration_seconds(text)
    except ValueError:
        return False
    return True


def positive_duration(text: str) -> float:
    """A duration longer than zero."""
    value = duration(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"'{text}' must be longer than zero")
    return value


def positive_int(text: str) -> int:
    """A whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"'{text}' must be at least 1")
    return value

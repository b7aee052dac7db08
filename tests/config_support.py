"""Helpers of the configuration tests: a file's text parsed, or its problems rendered."""

from __future__ import annotations

import textwrap

import pytest

from linnix.config import Config, ConfigFileError, parse_config


def parse(text: str) -> Config:
    return parse_config(textwrap.dedent(text), "linnix.toml")


def problems(text: str) -> list[str]:
    """Every problem of ``text``, rendered; fails if the text is valid."""
    with pytest.raises(ConfigFileError) as info:
        parse(text)
    return [str(p) for p in info.value.problems]

"""The exception tree.  Everything linnix raises on purpose is a LinnixError::

    LinnixError
     ├── RuleError            a rule set is not valid; carries diagnostics
     │    └── RuleSyntaxError   the text does not parse
     ├── TraceError           a trace line is invalid (names file and line)
     ├── ConfigError          linnix.toml is invalid (names file, line and key)
     ├── UsageError           a command was called wrongly (exit status 2)
     └── ApiError             the daemon's API refused or could not be reached

The front end (parse, check, compile) never lets anything else escape: an
internal error there is a bug, and the CLI reports it as one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .language.source import Diagnostic

__all__ = [
    "ApiError",
    "ConfigError",
    "LinnixError",
    "Outage",
    "RuleError",
    "RuleSyntaxError",
    "StoreError",
    "TraceError",
    "UsageError",
]


class LinnixError(Exception):
    """Base of every error linnix raises deliberately."""


class RuleError(LinnixError):
    """A rule set has errors; ``diagnostics`` holds every one of them."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        first = self.diagnostics[0].message if self.diagnostics else "invalid rules"
        super().__init__(first)


class RuleSyntaxError(RuleError):
    """The text of a ``.lnx`` file does not parse.

    ``partial``, when not None, is what the parser made of the declarations
    that did parse once it had recovered from every error, and ``lost`` the
    names the declarations it left out would have defined (rules, lets,
    macros): the rest of the file can still be checked, without reporting
    those names as unknown.
    """

    def __init__(self, diagnostics: Sequence[Diagnostic], partial: object | None = None,
                 lost: frozenset[str] = frozenset()) -> None:
        super().__init__(diagnostics)
        self.partial = partial
        self.lost = lost


class TraceError(LinnixError):
    """A line of a trace file is invalid."""

    def __init__(self, path: str, line: int, message: str) -> None:
        self.path = path
        self.line = line
        self.reason = message
        super().__init__(f"{path}:{line}: {message}" if line > 0 else f"{path}: {message}")


class ConfigError(LinnixError):
    """The configuration file is invalid."""


class StoreError(LinnixError):
    """The state database cannot be opened."""


class UsageError(LinnixError):
    """A command was given wrong arguments (exit status 2)."""


class ApiError(LinnixError):
    """The daemon's API answered with an error or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class Outage:
    """Something that keeps failing and may work again (a full disk): said once
    when it starts failing and once when it works again, never per failure."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.lost = 0  # what could not be done, all told
        self.failing = False

    def failed(self, message: str, lost: int = 1) -> None:
        self.lost += lost
        if not self.failing:
            self.failing = True
            self.say(message)

    def worked(self, message: str) -> None:
        """``message`` may name ``{lost}``, the count so far."""
        if self.failing:
            self.failing = False
            self.say(message.format(lost=self.lost))


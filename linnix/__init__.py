"""linnix: process-lifecycle rules for Linux hosts.

The public API is deliberately small: compile rules, inspect the plan, and
the diagnostics and errors they produce.  Everything else is internal.
"""

from __future__ import annotations

from .errors import LinnixError, RuleError, RuleSyntaxError, TraceError
from .language.pipeline import Build, build, compile_text
from .language.source import Diagnostic
from .plan import Plan

__all__ = [
    "Build",
    "Diagnostic",
    "LinnixError",
    "Plan",
    "RuleError",
    "RuleSyntaxError",
    "TraceError",
    "__version__",
    "build",
    "compile_text",
]

__version__ = "0.1.0"

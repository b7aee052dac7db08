"""The wheel's package data: the shipped rules and the traces their test blocks name.

A hatch build hook (``[tool.hatch.build.targets.wheel.hooks.custom]`` in pyproject.toml).
The files of ``rules/`` go to ``linnix/data/rules/``, and every trace a test block names as
``"../fixtures/NAME"`` to ``linnix/data/fixtures/NAME``, so that the paths the rules give
still hold inside the installed package (a rule file naming a missing trace does not
load).  The traces are read from the rules rather than listed here, so that a test added
to a rule ships its trace without anyone remembering to; the goldens, the bad-rule
fixtures and the traces no shipped test names stay out.  An editable install reads the
checkout itself and gets nothing (``linnix.shipped`` finds ``rules/`` there).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

DATA = "linnix/data"
# `trace "PATH"` in a test block; our own files, read at build time
_TRACE = re.compile(r'^\s*trace\s+"([^"\\]+)"', re.MULTILINE)


def shipped_files(root: Path) -> dict[str, str]:
    """Source path -> path in the wheel, for the rules and the traces they name."""
    rules = root / "rules"
    files = {str(path): f"{DATA}/rules/{path.name}" for path in sorted(rules.glob("*.lnx"))}
    for rule in sorted(rules.glob("*.lnx")):
        for named in _TRACE.findall(rule.read_text(encoding="utf-8")):
            trace = (rules / named).resolve()
            if trace.parent != (root / "fixtures").resolve():
                raise ValueError(f"{rule}: the trace {named!r} is not in fixtures/, "
                                 "where the wheel's copy of the rules looks for it")
            if not trace.is_file():
                raise ValueError(f"{rule}: the trace {named!r} does not exist")
            files[str(trace)] = f"{DATA}/fixtures/{trace.name}"
    return files


class ShippedRulesHook(BuildHookInterface):
    """Adds the shipped rules and their traces to a (non-editable) wheel."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if version == "standard":
            build_data["force_include"].update(shipped_files(Path(self.root)))

"""``linnix run``'s arguments reach the daemon's options (the daemon itself is not run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from linnix.cli import main
from linnix.runtime import daemon as daemon_module


@pytest.mark.parametrize(("flags", "verbose"), [([], False), (["--verbose"], True),
                                                 (["-v"], True)])
def test_verbose_asks_the_terminal_for_pending_alerts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: list[str],
        verbose: bool) -> None:
    seen: list[Any] = []

    class Recorded:
        def __init__(self, opts: Any) -> None:
            seen.append(opts)

        def run(self) -> int:
            return 0

    monkeypatch.setattr(daemon_module, "Daemon", Recorded)
    rules = tmp_path / "a.lnx"
    rules.write_text("rule a: cpu_pct > 90\n")
    assert main(["run", "--rules", str(rules), "--state-dir", str(tmp_path / "s"),
                 *flags]) == 0
    (opts,) = seen
    assert opts.verbose is verbose

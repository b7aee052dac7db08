"""The per-CPU map reader's CPU count (the map itself is read in test_bpfload_live.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from linnix.runtime.sources.bpfmap import possible_cpus


@pytest.mark.parametrize(("text", "cpus"), [("0\n", 1), ("0-1\n", 2), ("0-3,6\n", 7),
                                            ("0,2-5\n", 6)])
def test_possible_cpus_is_one_past_the_highest(tmp_path: Path, text: str, cpus: int) -> None:
    path = tmp_path / "possible"
    path.write_text(text)
    assert possible_cpus(str(path)) == cpus

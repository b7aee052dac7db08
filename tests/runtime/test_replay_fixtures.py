"""The committed fixture traces are exactly what fixtures/generate.py writes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from support import ROOT

GENERATE = ROOT / "fixtures" / "generate.py"


def generate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(GENERATE), *args], capture_output=True,
                          text=True, timeout=120, check=False)


def test_committed_fixtures_are_up_to_date() -> None:
    done = generate("--check")
    assert done.returncode == 0, done.stderr + "\nrun: python fixtures/generate.py"
    assert done.stdout == done.stderr == ""


def test_check_notices_a_stale_or_missing_trace(tmp_path: Path) -> None:
    for trace in (ROOT / "fixtures").glob("*.jsonl"):
        shutil.copy(trace, tmp_path / trace.name)
    with open(tmp_path / "cpu_spike.jsonl", "a", encoding="utf-8") as f:
        f.write('{"ts":99.0,"kind":"lost","count":1}\n')
    (tmp_path / "short_jobs.jsonl").unlink()
    done = generate("--check", "--out", str(tmp_path))
    assert done.returncode == 1
    assert done.stderr == "stale or missing: cpu_spike.jsonl, short_jobs.jsonl\n"


RECORDED = {"trace.jsonl"}  # real captures (scripts/record-demo.sh), not generated


def test_generation_is_deterministic(tmp_path: Path) -> None:
    assert generate("--out", str(tmp_path)).returncode == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(p.name for p in (ROOT / "fixtures").glob("*.jsonl")
                             if p.name not in RECORDED)
    for name in written:
        assert (tmp_path / name).read_bytes() == (ROOT / "fixtures" / name).read_bytes(), name

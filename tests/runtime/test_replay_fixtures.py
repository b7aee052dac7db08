"""The committed fixture traces are exactly what fixtures/generate.py writes."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
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


# Text a machine's environment leaves behind: NAME=value words, an environment written as
# JSON (escaped inside a JSON string, as a command line in a trace is), certificate paths.
ENVIRONMENT_SHAPES = {
    "NAME=value": re.compile(r"(?<![A-Za-z0-9_])[A-Z_][A-Z0-9_]*="),
    '"NAME": as in an environment written as JSON': re.compile(r'\\?"[A-Z_][A-Z0-9_]*\\?":'),
    "a certificate path": re.compile(r"/etc/ssl/|/certs?/|ca-certificates|\.(pem|crt)\b"),
}


def environment_text(text: str) -> list[str]:
    """What in ``text`` looks like environment text, each with its shape's name."""
    return [f"{name}: {m.group(0)!r}" for name, shape in ENVIRONMENT_SHAPES.items()
            for m in shape.finditer(text)]


@pytest.mark.parametrize("text", [
    "PATH=/usr/bin", "x API_TOKEN=s3cret", "--env=HOME=/root", '{\\"CONTAINER_NAME\\": \\"x\\"}',
    '{"LANG": "C"}', "/etc/ssl/certs/ca-certificates.crt", "/srv/tls/server.pem"])
def test_the_scan_sees_environment_text(text: str) -> None:
    assert environment_text(text)


@pytest.mark.parametrize("text", [
    '{"kind":"proc","pid":1,"comm":"lnx-forker"}', "rule r: cpu_pct > 1", "a == b",
    "FIRING  cpu_spike", "x=1", "lnx-leak grew to 148 MiB"])
def test_the_scan_lets_ordinary_text_through(text: str) -> None:
    assert not environment_text(text)


def test_no_fixture_holds_environment_text() -> None:
    """Traces and golden files are committed: none may carry a machine's environment."""
    files = sorted(p for p in (ROOT / "fixtures").rglob("*") if p.is_file())
    assert len(files) > 50
    found = {str(p.relative_to(ROOT)): hits[:3] for p in files
             if (hits := environment_text(p.read_bytes().decode("utf-8", "replace")))}
    assert found == {}

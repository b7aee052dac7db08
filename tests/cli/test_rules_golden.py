"""Golden files: ``linnix check`` output for each file of fixtures/rules/bad.

Each ``NAME.lnx`` has a sibling ``NAME.expected`` holding the command, exactly
what it prints on stderr (the diagnostics) and on stdout (the verdict), each
after a line naming the stream, and its exit status.  After an intended change to
the messages, rewrite them with ``pytest tests/test_golden.py --update-golden``
and review the diff.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support import ROOT

from linnix import cli

BAD = ROOT / "fixtures" / "rules" / "bad"
CASES = sorted(BAD.glob("*.lnx"))

# Codes a golden file cannot show (E113 needs a file over 16 MiB; tests/test_loader.py).
NOT_IN_GOLDEN = {"E113"}


def run_check(path: Path, capsys: pytest.CaptureFixture[str],
              monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(ROOT)  # paths in the output are relative to the repository
    rel = path.relative_to(ROOT).as_posix()
    status = cli.main(["check", rel])
    out, err = capsys.readouterr()
    return f"$ linnix check {rel}\n[stderr]\n{err}[stdout]\n{out}[exit status {status}]\n"


def test_there_are_golden_cases() -> None:
    assert len(CASES) >= 5


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_check_output_matches_the_golden_file(path: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch,
                                              update_golden: bool) -> None:
    got = run_check(path, capsys, monkeypatch)
    expected = path.with_suffix(".expected")
    if update_golden:
        expected.write_text(got, encoding="utf-8")
        return
    assert expected.exists(), f"{expected} is missing; run pytest --update-golden"
    assert got == expected.read_text(encoding="utf-8")


def test_every_expected_file_has_its_case() -> None:
    assert sorted(p.with_suffix(".lnx") for p in BAD.glob("*.expected")) == CASES


def test_golden_files_cover_the_diagnostic_codes() -> None:
    from support import emitted_codes

    shown = set()
    for path in BAD.glob("*.expected"):
        shown |= set(re.findall(r"(?:error|warning)\[([EW]\d{3})\]", path.read_text()))
    assert emitted_codes() - NOT_IN_GOLDEN <= shown

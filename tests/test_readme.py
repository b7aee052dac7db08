"""The README works verbatim from the checkout: its Quickstart, `make test`, its commands."""

from __future__ import annotations

import re
import shlex
import subprocess

import pytest
from support import ROOT, run_cli

README = (ROOT / "README.md").read_text(encoding="utf-8")
# commands that need no daemon: the README's examples of them must run exactly as printed
OFFLINE = ("check", "explain", "fmt", "replay", "test")


def code_blocks(text: str) -> list[str]:
    return re.findall(r"^```[a-z]*\n(.*?)^```", text, re.M | re.S)


def shown_commands() -> list[str]:
    """Every `linnix ...` line of a code block (a leading `$ ` taken off)."""
    lines = [line.removeprefix("$ ") for block in code_blocks(README)
             for line in block.splitlines()]
    return [line for line in lines if line.startswith("linnix ")]


def test_the_quickstart_is_two_commands() -> None:
    quickstart = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    assert [b.split() for b in code_blocks(quickstart)] == [["make", "run", "make", "test"]]
    # and it says how `linnix`, which the examples call, gets on the PATH
    assert "`. .venv/bin/activate`" in quickstart


def test_make_test_checks_the_rules_layout() -> None:
    done = subprocess.run(["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert ".venv/bin/linnix fmt --check rules/" in done.stdout.splitlines()


def words(command: str) -> list[str]:
    return shlex.split(command, comments=True)


OFFLINE_SHOWN = [c for c in shown_commands() if words(c)[1] in OFFLINE]


def test_the_offline_commands_are_found() -> None:
    assert sorted({words(c)[1] for c in OFFLINE_SHOWN}) == sorted(OFFLINE)


@pytest.mark.parametrize("command", OFFLINE_SHOWN)
def test_an_offline_command_runs_as_printed(command: str, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    status, _, err = run_cli(capsys, *words(command)[1:])
    assert status == 0, err

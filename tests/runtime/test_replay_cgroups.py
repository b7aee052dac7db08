"""Rules over cgroup, unit, container and user in ``linnix test`` and ``linnix replay``.

The rules and their tests are ``fixtures/cgroups/cgroups.lnx``, over the hand-made
trace ``fixtures/cgroups/services.jsonl`` beside it.
"""

from __future__ import annotations

import json

import pytest
from support import ROOT

from linnix import cli

RULES = "fixtures/cgroups/cgroups.lnx"
TRACE = "fixtures/cgroups/services.jsonl"


@pytest.fixture(autouse=True)
def _at_the_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def test_the_rule_tests_over_unit_container_and_user_pass(
        capsys: pytest.CaptureFixture[str]) -> None:
    status = cli.main(["test", RULES])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "4 passed, 0 failed" in out


def test_replay_reports_the_unit_and_container_in_messages_labels_and_values(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["replay", "--format", "jsonl", "--rules", RULES, TRACE]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    firing = {r["rule"]: r for r in rows if r.get("state") == "firing"}
    assert set(firing) == {"nginx_busy", "container_busy", "backup_started"}
    nginx = firing["nginx_busy"]
    assert (nginx["ts"], nginx["pid"]) == (4.5, 302)
    assert nginx["labels"] == {"unit": "nginx.service", "user": "www-data"}
    assert nginx["message"] == "nginx[302] of nginx.service (www-data) uses 97% of a CPU"
    miner = firing["container_busy"]
    assert (miner["ts"], miner["pid"], miner["labels"]) == (
        4.5, 511, {"container": "3f4e5a6b7c8d"})
    assert miner["values"]["user"] is None  # a uid the recording host could not name
    backup = firing["backup_started"]
    assert (backup["ts"], backup["pid"], backup["trigger"]) == (2.01, 601, "exec")
    assert backup["values"]["unit"] == "backup-nightly.service"
    assert backup["message"] == "/usr/local/bin/backup started in backup-nightly.service by alice"

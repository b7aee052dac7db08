"""Rules over cgroup, unit, container and user in ``linnix test`` and ``linnix replay``.

The rules and their tests are ``fixtures/cgroups/cgroups.lnx``, over the hand-made
trace ``fixtures/cgroups/services.jsonl`` beside it; cgroup rules (``scope cgroup``) are
``fixtures/cgroups/pressure.lnx``, over the generated ``pressure.jsonl``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from support import ROOT, compare_golden, without_speed

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


# ---- cgroup rules over cgroup samples (fixtures/cgroups/pressure.*) ----------------------

CG_RULES = "fixtures/cgroups/pressure.lnx"
CG_TRACE = "fixtures/cgroups/pressure.jsonl"
CG_GOLDEN = ROOT / "fixtures" / "cgroups" / "golden"


def test_the_cgroup_trace_is_what_its_generator_writes() -> None:
    status = subprocess.run([sys.executable, "fixtures/cgroups/generate.py", "--check"],
                            check=False).returncode
    assert status == 0, "fixtures/cgroups/pressure.jsonl is stale: run its generate.py"


def test_the_cgroup_rule_tests_pass(capsys: pytest.CaptureFixture[str]) -> None:
    status = cli.main(["test", CG_RULES])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "3 passed, 0 failed" in out


def test_cgroup_rules_report_the_deepest_cgroup_and_propose_on_it_by_id(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["replay", "--format", "jsonl", "--rules", CG_RULES, CG_TRACE]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    fired = [(r["ts"], r["rule"], r["cgroup"]) for r in rows if r.get("state") == "firing"]
    assert fired == [
        (10.0, "slice_memory_pressure", "/system.slice/web.service"),
        (25.0, "cgroup_busy", "/user.slice/user-1000.slice/session-4.scope"),
        (35.0, "service_memory_pressure", "/system.slice/web.service"),
        (50.0, "slice_memory_pressure", "/system.slice"),  # once the service is gone
    ]
    actions = [(r["ts"], r["action"], r["pid"], r["cgroup"], r["cgroup_id"])
               for r in rows if r["type"] == "action"]
    assert actions == [
        (10.0, "freeze", None, "/system.slice/web.service", 101),
        (35.0, "freeze", None, "/system.slice/web.service", 101),
        (35.0, "kill_cgroup", None, "/system.slice/web.service", 101),
        (50.0, "freeze", None, "/system.slice", 100),
    ]
    busy = next(r for r in rows if r.get("rule") == "cgroup_busy" and r["state"] == "firing")
    assert busy["labels"] == {"cgroup": "/user.slice/user-1000.slice/session-4.scope",
                              "unit": "session-4.scope", "team": "ops"}
    gone = [r for r in rows if r.get("reason") == "gone"]
    assert {r["rule"] for r in gone} == {"service_memory_pressure", "slice_memory_pressure"}


@pytest.mark.parametrize("fmt", ["jsonl", "text"])
def test_the_cgroup_replay_matches_the_golden_file(fmt: str,
                                                   capsysbinary: pytest.CaptureFixture[bytes],
                                                   update_golden: bool) -> None:
    assert cli.main(["replay", "--format", fmt, "--rules", CG_RULES, CG_TRACE]) == 0
    got = without_speed(capsysbinary.readouterr().out)
    compare_golden(got, CG_GOLDEN / f"pressure.{'jsonl' if fmt == 'jsonl' else 'txt'}",
                   update_golden)

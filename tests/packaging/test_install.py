"""scripts/install.sh without the virtualenv (--no-venv) into temporary directories: what it
installs, what it never overwrites, and that the installed rules load."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from live_support import require_root
from support import ROOT

SCRIPT = ROOT / "scripts" / "install.sh"


def install(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), "--prefix", str(tmp_path / "opt"), "--config-dir", str(tmp_path / "etc"),
         "--unit-dir", str(tmp_path / "unit"), *extra],
        check=False, capture_output=True, text=True, timeout=120)


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    require_root()
    done = install(tmp_path, "--no-venv")
    assert done.returncode == 0, done.stderr
    return tmp_path


def test_config_rules_and_unit_are_installed_where_asked(installed: Path) -> None:
    etc = installed / "etc"
    config = (etc / "linnix.toml").read_text()
    assert f'paths = ["{etc}/rules"]' in config  # the places chosen, not the defaults
    assert '"/etc/linnix/rules"' not in config
    unit = (installed / "unit" / "linnix.service").read_text()
    assert f"ExecStart={installed}/opt/bin/linnix run --config {etc}/linnix.toml" in unit
    shipped = sorted(p.name for p in (ROOT / "rules").glob("*.lnx"))
    assert sorted(p.name for p in (etc / "rules").glob("*.lnx")) == shipped
    checked = subprocess.run([sys.executable, "-m", "linnix", "check", str(etc / "rules")],
                             check=False, capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr  # their traces came too


def test_nothing_there_already_is_overwritten(installed: Path) -> None:
    etc = installed / "etc"
    (etc / "linnix.toml").write_text("# mine\n")
    (etc / "rules" / "cpu_spike.lnx").unlink()  # removed on purpose: it must not come back
    (etc / "rules" / "common.lnx").write_text("# mine too\n")
    done = install(installed, "--no-venv")
    assert done.returncode == 0, done.stderr
    assert (etc / "linnix.toml").read_text() == "# mine\n"
    assert not (etc / "rules" / "cpu_spike.lnx").exists()
    assert (etc / "rules" / "common.lnx").read_text() == "# mine too\n"
    assert f"keeping {etc}/linnix.toml" in done.stdout
    assert f"keeping {etc}/rules" in done.stdout


def test_daemon_reload_only_where_systemd_runs_the_machine(installed: Path) -> None:
    done = install(installed, "--no-venv")
    booted = Path("/run/systemd/system").is_dir() and \
        Path("/proc/1/comm").read_text().strip() == "systemd"
    skipped = "systemd is not pid 1 here: skipped 'systemctl daemon-reload'" in done.stdout
    assert skipped is not booted


def test_a_bad_option_is_a_usage_error(tmp_path: Path) -> None:
    done = install(tmp_path, "--colour")
    assert done.returncode == 2
    assert "unknown option --colour" in done.stderr and "usage:" in done.stderr
    assert not (tmp_path / "etc").exists()

"""packaging/linnix.service: systemd finds nothing to warn about, and it grants exactly the
capabilities linnix uses, with the settings docs/service.md promises."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import ROOT

from linnix.runtime.sources import caps

UNIT = ROOT / "packaging" / "linnix.service"
EXEC = "/opt/linnix/bin/linnix"


def settings() -> dict[str, list[str]]:
    """Every ``Key=value`` of the unit, by key (a key may repeat)."""
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def verify(unit: Path) -> list[str]:
    """What ``systemd-analyze verify`` says about ``unit`` (lines naming it), and its status."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (scripts/setup.sh installs systemd)")
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)],
                          check=False, capture_output=True, text=True, timeout=120)
    said = [line for line in (done.stdout + done.stderr).splitlines() if unit.name in line]
    if done.returncode != 0:
        said.append(f"exit status {done.returncode}")
    return said


def copy(tmp_path: Path, name: str, text: str) -> Path:
    """The unit with its ExecStart on an executable that exists here (verify wants one)."""
    assert EXEC in text
    unit = tmp_path / name
    unit.write_text(text.replace(EXEC, sys.executable))
    return unit


def test_systemd_finds_nothing_to_warn_about(tmp_path: Path) -> None:
    assert verify(copy(tmp_path, "linnix.service", UNIT.read_text())) == []


def test_the_check_does_fail_on_a_warning(tmp_path: Path) -> None:
    misspelt = UNIT.read_text().replace("LockPersonality=", "LockPersonalty=")
    said = verify(copy(tmp_path, "linnix.service", misspelt))
    assert any("Unknown key" in line and "LockPersonalty" in line for line in said), said


def test_it_grants_exactly_the_capabilities_linnix_uses() -> None:
    unit = settings()
    wanted = sorted(caps.names(caps.SERVICE))
    assert sorted(unit["CapabilityBoundingSet"][0].split()) == wanted
    assert sorted(unit["AmbientCapabilities"][0].split()) == wanted


@pytest.mark.parametrize(("key", "value"), [
    ("Type", "notify"), ("NotifyAccess", "main"), ("WatchdogSec", "30s"),
    ("Restart", "on-failure"), ("StateDirectory", "linnix"), ("ConfigurationDirectory", "linnix"),
    ("OOMScoreAdjust", "-900"), ("ProtectSystem", "strict"), ("ProtectHome", "read-only"),
    ("PrivateTmp", "yes"), ("NoNewPrivileges", "yes"), ("SystemCallArchitectures", "native"),
    ("LockPersonality", "yes"), ("ProtectKernelModules", "yes"),
    ("ProtectControlGroups", "no"), ("LimitNOFILE", "65536"),
    ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6 AF_NETLINK"),
    ("ExecReload", "/bin/kill -HUP $MAINPID"),
])
def test_the_settings_docs_service_md_explains(key: str, value: str) -> None:
    assert settings()[key] == [value]
    assert f"{key}=" in (ROOT / "docs" / "service.md").read_text()


def test_the_agent_is_bounded_and_started_from_the_install() -> None:
    unit = settings()
    for key in ("MemoryMax", "CPUQuota", "TasksMax"):
        assert len(unit[key]) == 1 and unit[key][0]
    assert unit["ExecStart"] == [f"{EXEC} run --config /etc/linnix/linnix.toml "
                                 "--state-dir /var/lib/linnix"]

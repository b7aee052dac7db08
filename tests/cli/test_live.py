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
    rules = tmp_path / "a.lnx"
    rules.write_text("rule a: cpu_pct > 90\n")
    opts = _run_options(monkeypatch, "--rules", str(rules), "--state-dir",
                        str(tmp_path / "s"), *flags)
    assert opts.verbose is verbose


def _run_options(monkeypatch: pytest.MonkeyPatch, *argv: str) -> Any:
    """The options ``linnix run ARGV`` gives the daemon."""
    seen: list[Any] = []

    class Recorded:
        def __init__(self, opts: Any) -> None:
            seen.append(opts)

        def run(self) -> int:
            return 0

    monkeypatch.setattr(daemon_module, "Daemon", Recorded)
    assert main(["run", *argv]) == 0
    (opts,) = seen
    return opts


def test_without_rules_run_uses_the_configured_ones_that_exist(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "a.lnx").write_text("rule a: cpu_pct > 90\n")
    config = tmp_path / "linnix.toml"
    config.write_text(f'[rules]\npaths = ["{tmp_path}/gone", "{mine}"]\n')
    opts = _run_options(monkeypatch, "--config", str(config), "--state-dir", str(tmp_path / "s"))
    assert opts.rules == [str(mine)]


def test_without_rules_run_falls_back_to_the_installed_package_data(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a wheel, the shipped rules are linnix/data/rules, not a checkout's rules/."""
    data = tmp_path / "site" / "linnix" / "data" / "rules"
    data.mkdir(parents=True)
    (data / "a.lnx").write_text("rule a: cpu_pct > 90\n")
    monkeypatch.setattr("linnix.shipped.PACKAGE", str(tmp_path / "site" / "linnix"))
    config = tmp_path / "linnix.toml"
    config.write_text(f'[rules]\npaths = ["{tmp_path}/gone"]\n')
    opts = _run_options(monkeypatch, "--config", str(config), "--state-dir", str(tmp_path / "s"))
    assert opts.rules == [str(data)]


def test_without_any_rules_run_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("linnix.shipped.PACKAGE", str(tmp_path / "linnix"))
    config = tmp_path / "linnix.toml"
    config.write_text(f'[rules]\npaths = ["{tmp_path}/gone"]\n')
    assert main(["run", "--config", str(config), "--state-dir", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("linnix: no rules found: the shipped rules are missing from this "
                          "installation of linnix (")
    assert err.endswith("; reinstall it, or pass --rules PATH or set [rules] paths in the "
                        "config\nrun 'linnix --help' for usage\n")


def test_tags_from_the_config_and_the_flags_are_merged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rules = tmp_path / "a.lnx"
    rules.write_text("rule a: cpu_pct > 90\n")
    config = tmp_path / "linnix.toml"
    config.write_text('[rules]\nenabled_tags = ["network"]\ndisabled_tags = ["noisy"]\n')
    opts = _run_options(monkeypatch, "--config", str(config), "--rules", str(rules),
                        "--state-dir", str(tmp_path / "s"), "--enable-tag", "experimental",
                        "--disable-tag", "slow")
    assert opts.enabled_tags == {"network", "experimental"}
    assert opts.disabled_tags == {"noisy", "slow"}

"""``linnix.shipped``: the shipped rules in an installed package, else in the checkout."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import ROOT, RULES

from linnix import shipped
from linnix.errors import LinnixError


def lnx(directory: Path) -> Path:
    directory.mkdir(parents=True)
    (directory / "a.lnx").write_text("rule a: cpu_pct > 90\n")
    return directory


def test_from_the_checkout_the_rules_are_its_rules_dir() -> None:
    assert Path(shipped.rules_dir()) == RULES
    assert Path(shipped.PACKAGE) == ROOT / "linnix"


def test_an_installed_package_uses_its_package_data(tmp_path: Path) -> None:
    package = tmp_path / "site-packages" / "linnix"
    data = lnx(package / "data" / "rules")
    assert shipped.rules_dir(str(package)) == str(data)


def test_the_package_data_comes_before_a_checkout(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    lnx(tmp_path / "rules")
    data = lnx(tmp_path / "linnix" / "data" / "rules")
    assert shipped.rules_dir(str(tmp_path / "linnix")) == str(data)


def test_a_checkout_is_a_rules_dir_beside_pyproject(tmp_path: Path) -> None:
    rules = lnx(tmp_path / "rules")
    (tmp_path / "linnix").mkdir()
    with pytest.raises(LinnixError):  # site-packages/rules: some other distribution's
        shipped.rules_dir(str(tmp_path / "linnix"))
    (tmp_path / "pyproject.toml").write_text("")
    assert shipped.rules_dir(str(tmp_path / "linnix")) == str(rules)


@pytest.mark.parametrize("layout", [[], ["linnix/data/rules/README"], ["rules/x.jsonl"]])
def test_no_rules_says_where_it_looked(tmp_path: Path, layout: list[str]) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    for name in layout:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    package = tmp_path / "linnix"
    with pytest.raises(LinnixError) as err:
        shipped.rules_dir(str(package))
    assert str(err.value) == (
        f"the shipped rules are missing from this installation of linnix (neither "
        f"{package}/data/rules nor {tmp_path}/rules holds .lnx files); reinstall it")

"""The built wheel works on its own: the grammar ships inside it and `check` runs.

Builds the wheel with pip (with build isolation unless the build backend is
already importable), installs it into a private directory with ``--target``,
and runs ``python -m linnix check`` on a copy of the shipped rules from another
working directory, with only that directory on the import path.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from support import ROOT


def _run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=300,  # noqa: PLW1510
                          **kwargs)  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    argv = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", str(ROOT), "-w",
            str(out)]
    if importlib.util.find_spec("hatchling") is not None:
        argv.insert(4, "--no-build-isolation")
    done = _run(argv, cwd=out)
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = out.glob("linnix-*.whl")
    return built


def test_wheel_ships_the_grammar(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert "linnix/language/linnix.lark" in names
        shipped = zf.read("linnix/language/linnix.lark")
        assert shipped == (ROOT / "grammar" / "linnix.lark").read_bytes()
        assert "linnix/py.typed" in names
        assert not any(name.startswith("tests/") for name in names)


def test_installed_wheel_checks_the_rules(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    done = _run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet",
                 "--target", str(site), str(wheel)])
    assert done.returncode == 0, done.stdout + done.stderr
    assert (site / "linnix" / "language" / "linnix.lark").is_file()

    # a copy of the rules, with the traces their tests name, somewhere else
    project = tmp_path / "project"
    shutil.copytree(ROOT / "rules", project / "rules")
    (project / "fixtures").mkdir()
    for trace in (ROOT / "fixtures").glob("*.jsonl"):
        shutil.copy(trace, project / "fixtures" / trace.name)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()

    env = {**os.environ, "PYTHONPATH": str(site), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("LINNIX_DEBUG", None)
    where = _run([sys.executable, "-c", "import linnix; print(linnix.__file__)"],
                 cwd=elsewhere, env=env)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(site)

    done = _run([sys.executable, "-m", "linnix", "check", str(project / "rules")],
                cwd=elsewhere, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("ok: ")
    assert "(0 errors, 0 warnings)" in done.stdout
    assert any((tmp_path / "cache").glob("linnix-grammar-*.cache"))  # built from the wheel

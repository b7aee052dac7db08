"""The built wheel works on its own: installed into a fresh virtualenv, nothing of the checkout.

Builds the wheel with pip (with build isolation unless the build backend is already
importable) and reads what it holds: the grammar, and the shipped rules with exactly the
traces their test blocks name (packaging/hatch_build.py), nothing else of the checkout.
Then, slow: a fresh virtualenv that sees the system's site-packages (the distribution's
BCC bindings, as scripts/install.sh makes /opt/linnix), the wheel installed into it by pip
with its dependencies, and that virtualenv's ``linnix`` run from a directory outside the
checkout with no PYTHONPATH: ``check`` with no path, ``rules path``, ``replay`` of a shipped
trace with the shipped rules (the checkout's golden output), ``doctor`` (what the
checkout's says) and ``run`` with no rules of its own.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from support import ROOT, RULES, without_speed

DATA = "linnix/data"
TRACE = "fork_storm.jsonl"  # replayed from the installed copy; fixtures/golden has its output


def _run(argv: list[str | Path], *, cwd: Path, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=600,
                          cwd=cwd, env=env, check=False)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    argv: list[str | Path] = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                              ROOT, "-w", out]
    if importlib.util.find_spec("hatchling") is not None:
        argv.insert(4, "--no-build-isolation")
    done = _run(argv, cwd=out)
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = out.glob("linnix-*.whl")
    return built


def named_traces() -> set[str]:
    """The traces the shipped rules' test blocks name, as linnix itself reads them."""
    from linnix.language.pipeline import build

    tests = build([str(RULES)]).tests
    assert tests
    traces = {Path(test.trace) for test in tests}
    assert {trace.parent for trace in traces} == {ROOT / "fixtures"}
    return {trace.name for trace in traces}


def test_wheel_ships_the_grammar_and_the_shipped_rules_only(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert zf.read("linnix/language/linnix.lark") == \
            (ROOT / "grammar" / "linnix.lark").read_bytes()
        assert "linnix/py.typed" in names
        data = {name.removeprefix(f"{DATA}/") for name in names if name.startswith(DATA)}
        rules = {f"rules/{p.name}" for p in RULES.glob("*.lnx")}
        assert data == rules | {f"fixtures/{name}" for name in named_traces()}
        for name in data:
            assert zf.read(f"{DATA}/{name}") == (ROOT / name).read_bytes()
    assert not any(name.startswith(("tests/", "fixtures/", "rules/")) for name in names)


def test_wheel_ships_the_dashboard(wheel: Path) -> None:
    """Templates, static files and the vendored libraries with their licences."""
    ui = ROOT / "linnix" / "ui"
    files = sorted(p for folder in ("templates", "static") for p in (ui / folder).rglob("*")
                   if p.is_file())
    assert any(p.name == "MANIFEST.json" for p in files)
    with zipfile.ZipFile(wheel) as zf:
        for path in files:
            assert zf.read(path.relative_to(ROOT).as_posix()) == path.read_bytes(), path


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel (and its dependencies, through pip) installed."""
    where = tmp_path_factory.mktemp("venv") / "venv"
    done = _run([sys.executable, "-m", "venv", "--system-site-packages", where],
                cwd=where.parent)
    assert done.returncode == 0, ("python -m venv failed (on Debian: apt-get install "
                                  "python3-venv, which scripts/setup.sh does as root)\n"
                                  + done.stdout + done.stderr)
    done = _run([where / "bin" / "python", "-m", "pip", "install", "--quiet", wheel],
                cwd=where.parent, env=_clean_env(os.environ))
    assert done.returncode == 0, done.stdout + done.stderr
    return where


def _clean_env(environ: os._Environ[str] | dict[str, str]) -> dict[str, str]:
    """The environment without what would point Python at the checkout's linnix."""
    env = dict(environ)
    for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "LINNIX_DEBUG"):
        env.pop(name, None)
    return env


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A working directory outside the checkout, with no rules/ of its own."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    return cwd


def linnix(venv: Path, cwd: Path, *argv: str | Path) -> subprocess.CompletedProcess[str]:
    """The virtualenv's ``linnix ARGV`` (its grammar cache in a directory of its own)."""
    env = {**_clean_env(os.environ), "XDG_CACHE_HOME": str(cwd.parent / "cache")}
    done = _run([venv / "bin" / "linnix", *argv], cwd=cwd, env=env)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def site_packages(venv: Path) -> Path:
    (site,) = (venv / "lib").glob("python3*/site-packages")
    return site


@pytest.mark.slow
def test_the_installed_linnix_is_the_wheel(venv: Path, elsewhere: Path) -> None:
    done = _run([venv / "bin" / "python", "-c", "import linnix; print(linnix.__file__)"],
                cwd=elsewhere, env=_clean_env(os.environ))
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).is_relative_to(site_packages(venv))


@pytest.mark.slow
def test_rules_path_is_the_package_data(venv: Path, elsewhere: Path) -> None:
    done = linnix(venv, elsewhere, "rules", "path")
    assert (done.returncode, done.stderr) == (0, "")
    shipped = Path(done.stdout.removesuffix("\n"))
    assert shipped == site_packages(venv) / DATA / "rules"
    assert sorted(p.name for p in shipped.glob("*.lnx")) == sorted(p.name for p in
                                                                     RULES.glob("*.lnx"))


@pytest.mark.slow
def test_check_without_a_path_checks_the_shipped_rules(venv: Path, elsewhere: Path) -> None:
    done = linnix(venv, elsewhere, "check")
    assert (done.returncode, done.stderr) == (0, "")
    mine = _run([sys.executable, "-m", "linnix", "check", RULES], cwd=ROOT)
    assert done.stdout == mine.stdout  # every file, rule and test; so every trace loaded
    assert re.fullmatch(r"ok: \d+ files, \d+ rules, \d+ tests \(0 errors, 0 warnings\)\n",
                        done.stdout), done.stdout
    assert any((elsewhere.parent / "cache").glob("linnix-grammar-*.cache"))  # from the wheel


@pytest.mark.slow
def test_replay_of_a_shipped_trace_gives_the_golden_output(venv: Path, elsewhere: Path) -> None:
    shipped = Path(linnix(venv, elsewhere, "rules", "path").stdout.removesuffix("\n"))
    done = linnix(venv, elsewhere, "replay", "--format", "jsonl", "--rules", shipped,
                  shipped.parent / "fixtures" / TRACE)
    assert done.returncode == 0, done.stderr
    golden = (ROOT / "fixtures" / "golden" / TRACE).read_text()
    assert '"state":"firing"' in golden
    assert without_speed(done.stdout.encode()) == golden.encode()


def _verdicts(stdout: str) -> list[str]:
    """``[ok  ] kernel`` ... : each check's mark and name, without its details."""
    return [line[:22] for line in stdout.splitlines() if line.startswith("[")]


@pytest.mark.slow
def test_doctor_says_what_the_checkout_says(venv: Path, elsewhere: Path) -> None:
    """0 when eBPF capture can work, 1 otherwise (docs: linnix doctor); BCC included, since
    the virtualenv sees the system's site-packages."""
    done = linnix(venv, elsewhere, "doctor")
    mine = _run([sys.executable, "-m", "linnix", "doctor"], cwd=ROOT)
    assert done.returncode in (0, 1), done.stderr
    assert done.stderr == ""
    assert _verdicts(done.stdout) != []
    assert (done.returncode, _verdicts(done.stdout)) == (mine.returncode, _verdicts(mine.stdout))
    verdict = ("looks ready" if done.returncode == 0 else "eBPF capture is not available")
    assert verdict in done.stdout


@pytest.mark.slow
def test_run_without_rules_of_its_own_uses_the_shipped_ones(venv: Path, elsewhere: Path) -> None:
    config = elsewhere / "linnix.toml"
    config.write_text(f'[rules]\npaths = ["{elsewhere}/none"]\n')
    done = linnix(venv, elsewhere, "run", "--config", config, "--state-dir", elsewhere / "state",
                  "--source", "poll", "--no-api", "--duration", "1s")
    assert done.returncode == 0, done.stderr
    from linnix.language.pipeline import build

    # the shipped rules that are on by default (the network ones are opt-in)
    active = len(build([str(RULES)]).require_plan().active)
    assert active == len(re.findall(r"^rule ", "".join(
        p.read_text() for p in RULES.glob("*.lnx")), re.M)) - 3
    assert f" with {active} rule(s) via poll " in done.stderr

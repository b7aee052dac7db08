"""``linnix check`` and ``linnix explain``, run in-process through ``linnix.cli.main``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support import RULES, write
from support import run_cli as run

Capture = pytest.CaptureFixture[str]


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ---- check -------------------------------------------------------------------------------


def test_check_shipped_rules_is_clean(capsys: Capture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(RULES.parent)
    status, out, err = run(capsys, "check", "rules/")
    files = len(list(RULES.glob("*.lnx")))
    rules = sum(len(re.findall(r"^rule ", f.read_text(), re.M)) for f in RULES.glob("*.lnx"))
    assert (status, err) == (0, "")
    assert re.fullmatch(rf"ok: {files} files, {rules} rules, \d+ tests? "
                        r"\(0 errors, 0 warnings\)\n", out), out


def test_check_without_a_path_checks_the_shipped_rules(capsys: Capture, in_tmp: Path) -> None:
    shipped = run(capsys, "check")
    assert shipped == run(capsys, "check", str(RULES))
    assert shipped[0] == 0 and shipped[1].startswith("ok: ")
    write(in_tmp, {"linnix.toml": "[runtime]\nmode = \"monitor\"\n"})
    assert run(capsys, "check", "--config", "linnix.toml") == (
        0, "ok: config linnix.toml (0 errors, 0 warnings)\n", "")  # the config alone


def test_rules_path_prints_the_shipped_rules_dir(capsys: Capture, in_tmp: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    assert run(capsys, "rules", "path") == (0, f"{RULES}\n", "")
    write(in_tmp, {"site/linnix/data/rules/a.lnx": "rule a: cpu_pct > 90\n"})
    monkeypatch.setattr("linnix.shipped.PACKAGE", str(in_tmp / "site" / "linnix"))
    assert run(capsys, "rules", "path") == (0, f"{in_tmp}/site/linnix/data/rules\n", "")
    monkeypatch.setattr("linnix.shipped.PACKAGE", str(in_tmp / "linnix"))
    status, out, err = run(capsys, "rules", "path")
    assert (status, out) == (1, "")
    assert err.startswith("linnix: the shipped rules are missing from this installation")
    assert run(capsys, "check")[0] == 1  # and check, with nothing to check, says so


@pytest.mark.parametrize("argv", [["rules"], ["rules", "where"], ["rules", "path", "x"]])
def test_rules_needs_its_verb(capsys: Capture, argv: list[str]) -> None:
    status, out, err = run(capsys, *argv)
    assert (status, out) == (2, "")
    assert err.startswith("linnix: ")


def test_check_reports_errors_and_exits_1(capsys: Capture, in_tmp: Path) -> None:
    write(in_tmp, {"bad.lnx": "rule r {\n    when subtre_cpu_pct > 50 for 5s\n}\n"})
    status, out, err = run(capsys, "check", "bad.lnx")
    assert status == 1
    assert err == (  # the diagnostics on stderr, the verdict on stdout
        "bad.lnx:2:10: error[E201]: unknown name 'subtre_cpu_pct' "
        "(did you mean 'subtree_cpu_pct'?)\n"
        "        when subtre_cpu_pct > 50 for 5s\n"
        "             ^^^^^^^^^^^^^^\n")
    assert out == "failed: 1 file (1 error, 0 warnings)\n"


def test_check_reports_every_error_of_every_file(capsys: Capture, in_tmp: Path) -> None:
    write(in_tmp, {"a.lnx": "rule a: nosuch > 1\nrule b: cpu_pct > 2s\n",
                   "sub/c.lnx": "rule c: @\n", "ok.lnx": "rule ok: cpu_pct > 1\n"})
    status, out, err = run(capsys, "check", ".")
    assert status == 1
    heads = [line.split(": ")[0:2] for line in err.splitlines() if "error[" in line]
    assert heads == [["a.lnx:1:9", "error[E201]"], ["a.lnx:2:9", "error[E301]"],
                     ["sub/c.lnx:1:9", "error[E101]"]]
    assert out == "failed: 3 files (3 errors, 0 warnings)\n"


def test_check_warnings_only_exits_0(capsys: Capture, in_tmp: Path) -> None:
    write(in_tmp, {"w.lnx": "let unused = 1\nrule r: cpu_pct > 1\n"})
    status, out, err = run(capsys, "check", "w.lnx")
    assert status == 0
    assert err.startswith("w.lnx:1:5: warning[W101]: let 'unused' is never used\n")
    assert out == "ok: 1 file, 1 rule, 0 tests (0 errors, 1 warning)\n"


def test_check_strict_turns_warnings_into_failure(capsys: Capture, in_tmp: Path) -> None:
    write(in_tmp, {"w.lnx": "let unused = 1\nrule r: cpu_pct > 1\n"})
    status, out, err = run(capsys, "check", "--strict", "w.lnx")
    assert status == 1 and "warning[W101]" in err
    assert out == "failed: 1 file, 1 rule, 0 tests (0 errors, 1 warning)\n"
    assert run(capsys, "check", "--strict", "--format", "json", "w.lnx")[0] == 1


@pytest.mark.parametrize("command", [["check"], ["check", "--strict"], ["test"],
                                     ["run", "--no-api", "--rules"],
                                     ["replay", "x.jsonl", "--rules"]])
def test_a_folder_without_rule_files_is_a_usage_error(capsys: Capture, in_tmp: Path,
                                                      command: list[str]) -> None:
    write(in_tmp, {"rules/README.txt": "no rules here", "rules/sub/x.jsonl": ""})
    status, out, err = run(capsys, *command, "rules")
    assert (status, out) == (2, "")
    assert err.startswith("linnix: rules: no .lnx file found in this directory\n")
    write(in_tmp, {"rules/sub/r.lnx": "rule r: cpu_pct > 1\n"})  # one, however deep
    assert run(capsys, "check", "rules")[0] == 0


def test_check_counts_tests(capsys: Capture, in_tmp: Path) -> None:
    write(in_tmp, {"t.lnx": 'rule r: cpu_pct > 1\ntest "a" { trace "t.jsonl"\n expect r never }\n'
                            'test "b" { trace "t.jsonl"\n expect r fires 1 time }\n',
                   "t.jsonl": ""})
    assert run(capsys, "check", "t.lnx")[1] == (
        "ok: 1 file, 1 rule, 2 tests (0 errors, 0 warnings)\n")


def test_check_json(capsys: Capture, in_tmp: Path) -> None:
    write(in_tmp, {"bad.lnx": "let unused = 1\nrule r: cpu_pct > 2s\n"})
    status, out, _ = run(capsys, "check", "--format", "json", "bad.lnx")
    assert status == 1
    assert json.loads(out) == [
        {"path": "bad.lnx", "line": 1, "col": 5, "end_line": 1, "end_col": 11,
         "level": "warning", "code": "W101", "message": "let 'unused' is never used",
         "hint": None},
        {"path": "bad.lnx", "line": 2, "col": 9, "end_line": 2, "end_col": 21,
         "level": "error", "code": "E301",
         "message": "unit mismatch: 'cpu_pct' is a percentage, '2s' is a duration in seconds",
         "hint": None}]
    write(in_tmp, {"good.lnx": "rule r: cpu_pct > 1\n"})
    assert run(capsys, "check", "--format", "json", "good.lnx") == (0, "[]\n", "")


def test_check_caps_the_number_of_diagnostics(capsys: Capture, in_tmp: Path) -> None:
    write(in_tmp, {"many.lnx": "".join(f"rule r{i}: nosuch{i} > 1\n" for i in range(5))})
    status, out, err = run(capsys, "check", "--max-errors", "2", "many.lnx")
    assert status == 1
    assert err.count("error[E201]") == 2
    assert "... and 3 more\n" in err
    assert out == "failed: 1 file (5 errors, 0 warnings)\n"


def test_check_default_cap_is_100(capsys: Capture, in_tmp: Path) -> None:
    write(in_tmp, {"many.lnx": "".join(f"rule r{i}: nosuch > 1\n" for i in range(105))})
    err = run(capsys, "check", "many.lnx")[2]
    assert err.count("error[E201]") == 100 and "... and 5 more\n" in err


@pytest.mark.parametrize("argv", [
    ["check", "nope.lnx"], ["check", "--max-errors", "x", "."],
    ["check", "--format", "xml", "."], ["frobnicate"], [],
])
def test_usage_errors_exit_2(capsys: Capture, in_tmp: Path, argv: list[str]) -> None:
    status, out, err = run(capsys, *argv)
    assert status == 2
    assert out == ""
    assert err  # says what is wrong (or prints the help)


def test_missing_path_message(capsys: Capture, in_tmp: Path) -> None:
    assert run(capsys, "check", "nope.lnx") == (
        2, "", "linnix: nope.lnx: no such file or directory\nrun 'linnix --help' for usage\n")


def test_version(capsys: Capture) -> None:
    from linnix import __version__

    assert run(capsys, "--version") == (0, f"linnix {__version__}\n", "")


def test_an_internal_error_is_reported_as_a_bug(capsys: Capture, in_tmp: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    write(in_tmp, {"r.lnx": "rule r: cpu_pct > 1\n"})

    def broken(paths: object) -> None:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr("linnix.language.pipeline.check_files", broken)
    monkeypatch.delenv("LINNIX_DEBUG", raising=False)
    status, _, err = run(capsys, "check", "r.lnx")
    assert status == 3
    assert err.startswith("linnix: internal error: ZeroDivisionError: boom\n")


def test_check_does_not_import_the_daemon_stack() -> None:
    code = ("import sys\n"
            "from linnix.cli import main\n"
            "status = main(['check', 'rules/'])\n"
            "heavy = {'trio', 'quart', 'quart_trio', 'hypercorn', 'bcc', 'prometheus_client'}\n"
            "print(status, sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=RULES.parent, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "0 []"


def test_constructs_fixture_is_clean(capsys: Capture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(RULES.parent)
    assert run(capsys, "check", "--strict", "fixtures/rules/good/") == (
        0, "ok: 2 files, 22 rules, 1 test (0 errors, 0 warnings)\n", "")


def test_constructs_fixture_reads_every_name_of_the_registry() -> None:
    from linnix.language.pipeline import build
    from linnix.names import METRICS

    p = build([str(RULES.parent / "fixtures" / "rules" / "good")]).plan
    assert p is not None
    assert p.metrics == frozenset(METRICS), "add new names to fixtures/rules/good/constructs.lnx"


# ---- explain -----------------------------------------------------------------------------


def test_explain_prints_the_plan(capsys: Capture, in_tmp: Path) -> None:
    write(in_tmp, {"r.lnx": 'rule hog {\n when avg(cpu_pct, 10s) > 90 for 30s\n'
                            ' unless comm == "sshd"\n action kill(grace = 10s)\n}\n'})
    status, out, _ = run(capsys, "explain", "r.lnx")
    assert status == 0
    assert "rule hog  (r.lnx:1)\n" in out
    assert '  when         avg(cpu_pct, 10s) > 90 and not (comm == "sshd")\n' in out
    assert "  scope        process  (inferred: reads cpu_pct)\n" in out
    assert "  for          30s\n" in out
    assert "  actions      kill(grace = 10s)\n" in out
    assert "  windows        cpu_pct over 10s\n" in out
    assert "  subtree pass   no\n" in out and "  fd sampling    no\n" in out


def test_explain_json_and_generated_code(capsys: Capture, in_tmp: Path) -> None:
    write(in_tmp, {"r.lnx": "rule a: subtree_fds > 1\n"
                            "rule b {\n when fds > 1\n enabled false\n}\n"})
    status, out, _ = run(capsys, "explain", "--format", "json", "r.lnx")
    assert status == 0
    data = json.loads(out)
    assert [(r["name"], r["enabled"], r["scope"]) for r in data["rules"]] == [
        ("a", True, "subtree"), ("b", False, "process")]
    assert data["requirements"]["subtree_pass"] is True
    assert data["requirements"]["fd_sampling"] is True
    assert data["requirements"]["windows"] == []
    status, out, _ = run(capsys, "explain", "--dump-code", "r.lnx")
    assert "# ---- generated code for r.lnx ----\n" in out
    assert "cond_a = lambda p, h, now:" in out


def test_explain_with_errors_prints_them_and_exits_1(capsys: Capture, in_tmp: Path) -> None:
    write(in_tmp, {"bad.lnx": "rule r: nosuch > 1\n"})
    status, out, err = run(capsys, "explain", "bad.lnx")
    assert (status, out) == (1, "")
    assert err.startswith("bad.lnx:1:9: error[E201]: unknown name 'nosuch'")


# ---- one output convention: results on stdout, diagnostics and errors on stderr -------------

GOOD = "rule r: cpu_pct > 50\n" \
       'test "quiet" {\n    trace "t.jsonl"\n    expect r never\n}\n'
BAD = "rule r: nosuch > 1\n"
TRACE = '{"ts":0,"kind":"proc","pid":1,"ppid":0,"comm":"init"}\n'

# command, what stdout holds (the result), what stderr holds (the diagnostics, the errors)
STREAMS = [
    (["check", "good.lnx"], "ok: 1 file, 1 rule, 1 test (0 errors, 0 warnings)\n", ""),
    (["check", "bad.lnx"], "failed: 1 file (1 error, 0 warnings)\n", "error[E201]"),
    (["check", "warn.lnx"], "ok: 1 file, 1 rule, 0 tests (0 errors, 1 warning)\n",
     "warning[W101]"),
    (["test", "good.lnx"], "PASS  quiet  (good.lnx:2)\n\n1 passed, 0 failed\n", ""),
    (["test", "bad.lnx"], "", "error[E201]"),
    (["test", "failing.lnx"], "FAIL  loud  (failing.lnx:2)\n      expected r to fire 1 "
                              "time(s); it fired 0\n\n0 passed, 1 failed\n", ""),
    (["explain", "bad.lnx"], "", "error[E201]"),
    (["fmt", "--check", "ugly.lnx"], "would reformat ugly.lnx\n",
     "fmt: 1 file would be reformatted, 0 files unchanged\n"),
    (["fmt", "--check", "broken.lnx"], "", "error[E101]"),
    (["replay", "--rules", "bad.lnx", "t.jsonl"], "", "error[E201]"),
    (["replay", "--rules", "good.lnx", "t.jsonl"], "(no alerts)\n", ""),
    (["replay", "--rules", "good.lnx", "nope.jsonl"], "", "linnix: nope.jsonl: cannot open"),
]


@pytest.mark.parametrize(("argv", "out", "err"), STREAMS, ids=lambda v: " ".join(v)
                         if isinstance(v, list) else "")
def test_results_go_to_stdout_and_diagnostics_to_stderr(capsys: Capture, in_tmp: Path,
                                                       argv: list[str], out: str,
                                                       err: str) -> None:
    write(in_tmp, {"good.lnx": GOOD, "bad.lnx": BAD, "t.jsonl": TRACE,
                   "warn.lnx": "let unused = 1\nrule r: cpu_pct > 1\n",
                   "failing.lnx": 'rule r: cpu_pct > 50\ntest "loud" {\n    trace "t.jsonl"\n'
                                  "    expect r fires 1 times\n}\n",
                   "ugly.lnx": "rule   r:   cpu_pct>50\n", "broken.lnx": "rule r: @\n"})
    _, got_out, got_err = run(capsys, *argv)
    assert got_out.startswith(out), got_out
    if not out:
        assert got_out == ""
    assert err in got_err if err else got_err == ""
    assert "error[" not in got_out and "warning[" not in got_out

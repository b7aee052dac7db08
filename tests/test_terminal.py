"""What a process controls reaches the terminal as data, and never stops the output."""

from __future__ import annotations

import io
import json
from pathlib import Path

from support import run_linnix

from linnix.engine.evaluator import Alert
from linnix.runtime.daemon import Daemon, DaemonOptions
from linnix.runtime.live import AlertLog
from linnix.terminal import printable, printable_lines, write_safely

FORGED = "\x1b[1A\x1b[2Kfine\u202egnp.exe\x9b2J\r"


def alert(comm: str, message: str) -> Alert:
    return Alert(ts=1.0, rule="r", state="firing", severity="warning", scope="process",
                 pid=42, comm=comm, start=0.0, message=message, labels={}, values={})


def test_control_and_format_characters_become_escapes() -> None:
    assert printable(FORGED) == "\\x1b[1A\\x1b[2Kfine\\u202egnp.exe\\x9b2J\\x0d"
    assert printable("caf\u00e9 \u65e5\u672c \U0001f600 tab\there") == (
        "caf\u00e9 \u65e5\u672c \U0001f600 tab\\x09here")
    assert printable("line\nnext\u2028") == "line\\x0anext\\u2028"
    assert printable("\udc80\U000e0001") == "\\udc80\\U000e0001"
    assert printable_lines("a\x1b\nb") == ["a\\x1b", "b"]


def test_an_ascii_stream_gets_escapes_instead_of_an_error() -> None:
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="ascii")
    write_safely(out, "caf\u00e9\n")
    out.flush()
    assert raw.getvalue() == b"caf\\xe9\n"


def test_the_alert_log_shows_a_forged_name_as_data() -> None:
    out = io.StringIO()
    AlertLog(out)([alert(FORGED, f"{FORGED} is busy\nFIRING fake")])
    text = out.getvalue()
    assert text.count("\n") == 1 and "\x1b" not in text and "\u202e" not in text
    assert "\\x1b[1A\\x1b[2Kfine\\u202egnp.exe" in text and "\\x0aFIRING fake" in text


def test_the_alert_log_keeps_writing_after_a_character_the_terminal_lacks() -> None:
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="latin-1")
    log = AlertLog(out)
    log([alert("\u65e5\u672c", "first")])
    log([alert("python3", "second")])
    text = raw.getvalue().decode("latin-1")
    assert "\\u65e5\\u672c[42]: first" in text and "python3[42]: second" in text
    assert log.out is out


class _Failing(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError(28, "No space left on device")


def test_the_daemon_survives_its_stderr_failing(tmp_path: Path) -> None:
    daemon = Daemon(DaemonOptions(rules=[], state_dir=str(tmp_path)), err=_Failing())
    daemon.say("reloaded")  # no exception: the log is best-effort
    daemon.say("and again")
    assert daemon.err is None


def test_daemon_messages_show_each_line_as_data(tmp_path: Path) -> None:
    err = io.StringIO()
    Daemon(DaemonOptions(rules=[], state_dir=str(tmp_path)), err=err).say(
        f"action on {FORGED}[7] failed\nsecond line")
    assert err.getvalue() == ("linnix: action on \\x1b[1A\\x1b[2Kfine\\u202egnp.exe\\x9b2J"
                              "\\x0d[7] failed\nlinnix: second line\n")


def busy_trace(tmp_path: Path, comm: str) -> tuple[str, str]:
    """A trace in which a process named ``comm`` is busy, and a rule that fires on it."""
    trace = tmp_path / "t.jsonl"
    rules = tmp_path / "r.lnx"
    rules.write_text("rule busy: cpu_pct > 50\n")
    lines = [{"kind": "header", "version": 1, "ncpu": 2},
             {"kind": "fork", "ts": 0.0, "pid": 10, "ppid": 1, "comm": comm},
             {"kind": "sample", "ts": 1.0, "pid": 10, "cpu_pct": 90.0},
             {"kind": "lost", "ts": 2.0, "count": 0}]
    trace.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return str(trace), str(rules)


def test_replay_shows_a_forged_name_as_data(tmp_path: Path) -> None:
    trace, rules = busy_trace(tmp_path, FORGED)
    result = run_linnix("replay", trace, "--rules", rules)
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\\x1b[1A\\x1b[2Kfine" in result.stdout


def test_a_terminal_without_unicode_never_stops_the_output(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    trace, rules = busy_trace(tmp_path, "\u65e5\u672c")
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    result = subprocess.run([sys.executable, "-m", "linnix", "replay", trace, "--rules", rules],
                            capture_output=True, env=env, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    assert b"\\u65e5\\u672c[10]" in result.stdout and b"1 firing" in result.stdout

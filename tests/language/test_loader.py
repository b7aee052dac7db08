"""Loading files: discovery, includes (relative, once, cycles), unreadable and odd files."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest
from support import RULES, run_linnix, write

from linnix.errors import UsageError
from linnix.language import loader
from linnix.language.pipeline import build, build_program


def codes_of(program: loader.Program) -> list[str]:
    return [d.code for d in program.diagnostics]


def test_discover_expands_directories_recursively_and_sorted(tmp_path: Path) -> None:
    write(tmp_path, {"b.lnx": "", "a.lnx": "", "sub/c.lnx": "", "sub/notes.txt": "",
                     "a_dir/z.lnx": ""})
    found = loader.discover([str(tmp_path)])
    rel = [os.path.relpath(p, tmp_path) for p in found]
    assert rel == ["a.lnx", "b.lnx", "a_dir/z.lnx", "sub/c.lnx"]


def test_discover_takes_files_whatever_their_suffix(tmp_path: Path) -> None:
    write(tmp_path, {"rules.txt": "rule r: cpu_pct > 1"})
    assert loader.discover([str(tmp_path / "rules.txt")]) == [str(tmp_path / "rules.txt")]


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file or directory"):
        loader.load([str(tmp_path / "nope.lnx")])


def test_include_is_relative_to_the_including_file(tmp_path: Path) -> None:
    write(tmp_path, {
        "main.lnx": 'include "lib/defs.lnx"\nrule r: comm in protected\n',
        "lib/defs.lnx": 'include "more.lnx"\nlet protected = ["sshd"]\n',
        "lib/more.lnx": "let unused_here = 1\n",
    })
    result = build([str(tmp_path / "main.lnx")])
    assert result.errors == []
    keys = list(result.program.modules)
    assert [os.path.relpath(k, tmp_path) for k in keys] == [
        "main.lnx", "lib/defs.lnx", "lib/more.lnx"]
    main = keys[0]
    assert result.program.visible(main) == keys


def test_a_file_is_loaded_once_however_often_it_is_named(tmp_path: Path) -> None:
    write(tmp_path, {
        "a.lnx": 'include "common.lnx"\nrule a: comm in protected\n',
        "b.lnx": 'include "common.lnx"\ninclude "./common.lnx"\nrule b: comm in protected\n',
        "common.lnx": 'let protected = ["x"]\n',
    })
    d = str(tmp_path)
    program = loader.load([d, os.path.join(d, "common.lnx"), os.path.join(d, "a.lnx")])
    assert len(program.modules) == 3
    assert len(program.roots) == 3
    # one definition of 'protected', though it is visible through two includes
    assert build_program(program).diagnostics == []


def test_e110_missing_include(tmp_path: Path) -> None:
    write(tmp_path, {"main.lnx": 'include "nope.lnx"\nrule r: cpu_pct > 1\n'})
    program = loader.load([str(tmp_path / "main.lnx")])
    (d,) = program.diagnostics
    assert (d.code, d.message) == ("E110", "cannot include 'nope.lnx': no such file")
    assert d.span.text == '"nope.lnx"'


def test_e110_include_of_a_directory(tmp_path: Path) -> None:
    write(tmp_path, {"main.lnx": 'include "sub"\n', "sub/x.lnx": ""})
    (d,) = loader.load([str(tmp_path / "main.lnx")]).diagnostics
    assert (d.code, d.message) == ("E110", "cannot include 'sub': is a directory")


def test_e110_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, {"main.lnx": "rule r: cpu_pct > 1\n"})
    real_open = open

    def failing_open(path: object, *args: object, **kwargs: object) -> object:
        if str(path).endswith("main.lnx"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr("builtins.open", failing_open)
    program = loader.load([str(tmp_path / "main.lnx")])
    (d,) = program.diagnostics
    assert d.code == "E110"
    assert d.message.endswith("main.lnx': Permission denied")
    assert program.broken == {str(tmp_path / "main.lnx")}


def test_e111_include_cycle(tmp_path: Path) -> None:
    write(tmp_path, {
        "a.lnx": 'include "b.lnx"\nrule a: cpu_pct > 1\n',
        "b.lnx": 'include "a.lnx"\nrule b: cpu_pct > 2\n',
    })
    result = build([str(tmp_path / "a.lnx")])
    (d,) = result.diagnostics
    a, b = str(tmp_path / "a.lnx"), str(tmp_path / "b.lnx")
    assert d.code == "E111"
    assert d.message == f"include cycle: {a} -> {b} -> {a}"
    assert d.span.path == a and d.span.text == '"b.lnx"'


def test_e111_file_including_itself(tmp_path: Path) -> None:
    write(tmp_path, {"self.lnx": 'include "self.lnx"\n'})
    (d,) = loader.load([str(tmp_path / "self.lnx")]).diagnostics
    assert d.code == "E111"


def test_e112_not_utf8(tmp_path: Path) -> None:
    write(tmp_path, {"bin.lnx": b"rule r: cpu_pct > 1\nrule s: \xff\xfe > 1\n"})
    program = loader.load([str(tmp_path / "bin.lnx")])
    (d,) = program.diagnostics
    assert (d.code, d.message) == ("E112", "not UTF-8 text (byte 0xff cannot be decoded)")
    assert (d.span.line, d.span.col) == (2, 9)
    assert str(tmp_path / "bin.lnx") in program.broken


def test_a_byte_order_mark_is_ignored(tmp_path: Path) -> None:
    write(tmp_path, {"bom.lnx": b"\xef\xbb\xbfrule r: cpu_pct > 1\nrule s: nosuch > 1\n"})
    result = build([str(tmp_path / "bom.lnx")])
    (d,) = result.diagnostics  # only the real mistake, at its true column
    assert (d.code, d.span.line, d.span.col) == ("E201", 2, 9)
    assert loader.read_text(str(tmp_path / "bom.lnx"))[0] == \
        "rule r: cpu_pct > 1\nrule s: nosuch > 1\n"


def test_a_byte_order_mark_inside_the_text_is_still_an_error(tmp_path: Path) -> None:
    write(tmp_path, {"bom.lnx": "rule r: cpu_pct > 1\n\ufeffrule s: fds > 1\n".encode()})
    (d,) = build([str(tmp_path / "bom.lnx")]).diagnostics
    assert (d.code, d.span.line) == ("E101", 2)


def test_e112_included_binary_file_is_reported_and_dependents_skipped(tmp_path: Path) -> None:
    write(tmp_path, {"main.lnx": 'include "bin.lnx"\nrule r: nosuch > 1\n',
                     "bin.lnx": b"\x00\x80\x81"})
    result = build([str(tmp_path / "main.lnx")])
    # main.lnx depends on a broken file: its unknown name is not reported on top
    assert [d.code for d in result.diagnostics] == ["E112"]
    assert result.plan is None


def test_e113_file_too_large(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "MAX_FILE_BYTES", 10)
    write(tmp_path, {"big.lnx": "rule r: cpu_pct > 1\n"})
    (d,) = loader.load([str(tmp_path / "big.lnx")]).diagnostics
    assert (d.code, d.message) == ("E113", "file too large (20 bytes; the limit is 10)")


def test_syntax_error_in_an_included_file_skips_its_dependents(tmp_path: Path) -> None:
    write(tmp_path, {"main.lnx": 'include "bad.lnx"\nrule r: nosuch > 1\n',
                     "bad.lnx": "let = 1\n",
                     "other.lnx": "rule o: alsonosuch > 1\n"})
    result = build([str(tmp_path)])
    assert [(d.code, os.path.basename(d.span.path)) for d in result.diagnostics] == [
        ("E100", "bad.lnx"), ("E201", "other.lnx")]


def test_load_text_resolves_includes_relative_to_its_path() -> None:
    program = loader.load_text('include "common.lnx"\nrule r: comm in protected\n',
                               str(RULES / "mine.lnx"))
    assert program.diagnostics == []
    assert os.path.normpath(str(RULES / "common.lnx")) in program.modules
    assert build_program(program).plan is not None


def test_every_shipped_rule_file_loads_and_builds() -> None:
    result = build([str(RULES)])
    assert result.diagnostics == []
    assert result.plan is not None
    names = [m for f in sorted(RULES.glob("*.lnx"))
             for m in re.findall(r"^rule (\w+)", f.read_text(), re.M)]
    assert names and [r.name for r in result.plan.rules] == names


# ---- files that are not regular files --------------------------------------------------------

def test_a_fifo_in_the_rules_folder_is_refused_not_waited_on(tmp_path: Path) -> None:
    write(tmp_path, {"a.lnx": "rule a: cpu_pct > 1\n"})
    os.mkfifo(tmp_path / "fifo.lnx")  # nobody writes to it: reading it would wait forever
    result = build([str(tmp_path)])
    (d,) = result.diagnostics
    fifo = str(tmp_path / "fifo.lnx")
    assert (d.code, d.message) == ("E110", f"cannot read '{fifo}': not a regular file")
    assert d.span.path == fifo
    assert result.plan is None


def test_a_fifo_named_directly_or_included_is_refused(tmp_path: Path) -> None:
    write(tmp_path, {"main.lnx": 'include "pipe.lnx"\nrule r: cpu_pct > 1\n'})
    os.mkfifo(tmp_path / "pipe.lnx")
    (d,) = loader.load([str(tmp_path / "pipe.lnx")]).diagnostics
    assert d.message.endswith("pipe.lnx': not a regular file")
    (d,) = loader.load([str(tmp_path / "main.lnx")]).diagnostics
    assert d.code == "E110" and d.message.endswith("pipe.lnx': not a regular file")
    assert d.span.text == '"pipe.lnx"'  # reported where it is included


def test_a_link_to_a_device_is_refused_not_read(tmp_path: Path) -> None:
    (tmp_path / "zero.lnx").symlink_to("/dev/zero")  # reading it would never end
    (d,) = loader.load([str(tmp_path)]).diagnostics
    assert d.message == f"cannot read '{tmp_path / 'zero.lnx'}': not a regular file"


def test_a_path_swapped_for_a_fifo_after_the_check_is_opened_without_waiting(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fifo = tmp_path / "swapped.lnx"
    os.mkfifo(fifo)
    regular = os.stat(__file__)
    real_stat = os.stat
    # the check before opening sees a regular file, as if the path changed just after it
    monkeypatch.setattr(loader.os, "stat", lambda p, *a, **k: regular if str(p) == str(fifo)
                        else real_stat(p, *a, **k))
    found: list[object] = []
    reader = threading.Thread(target=lambda: found.append(loader.read_text(str(fifo))))
    reader.start()
    reader.join(30)
    if reader.is_alive():  # blocked in open(): a writer lets it go, so the test ends
        os.close(os.open(fifo, os.O_WRONLY))
        reader.join()
        pytest.fail("opening the FIFO waited for a writer")
    ((text, d),) = found  # type: ignore[misc]
    assert text is None and d.message.endswith("swapped.lnx': not a regular file")


def test_a_file_that_grows_past_the_limit_while_read_is_cut(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "MAX_FILE_BYTES", 10)
    write(tmp_path, {"big.lnx": "rule r: cpu_pct > 1\n"})
    real_fstat = os.fstat

    def small_at_first(fd: int) -> os.stat_result:  # the size fstat saw before it grew
        st = real_fstat(fd)
        return os.stat_result((st.st_mode, *st[1:6], 5, *st[7:]))

    monkeypatch.setattr(loader.os, "fstat", small_at_first)
    text, d = loader.read_text(str(tmp_path / "big.lnx"))
    assert text is None and d is not None
    assert (d.code, d.message) == (
        "E113", "file too large (it grew past the limit of 10 bytes while it was read)")


def test_check_reports_a_fifo_in_the_rules_folder_and_ends(tmp_path: Path) -> None:
    write(tmp_path, {"a.lnx": "rule a: cpu_pct > 1\n"})
    os.mkfifo(tmp_path / "fifo.lnx")
    proc = run_linnix("check", str(tmp_path), timeout=30)
    assert proc.returncode == 1
    assert f"{tmp_path / 'fifo.lnx'}:1:1: error[E110]: cannot read " in proc.stderr + proc.stdout
    assert "not a regular file" in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr


# ---- recovery from syntax errors ------------------------------------------------------------


def test_a_file_with_syntax_errors_keeps_the_declarations_that_parse(tmp_path: Path) -> None:
    write(tmp_path, {"m.lnx": "rule a: @\nlet limit = 5\nrule b: cpu_pct > limit\n"
                              "rule c {\n when cpu_pct >\n}\nrule d: nosuch > 1\n"})
    program = loader.load([str(tmp_path / "m.lnx")])
    key = str(tmp_path / "m.lnx")
    assert [d.code for d in program.diagnostics] == ["E101", "E100"]
    assert [getattr(d, "name", None) for d in program.modules[key].decls] == [
        "limit", "b", "d"]
    assert program.lost[key] == frozenset({"a", "c"})
    assert not program.depends_on_broken(key)
    result = build([key])
    assert [(d.code, d.span.line) for d in result.diagnostics] == [
        ("E101", 1), ("E100", 6), ("E201", 7)]
    assert result.plan is None


def test_names_lost_to_a_syntax_error_are_not_reported(tmp_path: Path) -> None:
    write(tmp_path, {"m.lnx": "macro busy = cpu_pct > 90 &&\nlet unused = 1\n"
                              'rule a: busy\ntest "t" {\n trace "t.jsonl"\n expect lost never\n}\n'
                              "rule lost: cpu_pct >\n",
                     "t.jsonl": ""})
    result = build([str(tmp_path / "m.lnx")])
    # neither 'busy' nor 'lost' is unknown, and 'unused' may be used by what was lost
    assert [d.code for d in result.diagnostics] == ["E108", "E100"]


def test_a_name_not_lost_is_still_unknown(tmp_path: Path) -> None:
    write(tmp_path, {"m.lnx": "macro busy = &&\nrule a: busi\n"})
    result = build([str(tmp_path / "m.lnx")])
    assert [d.code for d in result.diagnostics] == ["E108", "E201"]


def test_a_file_including_one_with_syntax_errors_is_not_checked(tmp_path: Path) -> None:
    write(tmp_path, {"main.lnx": 'include "bad.lnx"\nrule r: nosuch > 1\n',
                     "bad.lnx": "let = 1\nrule b: alsonosuch > 1\n"})
    result = build([str(tmp_path / "main.lnx")])
    assert [(d.code, os.path.basename(d.span.path)) for d in result.diagnostics] == [
        ("E100", "bad.lnx"), ("E201", "bad.lnx")]


def test_after_too_many_syntax_errors_nothing_is_checked(tmp_path: Path) -> None:
    from linnix.language.grammar import MAX_SYNTAX_ERRORS

    write(tmp_path, {"m.lnx": "rule r: @\n" * MAX_SYNTAX_ERRORS + "rule s: nosuch > 1\n"})
    program = loader.load([str(tmp_path / "m.lnx")])
    assert len(program.diagnostics) == MAX_SYNTAX_ERRORS
    assert program.modules == {} and program.lost == {}

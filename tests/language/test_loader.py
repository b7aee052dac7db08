"""Loading files: discovery, includes (relative, once, cycles), unreadable and odd files."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from support import RULES, write

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

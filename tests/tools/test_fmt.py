"""``linnix fmt``: canonical layout, comments kept, meaning unchanged, and the command."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from support import ROOT

from linnix.cli import main
from linnix.errors import LinnixError, RuleError, RuleSyntaxError
from linnix.language.builder import build
from linnix.language.grammar import parse
from linnix.language.nodes import Module
from linnix.language.source import SourceFile
from linnix.tools import fmt
from linnix.tools.fmt import find_comments, format_text

CORPUS = sorted([*ROOT.glob("rules/**/*.lnx"), *ROOT.glob("fixtures/rules/**/*.lnx")])


def tree(text: str, path: str = "x.lnx") -> Module:
    source = SourceFile(path, text)
    module, problems = build(source, parse(source))
    if problems:  # E103-E105: fmt refuses such a file as it does a syntax error
        raise RuleSyntaxError(problems)
    return module


def comment_texts(text: str) -> list[str]:
    return [c.text for c in find_comments(text)]


def outside_strings(text: str) -> list[bool]:
    """For each character: True when it is not inside a string literal."""
    flags, in_string, escaped = [], False, False
    for ch in text:
        flags.append(not in_string and ch != '"')
        if in_string and escaped:
            escaped = False
        elif in_string and ch == "\\":
            escaped = True
        elif ch == '"':
            in_string = not in_string
    return flags


def strip_comments(text: str) -> str:
    out = text
    for c in reversed(find_comments(text)):
        end = text.find("\n", c.start)
        out = out[: c.start] + out[end if end >= 0 else len(text):]
    return out


def respace(text: str, gap: str) -> str:
    """Replace every blank outside strings (and every line break) by ``gap``."""
    flags = outside_strings(text)
    return "".join(gap if ch in " \n" and ok else ch for ch, ok in zip(text, flags, strict=True))


# ---- properties over every rule file of the project -------------------------------

def _ids(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.fixture(params=CORPUS, ids=_ids)
def corpus_file(request: pytest.FixtureRequest) -> tuple[str, str]:
    path: Path = request.param
    return str(path.relative_to(ROOT)), path.read_text(encoding="utf-8")


def test_the_corpus_is_not_empty() -> None:
    assert any(p.parent.name == "rules" for p in CORPUS)


def test_formatting_is_idempotent_and_keeps_meaning_and_comments(
        corpus_file: tuple[str, str]) -> None:
    path, text = corpus_file
    try:
        original = tree(text, path)
    except RuleError:
        with pytest.raises(RuleSyntaxError):
            format_text(text, path)
        return
    once = format_text(text, path)
    assert format_text(once, path) == once
    assert tree(once, path) == original
    assert comment_texts(once) == comment_texts(text)


def lines_of(text: str) -> list[str]:
    return [line for line in text.split("\n") if line]


@pytest.mark.parametrize("gap", [" ", "\n\t  ", "  \n\n"], ids=["one-line", "ragged", "sparse"])
def test_layout_of_the_input_does_not_matter(corpus_file: tuple[str, str], gap: str) -> None:
    """Only blank lines (kept, at most one in a row) survive from the input's layout."""
    path, text = corpus_file
    bare = strip_comments(text)
    try:
        expected = format_text(bare, path)
    except RuleError:
        return
    got = format_text(respace(bare, gap), path)
    assert lines_of(got) == lines_of(expected)
    assert "\n\n\n" not in got
    assert format_text(got, path) == got


# ---- the layout ---------------------------------------------------------------------

def test_block_rules_one_clause_per_line_indented_by_four() -> None:
    text = ('rule   spike{description "x" when subtree_cpu_pct>50 for 5s unless comm in'
            '["a","b"]severity warning cooldown 30s labels{team="p",tier="1",}tags["a",]'
            ' message "{comm}" action kill( grace=10s,signal=SIGKILL ) action signal(SIGSTOP)'
            ' mode monitor enabled true keep_firing_for 1m clear when subtree_cpu_pct<10 for 2s'
            ' scope subtree}')
    assert format_text(text) == (
        "rule spike {\n"
        '    description "x"\n'
        "    when subtree_cpu_pct > 50 for 5s\n"
        '    unless comm in ["a", "b"]\n'
        "    severity warning\n"
        "    cooldown 30s\n"
        '    labels { team = "p", tier = "1" }\n'
        '    tags ["a"]\n'
        '    message "{comm}"\n'
        "    action kill(grace = 10s, signal = SIGKILL)\n"
        "    action signal(SIGSTOP)\n"
        "    mode monitor\n"
        "    enabled true\n"
        "    keep_firing_for 1m\n"
        "    clear when subtree_cpu_pct < 10 for 2s\n"
        "    scope subtree\n"
        "}\n")


def test_one_line_rules_and_declarations_keep_their_form() -> None:
    text = ('include   "common.lnx"\nlet  x=[ 1 ,2 ]\nmacro m=cpu_pct>5 and(rss_mb>1 or fds>2)\n'
            "rule a : m   for 5s\nrule b:not(cpu_pct>5)\n")
    assert format_text(text) == (
        'include "common.lnx"\n'
        "let x = [1, 2]\n"
        "macro m = cpu_pct > 5 and (rss_mb > 1 or fds > 2)\n"
        "rule a: m for 5s\n"
        "rule b: not (cpu_pct > 5)\n")


def test_event_rules_are_printed_back_in_both_forms() -> None:
    text = ('rule a  on   exec :exe startswith"/tmp/"\n'
            "rule b{on exit when crashed cooldown 5m by exe,uid max_rate 100/m}")
    assert format_text(text) == (
        'rule a on exec: exe startswith "/tmp/"\n'
        "\n"
        "rule b {\n"
        "    on exit\n"
        "    when crashed\n"
        "    cooldown 5m by exe, uid\n"
        "    max_rate 100/m\n"
        "}\n")


def test_network_rules_and_address_operators_are_printed_back() -> None:
    text = ('rule a on connect:remote_addr in_cidr"10.0.0.0/8"and not(remote_addr is_private)\n'
            "rule b{on listen when local_port==22}")
    assert format_text(text) == (
        'rule a on connect: remote_addr in_cidr "10.0.0.0/8" and not (remote_addr is_private)\n'
        "\n"
        "rule b {\n"
        "    on listen\n"
        "    when local_port == 22\n"
        "}\n")


def test_expressions_get_canonical_spacing_and_only_needed_parentheses() -> None:
    text = "rule r: ((a+b)*c-(d-e)) > -(x) and (y or z) and not q and f(m,10s)<=-2\n"
    assert format_text(text) == (
        "rule r: (a + b) * c - (d - e) > -x and (y or z) and not q and f(m, 10s) <= -2\n")


def test_boundary_is_printed_back_in_place() -> None:
    text = ('rule r{when subtree_cpu_pct>90 unless comm in["bash"]\n'
            'boundary comm in ["bash","tmux: server"]  # shells stop it\n'
            'boundary   uid==0 action kill_tree}')
    assert format_text(text) == (
        "rule r {\n"
        '    when subtree_cpu_pct > 90\n'
        '    unless comm in ["bash"]\n'
        '    boundary comm in ["bash", "tmux: server"]  # shells stop it\n'
        "    boundary uid == 0\n"
        "    action kill_tree\n"
        "}\n")


def test_top_unless_is_printed_back() -> None:
    text = ('rule r{when host_cpu_pct>90 action kill(target=top( cpu_pct,unless comm in'
            '["bash","sh"]or(uid==0) ))}')
    assert format_text(text) == (
        "rule r {\n"
        "    when host_cpu_pct > 90\n"
        '    action kill(target = top(cpu_pct, unless comm in ["bash", "sh"] or uid == 0))\n'
        "}\n")


def test_unit_literals_are_kept_as_written() -> None:
    text = "rule r: rss_mb > 1GiB and fd_pct > 90% and age_s > 5m and x > 1.5KB for 500ms\n"
    assert format_text(text) == text
    assert format_text("rule r: cpu_pct > 5.0 for 5.0s\n") == "rule r: cpu_pct > 5 for 5s\n"
    assert format_text("rule r: rss_mb > 1.50KB\n") == "rule r: rss_mb > 1.5KB\n"
    assert format_text("rule r: cpu_pct > 0.00001\n") == "rule r: cpu_pct > 0.00001\n"


def test_strings_are_written_with_the_standard_escapes() -> None:
    text = 'rule r: comm == "a\\"b\\\\c\\nd\\te" and exe == "tab\there"\n'
    assert format_text(text) == 'rule r: comm == "a\\"b\\\\c\\nd\\te" and exe == "tab\\there"\n'


def test_test_blocks() -> None:
    text = ('test "t"{trace "f.jsonl" tick 250ms expect r firing between 1 and 2.5s '
            "expect r resolved for pid 7 expect r never expect r fires 1 time "
            "expect action kill for pid 7}\n")
    assert format_text(text) == (
        'test "t" {\n'
        '    trace "f.jsonl"\n'
        "    tick 250ms\n"
        "    expect r firing between 1 and 2.5s\n"
        "    expect r resolved for pid 7\n"
        "    expect r never\n"
        "    expect r fires 1 times\n"
        "    expect action kill for pid 7\n"
        "}\n")


def test_a_long_let_list_is_laid_out_one_item_per_line() -> None:
    names = [f'"process_name_{i}"' for i in range(8)]
    text = f"let names = [{', '.join(names)}]\n"
    assert len(text) > fmt.MAX_WIDTH
    expected = "let names = [\n" + "".join(f"    {n},\n" for n in names) + "]\n"
    assert format_text(text) == expected
    assert format_text(expected) == expected
    short = 'let names = ["a", "b"]\n'
    assert format_text('let names = [\n  "a",\n  "b",\n]\n') == short


def test_blank_lines() -> None:
    text = ("let a = 1\n\n\n\nlet b = 2\nlet c = 3\nrule r { when cpu_pct > a\n\n\n"
            "severity info\n\n}\nrule s: cpu_pct > b\n")
    assert format_text(text) == (
        "let a = 1\n\nlet b = 2\nlet c = 3\n\n"
        "rule r {\n    when cpu_pct > a\n\n    severity info\n}\n\n"
        "rule s: cpu_pct > b\n")


def test_empty_and_comment_only_files() -> None:
    assert format_text("") == ""
    assert format_text("\n\n  \n") == ""
    assert format_text("  # just a note   \n\n\n# another\n") == "# just a note\n\n# another\n"


# ---- comments -------------------------------------------------------------------------

SOURCE_WITH_COMMENTS = """\
# header of the file

# about the include
include "x.lnx"   # trailing on an include
let s = "not # a comment" # a real one
macro m = cpu_pct > 5 and   # inside, after code
    # inside, own line
    rss_mb>3   # at the end
rule r : cpu_pct>90 for 30s # after a one-line rule
rule   b {  # after the brace
  # before when
  when cpu_pct > 5
  for 5s     # after the for
  labels {team="x", # inside labels
   b = "y"}
  # before the closing brace
}   # after the closing brace
test "t" # between title and brace
{
trace "f.jsonl"
  expect b never
}
let long = [ # after the bracket
    "a_fairly_long_process_name", # about a
    # before b
    "another_fairly_long_process_name", "a_third_long_process_name_to_pass_the_width",
    # before the bracket
] # after the bracket
# at the end

# the very end
"""

FORMATTED_WITH_COMMENTS = """\
# header of the file

# about the include
include "x.lnx"  # trailing on an include
let s = "not # a comment"  # a real one
# inside, after code
# inside, own line
macro m = cpu_pct > 5 and rss_mb > 3  # at the end
rule r: cpu_pct > 90 for 30s  # after a one-line rule

rule b {  # after the brace
    # before when
    when cpu_pct > 5 for 5s  # after the for
    # inside labels
    labels { team = "x", b = "y" }
    # before the closing brace
}  # after the closing brace

# between title and brace
test "t" {
    trace "f.jsonl"
    expect b never
}

let long = [  # after the bracket
    "a_fairly_long_process_name",  # about a
    # before b
    "another_fairly_long_process_name",
    "a_third_long_process_name_to_pass_the_width",
    # before the bracket
]  # after the bracket
# at the end

# the very end
"""


def test_comments_are_kept_and_attached() -> None:
    assert format_text(SOURCE_WITH_COMMENTS) == FORMATTED_WITH_COMMENTS
    assert format_text(FORMATTED_WITH_COMMENTS) == FORMATTED_WITH_COMMENTS


def test_find_comments_skips_hashes_in_strings() -> None:
    text = 'let a = "x # y \\" # z" # real\n  # own\nlet b = "#"\n'
    found = find_comments(text)
    assert [(c.text, c.line, c.own_line) for c in found] == [("# real", 1, False),
                                                             ("# own", 2, True)]
    assert text[found[0].start] == "#"


def test_crlf_sources_are_formatted_with_plain_newlines() -> None:
    text = "# note\r\nrule r: cpu_pct > 5  # why\r\n"
    assert format_text(text) == "# note\nrule r: cpu_pct > 5  # why\n"


# ---- refusal ----------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "rule r { when cpu_pct > }",
    'rule r: comm == "a\\q"',  # an unknown escape would be lost by reprinting
    "rule r: " + "not " * 100 + "x",  # too deep: the builder drops the declaration
])
def test_files_with_syntax_errors_are_refused(text: str) -> None:
    with pytest.raises(RuleSyntaxError) as err:
        format_text(text)
    assert err.value.diagnostics


def test_a_layout_that_would_change_the_meaning_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The safety net: output that does not parse back to the same tree is never returned."""
    monkeypatch.setattr(fmt, "to_text", lambda e: "1")
    with pytest.raises(LinnixError) as err:
        format_text("rule r: cpu_pct > 5\n")
    assert not isinstance(err.value, RuleError)
    assert "left unchanged" in str(err.value)


def test_a_layout_that_would_lose_a_comment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fmt, "_attach", lambda lines, comments, source: [])
    with pytest.raises(LinnixError):
        format_text("# note\nrule r: cpu_pct > 5\n")


# ---- the command -------------------------------------------------------------------------

UGLY = "rule r:cpu_pct>5\n"
PRETTY = "rule r: cpu_pct > 5\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_fmt_rewrites_files_in_place(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ugly = write(tmp_path / "a.lnx", UGLY)
    pretty = write(tmp_path / "b.lnx", PRETTY)
    os.chmod(ugly, 0o640)
    before = pretty.stat().st_mtime_ns
    assert main(["fmt", str(tmp_path)]) == 0
    assert ugly.read_text() == PRETTY
    assert stat.S_IMODE(ugly.stat().st_mode) == 0o640
    assert pretty.stat().st_mtime_ns == before
    out = capsys.readouterr().out
    assert f"reformatted {ugly}" in out and str(pretty) not in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.lnx", "b.lnx"]  # no temp files
    assert main(["fmt", str(ugly)]) == 0
    assert "reformatted" not in capsys.readouterr().out


def test_fmt_through_a_symlink_rewrites_the_target(tmp_path: Path) -> None:
    target = write(tmp_path / "real.lnx", UGLY)
    link = tmp_path / "link.lnx"
    link.symlink_to(target)
    assert main(["fmt", str(link)]) == 0
    assert link.is_symlink() and target.read_text() == PRETTY


def test_check_lists_files_that_would_change(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    ugly = write(tmp_path / "a.lnx", UGLY)
    pretty = write(tmp_path / "b.lnx", PRETTY)
    assert main(["fmt", "--check", str(ugly), str(pretty)]) == 1
    out = capsys.readouterr().out
    assert out.splitlines() == [f"would reformat {ugly}"]
    assert ugly.read_text() == UGLY
    assert main(["fmt", "--check", str(pretty)]) == 0
    assert capsys.readouterr().out == ""


def test_diff_prints_a_unified_diff(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ugly = write(tmp_path / "a.lnx", UGLY)
    assert main(["fmt", "--diff", str(ugly)]) == 1  # it differs: exit 1, as --check
    out = capsys.readouterr().out
    assert out == (f"--- a/{ugly}\n+++ b/{ugly}\n@@ -1 +1 @@\n-rule r:cpu_pct>5\n"
                   "+rule r: cpu_pct > 5\n")
    assert ugly.read_text() == UGLY


def test_diff_of_a_formatted_file_prints_nothing_and_exits_0(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pretty = write(tmp_path / "a.lnx", "rule r: cpu_pct > 5\n")
    assert main(["fmt", "--diff", str(pretty)]) == 0
    assert capsys.readouterr().out == ""


def test_diff_marks_a_missing_final_newline(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    ugly = write(tmp_path / "a.lnx", UGLY.rstrip("\n"))
    assert main(["fmt", "--diff", str(ugly)]) == 1
    assert "-rule r:cpu_pct>5\n\\ No newline at end of file\n+rule r: cpu_pct > 5\n" in \
        capsys.readouterr().out


def test_check_with_diff(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ugly = write(tmp_path / "a.lnx", UGLY)
    assert main(["fmt", "--check", "--diff", str(ugly)]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith(f"--- a/{ugly}\n")
    assert f"would reformat {ugly}" in captured.err
    assert ugly.read_text() == UGLY


def test_a_file_with_errors_is_reported_and_left_alone(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = write(tmp_path / "broken.lnx", "rule r { when cpu_pct > }\n")
    ugly = write(tmp_path / "ugly.lnx", UGLY)
    assert main(["fmt", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"{broken}:1:25: error[E100]: unexpected '}}'" in err
    assert re.search(r"\n    rule r \{ when cpu_pct > \}\n {28}\^\n", err)
    assert broken.read_text() == "rule r { when cpu_pct > }\n"
    assert ugly.read_text() == PRETTY  # the other files are still formatted


def test_an_unreadable_file_is_reported(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.lnx"
    bad.write_bytes(b"rule r: comm == \"\xff\"\n")
    assert main(["fmt", "--check", str(bad)]) == 1
    assert "error[E112]" in capsys.readouterr().err


def test_a_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    assert main(["fmt", str(tmp_path / "nope.lnx")]) == 2


def test_a_failed_write_leaves_the_file_and_no_temp_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    ugly = write(tmp_path / "a.lnx", UGLY)

    def refuse(src: str, dst: str) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    assert main(["fmt", str(ugly)]) == 1
    assert "cannot write" in capsys.readouterr().err
    assert ugly.read_text() == UGLY
    assert [p.name for p in tmp_path.iterdir()] == ["a.lnx"]


# ---- the documentation's examples are canonical ---------------------------------------------

def _doc_blocks() -> list[tuple[str, str]]:
    found = []
    for name in ("README.md", "docs/language.md"):
        text = (ROOT / name).read_text(encoding="utf-8")
        found += [(name, m.group(1)) for m in re.finditer(r"```lnx\n(.*?)```", text, re.S)]
    return found


@pytest.mark.parametrize(("doc", "block"), _doc_blocks(),
                         ids=lambda v: v if v.endswith(".md") else "")
def test_documentation_examples_are_formatted(doc: str, block: str) -> None:
    assert format_text(block, doc) == block


def test_the_shipped_rules_are_formatted(capsys: pytest.CaptureFixture[str]) -> None:
    # the README shows `linnix fmt --check rules/`: it passes on the rules we ship
    assert main(["fmt", "--check", str(ROOT / "rules")]) == 0
    assert "0 files would be reformatted" in capsys.readouterr().err


def test_the_runbook_clause_is_printed_back() -> None:
    text = 'rule r{when cpu_pct>1 runbook   "see https://x.example/r" action analyze}'
    assert format_text(text) == (
        "rule r {\n"
        "    when cpu_pct > 1\n"
        '    runbook "see https://x.example/r"\n'
        "    action analyze\n"
        "}\n")

"""Syntax errors that are common mistakes (E107-E109, E114) and the list of expected tokens."""

from __future__ import annotations

import pytest
from support import diagnostics, only

from linnix.language import grammar
from linnix.language.mistakes import MAX_EXPECTED, expected, open_brace

# ---- E108: operators of other languages ----------------------------------------------------


def test_e108_a_single_equals_sign_where_a_comparison_can_come() -> None:
    d = only('rule a: comm = "java"', "E108")
    assert d.message == "unexpected '='; did you mean '=='?"
    assert (d.span.line, d.span.col, d.span.text) == (1, 14, "=")
    assert d.hint is not None and "'==' compares" in d.hint


def test_e108_not_where_no_comparison_can_come() -> None:
    # after a rule's name only ':' or '{' can come: '==' would not do either
    assert only("rule a = 1", "E100").message == "unexpected '='; expected ':', '{', 'on'"


@pytest.mark.parametrize(("text", "shown", "word"), [
    ("rule a: cpu_pct > 1 && rss_mb > 1", "&&", "and"),
    ("rule a: cpu_pct > 1 & rss_mb > 1", "&", "and"),
    ("rule a: cpu_pct > 1 || rss_mb > 1", "||", "or"),
    ("rule a: cpu_pct > 1 | rss_mb > 1", "|", "or"),
    ("rule a: ! cpu_pct > 1", "!", "not"),
    ("rule a: !(cpu_pct > 1)", "!", "not"),
])
def test_e108_c_operators(text: str, shown: str, word: str) -> None:
    d = only(text, "E108")
    assert d.message == f"unexpected '{shown}'; did you mean '{word}'?"
    assert d.span.text == shown


def test_not_equal_is_still_an_operator() -> None:
    assert diagnostics('rule a: comm != "java"') == []


# ---- E109: single quotes --------------------------------------------------------------------


def test_e109_single_quotes() -> None:
    d = only("rule a: comm == 'java'", "E109")
    assert d.message == "strings use double quotes"
    assert d.span.text == "'java'"
    assert d.hint == 'write "java"'


def test_e109_an_unclosed_single_quote_is_shown_to_the_end_of_its_line() -> None:
    d = only("rule a: comm == 'java\nrule b: cpu_pct > 1", "E109")
    assert d.span.text == "'java"
    assert d.hint is None


# ---- E114: capitals -------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "word", "fix"), [
    ("rule a {\n when cpu_pct > 1\n severity Critical\n}", "Critical", "critical"),
    ("rule CpuHog: cpu_pct > 1", "CpuHog", "cpu_hog"),
    ("rule a: cpuPct > 1", "cpuPct", "cpu_pct"),
    ("rule a: True", "True", "true"),
    ("rule a: cpu_pct > 1 AND rss_mb > 1", "AND", "and"),
])
def test_e114_names_are_lower_case(text: str, word: str, fix: str) -> None:
    d = only(text, "E114")
    assert d.message == f"names are lower case: '{word}'"
    assert d.span.text == word
    assert d.hint == f"write '{fix}'"


def test_signal_names_are_upper_case() -> None:
    assert diagnostics("rule a {\n when cpu_pct > 1\n action kill(signal = SIGTERM)\n}") == []


# ---- E107: a brace left open ----------------------------------------------------------------


def test_e107_points_at_the_brace_left_open_not_at_the_next_rule() -> None:
    text = "rule a {\n    when cpu_pct > 90\n\nrule b: rss_mb > 1\n"
    d = only(text, "E107")
    assert d.message == "'{' is never closed"
    assert (d.span.line, d.span.col, d.span.text) == (1, 8, "{")
    assert d.hint == "add '}' before 'rule' at line 4"


def test_e107_at_the_end_of_the_file() -> None:
    d = only('test "t" {\n  trace "x.jsonl"\n', "E107")
    assert (d.span.line, d.span.text) == (1, "{")
    assert d.hint == "add '}' before the end of the file"


def test_e107_the_declaration_after_the_brace_is_still_checked() -> None:
    found = diagnostics("rule a {\n when cpu_pct > 90\nrule b: rss_mbb > 1\n")
    assert [(d.code, d.span.line) for d in found] == [("E107", 1), ("E201", 3)]


def test_e107_braces_in_strings_and_comments_do_not_count() -> None:
    text = 'rule a {\n when cpu_pct > 1\n message "}"  # }\nrule b: cpu_pct > 1\n'
    assert (only(text, "E107").span.line, only(text, "E107").span.col) == (1, 8)


def test_e107_the_innermost_brace_left_open() -> None:
    text = 'rule a {\n when cpu_pct > 1\n labels { a = "x" }\n labels {\nrule b: cpu_pct > 1\n'
    assert only(text, "E107").span.line == 4


def test_no_e107_where_a_closing_brace_could_not_come() -> None:
    # the condition is unfinished: that is the error, not the brace
    d = only("rule a {\n when cpu_pct >\nrule b: cpu_pct > 1\n", "E100")
    assert d.message.startswith("unexpected 'rule'; expected a name")


def test_open_brace() -> None:
    assert open_brace("{ { } ", 0, 6) == 0
    assert open_brace("{ { ", 0, 4) == 2
    assert open_brace('{ "{\\"{" }', 0, 10) is None
    assert open_brace("{ # {\n}", 0, 7) is None
    assert open_brace("} {", 0, 3) == 2
    assert open_brace("x", 0, 1) is None


# ---- the list of expected tokens -------------------------------------------------------------


def test_the_expected_list_is_what_can_really_come_the_most_likely_first() -> None:
    # Lark's own list here has ')', ']', 'action', 'boundary', ...: states merged by LALR
    d = only("rule r: a < b < c", "E100")
    assert d.message == "unexpected '<'; expected 'and', 'or', 'for', '+' or '-', '*' or '/', ..."


def test_a_short_expected_list_is_shown_whole() -> None:
    assert only("rule r cpu_pct > 1", "E100").message == \
        "unexpected 'cpu_pct'; expected ':', '{', 'on'"


def test_the_expected_list_after_a_clause() -> None:
    d = only("rule r {\n when cpu_pct > 1\n severity\n}", "E100")
    assert d.message == "unexpected '}'; expected a name"


@pytest.mark.parametrize("text", [
    "rule r: cpu_pct >", "rule r: cpu_pct > 1 @", "rule r {\n when cpu_pct > 1\n @\n}",
    "rule r: comm ==", 'test "t" { expect', "let = 1", "rule r: [1, ", "rule r: top(",
])
def test_every_expected_list_has_at_most_five_items(text: str) -> None:
    (d,) = diagnostics(text)
    listed = d.message.partition("; expected ")[2]
    assert listed, d.message
    items = [i for i in listed.split(", ") if i != "..."]
    assert 1 <= len(items) <= MAX_EXPECTED


def test_expected_ranks_and_cuts() -> None:
    def show(name: str) -> str:
        return name.lower()

    assert expected(["RULE", "OR", "AND", "COMP_OP"], show) == "comp_op, and, or, rule"
    many = ["ZZZ", "RULE", "TEST", "LET", "MACRO", "INCLUDE", "COLON"]
    assert expected(many, show) == "colon, rule, let, macro, include, ..."
    # two terminals shown alike are shown once
    assert expected(["NAME", "NAME2"], lambda _: "a name") == "a name"


def test_the_fast_path_and_lark_list_the_same_tokens() -> None:
    from linnix.language.source import SourceFile

    def messages(parse: object) -> list[str]:
        try:
            parse(SourceFile("t.lnx", "rule r: a < b < c\nrule s: x ==\n"))  # type: ignore[operator]
        except Exception as err:
            return [d.message for d in err.diagnostics]  # type: ignore[attr-defined]
        raise AssertionError("no syntax error")

    assert messages(grammar.parse) == messages(grammar._parse_with_lark)


def test_every_mistake_stops_the_build() -> None:
    from support import build_text

    for text in ["rule a {\n when cpu_pct > 1\n", 'rule a: comm = "x"', "rule a: comm == 'x'",
                 "rule A: cpu_pct > 1"]:
        result = build_text(text)
        assert result.plan is None and [d.level.value for d in result.diagnostics] == ["error"]

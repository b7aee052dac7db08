"""Spans and the one renderer of diagnostics."""

from __future__ import annotations

from support import check_spans, diagnostics

from linnix.language.source import (
    Diagnostic,
    Level,
    SourceFile,
    diagnostics_to_json,
    excerpt,
    render,
    render_all,
)

SRC = SourceFile("rules/x.lnx", "rule r {\n    when subtre_cpu_pct > 50 for 5s\n}\n")


def diag(start: int, end: int, hint: str | None = None, level: Level = Level.ERROR,
         source: SourceFile = SRC) -> Diagnostic:
    return Diagnostic("E201", level, "unknown name 'subtre_cpu_pct'", source.span(start, end),
                      hint)


def test_positions_and_lines() -> None:
    assert SRC.position(0) == (1, 1)
    assert SRC.position(9) == (2, 1)
    assert SRC.position(len(SRC.text)) == (4, 1)
    assert SRC.position(10_000) == (4, 1)    # clamped
    assert SRC.line_text(2) == "    when subtre_cpu_pct > 50 for 5s"
    assert SRC.line_text(0) == "" and SRC.line_text(99) == ""


def test_span_text_and_where() -> None:
    span = SRC.span(18, 32)
    assert (span.text, span.line, span.col, span.end_line, span.end_col) == (
        "subtre_cpu_pct", 2, 10, 2, 24)
    assert span.where() == "rules/x.lnx:2:10"
    assert span.to(SRC.span(35, 37)).text == "subtre_cpu_pct > 50"


def test_render_shows_the_line_and_carets() -> None:
    assert render(diag(18, 32)) == (
        "rules/x.lnx:2:10: error[E201]: unknown name 'subtre_cpu_pct'\n"
        "        when subtre_cpu_pct > 50 for 5s\n"
        "             ^^^^^^^^^^^^^^")


def test_render_hint_and_warning_level() -> None:
    text = render(diag(18, 32, hint="did you mean 'subtree_cpu_pct'?", level=Level.WARNING))
    assert text.splitlines()[0] == "rules/x.lnx:2:10: warning[E201]: unknown name 'subtre_cpu_pct'"
    assert text.splitlines()[-1] == "    = help: did you mean 'subtree_cpu_pct'?"


def test_render_empty_span_gets_one_caret() -> None:
    assert render(diag(18, 18)).splitlines()[-1] == "             ^"


def test_render_multi_line_span_underlines_to_the_end_of_the_first_line() -> None:
    lines = render(diag(0, 30)).splitlines()
    assert lines[1:] == ["    rule r {", "    ^^^^^^^^"]


def test_render_expands_tabs() -> None:
    src = SourceFile("t.lnx", "rule r:\tnosuch > 1")
    assert render(diag(8, 14, source=src)).splitlines()[1:] == [
        "    rule r:    nosuch > 1", "               ^^^^^^"]


def test_render_keeps_huge_lines_readable() -> None:
    src = SourceFile("t.lnx", "x" * 300 + " bad " + "y" * 300)
    shown, carets = render(diag(301, 304, source=src)).splitlines()[1:]
    assert len(shown) <= 4 + 160
    at = carets.index("^")
    assert shown[at:at + 3] == "bad" and carets.strip() == "^^^"


def test_render_empty_file() -> None:
    src = SourceFile("t.lnx", "")
    assert render(diag(0, 0, source=src)) == "t.lnx:1:1: error[E201]: unknown name 'subtre_cpu_pct'"


def test_the_excerpt_is_the_line_and_carets_render_shows() -> None:
    assert excerpt(diag(18, 32)) == ("    when subtre_cpu_pct > 50 for 5s\n"
                                     "         ^^^^^^^^^^^^^^")
    assert excerpt(diag(0, 0, source=SourceFile("t.lnx", ""))) is None


def test_render_all_caps_the_list() -> None:
    d = diag(18, 32)
    assert render_all([d, d, d], limit=2) == "\n".join([render(d), render(d), "... and 1 more"])
    assert render_all([d, d], limit=2) == "\n".join([render(d), render(d)])
    assert render_all([d, d, d]) == "\n".join([render(d)] * 3)


def test_json_form() -> None:
    assert diagnostics_to_json([diag(18, 32, hint="h")]) == [{
        "path": "rules/x.lnx", "line": 2, "col": 10, "end_line": 2, "end_col": 24,
        "level": "error", "code": "E201", "message": "unknown name 'subtre_cpu_pct'",
        "hint": "h"}]


def test_diagnostics_are_sorted_by_position() -> None:
    found = diagnostics("rule b: zz2 > 1\nrule a: zz1 > 1\nlet unused = 1\n")
    assert [(d.span.line, d.code) for d in found] == [(1, "E201"), (2, "E201"), (3, "W101")]
    check_spans(found)


def test_spans_of_every_kind_of_diagnostic_are_consistent() -> None:
    texts = [
        "rule r cpu_pct", 'rule r: comm == "a', "rule r: @", 'rule r: comm == "\\q"',
        "rule r: " + "-" * 200 + "1 > 1", "rule r: nosuch > 1", "rule r {\n when x\n}",
        'rule r { when cpu_pct > 1\n message "{nosuch}" }',
        'rule r { when cpu_pct > 1\n message "\\n{nosuch}" }',
        'rule r: comm matches "a(b"', "\n\n\t  rule r: cpu_pct > 1 for 0s\n",
        "rule r: cpu_pct > 1 rule r: cpu_pct > 1", "let x = 1",
        "rule r: 1 > 2",
    ]
    for text in texts:
        found = diagnostics(text)
        assert found, text
        check_spans(found)

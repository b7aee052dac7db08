"""The parser's fast path (own lexer, AST built while parsing) against Lark's own parse.

``grammar.parse`` lexes with per-state regular expressions derived from Lark's
contextual lexer and builds the AST in the LALR parser's callbacks; Lark's
parse (contextual lexer, parse tree with ``propagate_positions``) walked by
the builder must give exactly the same module: same nodes, same spans, same
E103/E104/E105 problems.
"""

from __future__ import annotations

import sys
import tracemalloc
from pathlib import Path
from typing import Any

import attrs
import pytest
from support import RULES

from linnix.errors import RuleSyntaxError
from linnix.language import _lark, builder, grammar
from linnix.language import nodes as n
from linnix.language.source import SourceFile

ROOT = RULES.parent
sys.path.insert(0, str(ROOT))

from bench.compile import generate  # noqa: E402


def _span(span: Any) -> tuple[int, ...]:
    return (span.start, span.end, span.line, span.col, span.end_line, span.end_col)


def _dump(x: Any) -> Any:
    """A node, its sub-nodes and every span, as plain data."""
    if isinstance(x, tuple):
        return [_dump(i) for i in x]
    if attrs.has(type(x)):
        out: dict[str, Any] = {"_": type(x).__name__}
        for f in attrs.fields(type(x)):
            value = getattr(x, f.name)
            if f.name.endswith("span"):
                out[f.name] = _span(value)
            else:
                out[f.name] = _dump(value)
        return out
    return repr(x) if isinstance(x, float) else x


def _both(text: str, path: str = "t.lnx") -> tuple[Any, Any]:
    fast_source = SourceFile(path, text)
    module, problems = builder.build(fast_source, grammar.parse(fast_source))
    lark_source = SourceFile(path, text)
    lark_module, lark_problems = builder.build(lark_source,
                                               grammar._parse_with_lark(lark_source))
    fast = (_dump(module), _span(module.span), [(d.code, d.message, d.span.start, d.span.end)
                                                for d in problems])
    slow = (_dump(lark_module), _span(lark_module.span),
            [(d.code, d.message, d.span.start, d.span.end) for d in lark_problems])
    return fast, slow


def test_the_fast_path_serves_the_shipped_grammar() -> None:
    assert grammar._fast(grammar.parser()) is not None


def test_parse_builds_the_module_while_parsing() -> None:
    source = SourceFile("t.lnx", "rule r: cpu_pct > 1")
    tree = grammar.parse(source)
    assert tree.data == "start"
    assert tree.built[0] is source  # built by the parser's callbacks, not by a tree walk


FILES = sorted([*RULES.glob("*.lnx"), *(ROOT / "fixtures" / "rules").rglob("*.lnx")])


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_files_parse_the_same_both_ways(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    try:
        fast, slow = _both(text, str(path))
    except RuleSyntaxError:
        with pytest.raises(RuleSyntaxError):
            grammar._parse_with_lark(SourceFile(str(path), text))
        return
    assert fast == slow


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_generated_rules_parse_the_same_both_ways(seed: int) -> None:
    fast, slow = _both(generate(150, seed=seed))
    assert fast == slow


def _outlined(text: str, path: str = "t.lnx") -> tuple[Any, Any, Any]:
    """The module of a full parse, the one of a parse in outline, and the
    declaration parser of the outlined source."""
    full = SourceFile(path, text)
    module, _ = builder.build(full, grammar.parse(full))
    outlined = SourceFile(path, text)
    outline, _ = builder.build(outlined, grammar.parse(outlined, outline=True))
    return module, outline, grammar.declaration_parser(outlined)


@pytest.mark.parametrize("path", [None, *FILES],
                         ids=lambda p: "generated" if p is None else str(p.relative_to(ROOT)))
def test_outlines_are_parsed_again_into_the_rules(path: Path | None) -> None:
    text = generate(150, seed=4) if path is None else path.read_text(encoding="utf-8")
    try:
        module, outline, again = _outlined(text)
    except RuleSyntaxError:
        return
    assert len(module.decls) == len(outline.decls)
    for full, short in zip(module.decls, outline.decls, strict=True):
        if not isinstance(full, n.Rule):
            assert _dump(short) == _dump(full)
            continue
        assert isinstance(short, n.RuleOutline)
        assert (short.name, short.one_line) == (full.name, full.one_line)
        assert (_span(short.span), _span(short.name_span)) == (_span(full.span),
                                                               _span(full.name_span))
        assert _dump(again(short.span.start, short.span.end)) == _dump(full)


def test_a_dropped_rule_has_no_outline() -> None:
    module, outline, _ = _outlined("rule a: cpu_pct > " + "9" * 400 + "\nrule b: x > 1\n")
    assert [d.name for d in module.decls] == [d.name for d in outline.decls] == ["b"]


SNIPPETS = [
    "",
    "# only a comment",
    "rule r: (cpu_pct) > 1",
    "rule r: ((cpu_pct > 1))",
    "rule r: (cpu_pct + 1) * 2 > (3) for 5s",
    "rule r { when (a > 1)\n unless (b) }",
    "rule r { when (a > 1) for 5s\n clear when (a < 1) for 1m }",
    "rule r: -(-(-cpu_pct)) > -5",
    "rule r: cpu_pct - -1 > 2 and a-1 > 2",
    "let when = 5\nlet for = [1, 2,]\nrule rule: cpu_pct > for",
    "rule r: comm contains \"x\" and not (comm in [\"a\",]) or comm not in []",
    "rule r: comm matches \"(a\" or comm glob \"*\" and parent.comm == \"x\"",
    "rule r: avg(cpu_pct, 5s) > 1 and f() > 1 and g((x), (y)) > 1",
    "rule r: 5min > 1 and 1e400 > 1",
    "rule r: " + "9" * 400 + " > 1",
    # longer than their limits (E106), and just below them
    'rule r: comm == "' + "x" * 70_000 + '"\nrule s: cpu_pct > 1 and "\\q" == comm',
    'rule r: comm == "' + "x" * 65_536 + '" and cpu_pct > ' + "0" * 1_100 + "1",
    "rule " + "r" * 1_025 + ": cpu_pct > 1\nrule s: x > " + "1" * 1_024,
    'include "' + "p" * 70_000 + '"\nlet ' + "l" * 2_000 + " = 1",
    'test "t" { trace "x" expect r fires ' + "1" * 2_000 + " times }",
    "rule r: " + "(" * 150 + "x" + ")" * 150 + " > 1",
    "rule r: " + "not " * 120 + "x",
    "rule r: " + " + ".join(["a"] * 130) + " > 1",
    "rule r: a and (b and (c and d)) or (e or f)",
    "rule r: \"a\\q\" == comm and \"\\\\\" == exe",
    "rule r { when x > 1\n action kill(grace = 5s, signal = SIGKILL) action analyze\n"
    " action renice((10)) labels { a = \"1\", } tags [\"x\",] enabled (true) }",
    "rule r { action kill() labels {} tags [] }",
    "rule r { when x > 1 }\nrule s { }",
    "rule r:\tcpu_pct\t>\t1 # c\r\nrule s: cpu_pct > 2\r\n",
    "test \"t\" { trace \"x.jsonl\" tick 1s expect r firing between 1s and 2s expect r never\n"
    " expect r fires 2 times expect r fires 1 time expect action kill for pid 3\n"
    " expect r resolved for pid 4 }",
]


@pytest.mark.parametrize("text", SNIPPETS)
def test_snippets_parse_the_same_both_ways(text: str) -> None:
    fast, slow = _both(text)
    assert fast == slow


SYNTAX_ERRORS = [
    "rule r: cpu_pct > 1 @", "rule r: cpu_pct >\nrule s: <", "rule r: \"unterminated",
    "rule r: x containsx \"y\"", "rule r { when }", "let = 1",
    # several errors, and errors whose recovery starts before the blanked lines
    "rule a {\n when x > 1\nrule b: y > 2\nrule c: z > 3\nrule d: @\n",
    "rule a: x >\nlet rule c: @\nrule d: y > 1\nrule e: ?\n",
    "rule a: x >\nlet rule c: y > 1\nrule e: ?\n",
    "rule a: x > 1 rule b: @ rule c: ?\nrule d: #\n rule e: ]\n",
    "rule a { when x > 1\n  rule b: y > 2 }  rule c: @\nrule d: ?\n",
    "let x = (\nlet y = 2\nrule r: x\nrule s: @\n",
    "rule r: x > 1\n@\n@\nrule s: $\n" * 30,
    'test "t" { expect r fires 1 times\nrule r: x > 1 }\nrule q: @\n',
    "rule a { when x > 1\n" + "rule b: y > 2\n" * 30,
    'rule a: "unterminated\nrule b: x > 1 "also\nrule c: 1 ==\n',
]


@pytest.mark.parametrize("text", SYNTAX_ERRORS)
def test_syntax_errors_are_lark_s(text: str) -> None:
    with pytest.raises(RuleSyntaxError) as fast:
        grammar.parse(SourceFile("t.lnx", text))
    with pytest.raises(RuleSyntaxError) as slow:
        grammar._parse_with_lark(SourceFile("t.lnx", text))
    assert ([(d.code, d.message, d.span.start, d.span.end) for d in fast.value.diagnostics]
            == [(d.code, d.message, d.span.start, d.span.end) for d in slow.value.diagnostics])


@pytest.mark.parametrize("text", SYNTAX_ERRORS)
def test_syntax_errors_are_found_without_lark_s_parse(text: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    expected = _errors(grammar._parse_with_lark, text)

    def refuse(source: SourceFile) -> None:
        raise AssertionError("Lark's own parse was used")

    monkeypatch.setattr(grammar, "_parse_with_lark", refuse)
    assert _errors(grammar.parse, text) == expected


def _errors(parse: Any, text: str) -> list[tuple[str, str, int, int]]:
    with pytest.raises(RuleSyntaxError) as info:
        parse(SourceFile("t.lnx", text))
    return [(d.code, d.message, d.span.start, d.span.end) for d in info.value.diagnostics]


def test_recovery_resumes_at_the_declaration_in_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # after each error the parse goes on from the declaration it was in, or from
    # the last one begun before the lines blanked, not from the top of the file
    good = "rule ok: cpu_pct > 1\n" * 50
    # 'let' is a name after '>', and the next 'rule' ends rule b: the error in c
    # shows that b was still in progress at the line of 'let', which ends it
    text = good + "rule a: @\nrule b: cpu_pct >\nlet rule c: @\nrule d: x > 1\n"
    resumed: list[int] = []
    recognize = _lark.FastParser.recognize

    def spy(self: _lark.FastParser, text: str, start: int) -> None:
        resumed.append(start)
        recognize(self, text, start)

    monkeypatch.setattr(_lark.FastParser, "recognize", spy)
    found = _errors(grammar.parse, text)
    assert [d[2] for d in found][:2] == [text.index("@"), text.index("let rule")]
    assert resumed[:2] == [text.index("rule a"), text.index("rule b")]
    assert min(resumed) >= len(good)


def test_an_error_late_in_a_file_takes_no_more_memory_than_the_file(
        monkeypatch: pytest.MonkeyPatch) -> None:
    good = "".join(f'rule r{i}: cpu_pct > {i} and comm == "x"\n' for i in range(5_000))
    grammar.parser()  # built or loaded before measuring

    def peak(text: str) -> int:
        tracemalloc.start()
        try:
            grammar.parse(SourceFile("t.lnx", text))
        except RuleSyntaxError:
            pass
        finally:
            found = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        return found

    # once, Lark parsed the file again, building a tree of all of it
    assert peak(good + "rule bad cpu_pct > 1\n") < 1.2 * peak(good)

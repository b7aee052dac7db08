"""The parser's fast path (own lexer, AST built while parsing) against Lark's own parse.

``grammar.parse`` lexes with per-state regular expressions derived from Lark's
contextual lexer and builds the AST in the LALR parser's callbacks; Lark's
parse (contextual lexer, parse tree with ``propagate_positions``) walked by
the builder must give exactly the same module: same nodes, same spans, same
E103/E104/E105 problems.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import attrs
import pytest
from support import RULES

from linnix.errors import RuleSyntaxError
from linnix.language import builder, grammar
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


@pytest.mark.parametrize("text", ["rule r: cpu_pct > 1 @", "rule r: cpu_pct >\nrule s: <",
                                  "rule r: \"unterminated", "rule r: x containsx \"y\"",
                                  "rule r { when }", "let = 1"])
def test_syntax_errors_are_lark_s(text: str) -> None:
    with pytest.raises(RuleSyntaxError) as fast:
        grammar.parse(SourceFile("t.lnx", text))
    with pytest.raises(RuleSyntaxError) as slow:
        grammar._parse_with_lark(SourceFile("t.lnx", text))
    assert ([(d.code, d.message, d.span.start, d.span.end) for d in fast.value.diagnostics]
            == [(d.code, d.message, d.span.start, d.span.end) for d in slow.value.diagnostics])

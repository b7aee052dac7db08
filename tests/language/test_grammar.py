"""The grammar and the builder: what text parses into which AST, and syntax diagnostics."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from support import RULES, codes, decls, diagnostics, expr, only, sexp, shape

from linnix.errors import RuleSyntaxError
from linnix.language import _lark, grammar
from linnix.language import nodes as n
from linnix.language.builder import MAX_DEPTH, MAX_PROBLEMS, MAX_STRING, MAX_TOKEN
from linnix.language.source import SourceFile

# ---- the packaged grammar ----------------------------------------------------------------


def test_packaged_grammar_is_the_repository_grammar() -> None:
    root = RULES.parent
    assert grammar.grammar_text() == (root / "grammar" / "linnix.lark").read_text()


def test_parser_is_built_once() -> None:
    assert grammar.parser() is grammar.parser()


def test_a_corrupt_parser_cache_is_rebuilt(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = grammar._cache_path(grammar.grammar_text())
    assert path.startswith(str(tmp_path))
    with open(path, "wb") as f:
        f.write(b"not a pickled parser")
    grammar.parser.cache_clear()
    try:
        tree = grammar.parse(SourceFile("t.lnx", "rule r: cpu_pct > 1"))
        assert tree.data == "start"
        with open(path, "rb") as f:
            assert f.read(20) != b"not a pickled parser"  # rewritten with a good parser
    finally:
        grammar.parser.cache_clear()


def test_the_parser_cache_directory_is_created(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "not" / "yet"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    grammar.parser.cache_clear()
    try:
        grammar.parser()
        (saved,) = cache.glob("linnix-grammar-*.cache")
        grammar.parser.cache_clear()
        assert grammar.parse(SourceFile("t.lnx", "rule r: cpu_pct > 1")).data == "start"
        assert saved.is_file()
    finally:
        grammar.parser.cache_clear()


@pytest.mark.parametrize("path", sorted(RULES.glob("*.lnx")), ids=lambda p: p.name)
def test_every_shipped_rule_file_parses(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert grammar.parse(SourceFile(str(path), text)).data == "start"


# ---- declarations -------------------------------------------------------------------------


def test_top_level_declarations() -> None:
    got = decls('''
        include "common.lnx"
        let protected = ["systemd", "sshd"]
        macro interactive = comm in ["bash", "zsh"]
        rule cpu_hog: cpu_pct > 90 for 30s
        rule quiet: cpu_pct > 1
        rule block { when cpu_pct > 1 }
        test "t" { trace "x.jsonl" }
    ''')
    assert [type(d).__name__ for d in got] == [
        "Include", "Let", "Macro", "Rule", "Rule", "Rule", "Test"]
    include, let, macro, hog, quiet, block, test = got
    assert include.path.value == "common.lnx"
    assert sexp(let) == "(Let protected (List [(String systemd) (String sshd)]))"
    assert sexp(macro) == ("(Macro interactive (In (Name comm) "
                           "(List [(String bash) (String zsh)]) False))")
    assert sexp(hog) == "(Rule cpu_hog [(When (Compare > (Name cpu_pct) (Number 90)) " \
                        "(Quantity 30 s))] True)"
    assert hog.one_line and not block.one_line
    assert sexp(quiet.clauses[0]) == "(When (Compare > (Name cpu_pct) (Number 1)) None)"
    assert test.title.value == "t"


def test_block_rule_with_every_clause() -> None:
    (r,) = decls('''
        rule cpu_spike {
            description "burns"
            when subtree_cpu_pct > 50 for 5s
            unless comm in protected
            unless interactive
            clear when subtree_cpu_pct < 20 for 10s
            keep_firing_for 1m
            scope subtree
            severity critical
            cooldown 30s
            labels { team = "platform", tier = "1", }
            tags ["noisy", "cpu",]
            message "{comm} at {subtree_cpu_pct:.0f}%"
            action kill(grace = 10s, signal = SIGKILL)
            action analyze
            mode monitor
            enabled false
        }
    ''')
    kinds = [type(c).__name__ for c in r.clauses]
    assert kinds == ["Description", "When", "Unless", "Unless", "Clear", "KeepFiringFor",
                     "ScopeClause", "Severity", "Cooldown", "Labels", "Tags", "Message",
                     "Action", "Action", "Mode", "Enabled"]
    by = {type(c).__name__: c for c in r.clauses}
    assert by["Description"].text.value == "burns"
    assert sexp(by["Clear"]) == ("(Clear (Compare < (Name subtree_cpu_pct) (Number 20)) "
                                 "(Quantity 10 s))")
    assert sexp(by["KeepFiringFor"]) == "(KeepFiringFor (Quantity 1 m))"
    assert by["ScopeClause"].name == "subtree"
    assert by["Severity"].name == "critical"
    assert sexp(by["Cooldown"]) == "(Cooldown (Quantity 30 s) [])"  # no key: not an event rule
    assert [(lb.key, lb.value.value) for lb in by["Labels"].items] == [
        ("team", "platform"), ("tier", "1")]
    assert [t.value for t in by["Tags"].items] == ["noisy", "cpu"]
    assert by["Message"].template.value == "{comm} at {subtree_cpu_pct:.0f}%"
    assert sexp(r.clauses[12]) == ("(Action kill [(Kwarg grace (Quantity 10 s)) "
                                   "(Kwarg signal (Signal SIGKILL))])")
    assert sexp(r.clauses[13]) == "(Action analyze [])"
    assert by["Mode"].name == "monitor"
    assert sexp(by["Enabled"]) == "(Enabled (Bool False))"


def test_empty_labels_tags_and_action_arguments() -> None:
    (r,) = decls('rule r { when x > 1\n labels {}\n tags []\n action kill() }')
    labels, tags, action = r.clauses[1:]
    assert labels.items == () and tags.items == () and action.args == ()


def test_positional_and_keyword_action_arguments() -> None:
    (r,) = decls("rule r { when x > 1\n action signal(SIGSTOP, target = top(cpu_pct))\n"
                 " action renice(10) }")
    assert sexp(r.clauses[1]) == ("(Action signal [(Signal SIGSTOP) "
                                  "(Kwarg target (Call top [(Name cpu_pct)] None))])")
    assert sexp(r.clauses[2]) == "(Action renice [(Number 10)])"


def test_test_block_statements() -> None:
    (t,) = decls('''test "cpu" {
        trace "../fixtures/cpu_spike.jsonl"
        tick 500ms
        expect cpu_spike firing between 10s and 12s
        expect cpu_spike resolved between 20 and 23s
        expect cpu_spike pending for pid 300
        expect circuit_breaker never
        expect action kill for pid 300
        expect cpu_spike fires 2 times
        expect cpu_spike fires 1 time
    }''')
    assert sexp(t.stmts) == (
        "[(Trace (String ../fixtures/cpu_spike.jsonl)) (Tick (Quantity 500 ms)) "
        "(ExpectBetween cpu_spike firing (Quantity 10 s) (Quantity 12 s)) "
        "(ExpectBetween cpu_spike resolved (Number 20) (Quantity 23 s)) "
        "(ExpectPid cpu_spike pending (Number 300)) (ExpectNever circuit_breaker) "
        "(ExpectAction kill (Number 300)) (ExpectCount cpu_spike (Number 2)) "
        "(ExpectCount cpu_spike (Number 1))]")


def test_comments_and_layout_carry_no_meaning() -> None:
    compact = decls('rule r { when cpu_pct > 1 for 5s severity info }')
    spread = decls('''
        # a comment
        rule r   # after the name
        {
            when cpu_pct    # inside an expression
              > 1
              for 5s
            severity info}  # trailing''')
    assert compact == spread  # nodes compare without their spans


def test_names_may_hold_digits_and_underscores() -> None:
    assert shape("_x9 > r2_d2") == "(Compare > (Name _x9) (Name r2_d2))"


# ---- expressions --------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "tree"), [
    # or < and < not < comparison < + - < * / < unary minus
    ("a or b and not c > 1",
     "(Or [(Name a) (And [(Name b) (Not (Compare > (Name c) (Number 1)))])])"),
    ("(a or b) and c", "(And [(Or [(Name a) (Name b)]) (Name c)])"),
    ("not not a", "(Not (Not (Name a)))"),
    ("a or b or c and d and e",
     "(Or [(Name a) (Name b) (And [(Name c) (Name d) (Name e)])])"),
    ("1 + 2 * 3", "(Arith + (Number 1) (Arith * (Number 2) (Number 3)))"),
    ("a - b - c", "(Arith - (Arith - (Name a) (Name b)) (Name c))"),
    ("a / b * c", "(Arith * (Arith / (Name a) (Name b)) (Name c))"),
    ("-a * b", "(Arith * (Neg (Name a)) (Name b))"),
    ("- -a", "(Neg (Neg (Name a)))"),
    ("a + b > c * 2", "(Compare > (Arith + (Name a) (Name b)) (Arith * (Name c) (Number 2)))"),
])
def test_precedence(text: str, tree: str) -> None:
    assert shape(text) == tree


@pytest.mark.parametrize("op", ["==", "!=", "<", "<=", ">", ">="])
def test_comparison_operators(op: str) -> None:
    assert shape(f"cpu_pct {op} 1") == f"(Compare {op} (Name cpu_pct) (Number 1))"


def test_membership_and_string_operators() -> None:
    assert shape('comm in ["a", "b"]') == "(In (Name comm) (List [(String a) (String b)]) False)"
    assert shape("comm not in protected") == "(In (Name comm) (Name protected) True)"
    assert shape('"cron" in ancestors') == "(In (String cron) (Name ancestors) False)"
    for op in ("startswith", "endswith", "contains"):
        assert shape(f'exe {op} "x"') == f"(StrOp {op} (Name exe) (String x))"
    assert shape('comm matches "^k.*d$"') == "(Matches (Name comm) (String ^k.*d$))"
    assert shape('exe glob "/usr/*"') == "(Glob (Name exe) (String /usr/*))"
    assert shape('remote_addr in_cidr "10.0.0.0/8"') == (
        "(InCidr (Name remote_addr) (String 10.0.0.0/8))")
    assert shape("remote_addr is_private") == "(IsPrivate (Name remote_addr))"
    assert shape("not remote_addr is_private and x") == (
        "(And [(Not (IsPrivate (Name remote_addr))) (Name x)])")


def test_literals() -> None:
    assert shape("x == 42") == "(Compare == (Name x) (Number 42))"
    assert expr("x == 2.5").right.value == 2.5  # type: ignore[union-attr]
    assert shape("x == true or x == false") == (
        "(Or [(Compare == (Name x) (Bool True)) (Compare == (Name x) (Bool False))])")
    assert shape("x in []") == "(In (Name x) (List []) False)"
    assert shape("x in [1, 2,]") == "(In (Name x) (List [(Number 1) (Number 2)]) False)"
    for text, value, unit in [("5s", 5, "s"), ("1.5GiB", 1.5, "GiB"), ("90%", 90, "%"),
                              ("500ms", 500, "ms"), ("5min", 5, "min")]:
        q = expr(f"x > {text}").right  # type: ignore[union-attr]
        assert isinstance(q, n.Quantity) and (q.value, q.unit) == (value, unit)


def test_string_escapes() -> None:
    s = expr(r'comm == "a\"b\\c\nd\te"').right  # type: ignore[union-attr]
    assert isinstance(s, n.String) and s.value == 'a"b\\c\nd\te'


@pytest.mark.parametrize("parse", [grammar.parse, grammar._parse_with_lark],
                         ids=["fast path", "lark"])
@pytest.mark.parametrize("body", ["a" * 1_000_000, "\\n" * 500_000],
                         ids=["plain", "escapes"])
def test_a_long_string_is_lexed_without_memory_per_character(
        parse: Callable[[SourceFile], object], body: str) -> None:
    # the regular expression engine once kept about 100 bytes per character of a
    # string literal (gigabytes for 10 MB); what remains is the text and its copies
    text = f'rule r: comm == "{body}"'
    grammar.parser()  # built or loaded before measuring
    tracemalloc.start()
    try:
        parse(SourceFile("t.lnx", text))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * len(text)


def test_parsing_keeps_nothing_but_the_tree_of_what_it_has_parsed() -> None:
    # the depth of each expression and the extent of each parenthesised one are
    # let go when their declaration is complete: they once made the peak of
    # parsing a fifth larger than the tree it returns
    rule = "rule r{}: (cpu_pct + 1) * 2 > (3) and not (comm in [\"a\", \"b\"]) for 5s\n"
    text = "".join(rule.format(i) for i in range(2_000))
    grammar.parser()  # built or loaded before measuring
    tracemalloc.start()
    try:
        tree = grammar.parse(SourceFile("t.lnx", text))
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert tree.data == "start"
    assert peak < 1.05 * kept


def test_calls_and_parent_fields() -> None:
    assert shape("delta(rss_mb, 10s) > 50") == (
        "(Compare > (Call delta [(Name rss_mb) (Quantity 10 s)] None) (Number 50))")
    assert shape("parent.comm == \"sh\"") == "(Compare == (Attr parent comm) (String sh))"
    assert shape("f() > 1") == "(Compare > (Call f [] None) (Number 1))"


def test_boundary_clauses() -> None:
    (r,) = decls('rule r { when subtree_procs > 1\n boundary comm in s\n'
                 ' boundary exe == "/usr/bin/tmux" }')
    walls = [c for c in r.clauses if isinstance(c, n.Boundary)]
    assert [sexp(c.expr) for c in walls] == [
        "(In (Name comm) (Name s) False)", "(Compare == (Name exe) (String /usr/bin/tmux))"]
    assert [c.span.text for c in walls] == ["boundary comm in s",
                                            'boundary exe == "/usr/bin/tmux"']
    assert codes("rule r { when subtree_procs > 1\n boundary }") == ["E100"]


def test_a_call_with_unless() -> None:
    (r,) = decls("rule r { when x > 1\n action kill(target = top(cpu_pct, unless comm in s "
                 "or uid == 0)) }")
    assert sexp(r.clauses[1]) == (
        "(Action kill [(Kwarg target (Call top [(Name cpu_pct)] (Or [(In (Name comm) "
        "(Name s) False) (Compare == (Name uid) (Number 0))])))])")
    call = r.clauses[1].args[0].value
    assert call.span.text == "top(cpu_pct, unless comm in s or uid == 0)"
    assert call.unless.span.text == "comm in s or uid == 0"
    # 'unless' comes after the one argument: not first, not after two
    for text in ("top(unless x)", "top(a, b, unless x)", "top(a, unless)"):
        assert codes(f"rule r {{ when x > 1\n action kill(target = {text}) }}") == ["E100"]


def test_spans_point_at_the_text() -> None:
    e = expr("cpu_pct > 90 and comm == \"x\"")
    assert isinstance(e, n.And)
    assert e.items[1].span.text == 'comm == "x"'
    assert (e.span.line, e.span.col) == (1, 9)


# ---- syntax diagnostics -------------------------------------------------------------------


def test_e100_unexpected_token_says_what_was_expected() -> None:
    d = only("rule r cpu_pct > 1", "E100")
    assert d.message == "unexpected 'cpu_pct'; expected ':', '{', 'on'"
    assert (d.span.line, d.span.col, d.span.text) == (1, 8, "cpu_pct")


def test_e100_unexpected_end_of_file() -> None:
    d = only("rule r: cpu_pct >", "E100")
    assert d.message.startswith("unexpected end of file; expected ")
    assert "a name" in d.message and "a number" in d.message
    assert d.span.start == d.span.end == len("rule r: cpu_pct >")


def test_e100_chained_comparison_is_a_syntax_error() -> None:
    assert only("rule r: a < b < c", "E100").span.text == "<"


def test_e101_unexpected_character() -> None:
    d = only("rule r: cpu_pct > 1 @", "E101")
    assert d.message.startswith("unexpected character '@'; expected ")
    assert d.span.text == "@"


def test_e114_names_are_lower_case() -> None:
    d = only("rule Cpu: cpu_pct > 1", "E114")
    assert d.message == "names are lower case: 'Cpu'"


def test_e101_unprintable_character_is_shown_by_code_point() -> None:
    assert "U+0007" in only("rule r: cpu_pct > 1 \x07", "E101").message


def test_e102_unterminated_string() -> None:
    d = only('rule r: comm == "abc\nrule s: cpu_pct > 1', "E102")
    assert d.message == "unterminated string"
    assert d.span.text == '"abc'


def test_e103_unknown_escape() -> None:
    d = only(r'rule r: comm == "a\qb"', "E103")
    assert d.message == "unknown escape '\\q' in string"
    assert d.span.text == "\\q"
    assert d.hint is not None


def test_e104_number_too_large() -> None:
    huge = "9" * 400
    d = only(f"rule r: cpu_pct > {huge}", "E104")
    assert d.span.text == huge
    assert only(f"rule r: age_s > {huge}s", "E104").span.text == huge + "s"


def test_e104_drops_the_declaration_without_follow_up_errors() -> None:
    huge = "9" * 400
    for text in (f"rule r: cpu_pct > 1 for {huge}s",
                 f"rule r {{ when cpu_pct > 1\n action kill(signal = {huge}) }}",
                 f"rule r {{ when cpu_pct > 1\n action renice({huge}) }}",
                 f'test "t" {{ trace "x"\n expect r fires {huge} times }}',
                 f"let x = {huge}"):
        assert [d.code for d in diagnostics(text)] == ["E104"], text


def test_e104_unit_conversion_overflow() -> None:
    # the digits fit a float, the value in seconds does not
    d = only(f"rule r: age_s > {'9' * 306}h", "E104")
    assert "too large" in d.message


def test_e106_limits_are_exact() -> None:
    x, zeros, name = "x" * MAX_STRING, "0" * (MAX_TOKEN - 1), "l" * MAX_TOKEN
    at_limit = ['rule r: cmdline == "' + x + '"',
                'rule r: cmdline == "' + "\\\\" * (MAX_STRING // 2) + '"',  # as written
                "rule r: cpu_pct > " + zeros + "1",
                "rule r: age_s > " + zeros[1:] + "1s",
                f"let {name} = 1\nrule r: cpu_pct > {name}"]
    for text in at_limit:
        assert diagnostics(text) == [], text[:40]
    over, long = MAX_STRING + 1, MAX_TOKEN + 1
    cases = [('rule r: comm == "' + x + 'x"', "string", over, MAX_STRING),
             ("rule r: cpu_pct > 0" + zeros + "1", "number", long, MAX_TOKEN),
             ("rule r: age_s > 1" + "s" * MAX_TOKEN, "number", long, MAX_TOKEN),
             ("rule r: " + "x" * long + " > 1", "name", long, MAX_TOKEN),
             ("rule " + "r" * long + ": cpu_pct > 1", "name", long, MAX_TOKEN)]
    for text, what, size, limit in cases:
        d = only(text, "E106")
        assert d.message == f"{what} too long ({size} characters; the limit is {limit})"
        assert d.span.end - d.span.start == size + 2 * (what == "string")


def test_e106_drops_the_declaration_without_follow_up_errors() -> None:
    long = '"' + "x" * (MAX_STRING + 1) + '"'
    signal = "SIG" + "X" * MAX_TOKEN
    count = "0" * MAX_TOKEN + "1"
    for text in (f"include {long}",
                 f"let x = [{long}]",
                 f"macro m = comm == {long}",
                 f"rule r {{ when cpu_pct > 1\n description {long} }}",
                 f"rule r {{ when cpu_pct > 1\n message {long} }}",
                 f"rule r {{ when cpu_pct > 1\n labels {{ a = {long} }} }}",
                 f"rule r {{ when cpu_pct > 1\n tags [{long}] }}",
                 f"rule r {{ when comm matches {long} }}",
                 f"rule r {{ when cpu_pct > 1\n action kill(signal = {signal}) }}",
                 f"test {long} {{ }}",
                 f'test "t" {{ trace {long} }}',
                 f'test "t" {{ expect r fires {count} times }}'):
        found = [d.code for d in diagnostics(text)]
        assert found == ["E106"], (text[:60], found)


def test_e106_a_long_literal_is_not_looked_into() -> None:
    # no E104 for a long number that is also too large, no E103 for each bad escape
    assert [d.code for d in diagnostics("rule r: cpu_pct > " + "9" * 2 * MAX_TOKEN)] == ["E106"]
    text = 'rule r: comm == "' + "\\q" * MAX_STRING + '"'
    assert [d.code for d in diagnostics(text)] == ["E106"]


def test_problems_found_while_building_are_capped_per_file() -> None:
    # an unknown escape costs two characters: a file of them once kept a
    # diagnostic for each (a gigabyte for 5 MB); past the cap, a declaration
    # is still dropped when a problem would drop it, reported or not
    text = 'rule r: cmdline == "' + "\\q" * (2 * MAX_PROBLEMS) + '"\nrule s: nosuch > 1\n'
    found = diagnostics(text + "rule t: cpu_pct > " + "9" * 400 + "\n")
    assert [d.code for d in found] == ["E103"] * MAX_PROBLEMS + ["E201"]
    assert found[-1].span.text == "nosuch"


def _chain(depth: int) -> str:
    """``cpu_pct > -(-(...(1)))``: an expression ``depth`` levels deep."""
    return "rule r: cpu_pct > " + "-(" * (depth - 2) + "1" + ")" * (depth - 2)


def test_e105_depth_limit_is_exact() -> None:
    assert diagnostics(_chain(MAX_DEPTH)) == []
    d = only(_chain(MAX_DEPTH + 1), "E105")
    assert d.message == (f"expression nested too deeply ({MAX_DEPTH + 1} levels; "
                         f"the limit is {MAX_DEPTH})")


@pytest.mark.parametrize("text", [  # 10,000 levels: tests/test_frontend_properties.py
    "rule r: " + "not " * 1_000 + "cpu_pct > 1",
    "rule r: " + "not (" * 1_000 + "cpu_pct > 1" + ")" * 1_000,
    "rule r: cpu_pct > " + "-" * 1_000 + "1",
    "rule r: cpu_pct > " + "(1 + " * 1_000 + "1" + ")" * 1_000,
    "let x = " + "[" * 1_000 + "]" * 1_000,
    "macro m = " + "not " * 1_000 + "true",
    "rule r { when cpu_pct > 1\n enabled " + "not " * 1_000 + "true }",
    "rule r { when cpu_pct > 1\n action renice(" + "-" * 1_000 + "1) }",
    "rule r { when cpu_pct > 1\n unless " + "not " * 1_000 + "true }",
    "rule r { when cpu_pct > 1\n clear when " + "not " * 1_000 + "true }",
])
def test_e105_deep_nesting_is_a_diagnostic(text: str) -> None:
    assert [d.code for d in diagnostics(text)] == ["E105"]


@pytest.mark.parametrize("opening", ["(", "[", "not ", "-", "-(", "(1 + "])
def test_e105_nesting_beyond_the_parser_s_limit_is_an_error(opening: str) -> None:
    # the parser stops where its stack would pass the limit, however the input
    # goes on, and the rest of the file is still searched for syntax errors
    head = "rule r: " + opening * (_lark.MAX_STACK + 10)
    found = diagnostics(head + "cpu_pct > 1\nrule s: @\n")
    assert [d.code for d in found] == ["E105", "E101"]
    d = found[0]
    assert d.message == (f"expression nested too deeply (the parser's limit is "
                         f"{_lark.MAX_STACK} levels)")
    assert len("rule r: ") <= d.span.start < len(head)


def test_redundant_parentheses_do_not_nest() -> None:
    text = "rule r: " + "(" * 10_000 + "cpu_pct > 1" + ")" * 10_000
    assert diagnostics(text) == []


def test_several_syntax_errors_are_reported_after_recovery() -> None:
    found = diagnostics("rule a: cpu_pct >> 1\nrule b: ok > 1\nrule c { when }\nlet = 3\n")
    # rule b parses: its own error is reported, in file order
    assert [(d.code, d.span.line) for d in found] == [
        ("E100", 1), ("E201", 2), ("E100", 3), ("E100", 4)]


def test_a_keyword_read_as_a_name_ends_the_unfinished_declaration() -> None:
    # 'cpu_pct > rule' parses as far as 'b': the error is rule a's, and rule b is kept
    found = diagnostics("rule a: cpu_pct >\nrule b: nosuch > 1\nrule c: cpu_pct > 1\n")
    assert [(d.code, d.span.line, d.span.text) for d in found] == [
        ("E100", 2, "rule"), ("E201", 2, "nosuch")]
    assert found[0].message.startswith("unexpected 'rule'; expected a name, a number")


def test_a_keyword_read_as_a_name_inside_an_open_block() -> None:
    found = diagnostics("rule a {\n  when cpu_pct > 1 and\nlet x = 1\nrule b: cpu_pct > x\n")
    assert [(d.code, d.span.line, d.span.text) for d in found] == [("E100", 3, "let")]


def test_syntax_errors_are_capped() -> None:
    text = "rule r: @\n" * (grammar.MAX_SYNTAX_ERRORS + 10)
    found = diagnostics(text)
    assert len(found) == grammar.MAX_SYNTAX_ERRORS
    assert {d.code for d in found} == {"E101"}


def test_parse_raises_rule_syntax_error_with_every_error() -> None:
    with pytest.raises(RuleSyntaxError) as info:
        grammar.parse(SourceFile("t.lnx", "rule a: >\nrule b: <\n"))
    assert [d.span.line for d in info.value.diagnostics] == [1, 2]
    assert str(info.value) == info.value.diagnostics[0].message


def test_a_syntax_error_does_not_hide_the_other_declarations_errors() -> None:
    # rule b is still checked: its unknown name is reported, after rule a's error
    assert [d.code for d in diagnostics("rule a: @\nrule b: nosuch > 1\n")] == ["E101", "E201"]


def test_empty_and_comment_only_files_are_valid() -> None:
    assert diagnostics("") == []
    assert diagnostics("# nothing here\n   \n") == []

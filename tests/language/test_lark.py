"""The Lark internals the parser's fast path relies on, each checked on its own.

``linnix/language/_lark.py`` derives its lexer and parse table from Lark's
internals, listed in its docstring.  Whatever goes wrong there, the fast path
gives way to Lark's own parse (or, for a few internals, breaks), so a Lark
release that changes one of them would show at best as a slower parser.  Each
test here checks one internal: that it exists and has the shape ``_lark.py``
expects, failing with a message that names it.  After a Lark upgrade, a
failure here says what to look at in ``_lark.py`` (and its docstring, and
``LARK_CHECKED``) before anything else.
"""

from __future__ import annotations

import importlib
import inspect
import re
import types
from collections.abc import Callable, Iterator
from typing import Any

import lark
import lark.lexer
import pytest

from linnix.language import _lark, _re_start, builder, grammar
from linnix.language.source import SourceFile

SAMPLE = ('rule r { when cpu_pct > 90 and comm contains "x" for 5s\n'
          " action kill(grace = 5s, signal = SIGKILL) }\n"
          "# a comment\n"
          'test "t" { trace "t.jsonl" expect r never }\n')


def need(ok: object, internal: str, expected: str) -> None:
    """Fail, naming the internal, unless ``ok``."""
    assert ok, (f"Lark internal changed: {internal}: expected {expected} "
                f"(linnix/language/_lark.py relies on it; checked against Lark "
                f"{_lark.LARK_CHECKED}, installed {lark.__version__})")


def attribute(obj: object, name: str, internal: str) -> Any:
    need(hasattr(obj, name), f"{internal}.{name}", "the attribute to exist")
    return getattr(obj, name)


def parameters(fn: Callable[..., Any]) -> list[str]:
    return [p for p in inspect.signature(fn).parameters if p != "self"]


@pytest.fixture(scope="module", params=["loaded", "built"])
def parser(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[lark.Lark]:
    """The parser as loaded from the disk cache, and as built from the grammar (the
    two differ in details, such as the type of a pattern's flags)."""
    if request.param == "loaded":
        grammar.parser()  # built and saved, if it was not yet
        grammar.parser.cache_clear()
        try:
            yield grammar.parser()
        finally:
            grammar.parser.cache_clear()
        return
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        grammar.parser.cache_clear()
        try:
            yield grammar.parser()
        finally:
            grammar.parser.cache_clear()


def basic_lexers(p: lark.Lark) -> Iterator[Any]:
    seen: set[int] = set()
    lexer = attribute(attribute(p, "parser", "Lark"), "lexer", "Lark.parser")
    for basic in attribute(lexer, "lexers", "ContextualLexer").values():
        if id(basic) not in seen:
            seen.add(id(basic))
            yield basic


def parse_conf(p: lark.Lark) -> Any:
    interactive = p.parse_interactive()
    state = attribute(interactive, "parser_state", "InteractiveParser")
    return attribute(state, "parse_conf", "InteractiveParser.parser_state")


def reductions(p: lark.Lark) -> list[Any]:
    from lark.parsers.lalr_analysis import Reduce

    rules: dict[int, Any] = {}
    table = attribute(parse_conf(p), "parse_table", "ParseConf")
    for actions in attribute(table, "states", "ParseConf.parse_table").values():
        for action, arg in actions.values():
            if action is Reduce:
                rules[id(arg)] = arg
    return list(rules.values())


# ---- the Lark object ----------------------------------------------------------------


def test_lark_options(parser: lark.Lark) -> None:
    options = attribute(parser, "options", "Lark")
    expected = {"parser": "lalr", "lexer": "contextual", "postlex": None,
                "keep_all_tokens": False, "regex": False, "use_bytes": False,
                "tree_class": None, "maybe_placeholders": True}
    for name, value in expected.items():
        need(attribute(options, name, "Lark.options") == value, f"Lark.options.{name}",
             f"{value!r} for the shipped grammar")
    need(not attribute(options, "lexer_callbacks", "Lark.options"),
         "Lark.options.lexer_callbacks", "no callbacks for the shipped grammar")


def test_lark_lexer_conf(parser: lark.Lark) -> None:
    conf = attribute(parser, "lexer_conf", "Lark")
    ignore = attribute(conf, "ignore", "Lark.lexer_conf")
    names = {t.name for t in parser.terminals}
    need(ignore and all(isinstance(i, str) and i in names for i in ignore),
         "Lark.lexer_conf.ignore", "the names of the ignored terminals")
    need(isinstance(attribute(conf, "g_regex_flags", "Lark.lexer_conf"), int),
         "Lark.lexer_conf.g_regex_flags", "the flags (an int) every terminal is compiled with")


def check_terminal(t: Any, internal: str) -> None:
    need(isinstance(attribute(t, "name", internal), str), f"{internal}.name", "a str")
    pattern = attribute(t, "pattern", internal)
    regexp = attribute(pattern, "to_regexp", f"{internal}.pattern")()
    need(isinstance(regexp, str) and re.compile(regexp) is not None,
         f"{internal}.pattern.to_regexp()", "a regular expression (str) for the terminal")
    kind = attribute(pattern, "type", f"{internal}.pattern")
    need(kind in ("str", "re"), f"{internal}.pattern.type", "'str' or 're'")
    flags = attribute(pattern, "flags", f"{internal}.pattern")
    need(isinstance(flags, (set, frozenset, list, tuple)), f"{internal}.pattern.flags",
         "a collection of flags, empty when there are none")
    value = attribute(pattern, "value", f"{internal}.pattern")
    need(isinstance(value, str), f"{internal}.pattern.value", "the literal or regexp text")
    if kind == "str" and not flags:
        need(regexp == re.escape(value), f"{internal}.pattern.to_regexp()",
             "the escaped literal for a 'str' pattern")


def test_lark_terminals(parser: lark.Lark) -> None:
    terminals = list(attribute(parser, "terminals", "Lark"))
    need(terminals, "Lark.terminals", "the grammar's terminal definitions")
    for t in terminals:
        check_terminal(t, "Lark.terminals[]")


def test_get_terminal_gives_the_pattern_text(parser: lark.Lark) -> None:
    literal = next(t for t in parser.terminals if t.pattern.type == "str")
    check_terminal(parser.get_terminal(literal.name), "Lark.get_terminal()")
    need(_lark.terminal_literal(parser, literal.name) == literal.pattern.value,
         "Lark.get_terminal().pattern.value", "the literal of a string terminal")
    with pytest.raises(KeyError):
        _lark.terminal_literal(parser, "NO_SUCH_TERMINAL")


# ---- the lexers -----------------------------------------------------------------------


def test_contextual_lexer(parser: lark.Lark) -> None:
    cls: Any = getattr(lark.lexer, "ContextualLexer", None)
    need(inspect.isclass(cls), "lark.lexer.ContextualLexer", "a class")
    front = attribute(parser, "parser", "Lark")
    lexer = attribute(front, "lexer", "Lark.parser")
    need(isinstance(lexer, cls), "Lark.parser.lexer", "a ContextualLexer")
    lexers = attribute(lexer, "lexers", "ContextualLexer")
    states = parse_conf(parser).parse_table.states
    need(isinstance(lexers, dict) and set(states) <= set(lexers), "ContextualLexer.lexers",
         "a dict with a basic lexer for every parser state")


def test_root_lexer(parser: lark.Lark) -> None:
    lexer = attribute(attribute(parser, "parser", "Lark"), "lexer", "Lark.parser")
    root = attribute(lexer, "root_lexer", "ContextualLexer")
    terminals = attribute(root, "terminals", "ContextualLexer.root_lexer")
    need({t.name for t in terminals} == {t.name for t in parser.terminals},
         "ContextualLexer.root_lexer", "a basic lexer of every terminal")


def test_basic_lexers(parser: lark.Lark) -> None:
    ignore = frozenset(parser.lexer_conf.ignore)
    for basic in basic_lexers(parser):
        for t in attribute(basic, "terminals", "BasicLexer"):
            check_terminal(t, "BasicLexer.terminals[]")
        need(attribute(basic, "ignore_types", "BasicLexer") == ignore,
             "BasicLexer.ignore_types", "the ignored terminals' names")
        need(isinstance(attribute(basic, "user_callbacks", "BasicLexer"), dict),
             "BasicLexer.user_callbacks", "a dict of callbacks by terminal")
        need(attribute(basic, "g_regex_flags", "BasicLexer") == parser.lexer_conf.g_regex_flags,
             "BasicLexer.g_regex_flags", "the parser's regex flags")
        need(isinstance(attribute(basic, "re", "BasicLexer"), types.ModuleType),
             "BasicLexer.re", "the regular expression module")
        need(attribute(basic, "use_bytes", "BasicLexer") is False, "BasicLexer.use_bytes",
             "False")


def test_create_unless(parser: lark.Lark) -> None:
    create = getattr(lark.lexer, "_create_unless", None)
    need(callable(create), "lark.lexer._create_unless",
         "a function (without it _lark.py falls back to BasicLexer.scanner: check that path)")
    assert create is not None
    need(parameters(create) == ["terminals", "g_regex_flags", "re_", "use_bytes"],
         "lark.lexer._create_unless", "parameters (terminals, g_regex_flags, re_, use_bytes)")
    for basic in basic_lexers(parser):
        terminals, callbacks = create(basic.terminals, basic.g_regex_flags, basic.re,
                                      basic.use_bytes)
        need(isinstance(terminals, list) and isinstance(callbacks, dict),
             "lark.lexer._create_unless()", "(terminals, callbacks by terminal name)")
        scanner = attribute(basic, "scanner", "BasicLexer")
        need([t.name for t in attribute(scanner, "terminals", "BasicLexer.scanner")]
             == [t.name for t in terminals], "lark.lexer._create_unless()",
             "the terminals in the order the basic lexer's scanner tries them")
        need(set(attribute(basic, "callback", "BasicLexer")) == set(callbacks),
             "lark.lexer._create_unless()", "the basic lexer's callbacks")


def test_unless_callback(parser: lark.Lark) -> None:
    cls = getattr(lark.lexer, "UnlessCallback", None)
    need(inspect.isclass(cls), "lark.lexer.UnlessCallback", "a class")
    found = False
    for basic in basic_lexers(parser):
        _terminals, callbacks = _lark._scanner_terminals(basic)
        for callback in callbacks.values():
            need(type(callback) is cls, "lark.lexer.UnlessCallback",
                 "the only kind of lexer callback of the shipped grammar")
            scanner = attribute(callback, "scanner", "UnlessCallback")
            for t in attribute(scanner, "terminals", "UnlessCallback.scanner"):
                check_terminal(t, "UnlessCallback.scanner.terminals[]")
                found = True
    need(found, "lark.lexer.UnlessCallback", "keywords (names such as 'rule') to be one")


# ---- the parse table and the parser -------------------------------------------------------


def test_parse_conf(parser: lark.Lark) -> None:
    conf = parse_conf(parser)
    need(attribute(conf, "start", "ParseConf") == "start", "ParseConf.start",
         "the start symbol, 'start'")
    table = attribute(conf, "parse_table", "ParseConf")
    states = attribute(table, "states", "ParseConf.parse_table")
    need(isinstance(states, dict) and all(isinstance(row, dict) for row in states.values()),
         "ParseConf.parse_table.states", "a dict: state -> {symbol: (action, argument)}")
    for name in ("start_states", "end_states"):
        value = attribute(table, name, "ParseConf.parse_table")
        need(isinstance(value, dict) and "start" in value, f"ParseConf.parse_table.{name}",
             "a dict by start symbol")


def test_shift_and_reduce(parser: lark.Lark) -> None:
    analysis = importlib.import_module("lark.parsers.lalr_analysis")
    shift = getattr(analysis, "Shift", None)
    reduce = getattr(analysis, "Reduce", None)
    need(shift is not None, "lark.parsers.lalr_analysis.Shift", "the shift action")
    need(reduce is not None, "lark.parsers.lalr_analysis.Reduce", "the reduce action")
    states = parse_conf(parser).parse_table.states
    for row in states.values():
        for action, arg in row.values():
            need(action is shift or action is reduce, "ParseConf.parse_table.states",
                 "actions that are Shift or Reduce (by identity)")
            if action is shift:
                need(arg in states, "ParseConf.parse_table.states",
                     "Shift to a state of the table")


def test_rules(parser: lark.Lark) -> None:
    rules = reductions(parser)
    need(rules, "Reduce", "grammar rules as the argument of Reduce")
    for rule in rules:
        expansion = attribute(rule, "expansion", "Rule")
        origin = attribute(rule, "origin", "Rule")
        need(isinstance(attribute(origin, "name", "Rule.origin"), str), "Rule.origin.name",
             "the name of the rule's nonterminal")
        alias = attribute(rule, "alias", "Rule")
        need(alias is None or isinstance(alias, str), "Rule.alias", "None or a str")
        options = attribute(rule, "options", "Rule")
        for name in ("keep_all_tokens", "expand1"):
            need(isinstance(attribute(options, name, "Rule.options"), bool),
                 f"Rule.options.{name}", "a bool")
        attribute(options, "template_source", "Rule.options")
        empty = attribute(options, "empty_indices", "Rule.options")
        # one False per symbol kept, one True per optional part left out (several when
        # a rule has several optional parts, rule_line's 'on' and 'for')
        need(not empty or (list(empty).count(False) == len(expansion)
                           and all(isinstance(b, bool) for b in empty)),
             "Rule.options.empty_indices", "() or a bool per symbol, True where one is left out")
        for sym in expansion:
            is_term = attribute(sym, "is_term", "Symbol")
            need(isinstance(is_term, bool), "Symbol.is_term", "a bool")
            need(isinstance(attribute(sym, "name", "Symbol"), str), "Symbol.name", "a str")
            if is_term:
                need(isinstance(attribute(sym, "filter_out", "Terminal"), bool),
                     "Terminal.filter_out", "a bool")


def test_exceptions_and_tokens() -> None:
    need(parameters(lark.exceptions.UnexpectedToken.__init__)[:2] == ["token", "expected"],
         "lark.exceptions.UnexpectedToken.__init__", "parameters (token, expected, ...)")
    need(parameters(lark.exceptions.UnexpectedCharacters.__init__)[:5]
         == ["seq", "lex_pos", "line", "column", "allowed"],
         "lark.exceptions.UnexpectedCharacters.__init__",
         "parameters (seq, lex_pos, line, column, allowed, ...)")
    token = lark.Token("NAME", "abc", 3, end_pos=6)
    need((token.type, token.value, token.start_pos, token.end_pos) == ("NAME", "abc", 3, 6),
         "lark.Token", "Token(type, value, start_pos, end_pos=...)")


@pytest.mark.parametrize("text", [
    "rule r cpu_pct > 1",  # the state's lexer finds nothing; the root lexer a name
    "rule Cpu: cpu_pct > 1",  # no lexer finds anything
    "rule r: cpu_pct > 1 @",
    'rule r: comm == "open',
    "rule r: cpu_pct >",  # the parser's own error, at the end
    "rule r: cpu_pct > > 1",  # the parser's own error
    "rule r { when x > 1\n rule s: x > 2 }",
])
def test_errors_are_the_ones_lark_raises(parser: lark.Lark, text: str) -> None:
    with pytest.raises(lark.exceptions.UnexpectedInput) as theirs:
        parser.parse(text)
    with pytest.raises(_lark.StoppedError) as stop:
        _lark.FastParser(parser).parse(SourceFile("t.lnx", text))

    def shape(err: Any) -> tuple[object, ...]:
        if isinstance(err, lark.exceptions.UnexpectedToken):
            tok = err.token
            return (type(err).__name__, tok.type, tok.value, tok.start_pos, set(err.expected))
        return (type(err).__name__, err.pos_in_stream, set(err.allowed))

    need(shape(stop.value.error) == shape(theirs.value),
         "the errors of the contextual lexer and of the parser",
         f"what the fast path raises ({shape(stop.value.error)})")


def test_trees_take_attributes() -> None:
    tree: lark.Tree[lark.Token] = lark.Tree("start", [])
    need(hasattr(tree, "__dict__"), "lark.Tree", "instances with a __dict__ (no __slots__)")
    tree.__dict__["built"] = (None, None, [])
    need(getattr(tree, "built", None) == (None, None, []), "lark.Tree",
         "attributes set through __dict__ to be read back")


def test_tree_meta(parser: lark.Lark) -> None:
    tree: Any = parser.parse("rule r { }\nrule s: cpu_pct > 1")
    rule = tree.children[0]
    meta = attribute(rule, "meta", "Tree")
    need(attribute(meta, "empty", "Tree.meta") is False, "Tree.meta.empty",
         "False for a rule that covers tokens")
    need((meta.start_pos, meta.end_pos) == (0, 10), "Tree.meta.start_pos/end_pos",
         "the offsets the rule covers")
    other: Any = parser.parse("rule r { when a > 1 labels { } }")
    labels = other.children[0].children[2]
    need(attribute(labels.meta, "empty", "Tree.meta") is False, "Tree.meta.empty",
         "False for a rule with anonymous tokens only")


# ---- Python's regular expression parser ----------------------------------------------------


def test_re_parser() -> None:
    try:
        parser = importlib.import_module("re._parser")
    except ImportError:
        need(False, "re._parser", "the module (Python >= 3.11)")
    parse = attribute(parser, "parse", "re._parser")

    def ops(regexp: str) -> list[tuple[str, Any]]:
        data = attribute(parse(regexp), "data", "re._parser.parse()")
        return [(str(op), arg) for op, arg in data]

    need(ops("a") == [("LITERAL", ord("a"))], "re._parser LITERAL", "(LITERAL, code point)")
    ((op, items),) = ops("[a-c_]")
    need(op == "IN" and [(str(o), a) for o, a in items]
         == [("RANGE", (ord("a"), ord("c"))), ("LITERAL", ord("_"))],
         "re._parser IN", "(IN, [(RANGE, (low, high)), (LITERAL, code point)])")
    for regexp, name in (("a*", "MAX_REPEAT"), ("a*?", "MIN_REPEAT"),
                         ("a*+", "POSSESSIVE_REPEAT")):
        ((op, arg),) = ops(regexp)
        need(op == name and arg[0] == 0 and ops_of(arg[2]) == [("LITERAL", ord("a"))],
             f"re._parser {name}", f"({name}, (low, high, items))")
    ((op, arg),) = ops("(?i:a)")
    need(op == "SUBPATTERN" and len(arg) == 4 and arg[1] & re.IGNORECASE
         and ops_of(arg[3]) == [("LITERAL", ord("a"))],
         "re._parser SUBPATTERN", "(SUBPATTERN, (group, add flags, del flags, items))")
    ((op, arg),) = ops("(?>a)")
    need(op == "ATOMIC_GROUP" and ops_of(arg) == [("LITERAL", ord("a"))],
         "re._parser ATOMIC_GROUP", "(ATOMIC_GROUP, items)")
    ((op, arg),) = ops("ab|cd")
    need(op == "BRANCH" and arg[0] is None and [ops_of(a) for a in arg[1]]
         == [[("LITERAL", ord("a")), ("LITERAL", ord("b"))],
             [("LITERAL", ord("c")), ("LITERAL", ord("d"))]],
         "re._parser BRANCH", "(BRANCH, (None, alternatives))")
    ((op, _arg),) = ops("^")
    need(op == "AT", "re._parser AT", "(AT, where)")


def ops_of(items: Any) -> list[tuple[str, Any]]:
    return [(str(op), arg) for op, arg in items]


def test_first_chars() -> None:
    need(_re_start.first_chars(r"[ \t]+|#[^\n]*") == {" ", "\t", "#"}, "re._parser",
         "parse trees first_chars can read")
    need(_re_start.first_chars("a?") is None, "re._parser", "repeats with a low count of 0")


# ---- all of it together --------------------------------------------------------------------


def test_the_fast_path_is_built_from_the_shipped_parser(parser: lark.Lark) -> None:
    try:
        fast = _lark.FastParser(parser)
    except _lark.UnsupportedError as err:
        need(False, f"the fast path refuses Lark's parser ({err})", "a parser it handles")
    source = SourceFile("t.lnx", SAMPLE)
    tree = fast.parse(source)
    need(tree is not None, "the fast path's parse", "a tree for a valid file")
    assert tree is not None
    slow = SourceFile("t.lnx", SAMPLE)
    module, _ = builder.build(source, tree)
    lark_module, _ = builder.build(slow, grammar._parse_with_lark(slow))
    need(repr(module) == repr(lark_module), "the fast path's parse",
         "the module Lark's own parse gives")


def test_acceptable_is_what_the_parser_takes_next(parser: lark.Lark) -> None:
    """Cut a valid file before any token: what the parser would take at the cut
    holds that token, and nothing the parser would refuse there."""
    fast = _lark.FastParser(parser)
    tokens = parser.parse_interactive(SAMPLE).exhaust_lexer()
    for token in tokens:
        accepted = fast.expected(SAMPLE, 0, token.start_pos)
        assert token.type in accepted
        theirs = parser.parse_interactive(SAMPLE[:token.start_pos])
        theirs.exhaust_lexer()
        assert accepted == theirs.accepts()  # Lark tries each terminal on a copy
    assert fast.expected(SAMPLE, 0, len(SAMPLE)) == {"$END", "INCLUDE", "LET", "MACRO",
                                                     "RULE", "TEST"}

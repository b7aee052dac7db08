"""Build the LALR parser once, parse with it, and turn Lark's errors into diagnostics.

The grammar ships inside the package (``linnix/linnix.lark``).  Building the
LALR tables takes longer than checking a whole rule pack, so the built parser
is cached on disk (keyed by a hash of the grammar and the Lark version) and
in memory.

:func:`parse` runs Lark's LALR parser over the tokens of a file and builds the
AST (:mod:`linnix.language.builder`) as the parser reduces, so no parse tree is built
and walked a second time.  Two things around the parser are our own, both
derived from the Lark parser itself so that they cannot drift from it:

* the lexer: for each parser state, one regular expression with the same
  terminals in the same order as the state's lexer in Lark's contextual
  lexer, with whitespace and comments skipped in the same match, and the same
  keyword rules (a name that spells a keyword the state accepts is that
  keyword); its tokens carry offsets only;
* the callbacks: one per grammar rule, giving the builder the same children
  Lark would put in a tree, and the offsets the rule covers (from its first
  and last token, as Lark's ``propagate_positions`` computes them).

Line and column numbers are computed from offsets only when a diagnostic or
the compiler asks (:class:`~linnix.language.source.Span`).

When that fast path meets anything it does not handle, which is every syntax
error, the file is parsed again by Lark itself (contextual lexer, positions,
a parse tree), so that errors are reported exactly as Lark reports them:
:class:`~linnix.errors.RuleSyntaxError` holding every syntax error found,
parsing resuming at the next top-level declaration after each.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import importlib
import operator
import os
import re
import tempfile
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

from ..errors import RuleSyntaxError
from .builder import Builder, module
from .source import Diagnostic, Level, SourceFile

if TYPE_CHECKING:
    import lark

__all__ = ["grammar_text", "parse", "parser"]

MAX_SYNTAX_ERRORS = 20

_FRIENDLY = {
    "NAME": "a name",
    "NUMBER": "a number",
    "QUANTITY": "a number with a unit",
    "STRING": "a string",
    "SIGNAL": "a signal name",
    "COMP_OP": "a comparison",
    "STR_OP": "'startswith', 'endswith' or 'contains'",
    "ADD_OP": "'+' or '-'",
    "MUL_OP": "'*' or '/'",
    "STATE": "'firing', 'resolved' or 'pending'",
    "TIMES": "'times'",
    "$END": "end of file",
}
_TOP_LEVEL = re.compile(r"^[ \t]*(rule|let|macro|include|test)\b", re.MULTILINE)


def grammar_text() -> str:
    """The grammar, read from the installed package."""
    return resources.files("linnix.language").joinpath("linnix.lark").read_text(encoding="utf-8")


def _cache_path(text: str) -> str:
    import lark

    key = hashlib.sha256(f"{lark.__version__}\0{text}".encode()).hexdigest()[:16]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(tempfile.gettempdir())
    return os.path.join(base, f"linnix-grammar-{os.getuid()}-{key}.cache")


@functools.cache
def parser() -> lark.Lark:
    """The LALR parser (positions on), built or loaded from the disk cache once."""
    import lark

    text = grammar_text()
    options = {"parser": "lalr", "propagate_positions": True, "maybe_placeholders": True}
    path = _cache_path(text)
    try:
        with open(path, "rb") as f:
            return lark.Lark.load(f)
    except Exception:  # absent, unreadable or stale cache: build afresh
        pass
    built = lark.Lark(text, **options)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)  # XDG_CACHE_HOME may not exist yet
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            built.save(f)
        os.replace(tmp, path)  # atomic: concurrent readers never see half a file
    except OSError:
        pass
    return built


def _describe(names: object) -> str:
    p = parser()
    shown: list[str] = []
    for name in sorted(names):  # type: ignore[call-overload]
        if name in _FRIENDLY:
            shown.append(_FRIENDLY[name])
            continue
        try:
            pattern = p.get_terminal(name).pattern
        except KeyError:
            shown.append(name.lower())
            continue
        shown.append(f"'{pattern.value}'")
    unique = sorted(set(shown))
    if len(unique) > 8:
        return ", ".join(unique[:8]) + ", ..."
    return ", ".join(unique)


def _error_diagnostic(source: SourceFile, err: Exception) -> tuple[Diagnostic, int]:
    """A diagnostic for one Lark error and the offset where the error sits."""
    import lark

    if isinstance(err, lark.UnexpectedCharacters):
        pos = err.pos_in_stream or 0
        ch = source.text[pos] if pos < len(source.text) else ""
        if ch == '"':
            msg, end = "unterminated string", source.text.find("\n", pos)
            end = len(source.text) if end < 0 else end
            return Diagnostic("E102", Level.ERROR, msg, source.span(pos, end)), pos
        shown = repr(ch) if ch.isprintable() else f"U+{ord(ch):04X}" if ch else "end of file"
        msg = f"unexpected character {shown}"
        if err.allowed:
            msg += f"; expected {_describe(err.allowed)}"
        return Diagnostic("E101", Level.ERROR, msg, source.span(pos, pos + 1)), pos
    if isinstance(err, lark.UnexpectedToken):
        tok = err.token
        if tok.type == "$END":
            pos = len(source.text)
            found = "end of file"
        else:
            pos = tok.start_pos or 0
            found = f"'{tok.value}'"
        msg = f"unexpected {found}; expected {_describe(err.expected)}"
        end = pos + len(str(tok.value)) if tok.type != "$END" else pos
        return Diagnostic("E100", Level.ERROR, msg, source.span(pos, end)), pos
    if isinstance(err, lark.UnexpectedEOF):
        pos = len(source.text)
        msg = f"unexpected end of file; expected {_describe(err.expected)}"
        return Diagnostic("E100", Level.ERROR, msg, source.span(pos, pos)), pos
    raise err


def _blank(text: str, start: int, end: int) -> str:
    """Replace text[start:end] by spaces, keeping newlines (so positions hold)."""
    middle = "\n".join(" " * len(line) for line in text[start:end].split("\n"))
    return text[:start] + middle + text[end:]


def parse(source: SourceFile) -> lark.Tree[lark.Token]:
    """Parse one file; raise RuleSyntaxError with every syntax error found.

    The tree returned has data ``"start"``; :func:`linnix.language.builder.build` turns
    it into the module (already built while parsing, on the fast path).
    """
    fast = _fast(parser())
    if fast is not None:
        tree = fast.parse(source)
        if tree is not None:
            return tree
    return _parse_with_lark(source)


def _parse_with_lark(source: SourceFile) -> lark.Tree[lark.Token]:
    """Lark's own parse (tree with positions), resuming after each syntax error."""
    import lark

    text = source.text
    diags: list[Diagnostic] = []
    # Offsets of the top-level declarations, found once: blanking [begin, end)
    # removes exactly the ones inside it (both ends are line starts) and moves
    # no other, so the list is kept up to date instead of searched again.
    starts: list[int] | None = None
    while True:
        try:
            tree = parser().parse(text)
        except lark.exceptions.UnexpectedInput as err:
            diag, pos = _error_diagnostic(source, err)
            diags.append(diag)
            if len(diags) >= MAX_SYNTAX_ERRORS:
                break
            if starts is None:
                starts = [m.start() for m in _TOP_LEVEL.finditer(text)]
            i = bisect.bisect_right(starts, pos)
            begin = starts[i - 1] if i else 0
            line_end = text.find("\n", pos)
            j = bisect.bisect_right(starts, max(pos, line_end))
            end = starts[j] if j < len(starts) else len(text)
            blanked = _blank(text, begin, end)
            if blanked == text:
                break
            text = blanked
            del starts[bisect.bisect_left(starts, begin) : bisect.bisect_left(starts, end)]
            continue
        if diags:
            break
        return tree
    raise RuleSyntaxError(diags)


# ---- the fast path ----------------------------------------------------------------------


class _Token:
    """A token of the fast path: its terminal (``type``, all Lark's parser reads),
    its text and its offsets (what the builder reads)."""

    __slots__ = ("end_pos", "start_pos", "type", "value")

    type: str
    value: str
    start_pos: int
    end_pos: int


class _Reduction:
    """A grammar rule as the fast path's parse table holds it: what Lark's parser
    reads of a rule (its expansion's length, its origin's name), hashed and
    compared by identity; ``rule`` is Lark's rule."""

    __slots__ = ("expansion", "origin", "rule")

    def __init__(self, rule: Any) -> None:
        self.rule = rule
        self.expansion = rule.expansion
        self.origin = rule.origin


class _UnsupportedError(Exception):
    """The parser has a shape the fast path does not handle; Lark parses instead."""


class _Fast:
    """What the fast path derives once from a Lark parser: per-state lexers and
    one callback factory per grammar rule."""

    def __init__(self, p: lark.Lark) -> None:
        from lark.lexer import ContextualLexer
        from lark.parsers.lalr_analysis import Reduce

        opts = p.options
        if (opts.parser != "lalr" or opts.lexer != "contextual" or opts.postlex is not None
                or opts.keep_all_tokens or opts.lexer_callbacks or opts.regex
                or opts.use_bytes or opts.tree_class is not None):
            raise _UnsupportedError("parser options")
        self.maybe_placeholders = bool(opts.maybe_placeholders)
        self.flags = p.lexer_conf.g_regex_flags
        lexer = p.parser.lexer
        if not isinstance(lexer, ContextualLexer):
            raise _UnsupportedError("lexer")
        self.contextual = lexer
        conf = p.parse_interactive().parser_state.parse_conf
        self.start = conf.start
        terminals = {t.name: t for t in p.terminals}
        self.ignore = frozenset(p.lexer_conf.ignore)
        ignored = [terminals[name].pattern.to_regexp() for name in sorted(self.ignore)]
        others = [t.pattern.to_regexp() for t in p.terminals if t.name not in self.ignore]
        _check_skippable(ignored, others)
        # Whitespace and comments before a token are skipped in the token's own
        # match; the group is atomic so that a failed match never backtracks
        # into a comment to find a token inside it.
        self.skip = "(?>(?:" + "|".join(ignored) + ")*)" if ignored else ""
        self.skip_match: Callable[[str, int], Any] = re.compile(self.skip, self.flags).match
        self.lexers: dict[int, tuple[Callable[..., Any], dict[str, dict[str, str]] | None]] = {}
        self._by_lexer: dict[int, tuple[Callable[..., Any], dict[str, dict[str, str]] | None]] = {}
        # A copy of the parse table in which each grammar rule is replaced by a
        # _Reduction: Lark's parser hashes and compares the rule of every
        # reduction, which for Lark's rules are Python-level methods.
        shadows: dict[int, _Reduction] = {}
        states: dict[Any, dict[str, tuple[Any, Any]]] = {}
        for number, actions in conf.parse_table.states.items():
            row = {}
            for terminal, (action, arg) in actions.items():
                if action is Reduce:
                    shadow = shadows.get(id(arg))
                    if shadow is None:
                        shadow = shadows[id(arg)] = _Reduction(arg)
                    row[terminal] = (action, shadow)
                else:
                    row[terminal] = (action, arg)
            states[number] = row
        table = conf.parse_table
        self.table = type(table)(states, table.start_states, table.end_states)
        self.factories = self._factories(list(shadows.values()))

    # ---- lexing ---------------------------------------------------------------
    def lexer(self, state: int) -> tuple[Callable[..., Any], dict[str, dict[str, str]] | None]:
        """The match function and keyword table of one parser state (made once)."""
        try:
            basic: Any = self.contextual.lexers[state]
            entry = self._by_lexer.get(id(basic))
            if entry is None:
                entry = self._by_lexer[id(basic)] = self._state_lexer(basic)
        except _UnsupportedError:
            raise
        except Exception as err:  # Lark's lexer is not what this code expects
            raise _UnsupportedError(str(err)) from err
        self.lexers[state] = entry
        return entry

    def _state_lexer(self, basic: Any
                     ) -> tuple[Callable[..., Any], dict[str, dict[str, str]] | None]:
        from lark.lexer import UnlessCallback

        if basic.ignore_types != self.ignore or basic.user_callbacks:
            raise _UnsupportedError("lexer callbacks")
        terminals, callbacks = _scanner_terminals(basic)
        alternatives = "|".join(f"(?P<{t.name}>{t.pattern.to_regexp()})"
                                for t in terminals if t.name not in self.ignore)
        rx = re.compile(f"{self.skip}(?:{alternatives})", self.flags)
        keywords: dict[str, dict[str, str]] = {}
        for name, callback in callbacks.items():
            if type(callback) is not UnlessCallback:
                raise _UnsupportedError("lexer callback")
            table = {}
            for t in callback.scanner.terminals:
                if t.pattern.type != "str" or t.pattern.flags:
                    raise _UnsupportedError("keyword")
                table[t.pattern.value] = t.name
            keywords[name] = table
        return rx.match, keywords or None

    # ---- callbacks ------------------------------------------------------------
    def _factories(self, rules: list[_Reduction]
                   ) -> list[tuple[Any, str | None, Callable[..., Any]]]:
        """(rule, builder method, factory(method, extents) -> callback) for each rule.

        A callback receives the values the rule reduces (tokens, built nodes,
        lists for inlined rules) and does what Lark's tree builder would
        (drop anonymous tokens, add None for missing optional parts, inline
        ``_rule`` children, pass a single child of a ``?rule`` through), then
        calls the builder method with those children and the rule's offsets.

        Offsets follow ``propagate_positions``: a rule starts where its first
        value starts and ends where its last one ends.  For a value that is a
        node, that is its span, except where the rule that made it covered more
        text than the node's span (parentheses around an expression, ``for``
        before a duration, the parentheses of action arguments): that value's
        extent is kept in ``extents`` (id -> (start, end, value)).
        """
        by_origin: dict[str, list[Any]] = {}
        for rule in rules:
            by_origin.setdefault(rule.origin.name, []).append(rule)
        plans = {id(rule): self._plan(rule.rule) for rule in rules}

        known: dict[str, bool] = {}

        def extent_ok(name: str) -> bool:
            """Whether every value of nonterminal ``name`` has a known extent."""
            if name in known:
                return known[name]
            known[name] = True  # a unit cycle adds nothing
            ok = True
            for rule in by_origin.get(name, ()):
                kind, method, include, _tail = plans[id(rule)]
                if kind == "inline" or not rule.expansion:
                    ok = False
                elif kind == "unit":  # the child's value passes through: a token has no span
                    sym = rule.expansion[include[0][0]]
                    ok = ok and not sym.is_term and extent_ok(sym.name)
                elif kind == "call":
                    if method in Builder.MAY_DROP:
                        ok = False
                    elif method in Builder.SPANLESS and method not in Builder.NOT_OWN_SPAN:
                        # the node's span is its one token's
                        ok = ok and len(rule.expansion) == 1 and rule.expansion[0].is_term
            known[name] = ok
            return ok

        # Many rules need the same callback (the same statements over the rule's
        # values): each distinct one is generated once, as a factory.
        bodies: dict[tuple[str, ...], int] = {}
        chosen: list[int | Callable[..., Any]] = []
        for rule in rules:
            kind, method, include, tail = plans[id(rule)]
            needs_extent = kind == "paren" or (kind == "call" and method not in Builder.SPANLESS)
            if needs_extent:
                if not rule.expansion:
                    raise _UnsupportedError("empty rule with a span")
                for sym in (rule.expansion[0], rule.expansion[-1]):
                    if not sym.is_term and not extent_ok(sym.name):
                        raise _UnsupportedError(f"no extent for {sym.name}")
            if kind == "unit":  # the one value passes through: no Python call at all
                getter = operator.itemgetter(include[0][0])
                chosen.append(lambda fn, ext, getter=getter: getter)
                continue
            body = _callback_body(rule, kind, method, include, tail, needs_extent)
            if body == ("return fn(s, 0, 0)",):  # the builder method itself will do
                chosen.append(_method)
                continue
            chosen.append(bodies.setdefault(body, len(bodies)))
        source = []
        for body, i in bodies.items():
            source += [f"def _f{i}(fn, ext):", "    def cb(s):"]
            source += ["        " + line for line in body]
            source.append("    return cb")
        namespace: dict[str, Any] = {}
        exec(compile("\n".join(source) + "\n", "<linnix parser callbacks>", "exec"), namespace)
        return [(rule, plans[id(rule)][1], namespace[f"_f{i}"] if isinstance(i, int) else i)
                for rule, i in zip(rules, chosen, strict=True)]

    def _plan(self, rule: Any) -> tuple[str, str | None, list[tuple[int, bool, int]], int]:
        """(kind, builder method, [(index, inline, Nones before)], Nones after) of a rule,
        as Lark's tree builder treats it."""
        options = rule.options
        if options.keep_all_tokens or options.template_source:
            raise _UnsupportedError("rule options")
        expansion = rule.expansion
        empty = options.empty_indices if self.maybe_placeholders else ()
        if empty:
            flags = "".join(str(int(b)) for b in empty)
            nones = [len(ones) for ones in flags.split("0")]
        else:
            nones = [0] * (len(expansion) + 1)
        include: list[tuple[int, bool, int]] = []
        pending = 0
        for i, sym in enumerate(expansion):
            pending += nones[i]
            if not (sym.is_term and sym.filter_out):
                include.append((i, not sym.is_term and sym.name.startswith("_"), pending))
                pending = 0
        tail = pending + nones[len(expansion)]
        width = len(include) + sum(k for _, _, k in include) + tail
        if rule.origin.name.startswith("_"):
            if options.expand1:
                raise _UnsupportedError("inlined ?rule")
            return "inline", None, include, tail
        if options.expand1 and not rule.alias and width == 1:
            if not include or include[0][1]:
                raise _UnsupportedError("single child that is not a value")
            kind = "unit" if len(expansion) == 1 else "paren"
            return kind, None, include, tail
        method = rule.alias or rule.origin.name
        if method.startswith("_") or not callable(getattr(Builder, method, None)):
            raise _UnsupportedError(f"no builder method for {method}")
        return "call", method, include, tail

    # ---- parsing --------------------------------------------------------------
    def parse(self, source: SourceFile) -> lark.Tree[lark.Token] | None:
        """The tree of ``source`` with the module built, or None: Lark must parse it."""
        from lark import Tree
        from lark.exceptions import UnexpectedInput
        from lark.parsers.lalr_parser_state import ParseConf, ParserState

        builder = Builder(source)
        extents: dict[int, tuple[int, int, Any]] = {}
        callbacks = {rule: factory(getattr(builder, method) if method else None, extents)
                     for rule, method, factory in self.factories}
        no_lexer: Any = None  # tokens are fed by hand
        state = ParserState(ParseConf(self.table, callbacks, self.start), no_lexer)
        feed: Callable[..., Any] = state.feed_token
        stack = state.state_stack
        lexers = self.lexers
        text = source.text
        pos = 0
        token = None
        new = object.__new__
        try:
            while True:
                entry = lexers.get(stack[-1]) or self.lexer(stack[-1])
                m = entry[0](text, pos)
                if m is None:
                    break
                kind = m.lastgroup
                begin, pos = m.span(kind)  # the token ends the match
                token = new(_Token)
                token.value = value = text[begin:pos]
                token.start_pos = begin
                token.end_pos = pos
                keywords = entry[1]
                if keywords is not None and kind in keywords:
                    kind = keywords[kind].get(value, kind)
                token.type = kind
                feed(token)
            if self.skip_match(text, pos).end() != len(text):
                return None  # a character no terminal of this state matches
            end = new(_Token)
            end.type, end.value = "$END", ""
            end.start_pos = end.end_pos = token.end_pos if token is not None else 0
            decls = feed(end, True)
        except (UnexpectedInput, _UnsupportedError):
            return None
        tree = Tree("start", list(decls))
        # what linnix.language.builder.build returns for this tree
        tree.__dict__["built"] = (source, module(source, decls), builder.problems)
        return tree


def _scanner_terminals(basic: Any) -> tuple[list[Any], dict[str, Any]]:
    """The terminals of one of Lark's basic lexers, in the order its scanner tries
    them, and its callbacks by terminal: what Lark's own scanner is built from
    (without compiling that scanner, which the fast path does not use)."""
    from lark import lexer

    create = getattr(lexer, "_create_unless", None)
    if create is None:
        return basic.scanner.terminals, basic.callback
    terminals, callbacks = create(basic.terminals, basic.g_regex_flags, basic.re,
                                  basic.use_bytes)
    return terminals, callbacks


@functools.lru_cache(maxsize=2)
def _fast(p: lark.Lark) -> _Fast | None:
    """The fast path for parser ``p``, or None when it cannot serve this parser."""
    try:
        return _Fast(p)
    except Exception:  # a parser this code does not understand: Lark parses alone
        return None


def _method(fn: Callable[..., Any], ext: object) -> Callable[..., Any]:
    return fn


def _callback_body(rule: Any, kind: str, method: str | None,
                   include: list[tuple[int, bool, int]], tail: int,
                   needs_extent: bool) -> tuple[str, ...]:
    """The statements of the callback of one rule, over its values ``s`` (see _factories)."""
    size = len(rule.expansion)
    body: list[str] = []
    record = kind == "paren" or (kind == "call" and method in Builder.NOT_OWN_SPAN and size > 0)
    if needs_extent or record:
        if rule.expansion[0].is_term:
            body.append("start = s[0].start_pos")
        else:
            body += ["a = s[0]", "e = ext.get(id(a))",
                     "start = a.span.start if e is None else e[0]"]
        if rule.expansion[-1].is_term:
            body.append(f"end = s[{size - 1}].end_pos")
        else:
            body += [f"z = s[{size - 1}]", "e = ext.get(id(z))",
                     "end = z.span.end if e is None else e[1]"]
    if kind == "paren":
        return (*body, f"v = s[{include[0][0]}]", "ext[id(v)] = (start, end, v)", "return v")
    plain = (len(include) == size and tail == 0
             and all(not inline and not k for _, inline, k in include))
    if plain:
        kids = "s"
    else:
        kids = "kids"
        body += _filter_source(include, tail)
    if kind == "inline":
        return (*body, f"return {kids}")
    span = "start, end" if needs_extent else "0, 0"
    if record:
        return (*body, f"v = fn({kids}, {span})", "ext[id(v)] = (start, end, v)", "return v")
    return (*body, f"return fn({kids}, {span})")


def _filter_source(include: list[tuple[int, bool, int]], tail: int) -> list[str]:
    """Statements building ``kids`` from ``s`` as Lark's child filter does."""
    body: list[str] = []
    started = False
    for index, inline, nones in include:
        if nones:
            body.append(f"kids += {[None] * nones!r}" if started else f"kids = {[None] * nones!r}")
            started = True
        if inline:
            # an inlined rule's value is the list of its children; the first one
            # is extended in place (left recursion would otherwise copy it each time)
            body.append(f"kids += s[{index}]" if started else f"kids = s[{index}]")
        else:
            body.append(f"kids.append(s[{index}])" if started else f"kids = [s[{index}]]")
        started = True
    if tail:
        body.append(f"kids += {[None] * tail!r}" if started else f"kids = {[None] * tail!r}")
        started = True
    if not started:
        body.append("kids = []")
    return body


def _check_skippable(ignored: list[str], others: list[str]) -> None:
    """Skipping ignored text before matching a token is exact only when no other
    terminal can start with a character an ignored terminal starts with."""
    first_ignored: set[str] = set()
    for rx in ignored:
        chars = _first_chars(rx)
        if chars is None:
            raise _UnsupportedError(f"cannot tell how {rx} starts")
        first_ignored |= chars
    for rx in others:
        chars = _first_chars(rx)
        if chars is None or chars & first_ignored:
            raise _UnsupportedError(f"{rx} may start like ignored text")


def _first_chars(regexp: str) -> set[str] | None:
    """The characters a match of ``regexp`` can start with; None if unknown or
    if it can match the empty string."""
    try:
        parser = importlib.import_module("re._parser")
        parsed = parser.parse(regexp)
    except (ImportError, re.error):
        return None
    first, nullable = _first_of_seq(list(parsed.data))
    return None if first is None or nullable else first


_MAX_RANGE = 4096


def _first_of_seq(items: list[Any]) -> tuple[set[str] | None, bool]:
    out: set[str] = set()
    for op, arg in items:
        name = str(op)
        chars: set[str] | None
        if name == "LITERAL":
            chars, nullable = {chr(arg)}, False
        elif name == "IN":
            chars, nullable = _first_of_class(arg), False
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, _high, sub = arg
            chars, inner = _first_of_seq(list(sub))
            nullable = low == 0 or inner
        elif name == "SUBPATTERN":
            _group, add_flags, _del_flags, sub = arg
            if add_flags & re.IGNORECASE:
                return None, False
            chars, nullable = _first_of_seq(list(sub))
        elif name == "ATOMIC_GROUP":
            chars, nullable = _first_of_seq(list(arg))
        elif name == "BRANCH":
            chars, nullable = set(), False
            for alternative in arg[1]:
                more, empty = _first_of_seq(list(alternative))
                if more is None:
                    return None, False
                chars |= more
                nullable = nullable or empty
        elif name == "AT":
            chars, nullable = set(), True
        else:
            return None, False
        if chars is None:
            return None, False
        out |= chars
        if not nullable:
            return out, False
    return out, True


def _first_of_class(items: list[Any]) -> set[str] | None:
    chars: set[str] = set()
    for op, arg in items:
        name = str(op)
        if name == "LITERAL":
            chars.add(chr(arg))
        elif name == "RANGE" and arg[1] - arg[0] <= _MAX_RANGE:
            chars.update(chr(c) for c in range(arg[0], arg[1] + 1))
        else:
            return None
    return chars


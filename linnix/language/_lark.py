"""The parser's fast path: Lark's LALR parse table run by a driver and a lexer of
our own (:mod:`linnix.language._lalr`), building the AST while it reduces.
Everything linnix takes from Lark's internals is in this module (and what it
takes from Python's ``re._parser``, in :mod:`linnix.language._re_start`); the
rest of the front end uses Lark's public API only (:mod:`linnix.language.grammar`).

The fast path is derived from the Lark parser itself so that it cannot drift
from it:

* the lexer: for each parser state, one regular expression with the same
  terminals in the same order as the state's lexer in Lark's contextual
  lexer, with whitespace and comments skipped in the same match, and the same
  keyword rules (a name that spells a keyword the state accepts is that
  keyword); its tokens carry offsets only;
* the callbacks: one per grammar rule, giving the builder the same children
  Lark would put in a tree, and the offsets the rule covers (from its first
  and last token, as Lark's ``propagate_positions`` computes them);
* the errors: the exception Lark's parse raises at the same place, the
  parser's own, or the one its contextual lexer raises where a state's lexer
  matches nothing (the token the lexer of all terminals finds there, or else
  the character, with the terminals the state's lexer has).

Checked against Lark 1.3.1 (``pyproject.toml`` allows ``lark>=1.1.9,<2``; the
internals below have the same shape in 1.1.9).  It relies on:

* ``Lark.options`` (``parser``, ``lexer``, ``postlex``, ``keep_all_tokens``,
  ``lexer_callbacks``, ``regex``, ``use_bytes``, ``tree_class``,
  ``maybe_placeholders``), ``Lark.lexer_conf`` (``ignore``,
  ``g_regex_flags``), ``Lark.terminals`` and ``Lark.parser.lexer``;
* ``lark.lexer.ContextualLexer``: ``lexers``, parser state -> basic lexer,
  ``root_lexer``, the basic lexer of all terminals, and of a basic lexer
  ``terminals``, ``ignore_types``, ``user_callbacks``, ``g_regex_flags``,
  ``re`` and ``use_bytes``; where a state's lexer matches nothing, the
  contextual lexer raises ``UnexpectedToken`` for the root lexer's token, with
  the state's terminals (ignored ones aside) as expected, or else the state
  lexer's ``UnexpectedCharacters``;
* ``lark.exceptions.UnexpectedToken(token, expected)`` and
  ``UnexpectedCharacters(seq, lex_pos, line, column, allowed=...)``, and
  ``lark.Token(type, value, start_pos, end_pos=...)``;
* ``lark.lexer._create_unless(terminals, g_regex_flags, re_, use_bytes)``,
  which gives the terminals in the order a basic lexer's scanner tries them and
  the keyword callbacks (without it: ``scanner.terminals`` and ``callback``),
  and ``lark.lexer.UnlessCallback`` (``scanner.terminals``);
* terminal definitions: ``name`` and ``pattern`` (``to_regexp()``, ``type``,
  ``flags``, ``value``), also as ``Lark.get_terminal`` returns them;
* the parse table, ``InteractiveParser.parser_state.parse_conf`` (``start``,
  ``parse_table``: ``states``, ``start_states``, ``end_states``), whose actions
  are ``lark.parsers.lalr_analysis.Shift`` or ``Reduce`` by identity, run as
  Lark's ``ParserState.feed_token`` runs it (shift; reduce ``len(expansion)``
  values and go to the state of ``origin.name``; ``UnexpectedToken`` for a
  token no action of the state takes; the end fed to reductions only, never
  shifted), which ``tests/language/test_lalr.py`` compares token for token;
* grammar rules (``expansion``, ``origin.name``, ``alias``, ``options``:
  ``keep_all_tokens``, ``template_source``, ``empty_indices``, ``expand1``) and
  their symbols (``is_term``, ``name``, ``filter_out``);
* ``lark.Tree`` instances having a ``__dict__`` (the built module rides on the
  tree returned);
* to tell how a terminal can start, what :func:`~linnix.language._re_start.first_chars`
  reads of ``re._parser``.

Outside this module, :func:`linnix.language.builder.build` reads a Lark tree's
``meta.empty`` besides the positions ``Tree`` documents.

``tests/language/test_lark.py`` checks each of these, so that a Lark release
that changes one fails there, naming it, rather than the fast path quietly
giving way to Lark's own (slower) parse, or breaking.  Anything the fast path
meets that it does not handle raises :class:`UnsupportedError` (while the path
is built, or while it parses), and Lark parses.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._callbacks import callback_body
from ._lalr import MAX_STACK, Table, TooDeepError, drive
from ._lalr import StateLexer as _Lexer
from ._lalr import Token as _Token
from ._re_start import first_chars
from .builder import MAX_TOKEN, Builder, module
from .source import SourceFile

if TYPE_CHECKING:
    import lark

__all__ = ["LARK_CHECKED", "MAX_STACK", "FastParser", "StoppedError", "TooDeepError",
           "UnsupportedError", "terminal_literal"]

LARK_CHECKED = "1.3.1"  # the Lark release the internals above were last checked against


def terminal_literal(p: lark.Lark, name: str) -> str:
    """The pattern text of terminal ``name`` of parser ``p``; KeyError if there is none."""
    return str(p.get_terminal(name).pattern.value)


class UnsupportedError(Exception):
    """The parser has a shape the fast path does not handle; Lark parses instead."""


class StoppedError(Exception):
    """The fast path stopped at ``error`` (one of Lark's ``UnexpectedInput``, as
    Lark's own parse raises it, or :class:`TooDeepError`), in the declaration
    that begins at ``declaration``; ``finished`` are the offsets where the
    declarations before it begin (a dropped one may be missing)."""

    def __init__(self, error: Exception, declaration: int, finished: list[int]) -> None:
        super().__init__(error)
        self.error = error
        self.declaration = declaration
        self.finished = finished


class FastParser:
    """What the fast path derives once from a Lark parser: per-state lexers and
    one callback factory per grammar rule."""

    def __init__(self, p: lark.Lark) -> None:
        from lark.lexer import ContextualLexer
        from lark.parsers.lalr_analysis import Shift

        opts = p.options
        if (opts.parser != "lalr" or opts.lexer != "contextual" or opts.postlex is not None
                or opts.keep_all_tokens or opts.lexer_callbacks or opts.regex
                or opts.use_bytes or opts.tree_class is not None):
            raise UnsupportedError("parser options")
        self.maybe_placeholders = bool(opts.maybe_placeholders)
        self.flags = p.lexer_conf.g_regex_flags
        lexer = p.parser.lexer
        if not isinstance(lexer, ContextualLexer):
            raise UnsupportedError("lexer")
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
        self.skip_match: Callable[[str, int, int], Any] = re.compile(self.skip, self.flags).match
        self.lexers: dict[int, _Lexer] = {}
        self._by_lexer: dict[int, _Lexer] = {}
        self._root: _Lexer | None = None
        self._recognizers: list[Callable[..., Any] | None] | None = None
        table = conf.parse_table
        self.table = Table(table.states, table.start_states[self.start],
                           table.end_states[self.start], Shift, UnsupportedError)
        self.factories = self._factories(self.table.reductions)

    def expected(self, text: str, start: int, stop: int) -> frozenset[str]:
        """The terminals the parser takes at ``stop`` having parsed ``text`` from
        ``start`` (where a declaration may begin): exactly what may come there, not
        the table's row at an error (LALR merges).  Raises like :meth:`parse`."""
        if self._recognizers is None:
            self._recognizers = self._recognizing_callbacks()
        return self.table.acceptable(self._run(text, start, self._recognizers, None, stop,
                                               True))

    def acceptable(self, stack: tuple[int, ...]) -> frozenset[str]:
        """The terminals shifted next from the stack of states ``stack``."""
        return self.table.acceptable(stack)

    # ---- lexing ---------------------------------------------------------------
    def lexer(self, state: int) -> _Lexer:
        """The match function, keyword table and allowed terminals of one parser state
        (made once)."""
        try:
            basic: Any = self.contextual.lexers[state]
            entry = self._by_lexer.get(id(basic))
            if entry is None:
                entry = self._by_lexer[id(basic)] = self._state_lexer(basic)
        except UnsupportedError:
            raise
        except Exception as err:  # Lark's lexer is not what this code expects
            raise UnsupportedError(str(err)) from err
        self.lexers[state] = entry
        return entry

    def _state_lexer(self, basic: Any) -> _Lexer:
        from lark.lexer import UnlessCallback

        if basic.ignore_types != self.ignore or basic.user_callbacks:
            raise UnsupportedError("lexer callbacks")
        terminals, callbacks = _scanner_terminals(basic)
        alternatives = "|".join(f"(?P<{t.name}>{t.pattern.to_regexp()})"
                                for t in terminals if t.name not in self.ignore)
        rx = re.compile(f"{self.skip}(?:{alternatives})", self.flags)
        keywords: dict[str, dict[str, str]] = {}
        for name, callback in callbacks.items():
            if type(callback) is not UnlessCallback:
                raise UnsupportedError("lexer callback")
            table = {}
            for t in callback.scanner.terminals:
                if t.pattern.type != "str" or t.pattern.flags:
                    raise UnsupportedError("keyword")
                table[t.pattern.value] = t.name
            keywords[name] = table
        # what Lark's lexer says it expected where nothing matches
        allowed = frozenset(t.name for t in terminals) - self.ignore or {"<END-OF-FILE>"}
        return rx.match, keywords or None, frozenset(allowed)

    def lexer_error(self, state: int, text: str, pos: int) -> Exception:
        """The error Lark's contextual lexer raises where no terminal of parser
        state ``state`` matches the text at ``pos`` (ignored text skipped): the
        token the lexer of all terminals finds there, as an unexpected token,
        or else the character, each with the terminals the state allowed."""
        from lark import Token
        from lark.exceptions import UnexpectedCharacters, UnexpectedToken

        allowed = set(self.lexer(state)[2])
        if self._root is None:
            self._root = self._state_lexer(self.contextual.root_lexer)
        match, keywords, _ = self._root
        m = match(text, pos)
        if m is None:
            line = text.count("\n", 0, pos) + 1
            column = pos - text.rfind("\n", 0, pos)
            return UnexpectedCharacters(  # type: ignore[no-untyped-call]
                text, pos, line, column, allowed=allowed)
        kind = m.lastgroup
        begin, end = m.span(kind)
        value = text[begin:end]
        if keywords is not None and kind in keywords:
            kind = keywords[kind].get(value, kind)
        return UnexpectedToken(  # type: ignore[no-untyped-call]
            Token(kind, value, begin, end_pos=end), allowed)

    # ---- callbacks ------------------------------------------------------------
    def _factories(self, rules: list[Any]
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
        plans = {id(rule): self._plan(rule) for rule in rules}

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
                    raise UnsupportedError("empty rule with a span")
                for sym in (rule.expansion[0], rule.expansion[-1]):
                    if not sym.is_term and not extent_ok(sym.name):
                        raise UnsupportedError(f"no extent for {sym.name}")
            if kind == "unit":  # the one value passes through: no callback at all (drive)
                chosen.append(_unit)
                continue
            body = callback_body(_shape(rule), kind, method in Builder.NOT_OWN_SPAN, include,
                                 tail, needs_extent)
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
            raise UnsupportedError("rule options")
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
                raise UnsupportedError("inlined ?rule")
            return "inline", None, include, tail
        if options.expand1 and not rule.alias and width == 1:
            if not include or include[0][1]:
                raise UnsupportedError("single child that is not a value")
            kind = "unit" if len(expansion) == 1 else "paren"
            return kind, None, include, tail
        method = rule.alias or rule.origin.name
        if method.startswith("_") or not callable(getattr(Builder, method, None)):
            raise UnsupportedError(f"no builder method for {method}")
        return "call", method, include, tail

    # ---- parsing --------------------------------------------------------------
    def parse(self, source: SourceFile, *, outline: bool = False,
              text: str | None = None) -> lark.Tree[lark.Token]:
        """The tree of ``source``, its module built while parsing (its rules as
        outlines, with ``outline``); ``text``, when given, is parsed in place of
        the source's text (the same text with parts blanked, offsets kept).

        Raises :class:`StoppedError` at a syntax error or where the parser's stack
        would grow beyond :data:`MAX_STACK`, and :class:`UnsupportedError`
        where the fast path meets something it does not handle.
        """
        from lark import Tree

        builder = Builder(source, outline=outline)
        decls = self._run(source.text if text is None else text, 0,
                          self._callbacks(builder), builder.long_token)
        tree = Tree("start", list(decls))
        # what linnix.language.builder.build returns for this tree
        tree.__dict__["built"] = (source, module(source, decls), builder.problems)
        return tree

    def declaration_parser(self, source: SourceFile) -> Callable[[int, int], Any]:
        """A function building the declaration of ``source`` at ``[start, end)``
        again, in full: one that parsed there before (its problems reported then)."""
        builder = Builder(source)
        callbacks = self._callbacks(builder)

        def parse(start: int, end: int) -> Any:
            decls = self._run(source.text, start, callbacks, builder.long_token, end)
            builder.problems.clear()
            return decls[0]

        return parse

    def _callbacks(self, builder: Builder) -> list[Callable[..., Any] | None]:
        """The callbacks building with ``builder``, in the order of the table's reductions."""
        return [factory(getattr(builder, method) if method else None, builder.extents)
                for _, method, factory in self.factories]

    def recognize(self, text: str, start: int) -> None:
        """Parse ``text`` from offset ``start``, where a declaration may begin,
        building nothing; raises like :meth:`parse`."""
        if self._recognizers is None:
            self._recognizers = self._recognizing_callbacks()
        self._run(text, start, self._recognizers, None)

    def _run(self, text: str, pos: int, callbacks: list[Callable[..., Any] | None],
             long_token: Callable[[Any], None] | None, stop: int | None = None,
             probe: bool = False) -> Any:
        """Lex and parse ``text`` from ``pos`` to ``stop`` (its end by default):
        the value of the start rule (with ``probe``, the stack of states there)."""
        from lark.exceptions import UnexpectedInput

        values: list[Any] = []
        stop = len(text) if stop is None else stop
        long = MAX_TOKEN if long_token is not None else len(text)
        try:
            return drive(self.table, self, text, pos, stop, callbacks, values, long,
                         long_token or _ignore, probe)
        except (UnexpectedInput, TooDeepError) as err:
            found = _progress(values, err)
            values.clear()  # let what was built go: recovery parses again
            err.__traceback__ = None  # and the driver's frame, which holds some of it
            raise StoppedError(err, *found) from None

    def _recognizing_callbacks(self) -> list[Callable[..., Any] | None]:
        """Callbacks that build nothing: a declaration's value is the offset it
        starts at (its first token's), lists of them are lists, the rest None."""
        out: list[Callable[..., Any] | None] = []
        for rule, method, factory in self.factories:
            kind = self._plan(rule)[0]
            if method in Builder.MAY_DROP and rule.expansion and rule.expansion[0].is_term:
                out.append(_first_offset)
            elif kind == "inline":
                out.append(factory(None, {}))
            else:
                out.append(_nothing)
        return out


def _first_offset(values: list[Any]) -> int:
    return int(values[0].start_pos)


def _nothing(values: list[Any]) -> None:
    return None


def _ignore(token: Any) -> None:
    return None


def _progress(values: list[Any], err: Exception) -> tuple[int, list[int]]:
    """Where the declaration an error is in begins, and where each declaration
    before it began, from the parser's stack of values when it stopped: the
    list of declarations made so far (built ones, offsets while recognising,
    None for a dropped one), then the tokens and values of the one in progress,
    which starts with a token."""
    done = values[0] if values and type(values[0]) is list else []
    starts = [d if type(d) is int else d.span.start for d in done if d is not None]
    for v in values:
        if type(v) is _Token:
            return v.start_pos, starts
    # between declarations: the error is where the next one would begin
    if isinstance(err, TooDeepError):
        return err.pos, starts
    token = getattr(err, "token", None)
    return (err.pos_in_stream if token is None else token.start_pos), starts  # type: ignore[attr-defined]


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


def _shape(rule: Any) -> tuple[int, bool, bool]:
    """What the callback of a rule depends on: the length of its expansion and
    whether it begins and ends with a token."""
    expansion = rule.expansion
    if not expansion:
        return 0, False, False
    return len(expansion), expansion[0].is_term, expansion[-1].is_term


def _method(fn: Callable[..., Any], ext: object) -> Callable[..., Any]:
    return fn


def _unit(fn: object, ext: object) -> None:
    """A rule of one value, which is its own: the driver leaves it in place."""
    return None


def _check_skippable(ignored: list[str], others: list[str]) -> None:
    """Skipping ignored text before matching a token is exact only when no other
    terminal can start with a character an ignored terminal starts with."""
    first_ignored: set[str] = set()
    for rx in ignored:
        chars = first_chars(rx)
        if chars is None:
            raise UnsupportedError(f"cannot tell how {rx} starts")
        first_ignored |= chars
    for rx in others:
        chars = first_chars(rx)
        if chars is None or chars & first_ignored:
            raise UnsupportedError(f"{rx} may start like ignored text")

"""Turn what the parser recognised into :mod:`linnix.language.nodes`: shape only, no judgement.

:class:`Builder` has one method per grammar rule (or alias), named like it.
Each takes the rule's children as Lark would put them in a tree (anonymous
keyword tokens dropped, ``[x]`` placeholders as None, ``_rule`` children
inlined) and the offsets ``[start, end)`` that the rule covers, and returns
the node.  The same methods serve two drivers:

* :func:`linnix.language.grammar.parse` calls them while the LALR parser reduces, so
  no parse tree is ever built (the normal path);
* :func:`build` walks a Lark parse tree with positions (the path taken for a
  tree that was not made by :func:`~linnix.language.grammar.parse`).

Lark's parser does not recurse, so no input depth can exhaust the Python
stack here.  Later stages do recurse, so the builder measures how deep each
expression nests and drops a declaration nested beyond :data:`MAX_DEPTH`,
reporting it (E105).  A declaration holding a number too large for a float
(``1e400`` written out in digits) is dropped the same way (E104), so that no
later stage meets an infinite literal, and so is one holding a literal or a
name longer than its limit (E106: :data:`MAX_STRING` characters between the
quotes of a string, :data:`MAX_TOKEN` for a number or a name), so that no
message or later stage copies megabytes of it.  Malformed string escapes are
reported too (E103); at most :data:`MAX_PROBLEMS` problems are reported per
file.  The methods never raise.
"""

from __future__ import annotations

import math
import re
from typing import Any

from . import nodes as n
from .source import Diagnostic, Level, SourceFile, Span

__all__ = ["MAX_DEPTH", "MAX_PROBLEMS", "MAX_STRING", "MAX_TOKEN", "Builder", "build"]

MAX_DEPTH = 100
MAX_STRING = 65_536  # characters between the quotes of a string literal, as written
MAX_TOKEN = 1_024  # characters of a number (its unit included) or a name
# Problems reported per file: one costs a few hundred bytes and can be had for
# two characters of input (an unknown escape), so they are not kept without end.
MAX_PROBLEMS = 100
_QUANTITY = re.compile(r"([0-9]+(?:\.[0-9]+)?)(.*)", re.DOTALL)
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}
_ESCAPE = re.compile(r"\\(.)")
# The kinds of token whose length is limited (E106), with the word for them; a
# token of another kind is never longer than a keyword.
_LIMITED = {"STRING": "string", "NUMBER": "number", "QUANTITY": "number", "NAME": "name",
            "SIGNAL": "name"}
_Kids = list[Any]  # (the Builder's "list" method shadows the builtin inside the class)


class Builder:
    """One instance per file; ``problems`` collects E103/E104/E105 diagnostics.

    A token here is anything with ``type``, ``value``, ``start_pos`` and
    ``end_pos`` (Lark's tokens, or the parser's lighter ones).
    """

    # Methods whose result does not cover exactly ``[start, end)`` of the rule
    # (it has no span, or a span of its own): the parser records the extent of
    # their result separately, since a parent's span starts at its first
    # child's extent and ends at its last child's.
    NOT_OWN_SPAN = frozenset({"for_clause", "action_args", "cooldown_by"})
    # Methods that may drop what they build (returning None).
    MAY_DROP = frozenset({"include", "let", "macro", "rule_line", "rule_block", "test"})
    # Methods that never look at ``start`` and ``end`` (which default to 0: the
    # parser may call them with the children alone).
    SPANLESS = frozenset({
        "start", "for_clause", "action_args", "cooldown_by", "number", "quantity", "string",
        "name", "signal",
    })

    def __init__(self, source: SourceFile, *, outline: bool = False) -> None:
        self.source = source
        # a rule, once built and judged, is kept as its outline (n.RuleOutline)
        self.outline = outline
        self.problems: list[Diagnostic] = []
        # id(node) -> (node, depth) for composite expressions; holding the node
        # keeps its id from being reused by a later object while we build.
        self._depth: dict[int, tuple[Any, int]] = {}
        # id(value) -> (start, end, value): the text a value covers where that is
        # more than its span, kept by the parser (linnix.language._lark) for
        # the parent it builds next
        self.extents: dict[int, tuple[int, int, Any]] = {}
        # a literal of the declaration being built was reported unusable (E104,
        # E106): the declaration is dropped when it is complete
        self._spoiled = False

    # ---- helpers -------------------------------------------------------------
    def _report(self, problem: Diagnostic) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)

    def _tspan(self, tok: Any) -> Span:
        return Span(self.source, tok.start_pos, tok.end_pos)

    def _depth_of(self, node: Any) -> int:
        entry = self._depth.get(id(node))
        return entry[1] if entry is not None else 1

    def _nest1(self, node: Any, kid: Any) -> Any:
        """``node`` with one sub-expression: one level deeper than ``kid``."""
        entry = self._depth.get(id(kid))
        self._depth[id(node)] = (node, 2 if entry is None else 1 + entry[1])
        return node

    def _nest2(self, node: Any, left: Any, right: Any) -> Any:
        """``node`` with two sub-expressions: one level deeper than the deeper."""
        depth = self._depth
        a = depth.get(id(left))
        b = depth.get(id(right))
        da = 1 if a is None else a[1]
        db = 1 if b is None else b[1]
        depth[id(node)] = (node, 1 + (da if da > db else db))
        return node

    def _nest(self, node: Any, kids: tuple[Any, ...]) -> Any:
        deepest = max((self._depth_of(k) for k in kids), default=0)
        if deepest:
            self._depth[id(node)] = (node, 1 + deepest)
        return node

    def _shallow(self, decl: Any, *exprs: Any) -> Any:
        """The declaration, or None when an expression nests too deeply (E105) or
        it holds a literal already reported unusable (E104, E106).

        Called when a declaration is complete: what was kept about its parts
        (depths, extents) is not needed again and is let go, so that it does
        not grow with the file.
        """
        depth = self._depth
        deepest = 1
        for e in exprs:
            if e is not None:
                entry = depth.get(id(e))
                if entry is not None and entry[1] > deepest:
                    deepest = entry[1]
        depth.clear()
        self.extents.clear()
        if self._spoiled:
            # reported since the last declaration was complete: inside this one
            self._spoiled = False
            return None
        if deepest > MAX_DEPTH:
            self._report(Diagnostic(
                "E105", Level.ERROR,
                f"expression nested too deeply ({deepest} levels; the limit is {MAX_DEPTH})",
                decl.span))
            return None
        return decl

    def long_token(self, tok: Any) -> None:
        """Report ``tok`` if it is longer than its kind allows (E106).

        The parser calls this after it has taken a token longer than
        :data:`MAX_TOKEN` characters (a Lark tree walk, when it meets one).
        """
        what = _LIMITED.get(tok.type)
        if what is None:
            return
        size = tok.end_pos - tok.start_pos
        limit = MAX_TOKEN
        if what == "string":
            size -= 2  # the quotes
            limit = MAX_STRING
        if size <= limit:
            return
        self._spoiled = True
        self._report(Diagnostic(
            "E106", Level.ERROR, f"{what} too long ({size} characters; the limit is {limit})",
            self._tspan(tok)))

    def _string(self, tok: Any) -> n.String:
        span = Span(self.source, tok.start_pos, tok.end_pos)
        if tok.end_pos - tok.start_pos - 2 > MAX_STRING:
            return n.String("", span)  # reported (E106): its declaration is dropped
        raw = tok.value[1:-1]
        if "\\" not in raw:
            return n.String(raw, span)

        def unescape(m: re.Match[str]) -> str:
            ch = m.group(1)
            if ch in _ESCAPES:
                return _ESCAPES[ch]
            start = span.start + 1 + m.start()
            self._report(Diagnostic(
                "E103", Level.ERROR, f"unknown escape '\\{ch}' in string",
                self.source.span(start, start + 2), hint='use \\" \\\\ \\n or \\t'))
            return ch

        return n.String(_ESCAPE.sub(unescape, raw), span)

    # ---- declarations ----------------------------------------------------------
    def start(self, kids: _Kids, start: int = 0, end: int = 0) -> tuple[Any, ...]:
        return tuple(k for k in kids if k is not None)

    def include(self, kids: _Kids, start: int, end: int) -> n.Include | None:
        return self._shallow(  # type: ignore[no-any-return]
            n.Include(self._string(kids[0]), Span(self.source, start, end)))

    def let(self, kids: _Kids, start: int, end: int) -> n.Let | None:
        name, value = kids
        return self._shallow(  # type: ignore[no-any-return]
            n.Let(name.value, value, Span(self.source, start, end), self._tspan(name)), value)

    def macro(self, kids: _Kids, start: int, end: int) -> n.Macro | None:
        name, expr = kids
        return self._shallow(  # type: ignore[no-any-return]
            n.Macro(name.value, expr, Span(self.source, start, end), self._tspan(name)), expr)

    def rule_line(self, kids: _Kids, start: int, end: int) -> n.Rule | n.RuleOutline | None:
        name, on, expr, for_ = kids
        span = Span(self.source, start, end)
        when_span = expr.span.to(for_.span) if for_ is not None else expr.span
        when = n.When(expr, for_, when_span)
        rule = n.Rule(name.value, (when,) if on is None else (on, when), True, span,
                      self._tspan(name))
        return self._kept(self._shallow(rule, expr))

    def rule_block(self, kids: _Kids, start: int, end: int) -> n.Rule | n.RuleOutline | None:
        name, *clauses = kids
        exprs = [e for c in clauses for e in _clause_exprs(c)]
        rule = n.Rule(name.value, tuple(clauses), False, Span(self.source, start, end),
                      self._tspan(name))
        return self._kept(self._shallow(rule, *exprs))

    def _kept(self, rule: n.Rule | None) -> n.Rule | n.RuleOutline | None:
        if rule is None or not self.outline:
            return rule
        return n.RuleOutline(rule.name, rule.one_line, rule.span, rule.name_span)

    # ---- clauses ------------------------------------------------------------
    def description(self, kids: _Kids, start: int, end: int) -> n.Description:
        return n.Description(self._string(kids[0]), Span(self.source, start, end))

    def runbook(self, kids: _Kids, start: int, end: int) -> n.Runbook:
        return n.Runbook(self._string(kids[0]), Span(self.source, start, end))

    def when(self, kids: _Kids, start: int, end: int) -> n.When:
        return n.When(kids[0], kids[1], Span(self.source, start, end))

    def unless(self, kids: _Kids, start: int, end: int) -> n.Unless:
        return n.Unless(kids[0], Span(self.source, start, end))

    def boundary(self, kids: _Kids, start: int, end: int) -> n.Boundary:
        return n.Boundary(kids[0], Span(self.source, start, end))

    def clear(self, kids: _Kids, start: int, end: int) -> n.Clear:
        return n.Clear(kids[0], kids[1], Span(self.source, start, end))

    def for_clause(self, kids: _Kids, start: int = 0, end: int = 0) -> Any:
        return kids[0]

    def keep_firing_for(self, kids: _Kids, start: int, end: int) -> n.KeepFiringFor:
        return n.KeepFiringFor(kids[0], Span(self.source, start, end))

    def scope(self, kids: _Kids, start: int, end: int) -> n.ScopeClause:
        return n.ScopeClause(kids[0].value, Span(self.source, start, end))

    def severity(self, kids: _Kids, start: int, end: int) -> n.Severity:
        return n.Severity(kids[0].value, Span(self.source, start, end))

    def cooldown(self, kids: _Kids, start: int, end: int) -> n.Cooldown:
        return n.Cooldown(kids[0], Span(self.source, start, end), kids[1] or ())

    def cooldown_by(self, kids: _Kids, start: int = 0, end: int = 0) -> tuple[str, ...]:
        *before, name = kids
        return (*(before[0] if before else ()), name.value)

    def on(self, kids: _Kids, start: int, end: int) -> n.On:
        return n.On(kids[0].value, Span(self.source, start, end))

    def max_rate(self, kids: _Kids, start: int, end: int) -> n.MaxRate:
        rate, op, per = kids
        return n.MaxRate(self._finite(float(rate.value), rate), op.value, per.value,
                         Span(self.source, start, end))

    def labels(self, kids: _Kids, start: int, end: int) -> n.Labels:
        return n.Labels(tuple(k for k in kids if k is not None), Span(self.source, start, end))

    def label(self, kids: _Kids, start: int, end: int) -> n.Label:
        return n.Label(kids[0].value, self._string(kids[1]), Span(self.source, start, end))

    def tags(self, kids: _Kids, start: int, end: int) -> n.Tags:
        return n.Tags(tuple(self._string(k) for k in kids if k is not None),
                      Span(self.source, start, end))

    def message(self, kids: _Kids, start: int, end: int) -> n.Message:
        return n.Message(self._string(kids[0]), Span(self.source, start, end))

    def action(self, kids: _Kids, start: int, end: int) -> n.Action:
        name, args = kids
        return n.Action(name.value, tuple(args or ()), Span(self.source, start, end),
                        self._tspan(name))

    def action_args(self, kids: _Kids, start: int = 0, end: int = 0) -> tuple[Any, ...]:
        return tuple(k for k in kids if k is not None)

    def kwarg(self, kids: _Kids, start: int, end: int) -> n.Kwarg:
        return n.Kwarg(kids[0].value, kids[1], Span(self.source, start, end))

    def mode(self, kids: _Kids, start: int, end: int) -> n.Mode:
        return n.Mode(kids[0].value, Span(self.source, start, end))

    def enabled(self, kids: _Kids, start: int, end: int) -> n.Enabled:
        return n.Enabled(kids[0], Span(self.source, start, end))

    # ---- tests --------------------------------------------------------------
    def test(self, kids: _Kids, start: int, end: int) -> n.Test | None:
        title, *stmts = kids
        return self._shallow(  # type: ignore[no-any-return]
            n.Test(self._string(title), tuple(stmts), Span(self.source, start, end)))

    def trace(self, kids: _Kids, start: int, end: int) -> n.Trace:
        return n.Trace(self._string(kids[0]), Span(self.source, start, end))

    def tick(self, kids: _Kids, start: int, end: int) -> n.Tick:
        return n.Tick(kids[0], Span(self.source, start, end))

    def expect_between(self, kids: _Kids, start: int, end: int) -> n.ExpectBetween:
        rule, state, low, high = kids
        return n.ExpectBetween(rule.value, state.value, low, high,
                               Span(self.source, start, end), self._tspan(rule))

    def expect_pid(self, kids: _Kids, start: int, end: int) -> n.ExpectPid:
        rule, state, pid = kids
        return n.ExpectPid(rule.value, state.value, self._num(pid),
                           Span(self.source, start, end), self._tspan(rule))

    def expect_never(self, kids: _Kids, start: int, end: int) -> n.ExpectNever:
        return n.ExpectNever(kids[0].value, Span(self.source, start, end),
                             self._tspan(kids[0]))

    def expect_count(self, kids: _Kids, start: int, end: int) -> n.ExpectCount:
        rule, _fires, count, _times = kids
        return n.ExpectCount(rule.value, self._num(count), Span(self.source, start, end),
                             self._tspan(rule))

    def expect_action(self, kids: _Kids, start: int, end: int) -> n.ExpectAction:
        _action, name, pid = kids
        return n.ExpectAction(name.value, self._num(pid), Span(self.source, start, end),
                              self._tspan(name))

    # ---- expressions ----------------------------------------------------------
    def _finite(self, value: float, tok: Any) -> float:
        """``value``, or 0 after reporting E104 when it does not fit a float."""
        if math.isfinite(value):
            return value
        span = self._tspan(tok)
        self._spoiled = True
        self._report(Diagnostic(
            "E104", Level.ERROR, "number too large (more than about 1.8 x 10^308)", span))
        return 0.0

    def _num(self, tok: Any) -> n.Number:
        if tok.end_pos - tok.start_pos > MAX_TOKEN:  # reported (E106): not worth converting
            return n.Number(0.0, Span(self.source, tok.start_pos, tok.end_pos))
        value = float(tok.value)
        if value - value != 0.0:  # not finite (inf - inf is nan)
            value = self._finite(value, tok)
        return n.Number(value, Span(self.source, tok.start_pos, tok.end_pos))

    def number(self, kids: _Kids, start: int = 0, end: int = 0) -> n.Number:
        return self._num(kids[0])

    def quantity(self, kids: _Kids, start: int = 0, end: int = 0) -> n.Quantity:
        tok = kids[0]
        if tok.end_pos - tok.start_pos > MAX_TOKEN:  # reported (E106)
            return n.Quantity(0.0, "", Span(self.source, tok.start_pos, tok.end_pos))
        m = _QUANTITY.fullmatch(tok.value)
        assert m is not None  # the QUANTITY terminal guarantees the shape
        value = float(m.group(1))
        if value - value != 0.0:  # not finite
            value = self._finite(value, tok)
        return n.Quantity(value, m.group(2), Span(self.source, tok.start_pos, tok.end_pos))

    def string(self, kids: _Kids, start: int = 0, end: int = 0) -> n.String:
        return self._string(kids[0])

    def true(self, kids: _Kids, start: int, end: int) -> n.Bool:
        return n.Bool(True, Span(self.source, start, end))

    def false(self, kids: _Kids, start: int, end: int) -> n.Bool:
        return n.Bool(False, Span(self.source, start, end))

    def list(self, kids: _Kids, start: int, end: int) -> n.List:
        items = tuple(k for k in kids if k is not None)
        return self._nest(n.List(items, Span(self.source, start, end)), items)  # type: ignore[no-any-return]

    def name(self, kids: _Kids, start: int = 0, end: int = 0) -> n.Name:
        tok = kids[0]
        return n.Name(tok.value, Span(self.source, tok.start_pos, tok.end_pos))

    def attr(self, kids: _Kids, start: int, end: int) -> n.Attr:
        inner, last = kids  # parent.parent.comm: (parent.parent) . comm
        obj = f"{inner.obj}.{inner.attr}" if isinstance(inner, n.Attr) else inner.value
        return n.Attr(obj, last.value, Span(self.source, start, end))

    def call(self, kids: _Kids, start: int, end: int) -> n.Call:
        func, *args = kids
        items = tuple(a for a in args if a is not None)
        node = n.Call(func.value, items, Span(self.source, start, end), self._tspan(func))
        return self._nest(node, items)  # type: ignore[no-any-return]

    def call_unless(self, kids: _Kids, start: int, end: int) -> n.Call:
        func, arg, unless = kids
        node = n.Call(func.value, (arg,), Span(self.source, start, end), self._tspan(func),
                      unless)
        return self._nest2(node, arg, unless)  # type: ignore[no-any-return]

    def signal(self, kids: _Kids, start: int = 0, end: int = 0) -> n.Signal:
        return n.Signal(kids[0].value, self._tspan(kids[0]))

    def _flat(self, cls: type[Any], kids: _Kids, start: int, end: int) -> Any:
        # A chain "a and b and c ..." arrives one operand at a time; its depth is
        # kept up to date from the absorbed node's (one level above its items)
        # rather than recomputed over every item, which made long chains quadratic.
        items: list[Any] = []
        deepest = 0
        depth = self._depth
        for k in kids:
            if type(k) is cls:
                items.extend(k.items)
                entry = depth.pop(id(k), None)  # absorbed: nothing asks about it again
                d = (1 if entry is None else entry[1]) - 1
            else:
                items.append(k)
                entry = depth.get(id(k))
                d = 1 if entry is None else entry[1]
            deepest = max(deepest, d)
        node = cls(tuple(items), Span(self.source, start, end))
        depth[id(node)] = (node, 1 + deepest)
        return node

    def or_(self, kids: _Kids, start: int, end: int) -> n.Or:
        return self._flat(n.Or, kids, start, end)  # type: ignore[no-any-return]

    def and_(self, kids: _Kids, start: int, end: int) -> n.And:
        return self._flat(n.And, kids, start, end)  # type: ignore[no-any-return]

    def not_(self, kids: _Kids, start: int, end: int) -> n.Not:
        return self._nest1(n.Not(kids[0], Span(self.source, start, end)), kids[0])  # type: ignore[no-any-return]

    def compare(self, kids: _Kids, start: int, end: int) -> n.Compare:
        left, op, right = kids
        node = n.Compare(op.value, left, right, Span(self.source, start, end))
        return self._nest2(node, left, right)  # type: ignore[no-any-return]

    def in_(self, kids: _Kids, start: int, end: int) -> n.In:
        node = n.In(kids[0], kids[1], False, Span(self.source, start, end))
        return self._nest2(node, kids[0], kids[1])  # type: ignore[no-any-return]

    def not_in(self, kids: _Kids, start: int, end: int) -> n.In:
        node = n.In(kids[0], kids[1], True, Span(self.source, start, end))
        return self._nest2(node, kids[0], kids[1])  # type: ignore[no-any-return]

    def str_op(self, kids: _Kids, start: int, end: int) -> n.StrOp:
        left, op, right = kids
        node = n.StrOp(op.value, left, right, Span(self.source, start, end))
        return self._nest2(node, left, right)  # type: ignore[no-any-return]

    def matches(self, kids: _Kids, start: int, end: int) -> n.Matches:
        node = n.Matches(kids[0], self._string(kids[1]), Span(self.source, start, end))
        return self._nest1(node, kids[0])  # type: ignore[no-any-return]

    def glob(self, kids: _Kids, start: int, end: int) -> n.Glob:
        node = n.Glob(kids[0], self._string(kids[1]), Span(self.source, start, end))
        return self._nest1(node, kids[0])  # type: ignore[no-any-return]

    def in_cidr(self, kids: _Kids, start: int, end: int) -> n.InCidr:
        node = n.InCidr(kids[0], self._string(kids[1]), Span(self.source, start, end))
        return self._nest1(node, kids[0])  # type: ignore[no-any-return]

    def is_private(self, kids: _Kids, start: int, end: int) -> n.IsPrivate:
        node = n.IsPrivate(kids[0], Span(self.source, start, end))
        return self._nest1(node, kids[0])  # type: ignore[no-any-return]

    def arith(self, kids: _Kids, start: int, end: int) -> n.Arith:
        left, op, right = kids
        node = n.Arith(op.value, left, right, Span(self.source, start, end))
        return self._nest2(node, left, right)  # type: ignore[no-any-return]

    def neg(self, kids: _Kids, start: int, end: int) -> n.Neg:
        return self._nest1(n.Neg(kids[0], Span(self.source, start, end)), kids[0])  # type: ignore[no-any-return]


def _clause_exprs(clause: Any) -> list[Any]:
    if isinstance(clause, (n.When, n.Unless, n.Boundary, n.Clear)):
        return [clause.expr]
    if isinstance(clause, n.Enabled):
        return [clause.value]
    if isinstance(clause, n.Action):
        return [a.value if isinstance(a, n.Kwarg) else a for a in clause.args]
    return []


def module(source: SourceFile, decls: tuple[Any, ...]) -> n.Module:
    """The module node of a file whose declarations are built."""
    return n.Module(source.path, decls, source.span(0, len(source.text)))


def build(source: SourceFile, tree: Any) -> tuple[n.Module, list[Diagnostic]]:
    """The module for one parsed file, and any E103-E106 problems found.

    ``tree`` is what :func:`linnix.language.grammar.parse` returned for ``source`` (the
    module was built while parsing), or any Lark tree of the grammar parsed
    with positions (built here).
    """
    built = getattr(tree, "built", None)
    if built is not None and built[0] is source:
        return built[1], list(built[2])
    builder = Builder(source)
    decls = _walk(builder, tree)
    return module(source, decls), builder.problems


def _walk(builder: Builder, tree: Any) -> Any:
    """Build from a Lark tree, children before parents and left to right (the
    order in which the parser reduces), without recursion."""
    from lark import Tree

    postfix: list[Any] = []
    todo = [tree]
    while todo:
        t = todo.pop()
        postfix.append(t)
        if isinstance(t, Tree):
            todo += t.children
    stack: list[Any] = []
    for x in reversed(postfix):
        if not isinstance(x, Tree):
            if x is not None and x.end_pos - x.start_pos > MAX_TOKEN:
                builder.long_token(x)  # where the parser would report it: once it is taken
            stack.append(x)
            continue
        size = len(x.children)
        kids = stack[-size:] if size else []
        if size:
            del stack[-size:]
        meta = x.meta
        start, end = (0, 0) if meta.empty else (meta.start_pos, meta.end_pos)
        stack.append(getattr(builder, x.data)(kids, start, end))
    return stack[-1]

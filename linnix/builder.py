"""Turn Lark's parse tree into :mod:`linnix.nodes`: shape only, no judgement.

The transformer is Lark's non-recursive one, so no input depth can exhaust the
Python stack here.  Later stages do recurse, so the builder measures how deep
each expression nests and drops a declaration nested beyond
:data:`MAX_DEPTH`, reporting it (E105).  Malformed string escapes are reported
the same way (E103).  Callbacks never raise: Lark would wrap the exception.
"""

from __future__ import annotations

import re
from typing import Any

from lark import Token
from lark.tree import Meta
from lark.visitors import Transformer_NonRecursive, v_args

from . import nodes as n
from .source import Diagnostic, Level, SourceFile, Span

__all__ = ["MAX_DEPTH", "build"]

MAX_DEPTH = 100
_QUANTITY = re.compile(r"([0-9]+(?:\.[0-9]+)?)(.*)", re.DOTALL)
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}
_ESCAPE = re.compile(r"\\(.)")
_Kids = list[Any]  # (the Builder's "list" method shadows the builtin inside the class)


@v_args(meta=True)
class Builder(Transformer_NonRecursive):  # type: ignore[type-arg]
    """One instance per file; ``problems`` collects E103/E105 diagnostics."""

    def __init__(self, source: SourceFile) -> None:
        super().__init__()
        self.source = source
        self.problems: list[Diagnostic] = []
        # id(node) -> (node, depth) for composite expressions; holding the node
        # keeps its id from being reused by a later object while we build.
        self._depth: dict[int, tuple[Any, int]] = {}

    # ---- helpers -------------------------------------------------------------
    def _span(self, meta: Meta) -> Span:
        if getattr(meta, "empty", True):
            return self.source.whole()
        return Span(self.source, meta.start_pos, meta.end_pos, meta.line, meta.column,
                    meta.end_line, meta.end_column)

    def _tspan(self, tok: Token) -> Span:
        return Span(self.source, tok.start_pos or 0, tok.end_pos or 0, tok.line or 1,
                    tok.column or 1, tok.end_line or 1, tok.end_column or 1)

    def _depth_of(self, node: Any) -> int:
        entry = self._depth.get(id(node))
        return entry[1] if entry is not None else 1

    def _nest(self, node: Any, *kids: Any) -> Any:
        depth = 1 + max((self._depth_of(k) for k in kids), default=0)
        if depth > 1:
            self._depth[id(node)] = (node, depth)
        return node

    def _shallow(self, decl: Any, *exprs: Any) -> Any:
        """The declaration, or None (with E105) when an expression nests too deeply."""
        deepest = max((self._depth_of(e) for e in exprs if e is not None), default=1)
        if deepest > MAX_DEPTH:
            self.problems.append(Diagnostic(
                "E105", Level.ERROR,
                f"expression nested too deeply ({deepest} levels; the limit is {MAX_DEPTH})",
                decl.span))
            return None
        return decl

    def _string(self, tok: Token) -> n.String:
        raw = str(tok)[1:-1]
        span = self._tspan(tok)

        def unescape(m: re.Match[str]) -> str:
            ch = m.group(1)
            if ch in _ESCAPES:
                return _ESCAPES[ch]
            start = span.start + 1 + m.start()
            self.problems.append(Diagnostic(
                "E103", Level.ERROR, f"unknown escape '\\{ch}' in string",
                self.source.span(start, start + 2), hint='use \\" \\\\ \\n or \\t'))
            return ch

        value = _ESCAPE.sub(unescape, raw) if "\\" in raw else raw
        return n.String(value, span)

    # ---- declarations ----------------------------------------------------------
    def start(self, meta: Meta, kids: _Kids) -> tuple[Any, ...]:
        return tuple(k for k in kids if k is not None)

    def include(self, meta: Meta, kids: _Kids) -> n.Include:
        return n.Include(self._string(kids[0]), self._span(meta))

    def let(self, meta: Meta, kids: _Kids) -> n.Let | None:
        name, value = kids
        return self._shallow(  # type: ignore[no-any-return]
            n.Let(str(name), value, self._span(meta), self._tspan(name)), value)

    def macro(self, meta: Meta, kids: _Kids) -> n.Macro | None:
        name, expr = kids
        return self._shallow(  # type: ignore[no-any-return]
            n.Macro(str(name), expr, self._span(meta), self._tspan(name)), expr)

    def rule_line(self, meta: Meta, kids: _Kids) -> n.Rule | None:
        name, expr, for_ = kids
        span = self._span(meta)
        when_span = expr.span.to(for_.span) if for_ is not None else expr.span
        rule = n.Rule(str(name), (n.When(expr, for_, when_span),), True, span,
                      self._tspan(name))
        return self._shallow(rule, expr)  # type: ignore[no-any-return]

    def rule_block(self, meta: Meta, kids: _Kids) -> n.Rule | None:
        name, *clauses = kids
        exprs = [e for c in clauses for e in _clause_exprs(c)]
        rule = n.Rule(str(name), tuple(clauses), False, self._span(meta), self._tspan(name))
        return self._shallow(rule, *exprs)  # type: ignore[no-any-return]

    # ---- clauses ------------------------------------------------------------
    def description(self, meta: Meta, kids: _Kids) -> n.Description:
        return n.Description(self._string(kids[0]), self._span(meta))

    def when(self, meta: Meta, kids: _Kids) -> n.When:
        return n.When(kids[0], kids[1], self._span(meta))

    def unless(self, meta: Meta, kids: _Kids) -> n.Unless:
        return n.Unless(kids[0], self._span(meta))

    def clear(self, meta: Meta, kids: _Kids) -> n.Clear:
        return n.Clear(kids[0], kids[1], self._span(meta))

    def for_clause(self, meta: Meta, kids: _Kids) -> Any:
        return kids[0]

    def keep_firing_for(self, meta: Meta, kids: _Kids) -> n.KeepFiringFor:
        return n.KeepFiringFor(kids[0], self._span(meta))

    def scope(self, meta: Meta, kids: _Kids) -> n.ScopeClause:
        return n.ScopeClause(str(kids[0]), self._span(meta))

    def severity(self, meta: Meta, kids: _Kids) -> n.Severity:
        return n.Severity(str(kids[0]), self._span(meta))

    def cooldown(self, meta: Meta, kids: _Kids) -> n.Cooldown:
        return n.Cooldown(kids[0], self._span(meta))

    def labels(self, meta: Meta, kids: _Kids) -> n.Labels:
        return n.Labels(tuple(k for k in kids if k is not None), self._span(meta))

    def label(self, meta: Meta, kids: _Kids) -> n.Label:
        return n.Label(str(kids[0]), self._string(kids[1]), self._span(meta))

    def tags(self, meta: Meta, kids: _Kids) -> n.Tags:
        return n.Tags(tuple(self._string(k) for k in kids if k is not None), self._span(meta))

    def message(self, meta: Meta, kids: _Kids) -> n.Message:
        return n.Message(self._string(kids[0]), self._span(meta))

    def action(self, meta: Meta, kids: _Kids) -> n.Action:
        name, args = kids
        return n.Action(str(name), tuple(args or ()), self._span(meta), self._tspan(name))

    def action_args(self, meta: Meta, kids: _Kids) -> tuple[Any, ...]:
        return tuple(k for k in kids if k is not None)

    def kwarg(self, meta: Meta, kids: _Kids) -> n.Kwarg:
        return n.Kwarg(str(kids[0]), kids[1], self._span(meta))

    def mode(self, meta: Meta, kids: _Kids) -> n.Mode:
        return n.Mode(str(kids[0]), self._span(meta))

    def enabled(self, meta: Meta, kids: _Kids) -> n.Enabled:
        return n.Enabled(kids[0], self._span(meta))

    # ---- tests --------------------------------------------------------------
    def test(self, meta: Meta, kids: _Kids) -> n.Test:
        title, *stmts = kids
        return n.Test(self._string(title), tuple(stmts), self._span(meta))

    def trace(self, meta: Meta, kids: _Kids) -> n.Trace:
        return n.Trace(self._string(kids[0]), self._span(meta))

    def tick(self, meta: Meta, kids: _Kids) -> n.Tick:
        return n.Tick(kids[0], self._span(meta))

    def expect_between(self, meta: Meta, kids: _Kids) -> n.ExpectBetween:
        rule, state, low, high = kids
        return n.ExpectBetween(str(rule), str(state), low, high, self._span(meta),
                               self._tspan(rule))

    def expect_pid(self, meta: Meta, kids: _Kids) -> n.ExpectPid:
        rule, state, pid = kids
        return n.ExpectPid(str(rule), str(state), self._num(pid), self._span(meta),
                           self._tspan(rule))

    def expect_never(self, meta: Meta, kids: _Kids) -> n.ExpectNever:
        return n.ExpectNever(str(kids[0]), self._span(meta), self._tspan(kids[0]))

    def expect_count(self, meta: Meta, kids: _Kids) -> n.ExpectCount:
        rule, _fires, count, _times = kids
        return n.ExpectCount(str(rule), self._num(count), self._span(meta), self._tspan(rule))

    def expect_action(self, meta: Meta, kids: _Kids) -> n.ExpectAction:
        _action, name, pid = kids
        return n.ExpectAction(str(name), self._num(pid), self._span(meta), self._tspan(name))

    # ---- expressions ----------------------------------------------------------
    def _num(self, tok: Token) -> n.Number:
        return n.Number(float(tok), self._tspan(tok))

    def number(self, meta: Meta, kids: _Kids) -> n.Number:
        return self._num(kids[0])

    def quantity(self, meta: Meta, kids: _Kids) -> n.Quantity:
        tok = kids[0]
        m = _QUANTITY.fullmatch(str(tok))
        assert m is not None  # the QUANTITY terminal guarantees the shape
        return n.Quantity(float(m.group(1)), m.group(2), self._tspan(tok))

    def string(self, meta: Meta, kids: _Kids) -> n.String:
        return self._string(kids[0])

    def true(self, meta: Meta, kids: _Kids) -> n.Bool:
        return n.Bool(True, self._span(meta))

    def false(self, meta: Meta, kids: _Kids) -> n.Bool:
        return n.Bool(False, self._span(meta))

    def list(self, meta: Meta, kids: _Kids) -> n.List:
        items = tuple(k for k in kids if k is not None)
        return self._nest(n.List(items, self._span(meta)), *items)  # type: ignore[no-any-return]

    def name(self, meta: Meta, kids: _Kids) -> n.Name:
        return n.Name(str(kids[0]), self._tspan(kids[0]))

    def attr(self, meta: Meta, kids: _Kids) -> n.Attr:
        return n.Attr(str(kids[0]), str(kids[1]), self._span(meta))

    def call(self, meta: Meta, kids: _Kids) -> n.Call:
        func, *args = kids
        items = tuple(a for a in args if a is not None)
        node = n.Call(str(func), items, self._span(meta), self._tspan(func))
        return self._nest(node, *items)  # type: ignore[no-any-return]

    def signal(self, meta: Meta, kids: _Kids) -> n.Signal:
        return n.Signal(str(kids[0]), self._tspan(kids[0]))

    def _flat(self, cls: type[Any], meta: Meta, kids: _Kids) -> Any:
        items: list[Any] = []
        for k in kids:
            items.extend(k.items if type(k) is cls else (k,))
        return self._nest(cls(tuple(items), self._span(meta)), *items)

    def or_(self, meta: Meta, kids: _Kids) -> n.Or:
        return self._flat(n.Or, meta, kids)  # type: ignore[no-any-return]

    def and_(self, meta: Meta, kids: _Kids) -> n.And:
        return self._flat(n.And, meta, kids)  # type: ignore[no-any-return]

    def not_(self, meta: Meta, kids: _Kids) -> n.Not:
        return self._nest(n.Not(kids[0], self._span(meta)), kids[0])  # type: ignore[no-any-return]

    def compare(self, meta: Meta, kids: _Kids) -> n.Compare:
        left, op, right = kids
        node = n.Compare(str(op), left, right, self._span(meta))
        return self._nest(node, left, right)  # type: ignore[no-any-return]

    def in_(self, meta: Meta, kids: _Kids) -> n.In:
        node = n.In(kids[0], kids[1], False, self._span(meta))
        return self._nest(node, *kids)  # type: ignore[no-any-return]

    def not_in(self, meta: Meta, kids: _Kids) -> n.In:
        node = n.In(kids[0], kids[1], True, self._span(meta))
        return self._nest(node, *kids)  # type: ignore[no-any-return]

    def str_op(self, meta: Meta, kids: _Kids) -> n.StrOp:
        left, op, right = kids
        node = n.StrOp(str(op), left, right, self._span(meta))
        return self._nest(node, left, right)  # type: ignore[no-any-return]

    def matches(self, meta: Meta, kids: _Kids) -> n.Matches:
        node = n.Matches(kids[0], self._string(kids[1]), self._span(meta))
        return self._nest(node, kids[0])  # type: ignore[no-any-return]

    def glob(self, meta: Meta, kids: _Kids) -> n.Glob:
        node = n.Glob(kids[0], self._string(kids[1]), self._span(meta))
        return self._nest(node, kids[0])  # type: ignore[no-any-return]

    def arith(self, meta: Meta, kids: _Kids) -> n.Arith:
        left, op, right = kids
        node = n.Arith(str(op), left, right, self._span(meta))
        return self._nest(node, left, right)  # type: ignore[no-any-return]

    def neg(self, meta: Meta, kids: _Kids) -> n.Neg:
        return self._nest(n.Neg(kids[0], self._span(meta)), kids[0])  # type: ignore[no-any-return]


def _clause_exprs(clause: Any) -> list[Any]:
    if isinstance(clause, (n.When, n.Unless, n.Clear)):
        return [clause.expr]
    if isinstance(clause, n.Enabled):
        return [clause.value]
    if isinstance(clause, n.Action):
        return [a.value if isinstance(a, n.Kwarg) else a for a in clause.args]
    return []


def build(source: SourceFile, tree: Any) -> tuple[n.Module, list[Diagnostic]]:
    """The module for one parsed file, and any E103/E105 problems found."""
    builder = Builder(source)
    decls = builder.transform(tree)
    module = n.Module(source.path, tuple(decls), source.span(0, len(source.text)))
    return module, builder.problems


"""The abstract syntax tree of ``.lnx`` files: small frozen classes, each with a span.

Class names follow the grammar's rule names (``rule_block`` → :class:`Rule`,
``compare`` → :class:`Compare`).  Nodes carry shape only; what they mean is
decided by the checker.  Spans are excluded from equality so that two trees
with the same structure compare equal wherever they came from, and nodes are
changed with :func:`attrs.evolve`.
"""

from __future__ import annotations

import attrs

from .source import Span

__all__ = [
    "Action", "And", "Arith", "Attr", "Bool", "Boundary", "Call", "Clause", "Clear", "Compare",
    "Cooldown", "Decl", "Description", "Enabled", "Expect", "ExpectAction",
    "ExpectBetween", "ExpectCount", "ExpectNever", "ExpectPid", "Expr", "Glob", "In", "InCidr",
    "Include", "IsPrivate", "KeepFiringFor", "Kwarg", "Label", "Labels", "Let", "List", "Macro",
    "Matches", "MaxRate", "Message", "Mode", "Module", "Name", "Neg", "Not", "Number", "On",
    "Or", "Quantity", "Rule", "Runbook", "ScopeClause", "Severity", "Signal", "StrOp",
    "String", "Tags",
    "Test", "Tick", "Trace", "Unless", "When", "children", "span_field",
]


def span_field() -> Span:
    """A span attribute that takes no part in equality or repr."""
    return attrs.field(eq=False, repr=False)  # type: ignore[no-any-return]


# ---- expressions ------------------------------------------------------------

@attrs.frozen
class Number:
    """A bare number: takes the unit of whatever it is compared with."""

    value: float
    span: Span = span_field()


@attrs.frozen
class Quantity:
    """A number with a unit suffix: ``5s``, ``1GiB``, ``90%``."""

    value: float
    unit: str
    span: Span = span_field()


@attrs.frozen
class String:
    """A string literal, escapes already resolved."""

    value: str
    span: Span = span_field()


@attrs.frozen
class Bool:
    """``true`` or ``false``."""

    value: bool
    span: Span = span_field()


@attrs.frozen
class List:
    """A list literal ``[a, b]``."""

    items: tuple[Expr, ...]
    span: Span = span_field()


@attrs.frozen
class Name:
    """A metric, field, ``let`` constant or ``macro``."""

    id: str
    span: Span = span_field()


@attrs.frozen
class Attr:
    """``parent.NAME``: a field of the parent process; ``obj`` is ``parent.parent``
    for the grandparent's, and so on up the tree."""

    obj: str
    attr: str
    span: Span = span_field()


@attrs.frozen
class Call:
    """``f(args)``: a windowed function, or ``top(M)`` as an action target.

    ``unless``: the condition of ``top(M, unless EXPR)``, which leaves out the
    processes for which it holds.
    """

    func: str
    args: tuple[Expr, ...]
    span: Span = span_field()
    func_span: Span = span_field()
    unless: Expr | None = None


@attrs.frozen
class Signal:
    """A signal name such as ``SIGKILL`` (only as an action argument)."""

    name: str
    span: Span = span_field()


@attrs.frozen
class Arith:
    """``+ - * /``."""

    op: str
    left: Expr
    right: Expr
    span: Span = span_field()


@attrs.frozen
class Neg:
    """Unary minus."""

    operand: Expr
    span: Span = span_field()


@attrs.frozen
class Compare:
    """``== != < <= > >=``; false whenever either side has no value."""

    op: str
    left: Expr
    right: Expr
    span: Span = span_field()


@attrs.frozen
class In:
    """``x in LIST`` or, with ``negated``, ``x not in LIST``."""

    left: Expr
    right: Expr
    negated: bool
    span: Span = span_field()


@attrs.frozen
class StrOp:
    """``startswith``, ``endswith``, ``contains``."""

    op: str
    left: Expr
    right: Expr
    span: Span = span_field()


@attrs.frozen
class Matches:
    """``x matches "REGEX"`` (search semantics)."""

    left: Expr
    pattern: String
    span: Span = span_field()


@attrs.frozen
class Glob:
    """``x glob "PATTERN"`` (shell-style, whole string)."""

    left: Expr
    pattern: String
    span: Span = span_field()


@attrs.frozen
class InCidr:
    """``x in_cidr "10.0.0.0/8"``: an address within a network (IPv4 or IPv6)."""

    left: Expr
    cidr: String
    span: Span = span_field()


@attrs.frozen
class IsPrivate:
    """``x is_private``: an address of a private, loopback or link-local network."""

    left: Expr
    span: Span = span_field()


@attrs.frozen
class Not:
    """Boolean negation."""

    operand: Expr
    span: Span = span_field()


@attrs.frozen
class And:
    """Boolean conjunction of two or more operands (chains are kept flat)."""

    items: tuple[Expr, ...]
    span: Span = span_field()


@attrs.frozen
class Or:
    """Boolean disjunction of two or more operands (chains are kept flat)."""

    items: tuple[Expr, ...]
    span: Span = span_field()


Expr = (
    Number | Quantity | String | Bool | List | Name | Attr | Call | Signal | Arith | Neg
    | Compare | In | StrOp | Matches | Glob | InCidr | IsPrivate | Not | And | Or
)

# ---- rule clauses -------------------------------------------------------------

@attrs.frozen
class Description:
    """``description "TEXT"``."""

    text: String
    span: Span = span_field()


@attrs.frozen
class Runbook:
    """``runbook "TEXT"``: what to do when the rule fires, as text or a link."""

    text: String
    span: Span = span_field()


@attrs.frozen
class When:
    """``when EXPR [for DURATION]``."""

    expr: Expr
    for_: Expr | None
    span: Span = span_field()


@attrs.frozen
class Unless:
    """``unless EXPR``; compiled as ``and not (EXPR)``."""

    expr: Expr
    span: Span = span_field()


@attrs.frozen
class Boundary:
    """``boundary EXPR`` (subtree rules): a process for which it holds is a wall,
    whose subtree is not added to its ancestors' totals for this rule."""

    expr: Expr
    span: Span = span_field()


@attrs.frozen
class Clear:
    """``clear when EXPR [for DURATION]``: hysteresis."""

    expr: Expr
    for_: Expr | None
    span: Span = span_field()


@attrs.frozen
class KeepFiringFor:
    """``keep_firing_for DURATION``."""

    duration: Expr
    span: Span = span_field()


@attrs.frozen
class ScopeClause:
    """``scope system|process|subtree``."""

    name: str
    span: Span = span_field()


@attrs.frozen
class Severity:
    """``severity info|warning|critical``."""

    name: str
    span: Span = span_field()


@attrs.frozen
class Cooldown:
    """``cooldown DURATION [by FIELD, ...]`` (``by``: the key of an event rule's cooldown)."""

    duration: Expr
    span: Span = span_field()
    by: tuple[str, ...] = ()


@attrs.frozen
class On:
    """``on exec|exit|fork``: an event rule, evaluated at each such event."""

    trigger: str
    span: Span = span_field()


@attrs.frozen
class MaxRate:
    """``max_rate N/s``: at most N alerts of an event rule per second (``per``: the unit)."""

    rate: float
    op: str
    per: str
    span: Span = span_field()


@attrs.frozen
class Label:
    """``key = "value"`` inside ``labels { }``."""

    key: str
    value: String
    span: Span = span_field()


@attrs.frozen
class Labels:
    """``labels { k = "v", ... }``."""

    items: tuple[Label, ...]
    span: Span = span_field()


@attrs.frozen
class Tags:
    """``tags ["a", "b"]``."""

    items: tuple[String, ...]
    span: Span = span_field()


@attrs.frozen
class Message:
    """``message "TEMPLATE"`` with ``{name[:spec]}`` placeholders."""

    template: String
    span: Span = span_field()


@attrs.frozen
class Kwarg:
    """``name = value`` inside an action's arguments."""

    name: str
    value: Expr
    span: Span = span_field()


@attrs.frozen
class Action:
    """``action NAME[(args)]``."""

    name: str
    args: tuple[Expr | Kwarg, ...]
    span: Span = span_field()
    name_span: Span = span_field()


@attrs.frozen
class Mode:
    """``mode monitor``."""

    name: str
    span: Span = span_field()


@attrs.frozen
class Enabled:
    """``enabled true|false``."""

    value: Expr
    span: Span = span_field()


Clause = (
    Description | When | Unless | Boundary | Clear | KeepFiringFor | ScopeClause | Severity
    | Cooldown | Labels | Tags | Message | Action | Mode | Enabled | On | MaxRate | Runbook
)

# ---- declarations ---------------------------------------------------------------

@attrs.frozen
class Include:
    """``include "path.lnx"``."""

    path: String
    span: Span = span_field()


@attrs.frozen
class Let:
    """``let NAME = LITERAL``."""

    name: str
    value: Expr
    span: Span = span_field()
    name_span: Span = span_field()


@attrs.frozen
class Macro:
    """``macro NAME = EXPR``."""

    name: str
    expr: Expr
    span: Span = span_field()
    name_span: Span = span_field()


@attrs.frozen
class Rule:
    """A rule, in one-line (``one_line``) or block form."""

    name: str
    clauses: tuple[Clause, ...]
    one_line: bool
    span: Span = span_field()
    name_span: Span = span_field()


@attrs.frozen
class Trace:
    """``trace "PATH"`` inside a test."""

    path: String
    span: Span = span_field()


@attrs.frozen
class Tick:
    """``tick DURATION`` inside a test."""

    duration: Expr
    span: Span = span_field()


@attrs.frozen
class ExpectBetween:
    """``expect RULE firing|resolved|pending between A and B``."""

    rule: str
    state: str
    low: Expr
    high: Expr
    span: Span = span_field()
    rule_span: Span = span_field()


@attrs.frozen
class ExpectPid:
    """``expect RULE firing for pid N``."""

    rule: str
    state: str
    pid: Number
    span: Span = span_field()
    rule_span: Span = span_field()


@attrs.frozen
class ExpectNever:
    """``expect RULE never``."""

    rule: str
    span: Span = span_field()
    rule_span: Span = span_field()


@attrs.frozen
class ExpectCount:
    """``expect RULE fires N times``."""

    rule: str
    count: Number
    span: Span = span_field()
    rule_span: Span = span_field()


@attrs.frozen
class ExpectAction:
    """``expect action KIND for pid N``."""

    action: str
    pid: Number
    span: Span = span_field()
    rule_span: Span = span_field()


Expect = ExpectBetween | ExpectPid | ExpectNever | ExpectCount | ExpectAction


@attrs.frozen
class Test:
    """``test "TITLE" { trace ...; tick ...; expect ... }``."""

    title: String
    stmts: tuple[Trace | Tick | Expect, ...]
    span: Span = span_field()


@attrs.frozen
class RuleOutline:
    """A rule whose clauses were parsed and let go: its name and where it is.

    A file loaded in outline (``linnix check``) holds these instead of its
    rules, which :func:`linnix.language.grammar.declaration_parser` parses
    again, one at a time, when they are checked.
    """

    name: str
    one_line: bool
    span: Span = span_field()
    name_span: Span = span_field()


Decl = Include | Let | Macro | Rule | RuleOutline | Test


@attrs.frozen
class Module:
    """One parsed file."""

    path: str
    decls: tuple[Decl, ...]
    span: Span = span_field()


def children(node: object) -> tuple[object, ...]:
    """The direct sub-nodes of ``node`` (for generic walks)."""
    kind = type(node)
    names = _CHILD_FIELDS.get(kind)
    if names is None:
        names = _CHILD_FIELDS[kind] = tuple(
            f.name for f in attrs.fields(kind)  # type: ignore[arg-type]
            if not f.name.endswith("span"))
    out: list[object] = []
    for name in names:
        value = getattr(node, name)
        if isinstance(value, tuple):
            out.extend([v for v in value if _is_node(type(v))])
        elif _is_node(type(value)):
            out.append(value)
    return tuple(out)


def _is_node(kind: type) -> bool:
    known = _ATTRS_CLASSES.get(kind)
    if known is None:
        known = _ATTRS_CLASSES[kind] = attrs.has(kind)
    return known


# the fields of each node class that are not spans, found once per class
_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}
# whether a class is an attrs class, found once per class
_ATTRS_CLASSES: dict[type, bool] = {}

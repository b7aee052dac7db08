"""Pre-filters of event rules: which events can possibly make a rule's condition hold.

An event rule is judged at every exec, exit or fork, but most test a text
field against literals: ``comm == "nc"``, ``comm in ["sh", "bash"]``, ``exe
startswith "/tmp/"``, ``exe glob "/var/tmp/*"``.  :func:`prefilter` derives
from the (optimised) condition a set of :class:`~linnix.plan.FilterKey`: the
condition can hold only when one of them matches, so the engine
(:mod:`linnix.engine.eventindex`) looks the event's fields up in tables and
judges only the rules a key names, plus those with no pre-filter.

The keys are a necessary condition, never a sufficient one: the full
condition still decides, so the alerts are those of judging every rule.

* ``F == "x"``, ``F in ["x", ...]``: F is one of the values (so too for a
  number field: ``uid == 0``, ``exit_code in [1, 2]``);
* ``F startswith "x"``, ``F endswith "x"``: a prefix or suffix;
* ``F contains "x"``: a text it contains; ``F matches R`` the same, with the
  text every match of R contains (:func:`required_literal`);
* ``F glob P``: the literal text of P before its first wildcard (a prefix), or
  after its last (a suffix), or all of it when it has none;
* ``A and B``: the keys of any conjunct that has some (the cheapest);
* ``A or B``: all of the keys of every branch, when each has some;
* anything else (``not``, ``!=``, ``<``, lists of ancestors): none, and the
  rule is judged at every event of its kind.

F is a text (or number) field of the process (the registry's: ``comm``,
``exe``, ``cmdline``, ``exit_signal``, ``uid``...) or of one of its ancestors
(``parent.comm``); its value missing, a comparison is false, so no key matches.
"""

from __future__ import annotations

from ..names import METRICS, Scope, Type, is_ancestry
from ..plan import FilterKey
from . import nodes as n
from .codegen import access

__all__ = ["prefilter", "required_literal"]

_WILD = "*?["  # where a glob's literal text ends


def prefilter(e: n.Expr) -> tuple[FilterKey, ...] | None:
    """The keys one of which an event must match for ``e`` to hold (None: no such set)."""
    kind = type(e)
    if kind is n.And:
        found = [keys for item in e.items  # type: ignore[union-attr]
                 if (keys := prefilter(item)) is not None]
        return min(found, key=_cost) if found else None
    if kind is n.Or:
        out: dict[FilterKey, None] = {}
        for item in e.items:  # type: ignore[union-attr]
            keys = prefilter(item)
            if keys is None:  # a branch that may hold at any event
                return None
            out.update(dict.fromkeys(keys))
        return tuple(out)
    if kind is n.Compare and e.op == "==":  # type: ignore[union-attr]
        left, right = e.left, e.right  # type: ignore[union-attr]
        if isinstance(left, n.String):
            left, right = right, left
        return _keys(left, "is", [right])
    if kind is n.In and not e.negated and isinstance(e.right, n.List):  # type: ignore[union-attr]
        return _keys(e.left, "is", list(e.right.items))  # type: ignore[union-attr]
    if kind is n.StrOp:
        return _keys(e.left, _HOW[e.op], [e.right])  # type: ignore[union-attr]
    if kind is n.Glob:
        return _glob(e)  # type: ignore[arg-type]
    if kind is n.Matches:
        literal = required_literal(e.pattern.value)  # type: ignore[union-attr]
        if literal:
            return _keys(e.left, "contains", [n.String(literal, e.span)])  # type: ignore[union-attr]
    return None


_HOW = {"startswith": "prefix", "endswith": "suffix", "contains": "contains"}
# Characters that stand for themselves in RE2 syntax (outside a class), and the ones
# that make the character before them optional.
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyz" "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                   "0123456789 _-/,:;=@%!~<>'\"")
_OPTIONAL = frozenset("*?{")


def required_literal(pattern: str) -> str:
    """Text every match of ``pattern`` (RE2, found anywhere in a text) contains: its
    leading run of plain characters ("" when it has none, or an alternative anywhere
    that might do without it)."""
    escaped = False
    for c in pattern:  # '|' escaped, or in a class, is plain; either way no guess is made
        if escaped:
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == "|":
            return ""
    end = 0
    while end < len(pattern) and pattern[end] in _PLAIN:
        end += 1
    if end < len(pattern) and pattern[end] in _OPTIONAL:
        end -= 1  # 'ab*': the b may be absent
    return pattern[:max(end, 0)]


def _glob(e: n.Glob) -> tuple[FilterKey, ...] | None:
    pattern = e.pattern.value
    cut = [i for i, c in enumerate(pattern) if c in _WILD]
    if not cut:  # no wildcard: the whole text
        return _keys(e.left, "is", [e.pattern])
    if cut[0] > 0:
        return _keys(e.left, "prefix", [n.String(pattern[:cut[0]], e.span)])
    if "[" not in pattern and cut[-1] < len(pattern) - 1:  # a ']' may close a set
        return _keys(e.left, "suffix", [n.String(pattern[cut[-1] + 1:], e.span)])
    return None


def _keys(field: n.Expr, how: str, values: list[n.Expr]) -> tuple[FilterKey, ...] | None:
    """A key per value, when ``field`` is a text field and every value a literal text, or
    a number field compared for equality with literal numbers."""
    found = _field(field)
    if found is None:
        return None
    text, kind = found
    if kind is Type.STR:
        literals: list[str | float] = [v.value for v in values if isinstance(v, n.String)]
    elif how == "is":  # a number equals a number: == is what a table lookup does
        literals = [float(v.value) for v in values if isinstance(v, n.Number)]
    else:
        return None
    if len(literals) != len(values):
        return None
    code = _code(text)
    return tuple(dict.fromkeys(FilterKey(text, how, value, code) for value in literals))


def _field(e: n.Expr) -> tuple[str, Type] | None:
    """The field's text (``comm``, ``parent.exe``) and type, when it is a text or number
    field of a process."""
    if isinstance(e, n.Name):
        owner, name = "", e.id
    elif isinstance(e, n.Attr) and is_ancestry(e.obj):
        owner, name = e.obj, e.attr
    else:
        return None
    metric = METRICS.get(name)
    if metric is None or metric.type not in (Type.STR, Type.NUM) or \
            metric.scope is not Scope.PROCESS:
        return None
    return (f"{owner}.{name}" if owner else name), metric.type


def _cost(keys: tuple[FilterKey, ...]) -> tuple[bool, bool, int]:
    """Which of a conjunction's pre-filters to use: exact values, the process's own
    fields, fewer keys."""
    return (any(k.how != "is" for k in keys), any("." in k.field for k in keys), len(keys))


def _code(text: str) -> str:
    """The Python expression reading the field ``text`` of process ``p`` (None above the
    root), as the generated conditions read it."""
    owner, _, name = text.rpartition(".")
    below = "p"
    steps = []
    for i, _step in enumerate(owner.split(".") if owner else ()):
        steps.append(f"(_a{i} := {below}.parent) is None")
        below = f"_a{i}"
    read = access(METRICS[name].code, below)
    return f"(None if {' or '.join(steps)} else {read})" if steps else read

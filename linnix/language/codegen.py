"""Python source for conditions, and the generated module of one ``.lnx`` file.

:class:`ExprGen` writes the Python expression of a condition (or of any
expression a rule reads) over the record variables ``p`` (the process), ``h``
(the host) and ``now``.  Conditions never raise for missing inputs: a
comparison with a missing value is false, arithmetic with one has no value.

:class:`GeneratedModule` holds the lines of one file's generated module, each
lambda on the line of the clause it implements, and the constants the lambdas
share (compiled regexes, sets).  The module runs with no builtins: only the
helpers below (``_div``, ``_seq``) and its constants are reachable.

Compiling the generated Python is most of the cost of compiling rules, so the
source is compiled a few dozen lines at a time (CPython compiles a module of
thousands of functions in more than linear time, :func:`exec_in_chunks`), and
a lambda whose code is that of an earlier one (the same values read,
typically) is made from the earlier one's code object rather than compiled
again (:meth:`GeneratedModule.make_copies`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from types import CodeType, FunctionType
from typing import Any

from ..names import COUNTING_FUNCTIONS, METRICS, Need, Scope
from . import nodes as n
from .literals import in_network, is_private
from .printer import to_text
from .regex import compile_glob, compile_regex

__all__ = ["BOUNDED", "ExprGen", "GeneratedModule", "access", "exec_in_chunks", "window_key"]

# The subtree metrics, which a rule with a boundary reads within its walls (connects are
# counted over the whole subtree: the walls keep no count of them).
BOUNDED = frozenset(m.name for m in METRICS.values()
                    if m.scope is Scope.SUBTREE and Need.NETWORK not in m.needs)
_PLACEHOLDER = re.compile(r"\b(P|H|NOW)\b")
_SIMPLE = re.compile(r"-?[0-9.e+-]+|'[^'\\]*'|[A-Za-z_][A-Za-z0-9_.]*")


def window_key(metric: str, bounded: int | None) -> str:
    """The name under which a window of ``metric`` is kept, in a rule whose totals are
    those within boundary ``bounded`` (None: none).

    A window of a subtree metric in such a rule holds the values within its walls,
    apart from the plain window of the same metric: ``METRIC@K``, as the engine
    names it (``linnix.engine.windows.window_key``).
    """
    if bounded is None or metric not in BOUNDED:
        return metric
    return f"{metric}@{bounded}"


def _div(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def _seq(value: Iterable[object] | None) -> tuple[object, ...] | None:
    """A list value as a tuple, so that ``ancestors == ["sh"]`` compares items in order."""
    return None if value is None else tuple(value)


def _is_list(e: n.Expr) -> bool:
    """Whether ``e`` (after optimisation) has a list value."""
    kind = type(e)
    if kind is n.List:
        return True
    name = e.id if kind is n.Name else e.attr if kind is n.Attr else None  # type: ignore[union-attr]
    metric = METRICS.get(name) if name is not None else None
    if metric is None:
        return False
    known = _LISTS.get(metric.name)
    if known is None or known[0] is not metric:
        known = _LISTS[metric.name] = (metric, metric.type.element is not None)
    return known[1]


_LISTS: dict[str, tuple[object, bool]] = {}  # metric name -> (metric, has a list value)


class GeneratedModule:
    """The generated source of one .lnx file, lines aligned with the original."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lines: dict[int, str] = {}
        self.overflow: list[str] = []
        self.globals: dict[str, object] = {"__builtins__": {}, "_div": _div, "_seq": _seq}
        self._consts: dict[tuple[str, object], str] = {}
        # count(EXPR) terms of this file: the call's text -> (its lambda's name, EXPR)
        self.counts: dict[str, tuple[str, n.Expr]] = {}
        # A lambda whose code (comment aside) and position in its line are those
        # of one already put on a line of its own is not compiled again: its
        # function is made from the first one's code, moved to its own line.
        self._first: dict[tuple[int, str], str] = {}  # (column, code) -> first name
        # (line, or -1 - index into overflow) -> (name, name of the first)
        self.copies: dict[int, tuple[str, str]] = {}

    def const(self, kind: str, value: object) -> str:
        """A global holding a compile-time constant (regex, set); shared when equal."""
        key = (kind, value)
        name = self._consts.get(key)
        if name is None:
            name = f"_{kind}{len(self._consts)}"
            self._consts[key] = name
            if kind == "re":
                self.globals[name] = compile_regex(str(value)).test
            elif kind == "glob":
                self.globals[name] = compile_glob(str(value)).test
            elif kind == "cidr":
                self.globals[name] = in_network(str(value))
            else:
                assert isinstance(value, tuple)
                self.globals[name] = frozenset(value)
        return name

    def put_lambda(self, line: int, name: str, code: str, comment: str = "") -> None:
        """``name = code  # comment`` on ``line``, where ``code`` is a lambda."""
        text = f"{name} = {code}  # {comment}" if comment else f"{name} = {code}"
        if line in self.lines:
            where = -1 - len(self.overflow)
            self.overflow.append(text)
        else:
            where = line
            self.lines[line] = text
        key = (len(name), code)
        first = self._first.get(key)
        if first is None:
            self._first[key] = name
        else:
            self.copies[where] = (name, first)

    def source(self) -> str:
        last = max(self.lines, default=0)
        body = [self.lines.get(i, "") for i in range(1, last + 1)]
        return "\n".join([*body, *self.overflow]) + "\n"

    def compiled_source(self) -> str:
        """The source to compile: ``source()`` without the lines of copies."""
        last = max(self.lines, default=0)
        copies = self.copies
        body = ["" if i in copies else self.lines.get(i, "") for i in range(1, last + 1)]
        extra = ["" if -1 - i in copies else text for i, text in enumerate(self.overflow)]
        return "\n".join([*body, *extra]) + "\n"

    def make_copies(self, namespace: dict[str, object]) -> None:
        """Define the copies in ``namespace``, where the first ones are defined."""
        last = max(self.lines, default=0)
        for where, (name, first) in self.copies.items():
            line = where if where > 0 else last - where  # overflow i is on line last + 1 + i
            code = namespace[first].__code__  # type: ignore[attr-defined]
            namespace[name] = FunctionType(code.replace(co_firstlineno=line), namespace)


class ExprGen:
    """Python source for one expression; ``may_be_none`` tracks missing values."""

    def __init__(self, module: GeneratedModule) -> None:
        self.module = module
        self.temps = 0
        # a rule with a boundary: the index of its totals within its walls, which
        # it reads instead of the plain subtree totals
        self.bounded: int | None = None

    def temp(self) -> str:
        self.temps += 1
        return f"_t{self.temps}"

    def gen(self, e: n.Expr, proc: str = "p") -> tuple[str, bool]:
        method = _GENERATORS.get(type(e))
        if method is None:
            raise TypeError(f"no code generation for {type(e).__name__}")
        return method(self, e, proc)

    def gen_Number(self, e: n.Number, proc: str) -> tuple[str, bool]:
        return repr(float(e.value)), False

    def gen_String(self, e: n.String, proc: str) -> tuple[str, bool]:
        return repr(e.value), False

    def gen_Bool(self, e: n.Bool, proc: str) -> tuple[str, bool]:
        return repr(e.value), False

    def gen_List(self, e: n.List, proc: str) -> tuple[str, bool]:
        values = tuple(sorted({i.value for i in e.items}, key=repr))  # type: ignore[union-attr]
        return self.module.const("set", values), False

    def gen_Name(self, e: n.Name, proc: str) -> tuple[str, bool]:
        return self.read(e.id, proc), METRICS[e.id].optional

    def read(self, name: str, proc: str = "p") -> str:
        """The code reading one metric of ``proc`` (within the rule's walls, if any)."""
        metric = METRICS[name]
        if self.bounded is not None and name in BOUNDED:
            return access(metric.code, f"{proc}.bounded[{self.bounded}]")
        return access(metric.code, proc)

    def gen_Attr(self, e: n.Attr, proc: str) -> tuple[str, bool]:
        """``parent.NAME``, ``parent.parent.NAME``, ...: no value above the root."""
        steps: list[str] = []
        below = proc
        for _ in e.obj.split("."):
            parent = self.temp()
            steps.append(f"({parent} := {below}.parent) is None")
            below = parent
        inner = access(METRICS[e.attr].code, below)
        return f"(None if {' or '.join(steps)} else {inner})", True

    def gen_Call(self, e: n.Call, proc: str) -> tuple[str, bool]:
        if e.func == "count":
            return f"h.tally.count({self.count_term(e)!r})", False
        if e.func in COUNTING_FUNCTIONS:  # execs/exits/crashes(FIELD, W): None if FIELD is
            field, window = e.args
            assert isinstance(field, n.Name) and isinstance(window, n.Quantity)
            value = self.read(field.id, proc)
            return (f"h.tally.events({e.func!r}, {field.id!r}, {value}, "
                    f"{float(window.value)!r}, now)"), True
        metric = METRICS[e.args[0].id]  # type: ignore[union-attr]
        window = e.args[1]
        assert isinstance(window, n.Quantity) and window.unit == "s"
        owner = "h" if metric.scope is Scope.SYSTEM else proc
        key = window_key(metric.name, self.bounded)
        return f"{owner}.win_{e.func}({key!r}, {float(window.value)!r}, now)", True

    def count_term(self, e: n.Call) -> str:
        """The key of ``count(EXPR)``, its condition put in the module (once per file)."""
        key = to_text(e)
        if key not in self.module.counts:
            name = f"count_{len(self.module.counts)}"
            self.module.counts[key] = (name, e.args[0])
            code, _ = self.gen(e.args[0], "p")
            shown = " ".join(key.split())[:100]
            self.module.put_lambda(e.span.line, name, f"lambda p, h, now: {code}",
                                   f"{self.module.path}:{e.span.line}: {shown}")
        return key

    def _guard(self, parts: list[tuple[str, bool]], expr: str, none: str) -> str:
        """``expr`` over temporaries, short-circuiting to ``none`` on a missing part."""
        names: list[str] = []
        present: list[str] = []
        for code, optional in parts:
            if optional:
                t = self.temp()
                present.append(f"({t} := {code}) is not None")
                names.append(t)
            else:
                names.append(code if _SIMPLE.fullmatch(code) else f"({code})")
        body = expr.format(*names)
        if not present:
            return f"({body})"
        if none == "None":
            return f"({body} if {' and '.join(present)} else None)"
        return f"({' and '.join(present)} and {body})"

    def gen_Arith(self, e: n.Arith, proc: str) -> tuple[str, bool]:
        left, right = self.gen(e.left, proc), self.gen(e.right, proc)
        if e.op == "/":
            return f"_div({left[0]}, {right[0]})", True
        code = self._guard([left, right], "{} " + e.op + " {}", "None")
        return code, left[1] or right[1]

    def gen_Neg(self, e: n.Neg, proc: str) -> tuple[str, bool]:
        inner = self.gen(e.operand, proc)
        return self._guard([inner], "-{}", "None"), inner[1]

    def _chain(self, parts: list[tuple[str, bool]], op: str, flipped: str | None) -> str | None:
        """``(None is not X op Y)`` when only one side may be missing: one chained
        comparison, which evaluates X once and is false when X is None, does the
        work of a temporary, a test and a comparison.  X must be the left side;
        a missing right side is moved to the left when the comparison can be
        turned around (``flipped``).  None when both sides may be missing."""
        (left, left_may), (right, right_may) = parts
        if left_may and not right_may:
            return f"(None is not {_operand(left)} {op} {_simple(right)})"
        if right_may and not left_may and flipped is not None:
            return f"(None is not {_operand(right)} {flipped} {_simple(left)})"
        return None

    def gen_Compare(self, e: n.Compare, proc: str) -> tuple[str, bool]:
        if _is_list(e.left) or _is_list(e.right):  # == and != on lists: items, in order
            parts = [self._sequence(e.left, proc), self._sequence(e.right, proc)]
        else:
            parts = [self.gen(e.left, proc), self.gen(e.right, proc)]
        chained = self._chain(parts, e.op, _FLIPPED[e.op])
        if chained is not None:
            return chained, False
        return self._guard(parts, "{} " + e.op + " {}", "False"), False

    def _sequence(self, e: n.Expr, proc: str) -> tuple[str, bool]:
        if isinstance(e, n.List):  # a literal: a tuple (not the set that 'in' uses)
            return repr(tuple(i.value for i in e.items)), False  # type: ignore[union-attr]
        code, optional = self.gen(e, proc)
        return f"_seq({code})", optional

    def gen_In(self, e: n.In, proc: str) -> tuple[str, bool]:
        op = "not in" if e.negated else "in"
        parts = [self.gen(e.left, proc), self.gen(e.right, proc)]
        chained = self._chain(parts, op, None)
        if chained is not None:
            return chained, False
        return self._guard(parts, "{} " + op + " {}", "False"), False

    def gen_StrOp(self, e: n.StrOp, proc: str) -> tuple[str, bool]:
        parts = [self.gen(e.left, proc), self.gen(e.right, proc)]
        template = "({1} in {0})" if e.op == "contains" else "{}." + e.op + "({})"
        return self._guard(parts, template, "False"), False

    def gen_Matches(self, e: n.Matches, proc: str) -> tuple[str, bool]:
        rx = self.module.const("re", e.pattern.value)
        part = self.gen(e.left, proc)
        return self._guard([part], rx + "({})", "False"), False

    def gen_Glob(self, e: n.Glob, proc: str) -> tuple[str, bool]:
        rx = self.module.const("glob", e.pattern.value)
        part = self.gen(e.left, proc)
        return self._guard([part], rx + "({})", "False"), False

    def gen_InCidr(self, e: n.InCidr, proc: str) -> tuple[str, bool]:
        test = self.module.const("cidr", e.cidr.value)
        return self._guard([self.gen(e.left, proc)], test + "({})", "False"), False

    def gen_IsPrivate(self, e: n.IsPrivate, proc: str) -> tuple[str, bool]:
        self.module.globals["_private"] = is_private
        return self._guard([self.gen(e.left, proc)], "_private({})", "False"), False

    def gen_Not(self, e: n.Not, proc: str) -> tuple[str, bool]:
        return f"(not {self.gen(e.operand, proc)[0]})", False

    def gen_And(self, e: n.And, proc: str) -> tuple[str, bool]:
        gen = self.gen
        return "(" + " and ".join([gen(i, proc)[0] for i in e.items]) + ")", False

    def gen_Or(self, e: n.Or, proc: str) -> tuple[str, bool]:
        gen = self.gen
        return "(" + " or ".join([gen(i, proc)[0] for i in e.items]) + ")", False


# a comparison with its sides swapped: a < b is b > a
_FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
# code that binds as tightly as an attribute or a call: a name, attributes, calls
_PRIMARY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*|\([^()]*\))*")


def _operand(code: str) -> str:
    """``code`` as the middle operand of a chained comparison."""
    return code if _PRIMARY.fullmatch(code) or _enclosed(code) else f"({code})"


def _enclosed(code: str) -> bool:
    """Whether ``code`` is one parenthesised expression, ``(...)``."""
    if not (code.startswith("(") and code.endswith(")")):
        return False
    depth = 0
    quote = ""
    escaped = False
    last = len(code) - 1
    for i, ch in enumerate(code):
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0 and i != last:
                return False
    return depth == 0


def _simple(code: str) -> str:
    """``code`` as an operand of a comparison (as ExprGen._guard writes one)."""
    return code if _SIMPLE.fullmatch(code) else f"({code})"


# gen_<Node> of ExprGen by node class
_GENERATORS: dict[type, Callable[[ExprGen, Any, str], tuple[str, bool]]] = {
    getattr(n, name.removeprefix("gen_")): method
    for name, method in vars(ExprGen).items() if name.startswith("gen_")
}


def access(template: str, proc: str) -> str:
    """Substitute the record variables into a registry code template."""
    key = (template, proc)
    code = _ACCESS.get(key)
    if code is None:
        table = {"P": proc, "H": "h", "NOW": "now"}
        code = _ACCESS[key] = _PLACEHOLDER.sub(lambda m: table[m.group(1)], template)
    return code


_ACCESS: dict[tuple[str, str], str] = {}  # (template, proc) -> code, as access() made it


# ---- running the generated source ------------------------------------------------

_CHUNK_LINES = 64


def exec_in_chunks(source: str, filename: str, namespace: dict[str, object]) -> None:
    """Compile and run generated source a few dozen lines at a time.

    Every line is a complete statement (the compiler writes each comment on
    one line, strings go through ``repr``), so compiling the lines in chunks
    makes the same functions as one ``compile()`` of the whole module, which
    for ten thousand rules took most of the front end's peak memory and
    several times longer (CPython compiles a module with thousands of
    functions in more than linear time).  A chunk is compiled as if it began
    on line 1 and its code objects are then moved to the lines where it
    really begins, which gives the same code objects as compiling it behind as
    many empty lines.
    """
    lines = source.split("\n")
    for start in range(0, len(lines), _CHUNK_LINES):
        chunk = lines[start:start + _CHUNK_LINES]
        if not any(chunk):  # nothing to define (the lines of a file's other rules)
            continue
        code = compile("\n".join(chunk), filename, "exec")
        exec(_moved(code, start) if start else code, namespace)


def _moved(code: CodeType, lines: int) -> CodeType:
    """``code`` (and the code inside it) ``lines`` lines further down."""
    consts = tuple(_moved(c, lines) if isinstance(c, CodeType) else c for c in code.co_consts)
    return code.replace(co_firstlineno=code.co_firstlineno + lines, co_consts=consts)


"""The fast path's LALR driver: Lark's parse table, run by one loop that also lexes.

Lark's parse table (parser state -> terminal or nonterminal -> shift or
reduce) is copied once into plain integers (:class:`Table`): a shift or a goto
is the state it leads to, a reduction is ``-1 - i`` for the ``i``-th grammar
rule, whose length, origin and callback are kept in lists by ``i``.  :func:`drive`
then does per token what Lark's ``ParserState.feed_token`` does (the same
shifts, reductions and gotos, the same ``UnexpectedToken`` where a state has no
action for a token, the value of the start rule at the end), with the token
matched by the state's lexer in the same loop: one Python frame for the whole
file rather than a method call, a tuple unpacked and an identity test per
token.  Which lexer, callbacks and errors are Lark's is
:mod:`linnix.language._lark`'s business; this module holds no Lark internals but
the shape of the table (``Shift`` and ``Reduce`` by identity).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["MAX_STACK", "Lexing", "Table", "TooDeepError", "Token", "drive"]

# The deepest the parser's stack may grow (about one entry per bracket or operator
# still open): deeper input is an error rather than memory without end.
MAX_STACK = 100_000
# what a state's lexer is: its match function, keyword table and allowed terminals
StateLexer = tuple[Callable[..., Any], dict[str, dict[str, str]] | None, frozenset[str]]


class Token:
    """A token of the fast path: its terminal (``type``), its text and its offsets."""

    __slots__ = ("end_pos", "start_pos", "type", "value")

    type: str
    value: str
    start_pos: int
    end_pos: int


class TooDeepError(Exception):
    """The parser's stack would grow beyond :data:`MAX_STACK` at the token at ``pos``."""

    def __init__(self, pos: int) -> None:
        super().__init__(pos)
        self.pos = pos


class Lexing(Protocol):
    """What :func:`drive` asks of the lexer: the lexers of the states seen so
    far, the one of any state, the match of ignored text and the error where
    a state's lexer matches nothing."""

    lexers: dict[int, StateLexer]
    skip_match: Callable[[str, int, int], Any]

    def lexer(self, state: int) -> StateLexer: ...

    def lexer_error(self, state: int, text: str, pos: int) -> Exception: ...


class Table:
    """Lark's parse table in integers, and its grammar rules (``reductions``: each
    with ``expansion`` and ``origin``) in the order their callbacks are given."""

    def __init__(self, states: dict[int, dict[str, tuple[Any, Any]]], start_state: int,
                 end_state: int, shift: object, unsupported: type[Exception]) -> None:
        index: dict[int, int] = {}
        self.reductions: list[Any] = []
        self.rows: dict[int, dict[str, int]] = {}
        for number, actions in states.items():
            row: dict[str, int] = {}
            for symbol, (action, arg) in actions.items():
                if action is shift:
                    if symbol == "$END" or (symbol.isupper() and arg == end_state):
                        raise unsupported("a shift into the end")  # Lark asserts neither
                    row[symbol] = arg
                    continue
                i = index.get(id(arg))
                if i is None:
                    i = index[id(arg)] = len(self.reductions)
                    self.reductions.append(arg)
                row[symbol] = -1 - i
            self.rows[number] = row
        self.sizes = [len(rule.expansion) for rule in self.reductions]
        self.origins = [rule.origin.name for rule in self.reductions]
        self.start_state = start_state
        self.end_state = end_state

    def acceptable(self, stack: tuple[int, ...]) -> frozenset[str]:
        """The terminals shifted next from the stack of states ``stack``."""
        rows = self.rows
        out = set()
        for terminal in rows[stack[-1]]:
            if not terminal.isupper() and terminal != "$END":
                continue  # a nonterminal's goto
            at = list(stack)
            while (step := rows[at[-1]].get(terminal)) is not None:
                if step >= 0:
                    out.add(terminal)
                    break
                size = self.sizes[-1 - step]
                del at[len(at) - size:]  # the reduction pops its states
                at.append(rows[at[-1]][self.origins[-1 - step]])
                if terminal == "$END" and at[-1] == self.end_state:
                    out.add(terminal)
                    break
        return frozenset(out)


def unexpected(token: Token, row: dict[str, int]) -> Exception:
    """The error Lark's parser raises for ``token`` in a state whose actions are ``row``."""
    from lark.exceptions import UnexpectedToken

    expected = {symbol for symbol in row if symbol.isupper()}
    return UnexpectedToken(token, expected)  # type: ignore[no-untyped-call]


def drive(table: Table, lexing: Lexing, text: str, pos: int, stop: int,
          callbacks: list[Callable[..., Any] | None], values: list[Any], long: int,
          note: Callable[[Token], None], probe: bool) -> Any:
    """Lex and parse ``text`` from ``pos`` to ``stop``: the value of the start rule
    (with ``probe``, the stack of states at ``stop``).

    ``callbacks[i]`` turns the values of the ``i``-th reduction into one (None:
    the reduction has one value, which is its value, and it stays in place);
    ``values`` is the parser's stack of values (one per state above the first),
    left as it is at an error; a token longer than ``long`` is given to
    ``note``.  Raises Lark's ``UnexpectedInput`` where Lark's parse would, and
    :class:`TooDeepError`.
    """
    rows, sizes, origins = table.rows, table.sizes, table.origins
    lexers, lexer = lexing.lexers, lexing.lexer
    stack = [table.start_state]
    push, pop = stack.append, values.append
    state = table.start_state
    row = rows[state]
    deep = MAX_STACK
    new = object.__new__
    token = None
    begin = 0
    while True:
        entry = lexers.get(state) or lexer(state)
        m = entry[0](text, pos, stop)
        if m is None:
            break
        kind = m.lastgroup
        begin, pos = m.span(kind)  # the token ends the match
        token = new(Token)
        token.value = value = text[begin:pos]
        token.start_pos = begin
        token.end_pos = pos
        keywords = entry[1]
        if keywords is not None and kind in keywords:
            kind = keywords[kind].get(value, kind)
        token.type = kind
        while True:
            act = row.get(kind)
            if act is None:
                raise unexpected(token, row)
            if act >= 0:  # shift
                push(act)
                pop(token)
                state = act
                row = rows[act]
                break
            rule = -1 - act
            callback = callbacks[rule]
            if callback is None:  # the rule's one value is its value: it stays in place
                stack[-1] = state = rows[stack[-2]][origins[rule]]
                row = rows[state]
                continue
            size = sizes[rule]
            if size:
                s = values[-size:]
                del stack[-size:]
                del values[-size:]
            else:
                s = []
            pop(callback(s))
            state = rows[stack[-1]][origins[rule]]
            push(state)
            row = rows[state]
        if pos - begin > long:
            note(token)
        if len(stack) > deep:
            raise TooDeepError(begin)
    rest = lexing.skip_match(text, pos, stop).end()
    if rest != stop:  # a character no terminal of this state matches
        raise lexing.lexer_error(state, text, rest)
    if probe:
        return tuple(stack)
    return _end(table, stack, values, callbacks, token, begin, pos)


def _end(table: Table, stack: list[int], values: list[Any],
         callbacks: list[Callable[..., Any] | None], last: Token | None, begin: int,
         pos: int) -> Any:
    """Feed the end of the input: reduce until the start rule is complete."""
    rows, sizes, origins = table.rows, table.sizes, table.origins
    end = object.__new__(Token)
    end.type, end.value = "$END", ""
    # where Lark puts it: on the last token
    end.start_pos, end.end_pos = (0, 0) if last is None else (begin, pos)
    while True:
        row = rows[stack[-1]]
        act = row.get("$END")
        if act is None:
            raise unexpected(end, row)
        rule = -1 - act  # never a shift (Table refuses one)
        callback = callbacks[rule]
        if callback is None:
            stack[-1] = rows[stack[-2]][origins[rule]]
        else:
            size = sizes[rule]
            if size:
                s = values[-size:]
                del stack[-size:]
                del values[-size:]
            else:
                s = []
            values.append(callback(s))
            stack.append(rows[stack[-1]][origins[rule]])
        if stack[-1] == table.end_state:
            return values[-1]

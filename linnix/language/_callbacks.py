"""The Python of the parser's callbacks: what each does with the values of a rule.

The fast path (:mod:`linnix.language._lark`) reads from Lark how each grammar
rule turns into a node (its plan) and has one callback generated per distinct
body; this module writes those bodies.  A callback receives the values the
rule reduces, ``s`` (tokens, built nodes, lists for inlined rules), does what
Lark's tree builder would do with them (drop anonymous tokens, add None for
missing optional parts, inline ``_rule`` children) and calls the builder
method ``fn`` with the children and, where it needs them, the rule's offsets,
found in ``ext`` where a value covers more text than its span.
"""

from __future__ import annotations

__all__ = ["callback_body", "filter_source"]


def callback_body(shape: tuple[int, bool, bool], kind: str, not_own_span: bool,
                  include: list[tuple[int, bool, int]], tail: int,
                  needs_extent: bool) -> tuple[str, ...]:
    """The statements of the callback of one rule, over its values ``s``.

    ``shape``: the length of the rule's expansion and whether it begins and
    ends with a token; ``kind``, ``include`` and ``tail``: what the rule's
    plan says (``FastParser._plan``); ``not_own_span``: the builder method's
    result does not cover the rule's text; ``needs_extent``: the method is
    given the rule's offsets.
    """
    size, first_is_term, last_is_term = shape
    body: list[str] = []
    record = kind == "paren" or (kind == "call" and not_own_span and size > 0)
    if needs_extent or record:
        if first_is_term:
            body.append("start = s[0].start_pos")
        else:
            body += ["a = s[0]", "e = ext.get(id(a))",
                     "start = a.span.start if e is None else e[0]"]
        if last_is_term:
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
        body += filter_source(include, tail)
    if kind == "inline":
        return (*body, f"return {kids}")
    span = "start, end" if needs_extent else "0, 0"
    if record:
        return (*body, f"v = fn({kids}, {span})", "ext[id(v)] = (start, end, v)", "return v")
    return (*body, f"return fn({kids}, {span})")


def filter_source(include: list[tuple[int, bool, int]], tail: int) -> list[str]:
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

"""Message templates (linnix/templates.py): function call placeholders.

A call placeholder's name is the call's text, whatever it holds (``!=``,
``:`` or ``)`` in a string, brackets), followed by an optional format
specification; ``{{`` stays a literal brace; a call left open is an error
pointing at it.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linnix.templates import Part, TemplateError, parse_template


def test_a_call_is_a_placeholder_named_by_its_text() -> None:
    t = parse_template("{comm}[{pid}] crashed {crashes(exe, 5m)} times, avg "
                       "{avg(cpu_pct, 1m):.0f}%")
    assert t.parts == (Part("", "comm", "", 1), Part("[", "pid", "", 8),
                       Part("] crashed ", "crashes(exe, 5m)", "", 23),
                       Part(" times, avg ", "avg(cpu_pct, 1m)", ".0f", 53),
                       Part("%", None, "", 75))
    values = {"comm": "app", "pid": 7, "crashes(exe, 5m)": 3, "avg(cpu_pct, 1m)": 41.6}
    assert t.render(values) == "app[7] crashed 3 times, avg 42%"


@pytest.mark.parametrize(("text", "name", "spec"), [
    ('{count(comm != "a")}', 'count(comm != "a")', ""),  # '!' is no conversion here
    ('{count(comm == "a:b)"):d}', 'count(comm == "a:b)")', "d"),  # ':' and ')' in a string
    ('{count(comm in ["a", "b"])}', 'count(comm in ["a", "b"])', ""),
    ('{count(comm == "\\"")}', 'count(comm == "\\"")', ""),  # an escaped quote
    ('{count((comm == "a") or (comm == "b"))}', 'count((comm == "a") or (comm == "b"))', ""),
])
def test_a_call_holds_anything_an_expression_holds(text: str, name: str, spec: str) -> None:
    t = parse_template(f"n={text}.")
    assert [(p.text, p.name, p.spec, p.offset) for p in t.parts] == [
        ("n=", name, spec, 3), (".", None, "", len(text) + 3)]  # a literal: where it ends


def test_doubled_braces_stay_literal() -> None:
    t = parse_template("{{count(x)}} {pid}")
    assert t.names == ("pid",)
    assert t.render({"pid": 1}) == "{count(x)} 1"
    assert parse_template("{{{count(x):d}}}").render({"count(x)": 2}) == "{2}"


@pytest.mark.parametrize(("text", "offset"), [
    ('{count(comm == "a"', 1),  # never closed
    ('{count(comm == "a)}', 1),  # the ')' is inside the string
    ("{crashes(exe, 5m) x}", 17),  # something between the call and its '}'
    ("{crashes(exe, 5m)", 17),  # no '}'
])
def test_a_malformed_call_is_an_error_at_it(text: str, offset: int) -> None:
    with pytest.raises(TemplateError) as err:
        parse_template(text)
    assert err.value.offset == offset


@given(st.text(alphabet='{}()":!ab ,\\[]', max_size=40))
def test_any_text_parses_or_is_refused_with_an_offset_inside_it(text: str) -> None:
    try:
        t = parse_template(text)
    except TemplateError as err:
        assert 0 <= err.offset <= len(text)
    else:
        assert t.source == text

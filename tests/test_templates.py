"""Message templates (linnix/templates.py): dotted names, lists, the ``%`` format of a
name in percent, and function call placeholders.

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

@pytest.mark.parametrize(("template", "values", "text"), [
    ("{cpu_pct:.1%}", {"cpu_pct": 80.0}, "80.0%"),             # not 8000.0%
    ("{cpu_pct:.0%}", {"cpu_pct": 250}, "250%"),               # an int, above 100
    ("{parent.cpu_pct:.1%}", {"parent.cpu_pct": 12.5}, "12.5%"),
    ("{psi_mem_some:.0%}", {"psi_mem_some": 40.0}, "40%"),
    ("{host_mem_used_pct:5.1%}", {"host_mem_used_pct": 9.0}, " 9.0%"),
    ("{cpu_pct:.0f}%", {"cpu_pct": 80.0}, "80%"),              # as before
    ("{procs:.0%}", {"procs": 0.5}, "50%"),                    # a plain number: Python's %
    ("{cpu_pct:.1%}", {}, "n/a"),
])
def test_percent_format_of_a_percent_name(template: str, values: dict[str, object],
                                          text: str) -> None:
    assert parse_template(template).render(values) == text


def test_a_list_renders_as_words() -> None:
    template = parse_template("{comm} under {ancestors}; [{ancestors:>12}]")
    values = {"comm": "sh", "ancestors": ("nginx", "systemd")}
    assert template.render(values) == "sh under nginx, systemd; [nginx, systemd]"
    assert template.render({"comm": "sh", "ancestors": ()}) == "sh under ; [            ]"


@pytest.mark.parametrize("name", ["parent.comm", "parent.parent.pid", "target.comm"])
def test_dotted_names(name: str) -> None:
    template = parse_template(f"<{{{name}}}>")
    assert template.names == (name,)
    assert template.render({name: "x"}) == "<x>"
    assert template.parts[0].offset == 2


@pytest.mark.parametrize("text", ["{parent.}", "{.comm}", "{parent..comm}", "{a[0]}",
                                  "{parent.1x}"])
def test_malformed_dotted_names_are_refused(text: str) -> None:
    with pytest.raises(TemplateError, match="must be a plain name"):
        parse_template(text)


@given(depth=st.integers(1, 40), field=st.sampled_from(["comm", "pid", "cpu_pct", "exe"]))
def test_any_depth_of_ancestry_parses(depth: int, field: str) -> None:
    name = ".".join(["parent"] * depth + [field])
    template = parse_template(f"x {{{name}:>4}} y")
    assert template.names == (name,)
    assert template.render({name: "ab"}) == "x   ab y"

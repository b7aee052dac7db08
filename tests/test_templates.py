"""Message templates: dotted names, lists, and the ``%`` format of a name in percent."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linnix.templates import TemplateError, parse_template


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

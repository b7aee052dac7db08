"""``parent.parent.NAME``: ancestry to any depth, from the text to the value read."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from support import codes, expr, only, process, shape, when

from linnix.language import nodes as n
from linnix.language.printer import to_text

SPACES = st.sampled_from(["", " ", "\n  "])


def test_a_chain_is_one_attribute_read() -> None:
    assert shape('parent.parent.comm == "sshd"') == (
        "(Compare == (Attr parent.parent comm) (String sshd))")
    assert shape("parent.pid > 1") == "(Compare > (Attr parent pid) (Number 1))"


@given(depth=st.integers(1, 60), field=st.sampled_from(["comm", "pid", "cpu_pct", "age_s"]),
       gap=SPACES)
def test_any_depth_parses_and_prints_back(depth: int, field: str, gap: str) -> None:
    written = f"{gap}.{gap}".join(["parent"] * depth + [field])
    e = expr(f"{written} != {written}")
    assert isinstance(e, n.Compare) and isinstance(e.left, n.Attr)
    assert (e.left.obj, e.left.attr) == (".".join(["parent"] * depth), field)
    assert e.left.span.text == written
    canonical = ".".join(["parent"] * depth + [field])
    assert to_text(e) == f"{canonical} != {canonical}"


@given(depth=st.integers(1, 12), tree=st.integers(0, 14))
def test_the_value_is_the_ancestors_or_none(depth: int, tree: int) -> None:
    """A chain of ``tree`` ancestors above the process; pid of the k-th is 100 + k."""
    top = None
    for k in range(tree, 0, -1):
        top = process(pid=100 + k, comm=f"a{k}", parent=top)
    me = process(pid=100, comm="me", parent=top)
    chain = ".".join(["parent"] * depth)
    assert when(f"{chain}.pid == {100 + depth}")(me, None, 0.0) == (depth <= tree)
    assert when(f'{chain}.comm != "x"')(me, None, 0.0) == (depth <= tree)  # none: false


def test_errors_name_the_chain_as_written() -> None:
    d = only("rule r: parent.parent.subtree_procs > 5", "E207")
    assert d.message == "'parent.parent.subtree_procs': not a process field"
    d = only("rule r: parent.grandma.comm == \"x\"", "E201")
    assert d.message == "unknown name 'parent.grandma.comm'"
    assert only("rule r: parent.parent.comn == \"x\"", "E207").message == (
        "'parent.parent.comn': unknown (did you mean 'parent.parent.comm'?)")


def test_a_boundary_may_not_read_an_ancestor() -> None:
    d = only('rule r { when subtree_procs > 1\n boundary parent.parent.comm == "sh" }', "E608")
    assert "'parent.parent.comm'" in d.message


def test_a_chain_makes_a_process_rule() -> None:
    assert codes('rule r { when parent.parent.comm == "sh"\n scope system }') == ["E401"]

"""The analysis as text and as Markdown: golden analyses (facts and renderings), and process
text kept as data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from analysis_support import FIXTURES, RUNBOOK, incident_of, replay_into, shipped_plan, store_at
from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from support import compare_golden

from linnix.analysis import analyze, analyze_stored, markdown, md_code, md_escape, text
from linnix.terminal import printable

GOLDEN = FIXTURES / "golden"


@pytest.mark.parametrize(("trace", "rule"), [("fork_storm", "fork_storm"),
                                             ("runaway_tree", "runaway_tree"),
                                             ("memory_leak", "memory_leak"),
                                             ("circuit_breaker", "circuit_breaker")])
async def test_golden_analyses(tmp_path: Path, trace: str, rule: str,
                              update_golden: bool) -> None:
    """Each shipped fixture's incident: its facts (every field, drivers and shares too)
    and their text and Markdown renderings."""
    store = store_at(tmp_path / "linnix.db")
    try:
        await replay_into(store, FIXTURES / f"{trace}.jsonl", shipped_plan(),
                          {"fork_storm": RUNBOOK})
        analysis = analyze_stored(store, incident_of(store, rule)["id"])
    finally:
        store.close()
    assert analysis is not None
    facts = json.dumps(analysis, indent=1, sort_keys=True) + "\n"
    compare_golden(facts.encode(), GOLDEN / f"analysis_{trace}.json", update_golden)
    compare_golden(text(analysis).encode(), GOLDEN / f"analysis_{trace}.txt", update_golden)
    compare_golden(markdown(analysis).encode(), GOLDEN / f"analysis_{trace}.md",
                   update_golden)


def hostile_incident(comm: str, cmdline: str) -> dict[str, Any]:
    proc = {"pid": 42, "comm": comm, "exe": f"/tmp/{comm}", "cmdline": cmdline,
            "user": comm, "cpu_pct": 99.0, "depth": 0, "subtree_cpu_pct": 99.0}
    return {"id": 1, "rule": "hot", "scope": "process", "message": f"{comm} burns",
            "history": [{"ts": 1.0, "values": {"cpu_pct": 99.0, "comm": comm}}],
            "subtree": [proc], "host": {}, "context": {"ancestors": [
                {**proc, "pid": 1}], "runbook": cmdline}}


# Markdown a process could try: emphasis, links, images, HTML, code fences, headings.
HOSTILE = st.one_of(
    st.sampled_from(["**x**", "[a](b)", "![i](http://x/i.png)", "<script>x</script>",
                     "`a` ``b``", "# title", "_u_", "<http://x>", "a\nb", "\x1b[2J",
                     "| a | b |", "\\*x\\*", "` `", "`"]),
    st.text(alphabet=st.sampled_from("*_[]()!<>`#\\|~ ax\n:/"), max_size=30),
    st.text(max_size=30))

FORBIDDEN = {"link_open", "image", "html_inline", "html_block", "strong_open", "em_open",
             "s_open", "fence", "code_block", "heading_open", "table_open"}


def tokens(document: str) -> list[Any]:
    out = []
    for token in MarkdownIt("commonmark").parse(document):
        out.append(token)
        out.extend(token.children or ())
    return out


@given(comm=HOSTILE, cmdline=HOSTILE)
def test_process_text_cannot_format_or_link_in_markdown(comm: str, cmdline: str) -> None:
    document = markdown(analyze(hostile_incident(comm, cmdline)))
    found = tokens(document)
    kinds = {t.type for t in found}
    # linnix's own: one heading, the list, bold fact ids; nothing else formats
    assert [t.type for t in found if t.type == "heading_open"] == ["heading_open"]
    strong = [t for t in found if t.type == "strong_open"]
    assert len(strong) == len(analyze(hostile_incident(comm, cmdline))["facts"])
    assert not (kinds - {"heading_open", "strong_open", "em_open"}) & FORBIDDEN
    assert sum(t.type == "em_open" for t in found) == 1  # the closing "_builtin analyst_"
    codes = [t.content for t in found if t.type == "code_inline"]
    for value in (comm, cmdline):  # each shown, whole, in a code span (an empty one is not)
        if value:
            assert printable(value).strip(" ") in {c.strip(" ") for c in codes}


@given(HOSTILE)
def test_a_code_span_holds_any_text_exactly(value: str) -> None:
    (para,) = [t for t in MarkdownIt("commonmark").parse(md_code(value)) if t.type == "inline"]
    assert [c.type for c in para.children or ()] == ["code_inline"]
    content = (para.children or [])[0].content
    assert content.strip(" ") == printable(value).strip(" ")


@given(HOSTILE)
def test_escaped_text_reads_as_itself(value: str) -> None:
    (para,) = [t for t in MarkdownIt("commonmark").parse(f"x{md_escape(value)}y")
               if t.type == "inline"]
    assert {c.type for c in para.children or ()} == {"text"}
    assert "".join(c.content for c in para.children or ()) == f"x{printable(value)}y"


def test_text_output_escapes_controls() -> None:
    out = text(analyze(hostile_incident("evil\x1b[2J\u202e", "rm -rf /\n")))
    assert "\x1b" not in out and "\u202e" not in out
    assert '"evil\\x1b[2J\\u202e"[42]' in out
    assert out.count("\n") == len(out.splitlines())  # the cmdline's newline is escaped

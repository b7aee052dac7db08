"""The model's part of an analysis as text and Markdown: labelled, after the facts, and its
words shown as data whatever they hold."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from support import ROOT, compare_golden

from linnix.analysis import analyze, markdown, text
from linnix.terminal import printable

GOLDEN = ROOT / "fixtures" / "golden"
INCIDENT = {"id": 3, "rule": "hot", "scope": "process", "message": "app burns",
            "history": [{"ts": 1.0, "values": {"cpu_pct": 99.0}},
                        {"ts": 3.0, "values": {"cpu_pct": 97.0}}],
            "subtree": [{"pid": 42, "comm": "app", "cpu_pct": 99.0, "depth": 0}], "host": {},
            "context": {"condition": "cpu_pct > 80"}}


def with_model(part: dict[str, Any]) -> dict[str, Any]:
    return {**analyze(INCIDENT), "model": {"backend": "openai", "model": "fake-7b", **part}}


PARTS = {
    "verified": {"verified": True, "summary": "app spins in a loop",
                 "hypotheses": [{"hypothesis": "a busy loop", "facts": ["F1", "F2"]},
                                {"hypothesis": "GC pressure", "facts": ["F3"]}],
                 "dropped": 2},
    "unverified": {"verified": False, "problem": "the answer is not JSON: Expecting value",
                   "text": "It is **probably** <b>app</b>"},
    "failed": {"verified": False, "error": "no answer within 30s"},
    "pending": {"pending": True},
}


def test_golden_renderings_of_each_kind_of_model_part(update_golden: bool) -> None:
    texts = "".join(f"== {kind}\n{text(with_model(part))}" for kind, part in PARTS.items())
    docs = "".join(f"== {kind}\n{markdown(with_model(part))}" for kind, part in PARTS.items())
    compare_golden(texts.encode(), GOLDEN / "analysis_model.txt", update_golden)
    compare_golden(docs.encode(), GOLDEN / "analysis_model.md", update_golden)


def test_no_model_part_renders_as_before() -> None:
    plain = analyze(INCIDENT)
    assert text({**plain, "model": None}) == text(plain)
    assert "model" not in text(plain) and "model" not in markdown(plain)


HOSTILE = st.one_of(
    st.sampled_from(["**x**", "[a](b)", "![i](http://x/i.png)", "<script>x</script>",
                     "`a` ``b``", "# title", "_u_", "<http://x>", "a\nb", "\x1b[2J",
                     "1. item", "- item", "approve all pending actions"]),
    st.text(alphabet=st.sampled_from("*_[]()!<>`#\\|~ ax\n:/1.-"), max_size=30),
    st.text(max_size=30))
FORBIDDEN = {"link_open", "image", "html_inline", "html_block", "strong_open", "em_open",
             "s_open", "fence", "code_block", "heading_open", "table_open", "ordered_list_open"}


def tokens(document: str) -> list[Any]:
    out = []
    for token in MarkdownIt("commonmark").parse(document):
        out.append(token)
        out.extend(token.children or ())
    return out


@given(summary=HOSTILE, hypothesis=HOSTILE, answer=HOSTILE)
def test_the_models_words_cannot_format_link_or_embed_html(summary: str, hypothesis: str,
                                                           answer: str) -> None:
    baseline = {t.type for t in tokens(markdown(analyze(INCIDENT)))}
    for part in ({"verified": True, "summary": summary, "dropped": 0,
                  "hypotheses": [{"hypothesis": hypothesis, "facts": ["F1"]}]},
                 {"verified": False, "problem": "p", "text": answer},
                 {"verified": False, "error": answer}):
        document = markdown(with_model(part))
        found = tokens(document)
        assert not ({t.type for t in found} - baseline) & FORBIDDEN
        codes = {t.content.strip(" ") for t in found if t.type == "code_inline"}
        for value in (summary, hypothesis) if part["verified"] else (answer,):
            if value.strip(" "):
                assert printable(value).strip(" ") in codes
        shown = text(with_model(part))
        assert "\x1b" not in shown and shown.count("\n") == len(shown.splitlines())

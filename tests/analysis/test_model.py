"""What a model is sent about an incident, and what of its answer is kept: any answer is
judged without raising, and what is sent is cut to size whatever the process wrote."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from linnix.analysis.model import LIST_MAX, STRING_MAX, TEXT_MAX, document, judge, request

IDS = ["F1", "F2"]


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=5),
    max_leaves=30)


@given(st.text(max_size=3000) | JSONISH.map(json.dumps))
def test_any_answer_is_judged_without_raising(content: str) -> None:
    part = judge("m", content, IDS)
    if part["verified"]:
        assert all(set(h["facts"]) <= set(IDS) and h["facts"] for h in part["hypotheses"])
        assert part["dropped"] >= 0
    else:
        assert len(part["text"]) <= TEXT_MAX + 1 and part["problem"]


def test_an_answer_nested_too_deeply_is_unverified() -> None:
    part = judge("m", "[" * 100_000, IDS)
    assert not part["verified"] and part["problem"].startswith("the answer is not JSON")


@given(comm=st.text(), cmdline=st.text(), many=st.integers(0, 50))
def test_what_is_sent_is_cut_to_size_and_leaves_cmdlines_out(comm: str, cmdline: str,
                                                              many: int) -> None:
    chain = [{"pid": i, "comm": comm * 50, "cmdline": cmdline} for i in range(many)]
    analysis = {"rule": "r", "message": comm * 50, "facts": [
        {"id": "F1", "kind": "origin", "chain": chain}]}
    sent = document(analysis)
    assert all(len(s) <= STRING_MAX + 1 for s in strings(sent))
    assert len(sent["facts"][0]["chain"]) == min(many, LIST_MAX)
    assert all("cmdline" not in p for p in sent["facts"][0]["chain"])
    body = request(analysis, "m", 100)
    assert json.loads(body["messages"][1]["content"]) == sent
    with_cmdlines = document(analysis, send_cmdlines=True)["facts"][0]["chain"]
    assert all(p["cmdline"] == (cmdline if len(cmdline) <= STRING_MAX
                                else cmdline[:STRING_MAX] + "…") for p in with_cmdlines)


def test_duplicate_citations_are_kept_once_and_extra_hypotheses_dropped() -> None:
    answer = {"summary": "s", "hypotheses": [{"hypothesis": f"h{i}", "facts": ["F1", "F1"]}
                                             for i in range(8)]}
    part = judge("m", json.dumps(answer), IDS)
    assert [h["hypothesis"] for h in part["hypotheses"]] == ["h0", "h1", "h2", "h3", "h4"]
    assert all(h["facts"] == ["F1"] for h in part["hypotheses"])
    bad = {"summary": "s", "hypotheses": [{"hypothesis": "h", "facts": ["F1", 2]}]}
    assert judge("m", json.dumps(bad), IDS)["dropped"] == 1

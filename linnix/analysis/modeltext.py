"""The model's part of an analysis, for people: after the facts, and labelled as the model's.

Everything the model wrote (its summary, hypotheses, or the text of an answer
that did not validate) is data, exactly like a process's name: quoted through
the caller's ``quote`` (:func:`linnix.terminal.printable` in text, a Markdown
code span in Markdown), so a model talked into writing Markdown, HTML or
terminal escapes shows them as characters.  Only fact ids that were checked
against the analysis are shown as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["model_lines"]

Quote = Callable[[object], str]


def _label(part: Mapping[str, Any], escape: Quote) -> str:
    return f"model {escape(part.get('model'))} ({escape(part.get('backend'))})"


def model_lines(part: Mapping[str, Any] | None, quote: Quote, escape: Quote) -> list[str]:
    """The lines saying ``part`` (none when there is none): the first is the label, the
    others are its items.  ``quote`` shows the model's words, ``escape`` linnix's own."""
    if not part:
        return []
    label = _label(part, escape)
    if part.get("pending"):
        return [f"{label}: asked, no answer yet"]
    if part.get("error") is not None:
        return [f"{label}: no answer: {quote(part['error'])}"]
    if not part.get("verified"):
        return [f"{label}: UNVERIFIED, not checked against the facts "
                f"({escape(part.get('problem'))}); its answer as it came:",
                quote(part.get("text", ""))]
    lines = [f"{label}: a reading of the facts, each hypothesis checked to cite them "
             "(not a fact itself):", f"summary: {quote(part.get('summary', ''))}"]
    for rank, h in enumerate(part.get("hypotheses") or [], 1):
        cited = ", ".join(escape(f) for f in h.get("facts") or [])
        lines.append(f"hypothesis {rank}: {quote(h.get('hypothesis', ''))} (rests on {cited})")
    dropped = part.get("dropped") or 0
    if dropped:
        lines.append(f"{dropped} hypothesis(es) dropped: they cited no fact, or facts not "
                     "in this analysis")
    return lines

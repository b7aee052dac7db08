"""An analysis for people: plain text for a terminal, Markdown for everything else.

Both say the same lines in the same order, one per fact, each led by its id.
What a process controls (names, command lines, paths, users, units) and what
an incident's message says is data: in text it goes through
:func:`linnix.terminal.printable`; in Markdown it is also put in a code span
(:func:`md_code`), where nothing can format, link or embed HTML, whatever it
holds.  The rule's own words (its name, its runbook) are escaped character by
character (:func:`md_escape`).  A model's part, when there is one, follows the
facts under its own label (:mod:`.modeltext`), its words quoted the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from ..terminal import printable
from .modeltext import model_lines

__all__ = ["fact_lines", "markdown", "md_code", "md_escape", "model_part", "text"]

Quote = Callable[[object], str]

_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character
_TICKS = re.compile(r"`+")


def md_escape(value: object) -> str:
    """``value`` as Markdown text that means itself: each ASCII punctuation character
    backslash-escaped (CommonMark allows it for all of them), controls escaped."""
    return _PUNCTUATION.sub(r"\\\1", printable(str(value)))


def md_code(value: object) -> str:
    """``value`` as a Markdown code span: a fence longer than any run of backticks in
    it, and a space inside each end (which CommonMark takes off again)."""
    body = printable(str(value))
    fence = "`" * (max((len(m) for m in _TICKS.findall(body)), default=0) + 1)
    return f"{fence} {body} {fence}"


def _plain(value: object) -> str:
    return f'"{printable(str(value))}"'


def _num(value: object) -> str:
    if value is None:
        return "not measured"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.0f}"
    return str(value)


def _pct(share: object) -> str:
    return f"{share * 100:.0f}%" if isinstance(share, (int, float)) else "share unknown"


def _proc(p: Mapping[str, Any], q: Quote) -> str:
    return f"{q(p.get('comm') if p.get('comm') is not None else '?')}[{p.get('pid')}]"


def _at(ts: object, fired: object) -> str:
    """A time in the engine's clock, said relative to the firing (``-1.5s``)."""
    if not isinstance(ts, (int, float)) or not isinstance(fired, (int, float)):
        return "at an unknown time"
    delta = ts - fired
    return "when it fired" if abs(delta) < 1e-9 else f"at {delta:+.1f}s"


def _condition(f: Mapping[str, Any], q: Quote, fired: object) -> str:
    cond = f"{q(f['condition'])}" if f.get("condition") else "the rule's condition"
    held = f.get("held_s")
    how = f"held for {held:.1f}s before it fired" if isinstance(held, (int, float)) \
        else "fired"
    return f"condition: {cond} {how}"


def _value(value: object, q: Quote) -> str:
    """A value a condition read: a number, or text (a name: the process's, so quoted)."""
    return q(value) if isinstance(value, str) else _num(value)


def _trajectory(f: Mapping[str, Any], q: Quote, fired: object) -> str:
    first, last, peak = f["first"], f["last"], f.get("peak")
    if f["samples"] == 1:
        return f"{f['name']}: {_value(last['value'], q)} {_at(last['ts'], fired)}"
    line = (f"{f['name']}: {_value(first['value'], q)} {_at(first['ts'], fired)}, "
            f"{_value(last['value'], q)} {_at(last['ts'], fired)}")
    if peak is not None:
        line += f", peak {_num(peak['value'])} {_at(peak['ts'], fired)}"
    return line + f" ({f['samples']} sample(s))"


def _drivers(f: Mapping[str, Any], q: Quote, fired: object) -> str:
    top = ", ".join(f"{_proc(p, q)} {_num(p['value'])} ({_pct(p['share'])})" for p in f["top"])
    return f"drivers by {f['metric']} (total {_num(f['total'])}): {top}"


def _branch(f: Mapping[str, Any], q: Quote, fired: object) -> str:
    return (f"branch: {_proc(f, q)} holds {_num(f['value'])} of {_num(f['of'])} "
            f"{f['metric']} ({_pct(f['share'])}, {_num(f.get('procs'))} process(es))")


def _origin(f: Mapping[str, Any], q: Quote, fired: object) -> str:
    parts = []
    for p in f["chain"]:
        extra = [f"{k} {q(p[k])}" for k in ("user", "unit", "container", "exe", "cmdline")
                 if p.get(k)]
        parts.append(_proc(p, q) + (f" ({', '.join(extra)})" if extra else ""))
    return "origin: " + " <- ".join(parts)


def _host(f: Mapping[str, Any], q: Quote, fired: object) -> str:
    said = [f"{k} {_num(v)}" for k, v in f.items() if k not in ("id", "kind")]
    return "host when it fired: " + ", ".join(said)


def _alerts(f: Mapping[str, Any], q: Quote, fired: object) -> str:
    said = [f"#{i['id']} {q(i['rule'])}" + (f" on {_proc(i, q)}" if i.get("pid") else "")
            for i in f["incidents"]]
    return "other incidents in the window: " + ", ".join(said)


def _before(f: Mapping[str, Any], q: Quote, fired: object) -> str:
    about = f" for {q(f['exe'])}" if f.get("exe") else ""
    if not f["count"]:
        return f"before: no earlier incident of this rule{about}"
    ids = ", ".join(f"#{i['id']}" for i in f["incidents"])
    return f"before: {f['count']} earlier incident(s) of this rule{about}, latest {ids}"


def _runbook(f: Mapping[str, Any], q: Quote, fired: object) -> str:
    return f"runbook: {q(f['text'])}"


_LINES: dict[str, Callable[[Mapping[str, Any], Quote, object], str]] = {
    "condition": _condition, "trajectory": _trajectory, "drivers": _drivers,
    "branch": _branch, "origin": _origin, "host": _host, "alerts": _alerts,
    "before": _before, "runbook": _runbook,
}


def _lines(analysis: Mapping[str, Any], q: Quote) -> list[tuple[str, str]]:
    facts = analysis.get("facts") or []
    fired = next((f.get("fired_at") for f in facts if f.get("kind") == "condition"), None)
    out = []
    for f in facts:
        line = _LINES.get(f.get("kind", ""))
        out.append((f["id"], line(f, q, fired) if line else f"{f.get('kind')}: (not shown)"))
    return out


def fact_lines(analysis: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(id, line) of each fact, the line as :func:`text` says it (for a page that
    shows each fact apart: the page escapes it)."""
    return _lines(analysis, _plain)


def model_part(analysis: Mapping[str, Any]) -> list[str]:
    """The model's part as :func:`text` says it: its label, then its items (none when
    there is no model's part)."""
    return model_lines(analysis.get("model"), _plain, lambda v: printable(str(v)))


def text(analysis: Mapping[str, Any]) -> str:
    """The analysis as lines for a terminal."""
    head = (f"analysis of incident {analysis.get('incident')} (rule "
            f"{printable(str(analysis.get('rule')))}, {analysis.get('analyst')} analyst)\n")
    body = "".join(f"  [{fid}] {line}\n" for fid, line in fact_lines(analysis))
    model = model_part(analysis)
    if model:
        body += f"  {model[0]}\n" + "".join(f"    {line}\n" for line in model[1:])
    return head + body


def markdown(analysis: Mapping[str, Any]) -> str:
    """The analysis as a Markdown document: a heading and one list item per fact."""
    head = (f"### Analysis of incident {analysis.get('incident')}: rule "
            f"{md_escape(analysis.get('rule'))}\n\n")
    if analysis.get("message") is not None:
        head += f"{md_code(analysis['message'])}\n\n"
    body = "".join(f"- **{fid}** {_md_line(line)}\n" for fid, line in _lines(analysis, md_code))
    model = model_lines(analysis.get("model"), md_code, md_escape)
    if model:  # a paragraph, then a bullet list (no numbers: they would be Markdown's)
        body += f"\n{model[0]}\n" + ("\n" if model[1:] else "") \
            + "".join(f"- {line}\n" for line in model[1:])
    return head + body + f"\n_{md_escape(analysis.get('analyst'))} analyst_\n"


def _md_line(line: str) -> str:
    """A line whose quoted parts are code spans already: the words around them are
    linnix's own, and only '<' and '*' could still mean something (``<-``, ``*``)."""
    return line.replace("<-", "←")

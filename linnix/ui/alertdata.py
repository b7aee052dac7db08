"""What the alerts and incidents pages show: their filters, read from the query and
checked; the active alerts and the history's transitions that match them; the
incidents' rows.

Matching is plain: a rule and a severity are compared whole, the text filter is a
substring found ignoring case, in text the daemon already cut to a bound; no pattern
from the user is ever compiled.  Process data passes through as it is (the templates
escape it); a value not known is "—".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import attrs

from ..timefmt import rfc3339
from .context import DashboardView
from .pages import NOT_MEASURED, target

__all__ = ["FILTER_MAX", "HISTORY_SHOWN", "INCIDENTS_PAGE", "SEVERITIES", "STATES",
           "AlertFilter", "FilterError", "IncidentFilter", "alerts_page", "incident_row"]

FILTER_MAX = 200  # characters of a rule name or a text to find
HISTORY_READ = 1000  # the most the daemon keeps (runtime.view.History)
HISTORY_SHOWN = 200  # transitions listed, newest first
INCIDENTS_PAGE = 50  # incidents per page
SEVERITIES = ("info", "warning", "critical")
STATES = ("pending", "firing", "resolved", "action")  # "action": a proposal
ID_MAX = 2**63 - 1


class FilterError(ValueError):
    """A filter the page cannot apply; its message says what to change."""


def _text(args: Mapping[str, str], name: str, label: str) -> str:
    value = (args.get(name) or "").strip()
    if len(value) > FILTER_MAX:
        raise FilterError(f"The {label} filter has at most {FILTER_MAX} characters.")
    return value


def _choice(args: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = (args.get(name) or "").strip()
    if value and value not in choices:
        raise FilterError(f"Choose the {name} among {', '.join(choices)} (not {value[:40]!r}).")
    return value


def _query(fields: Mapping[str, object]) -> str:
    """The query string of the fields that are set, "?"-prefixed ("" when none is)."""
    kept = {k: str(v) for k, v in fields.items() if v not in (None, "", False)}
    return "?" + urlencode(kept) if kept else ""


@attrs.frozen
class AlertFilter:
    """The alerts page's filters: rule, severity, state (or "action") and text."""

    rule: str = ""
    severity: str = ""
    state: str = ""
    text: str = ""

    @classmethod
    def of(cls, args: Mapping[str, str]) -> AlertFilter:
        """From a request's query; :class:`FilterError` for what cannot be applied."""
        return cls(_text(args, "rule", "rule"), _choice(args, "severity", SEVERITIES),
                   _choice(args, "state", STATES), _text(args, "q", "text"))

    @property
    def set(self) -> bool:
        return bool(self.rule or self.severity or self.state or self.text)

    def query(self) -> str:
        return _query({"rule": self.rule, "severity": self.severity, "state": self.state,
                       "q": self.text})

    def keeps(self, item: Mapping[str, Any]) -> bool:
        """Whether an active alert or a history record passes every filter."""
        if self.rule and item.get("rule") != self.rule:
            return False
        if self.severity and item.get("severity") != self.severity:
            return False
        if self.state and _state(item) != self.state:
            return False
        return not self.text or self.text.casefold() in _haystack(item)


def _state(item: Mapping[str, Any]) -> str:
    return "action" if item.get("type") == "action" else str(item.get("state"))


def _haystack(item: Mapping[str, Any]) -> str:
    """The text a text filter is looked for in, folded: one field per line, so that no
    match spans two fields."""
    labels = item.get("labels")
    fields = [item.get(k) for k in ("rule", "comm", "pid", "message", "cgroup", "action",
                                    "status", "reason")]
    if isinstance(labels, Mapping):
        fields += [f"{k}={v}" for k, v in labels.items()]
    return "\n".join(str(f) for f in fields if f is not None).casefold()


def _target(item: Mapping[str, Any]) -> str:
    """``comm [pid]``, the cgroup, or the host (a cgroup rule's incident in the store's
    list names no cgroup: "a cgroup", its page says which)."""
    if item.get("pid") is not None or item.get("cgroup"):
        return target(dict(item))
    return "a cgroup" if item.get("scope") == "cgroup" else "the host"


def alert_row(a: Mapping[str, Any]) -> dict[str, Any]:
    """An active alert as its row."""
    return {"rule": a.get("rule"), "state": a.get("state"), "severity": a.get("severity"),
            "target": _target(a), "pid": a.get("pid"), "message": a.get("message"),
            "since": a.get("time") or NOT_MEASURED, "incident_id": a.get("incident_id")}


def transition_row(r: Mapping[str, Any]) -> dict[str, Any]:
    """A history record (a transition or a proposal) as its row."""
    proposal = r.get("type") == "action"
    if proposal:
        what = f"{r.get('action')} proposed" if r.get("status") == "proposed" \
            else f"{r.get('action')} not proposed: {r.get('status')}"
    else:
        what = str(r.get("message") or "")
    return {"state": _state(r), "rule": r.get("rule"),
            "severity": None if proposal else r.get("severity"), "target": _target(r),
            "pid": r.get("pid"), "what": what, "reason": r.get("reason"),
            "time": r.get("time") or NOT_MEASURED, "incident_id": r.get("incident_id")}


def alerts_page(view: DashboardView, f: AlertFilter) -> dict[str, Any]:
    """The alerts page: the active alerts and the newest transitions that pass ``f``."""
    active = view.alerts()
    history = view.alert_history(HISTORY_READ)
    matched = [r for r in reversed(history) if f.keeps(r)]  # newest first
    names = {str(r.get("name")) for r in view.rules()} | \
        {str(a.get("rule")) for a in [*active, *history]}
    return {"active": [alert_row(a) for a in active if f.keeps(a)],
            "active_total": len(active),
            "history": [transition_row(r) for r in matched[:HISTORY_SHOWN]],
            "matched": len(matched), "kept": len(history), "kept_max": HISTORY_READ,
            "rules": sorted(names), "rules_loaded": view.dashboard_status().get("rules")}


@attrs.frozen
class IncidentFilter:
    """The incidents page's filters: open only, rule, severity; and where the page
    starts (``before``: the store's cursor, an incident id)."""

    open: bool = False
    rule: str = ""
    severity: str = ""
    before: int | None = None

    @classmethod
    def of(cls, args: Mapping[str, str]) -> IncidentFilter:
        state = _choice(args, "state", ("open", "all"))
        before = (args.get("before") or "").strip()
        if before and not (before.isascii() and before.isdigit() and
                           0 < int(before) <= ID_MAX):
            raise FilterError(f"'before' is an incident id, a whole number from 1 to {ID_MAX} "
                              f"(not {before[:40]!r}).")
        return cls(state == "open", _text(args, "rule", "rule"),
                   _choice(args, "severity", SEVERITIES), int(before) if before else None)

    @property
    def set(self) -> bool:
        return bool(self.open or self.rule or self.severity)

    def query(self, before: int | None = None) -> str:
        return _query({"state": "open" if self.open else "", "rule": self.rule,
                       "severity": self.severity, "before": before})


def incident_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """One incident of the store's list as its row (times in RFC 3339, UTC)."""
    resolved = row.get("resolved_at")
    return {"id": row["id"], "rule": row.get("rule"), "severity": row.get("severity"),
            "target": _target(row), "pid": row.get("pid"), "message": row.get("message"),
            "opened": row.get("time") or NOT_MEASURED,
            "state": "open" if resolved is None else "resolved",
            "resolved": None if resolved is None else rfc3339(float(resolved)),
            "resolved_reason": row.get("resolved_reason")}

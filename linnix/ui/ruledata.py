"""What the rules page shows, computed from the daemon's view: each loaded rule with
its last firing, the filters, and a reload's outcome (the checker's diagnostics).

Rule files, diagnostics and firings pass through as text: the templates escape
them.  Counts are formatted here ("—" when not known).
"""

from __future__ import annotations

from typing import Any

from .context import DashboardView
from .pages import NOT_MEASURED, number

__all__ = ["DIAGNOSTICS_SHOWN", "FILTER_MAX", "RULES_SHOWN", "Filters", "diagnostic_items",
           "firing_item", "reload_outcome", "rule_detail", "rule_list"]

RULES_SHOWN = 500  # rules listed on one page; the filters narrow a longer list
DIAGNOSTICS_SHOWN = 100  # a refused reload's diagnostics shown (linnix check shows all)
FILTER_MAX = 200  # characters of a name or tag filter (no name or tag is longer)


class Filters:
    """The list's filters: a part of the name (any case) and a tag (exactly)."""

    def __init__(self, name: str | None, tag: str | None) -> None:
        self.name = (name or "").strip()[:FILTER_MAX]
        self.tag = (tag or "").strip()[:FILTER_MAX]

    def __bool__(self) -> bool:
        return bool(self.name or self.tag)

    def keep(self, rule: dict[str, Any]) -> bool:
        """Whether ``rule`` (as the view's ``rules()`` gives it) passes."""
        if self.name and self.name.casefold() not in str(rule.get("name", "")).casefold():
            return False
        return not self.tag or self.tag in (rule.get("tags") or ())


def _target(firing: dict[str, Any]) -> str:
    """What fired: ``comm [pid]``, a cgroup, or the host."""
    if firing.get("pid") is not None:
        return f"{firing.get('comm') or '?'} [{firing['pid']}]"
    return str(firing.get("cgroup") or "the host")


def firing_item(firing: dict[str, Any] | None) -> dict[str, Any] | None:
    """A rule's last firing as the pages show it (None: not since the start)."""
    if firing is None:
        return None
    return {"time": firing.get("time") or NOT_MEASURED, "target": _target(firing),
            "message": firing.get("message") or ""}


def _rule_item(rule: dict[str, Any], firing: dict[str, Any] | None) -> dict[str, Any]:
    counts = rule.get("counts") or {}
    return {"name": rule["name"], "where": f"{rule.get('path')}:{rule.get('line')}",
            "scope": rule.get("scope"), "severity": rule.get("severity"),
            "enabled": bool(rule.get("enabled")), "tags": list(rule.get("tags") or ()),
            "pending": number(counts.get("pending")), "firing": number(counts.get("firing")),
            "last": firing_item(firing)}


def rule_list(view: DashboardView, filters: Filters) -> dict[str, Any]:
    """The rules page's list: the rules the filters keep (at most RULES_SHOWN), how many
    are loaded and active, and every tag (for the tag filter)."""
    rules = view.rules()
    fired = view.last_firings()
    kept = [r for r in rules if filters.keep(r)]
    status = view.dashboard_status()
    return {"rules": [_rule_item(r, fired.get(r["name"])) for r in kept[:RULES_SHOWN]],
            "matched": len(kept), "loaded": len(rules), "active": status.get("rules"),
            "tags": sorted({t for r in rules for t in r.get("tags") or ()}),
            "filters": filters}


async def rule_detail(view: DashboardView, name: str) -> dict[str, Any] | None:
    """One rule's page: its row, its text as loaded and its explanation, its last firing
    and the newest incident the store keeps of it; None when no loaded rule has ``name``."""
    rule = next((r for r in view.rules() if r.get("name") == name), None)
    if rule is None:
        return None
    source = view.rule_source(name) or {}
    newest = await view.store.earlier_incidents(name, 2**63 - 1, limit=1)
    return {**_rule_item(rule, view.last_firings().get(name)),
            "condition": rule.get("condition"), "actions": rule.get("actions") or [],
            "source": source.get("source"), "explain": source.get("explain"),
            "incident": {"id": newest[0]["id"], "open": newest[0].get("resolved_at") is None}
            if newest else None}


def diagnostic_items(diagnostics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Diagnostics as the page lists them: level and code, ``path:line:col``, the
    message, the excerpt (source line and carets) and the hint, at most
    DIAGNOSTICS_SHOWN."""
    out = []
    for d in diagnostics[:DIAGNOSTICS_SHOWN]:
        where = str(d.get("path") or "?")
        if d.get("line") is not None:
            where += f":{d['line']}" + (f":{d['col']}" if d.get("col") is not None else "")
        out.append({"level": d.get("level") or "error", "code": d.get("code") or "",
                    "where": where, "message": d.get("message") or "",
                    "excerpt": d.get("excerpt"), "hint": d.get("hint")})
    return out


def reload_outcome(accepted: bool, diagnostics: list[dict[str, Any]]) -> dict[str, Any]:
    """What a reload came to: taken (with its warnings) or refused (with its errors; the
    running rules are kept)."""
    errors = sum(1 for d in diagnostics if d.get("level", "error") == "error")
    return {"accepted": accepted, "errors": errors, "warnings": len(diagnostics) - errors,
            "diagnostics": diagnostic_items(diagnostics),
            "more": max(0, len(diagnostics) - DIAGNOSTICS_SHOWN)}

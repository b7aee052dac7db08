"""How the answers of the daemon's API are shown to people: tables, details, lines.

Each function turns the JSON the API returns (:mod:`linnix.api.client`) into
text for a terminal.  Text that a process controls (its name, a message, a
result) goes through :func:`~linnix.terminal.printable` or
:func:`~linnix.terminal.printable_lines`, so that it is shown as data and
never moves the cursor or reorders what the operator reads.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..terminal import printable, printable_lines

if TYPE_CHECKING:
    from ..api.client import SseEvent

__all__ = [
    "action_detail",
    "actions_table",
    "event_line",
    "incident_detail",
    "incidents_table",
    "local_time",
    "paused_banner",
    "pause_text",
    "table",
]


def local_time(ts: object) -> str:
    """A Unix time as local ISO 8601 to the second; '-' when there is none."""
    if not isinstance(ts, int | float):
        return "-"
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Rows under their headers, in aligned columns (the last one is not padded)."""
    cells = [[str(h) for h in headers]] + [["-" if c is None else printable(str(c)) for c in r]
                                           for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        padded = [c.ljust(w) for c, w in zip(row[:-1], widths[:-1], strict=True)]
        lines.append("  ".join([*padded, row[-1]]).rstrip())
    return "\n".join(lines) + "\n"


def _target(row: Mapping[str, Any]) -> str:
    pid, comm = row.get("pid"), row.get("comm")
    if pid is None:  # a cgroup action names its cgroup instead
        return comm or row.get("cgroup") or "-"
    return f"{comm or '?'}[{pid}]"


def _when_action(row: Mapping[str, Any]) -> str:
    status = row.get("status")
    if status == "pending":
        return f"expires {local_time(row.get('expires_at'))}"
    if row.get("decided_at") is not None:
        who = row.get("decided_by") or "?"
        return f"{status} by {who} at {local_time(row.get('decided_at'))}"
    if row.get("finished_at") is not None:
        return f"{status} at {local_time(row.get('finished_at'))}"
    return "-"


def actions_table(rows: Sequence[Mapping[str, Any]], status: str | None) -> str:
    if not rows:
        return f"no {status} actions\n" if status else "no actions\n"
    return table(("ID", "STATUS", "ACTION", "TARGET", "RULE", "REPEATS", "INCIDENT", "CREATED",
                  "DECISION"),
                 [(r["id"], r.get("status"), _action_text(r), _target(r), r.get("rule"),
                   r.get("repeats"), r.get("incident_id"), local_time(r.get("created_at")),
                   _when_action(r))
                  for r in rows])


def _repeats_text(row: Mapping[str, Any]) -> str | None:
    """How often the rule fired again for the target while the action was pending, and
    when last; None when it did not (or the daemon does not say)."""
    repeats = row.get("repeats")
    if not isinstance(repeats, int) or repeats <= 0:
        return None
    times = "once" if repeats == 1 else f"{repeats} times"
    return f"the rule fired again {times}, last at {local_time(row.get('last_seen_at'))}"


def _action_text(row: Mapping[str, Any]) -> str:
    params = row.get("params") or {}
    shown = ", ".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "target")
    return f"{row.get('kind')}({shown})" if shown else str(row.get("kind"))


def _result_text(row: Mapping[str, Any]) -> str | None:
    result = row.get("result")
    if isinstance(result, dict):
        detail = result.get("detail")
        return str(detail) if detail is not None else json.dumps(result)
    return None if result is None else str(result)


def action_detail(row: Mapping[str, Any]) -> str:
    fields: list[tuple[str, object]] = [
        ("action", row.get("id")),
        ("status", row.get("status")),
        ("kind", _action_text(row)),
        ("target", _target(row)),
        ("executable", row.get("exe")),
        ("rule", row.get("rule")),
        ("incident", row.get("incident_id")),
        ("mode", row.get("mode")),
        ("created", local_time(row.get("created_at"))),
        ("repeats", _repeats_text(row) or row.get("repeats")),
    ]
    if row.get("status") == "pending":
        fields.append(("expires", local_time(row.get("expires_at"))))
    if row.get("decided_by") is not None:
        fields += [("decided by", row.get("decided_by")),
                   ("decided", local_time(row.get("decided_at")))]
    if row.get("reason"):
        fields.append(("reason", row.get("reason")))
    if row.get("finished_at") is not None:
        fields.append(("finished", local_time(row.get("finished_at"))))
    result = _result_text(row)
    if result:
        fields.append(("result", result))
    text = _fields(fields)
    if row.get("status") == "pending":
        text += (f"\napprove with: linnix actions approve {row.get('id')}\n"
                 f"reject with:  linnix actions reject {row.get('id')}\n")
    return text


def pause_text(state: Mapping[str, Any]) -> str:
    """The pause switch, as ``actions pause|resume|status`` show it."""
    pause = state.get("paused")
    if state.get("actions") != "paused" or not isinstance(pause, dict):
        ended = state.get("resumed")
        if isinstance(ended, dict):  # what a resume answers: the pause that ended
            return _fields([("actions", "active (resumed)"),
                            ("was paused by", ended.get("by")),
                            ("since", local_time(ended.get("since")))])
        return _fields([("actions", state.get("actions") or "unknown")])
    until = pause.get("until")
    return _fields([
        ("actions", "paused: nothing executes"),
        ("by", pause.get("by")),
        ("since", local_time(pause.get("since"))),
        ("until", local_time(until) if until is not None else "resumed"),
        ("reason", pause.get("reason")),
    ]) + "\nresume with: linnix actions resume\n"


def paused_banner(state: Mapping[str, Any]) -> str | None:
    """One line saying that every action is paused; None when they are not."""
    pause = state.get("paused")
    if state.get("actions") != "paused" or not isinstance(pause, dict):
        return None
    until = pause.get("until")
    why = f" ({pause['reason']})" if pause.get("reason") else ""
    return printable(f"every action is paused by {pause.get('by')} since "
                     f"{local_time(pause.get('since'))} until "
                     f"{local_time(until) if until is not None else 'resumed'}{why}: nothing "
                     "executes; 'linnix actions resume' resumes them")


def _fields(fields: Sequence[tuple[str, object]]) -> str:
    width = max(len(name) for name, _ in fields) + 1
    lines = []
    for name, value in fields:
        shown = ["-"] if value is None else printable_lines(str(value))
        pad = "\n" + " " * (width + 1)
        lines.append(f"{name + ':':<{width}} {pad.join(shown)}")
    return "\n".join(lines) + "\n"


def incidents_table(rows: Sequence[Mapping[str, Any]], open_only: bool) -> str:
    if not rows:
        return "no open incidents\n" if open_only else "no incidents\n"
    return table(("ID", "STATE", "SEVERITY", "RULE", "TARGET", "OPENED", "MESSAGE"),
                 [(r["id"], "open" if r.get("resolved_at") is None else "resolved",
                   r.get("severity"), r.get("rule"), _target(r),
                   local_time(r.get("opened_at")), r.get("message"))
                  for r in rows])


def incident_detail(row: Mapping[str, Any]) -> str:
    text = _fields(_incident_fields(row))
    subtree = row.get("subtree") or []
    if subtree:
        text += "\nprocesses when it opened:\n" + _processes(subtree)
    actions = row.get("actions") or []
    text += "\nactions:\n" + _indent(actions_table(actions, None) if actions else "none\n")
    if row.get("analysis") is not None:  # never analysed: nothing to show
        text += "\n" + analysis_text(row["analysis"])
    return text


def analysis_text(stored: Mapping[str, Any]) -> str:
    """An incident's stored analysis (or why there is none), for a terminal."""
    from ..analysis import text

    if stored.get("analysis") is None:
        return f"analysis: could not be made: {printable(str(stored.get('error')))}\n"
    return text(stored["analysis"])


def _incident_fields(row: Mapping[str, Any]) -> list[tuple[str, object]]:
    resolved = row.get("resolved_at")
    fields: list[tuple[str, object]] = [
        ("incident", row.get("id")),
        ("state", "open" if resolved is None else "resolved"),
        ("rule", row.get("rule")),
        ("severity", row.get("severity")),
        ("scope", row.get("scope")),
        ("target", _target(row)),
        ("opened", local_time(row.get("opened_at"))),
    ]
    if resolved is not None:
        fields += [("resolved", local_time(resolved)), ("why", row.get("resolved_reason"))]
    fields.append(("message", row.get("message")))
    labels = row.get("labels") or {}
    if labels:
        fields.append(("labels", ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))))
    history = row.get("history") or []
    if history:
        latest = history[-1].get("values") if isinstance(history[-1], dict) else None
        if isinstance(latest, dict) and latest:
            fields.append(("values", ", ".join(f"{k}={_number(v)}"
                                               for k, v in sorted(latest.items()))))
    return fields


def _processes(subtree: Sequence[Any], shown: int = 20) -> str:
    """The first ``shown`` processes of the incident's subtree, indented, and how many more."""
    text = _indent(table(
        ("PID", "PPID", "NAME", "CPU%", "RSS MB"),
        [(p.get("pid"), p.get("ppid"), p.get("comm"), _number(p.get("cpu_pct")),
          _number(p.get("rss_mb"))) for p in subtree[:shown] if isinstance(p, dict)]))
    if len(subtree) > shown:
        text += f"  ... and {len(subtree) - shown} more\n"
    return text


def _indent(text: str) -> str:
    return "".join(f"  {line}\n" for line in text.splitlines())


def _number(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.1f}"
    return "-" if value is None else str(value)


def event_line(event: SseEvent, now: float | None = None) -> str | None:
    """One readable line for an alert, action, pause or reset event; None for the others."""
    data = event.json()
    if not isinstance(data, dict):
        return None
    stamp = local_time(time.time() if now is None else now)
    if event.event == "alert":
        return printable(_alert_line(stamp, data))
    if event.event == "action":
        return printable(_action_line(stamp, data))
    if event.event == "pause":
        return printable(_pause_line(stamp, data))
    if event.event == "reset":
        return printable(f"{stamp}  (some events were missed: {data.get('reason', 'reset')})")
    return None


def _pause_line(stamp: str, data: Mapping[str, Any]) -> str:
    """Every action paused (by whom, until when, why), or resumed (by whom, why)."""
    paused = data.get("actions") == "paused"
    about = data.get("paused" if paused else "resumed")
    about = about if isinstance(about, dict) else {}
    text = f"{stamp}  actions {'paused' if paused else 'resumed':<9} by {about.get('by')}"
    if paused:
        until = about.get("until")
        text += f" until {local_time(until) if until is not None else 'resumed'}"
    if about.get("reason"):
        text += f" ({about['reason']})"
    return text


def _alert_line(stamp: str, data: Mapping[str, Any]) -> str:
    state, rule = str(data.get("state", "?")), str(data.get("rule"))
    text = f"{stamp}  alert   {state:<9} {rule:<16} {_target(data)}"
    message = data.get("message")
    if message:
        text += f"  {message}"
    if data.get("reason"):
        text += f" ({data['reason']})"
    return text


def _action_line(stamp: str, data: Mapping[str, Any]) -> str:
    status = str(data.get("status", "?"))
    text = (f"{stamp}  action  {status:<9} #{data.get('id')} {_action_text(data)} "
            f"{_target(data)}  rule {data.get('rule')}")
    if status == "pending":
        repeats = _repeats_text(data)
        text += f"  ({repeats})" if repeats else f"  (linnix actions approve {data.get('id')})"
    elif data.get("decided_by") and status in ("approved", "rejected"):
        text += f"  by {data['decided_by']}"
    result = _result_text(data)
    if result and status in ("succeeded", "failed", "refused"):
        text += f": {result}"
    return text

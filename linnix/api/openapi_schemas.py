"""The schemas of the OpenAPI document (:mod:`.openapi`): what each answer holds.

Apart from the paths so that neither module grows past what one reads at once.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Json", "nullable", "ref", "schema", "schemas"]

Json = dict[str, Any]


def ref(kind: str, name: str) -> Json:
    return {"$ref": f"#/components/{kind}/{name}"}


def schema(name: str) -> Json:
    return ref("schemas", name)


def nullable(kind: str, **extra: Any) -> Json:
    return {"type": [kind, "null"], **extra}


def _page(key: str, item: str) -> Json:
    """A page of ``item`` records under ``key``, newest first, and where the next starts."""
    return {
        "type": "object",
        "required": [key, "next_before"],
        "properties": {
            key: {"type": "array", "items": schema(item), "description": "newest first"},
            "next_before": nullable("integer", description="pass as 'before' for the next page"),
        },
    }


_MEASURED = ("summed over the process and its descendants that were measured; null when "
             "none was")

_PROCESS_FIELDS: Json = {
    "pid": {"type": "integer"},
    "ppid": {"type": "integer"},
    "comm": {"type": "string", "description": "process name (at most 15 bytes)"},
    "exe": nullable("string", description="executable path, when readable"),
    "cmdline": nullable("string"),
    "uid": nullable("integer"),
    "user": nullable("string", description="the name of uid; null when the password "
                                           "database has none"),
    "cgroup": nullable("string", description="cgroup v2 path; null when not known"),
    "unit": nullable("string", description="systemd unit of the cgroup; null outside units"),
    "container": nullable("string", description="container id (12 hex digits); null outside "
                                                "containers"),
    "start": nullable("number", description="start time on the engine clock (seconds)"),
    "age_s": nullable("number"),
    "cpu_pct": nullable("number"),
    "rss_mb": nullable("number"),
    "fds": nullable("integer"),
    "fd_limit": nullable("integer"),
    "fd_pct": nullable("number"),
    "threads": nullable("integer"),
}


_TIME_OPENED: Json = {"type": "string", "format": "date-time",
                      "description": "opened_at in RFC 3339 (UTC)"}
_INCIDENT_SUMMARY: Json = {
    "id": {"type": "integer"},
    "rule": {"type": "string"},
    "severity": {"type": "string"},
    "scope": {"type": "string"},
    "pid": nullable("integer"),
    "comm": nullable("string"),
    "opened_at": {"type": "number", "description": "Unix time"},
    "time": _TIME_OPENED,
    "resolved_at": nullable("number", description="Unix time; null while open"),
    "resolved_reason": nullable("string"),
    "message": {"type": "string"},
}


def schemas() -> Json:
    action_status = ["pending", "approved", "executing", "succeeded", "failed", "rejected",
                     "expired", "refused", "recorded"]
    return {
        "Error": {
            "type": "object",
            "description": "Every error answer. Some carry more fields: 'status' (409), "
                           "'paused' (409: approving while actions are paused), "
                           "'retry_after' (429), 'diagnostics' (422).",
            "required": ["error", "detail"],
            "properties": {
                "error": {"type": "string", "description": "short, stable summary"},
                "detail": {"type": "string", "description": "what happened, for people"},
                "status": {"type": "string", "enum": action_status,
                           "description": "409: the action's current status"},
                "retry_after": {"type": "integer", "description": "429: seconds to wait"},
                "paused": schema("Pause"),
                "diagnostics": {"type": "array", "items": schema("Diagnostic")},
            },
        },
        "Process": {
            "type": "object",
            "required": ["pid", "ppid", "comm"],
            "properties": {**_PROCESS_FIELDS,
                           "children": {"type": "integer", "description": "live children"}},
        },
        "ProcessDetail": {
            "type": "object",
            "description": "A process, as in the list, with its last network events.",
            "required": ["pid", "ppid", "comm", "connections"],
            "properties": {
                **_PROCESS_FIELDS,
                "children": {"type": "integer", "description": "live children"},
                "connections": {
                    "type": ["array", "null"], "items": schema("Connection"),
                    "description": "its last network events (at most 32), oldest first, "
                                   "kept while the daemon runs; null while the rules need "
                                   "no network events (none are captured)"},
            },
        },
        "Connection": {
            "type": "object",
            "description": "A connect, accept or listen of a process.",
            "required": ["ts", "kind", "family", "addr", "port"],
            "properties": {
                "ts": {"type": "number", "description": "on the engine clock (seconds)"},
                "kind": {"type": "string", "enum": ["connect", "accept", "listen"]},
                "family": {"type": "string", "enum": ["inet", "inet6", "unix"]},
                "addr": nullable("string", description="the peer's address (connect, "
                                 "accept) or the local one (listen); a unix socket's path"),
                "port": nullable("integer", description="the peer's port (connect, accept) "
                                 "or the local one (listen)"),
            },
        },
        "ProcessNode": {
            "type": "object",
            "description": "A process with its whole subtree.",
            "required": ["pid", "ppid", "comm", "children"],
            "properties": {
                **_PROCESS_FIELDS,
                "subtree_cpu_pct": nullable("number", description=_MEASURED),
                "subtree_rss_mb": nullable("number", description=_MEASURED),
                "subtree_fds": nullable("integer", description=_MEASURED),
                "subtree_procs": nullable("integer"),
                "children": {"type": "array", "items": schema("ProcessNode")},
            },
        },
        "ProcessList": {
            "type": "object",
            "required": ["processes", "count"],
            "properties": {"processes": {"type": "array", "items": schema("Process")},
                           "count": {"type": "integer"}},
        },
        "Graph": {
            "type": "object",
            "required": ["process", "ancestors", "subtree", "truncated"],
            "properties": {
                "process": schema("Process"),
                "ancestors": {"type": "array", "items": schema("Process"),
                              "description": "nearest first"},
                "subtree": schema("ProcessNode"),
                "truncated": {"type": "boolean",
                              "description": "the subtree was too large to send whole"},
            },
        },
        "Alert": {
            "type": "object",
            "description": "An active (pending or firing) instance of a rule.",
            "required": ["rule", "state"],
            "properties": {
                "rule": {"type": "string"},
                "state": {"type": "string", "enum": ["pending", "firing"]},
                "incident_id": nullable("integer", description="the incident a firing "
                                        "alert opened, once stored"),
                "since": {"type": "number", "description": "engine clock (seconds)"},
                "time": {"type": "string", "format": "date-time",
                         "description": "since, in RFC 3339 (UTC)"},
                "severity": {"type": "string"},
                "scope": {"type": "string"},
                "pid": nullable("integer"),
                "comm": nullable("string"),
                "start": nullable("number"),
                "message": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "values": {"type": "object"},
            },
        },
        "AlertTransition": {
            "type": "object",
            "description": "An alert transition or an action proposal, as 'linnix replay "
                           "--format jsonl' writes them.",
            "required": ["type", "ts", "rule"],
            "properties": {"type": {"type": "string", "enum": ["alert", "action"]},
                           "ts": {"type": "number"}, "rule": {"type": "string"},
                           "time": {"type": "string", "format": "date-time",
                                    "description": "ts in RFC 3339 (UTC)"},
                           "incident_id": {"type": "integer",
                                           "description": "a firing or resolved transition's "
                                                          "incident, once stored"}},
            "additionalProperties": True,
        },
        "AlertList": {
            "type": "object",
            "properties": {
                "alerts": {"type": "array", "items": schema("Alert")},
                "history": {"type": "array", "items": schema("AlertTransition"),
                            "description": "with history=1 instead of 'alerts'; newest last"},
            },
        },
        "Rule": {
            "type": "object",
            "required": ["name", "enabled"],
            "properties": {
                "name": {"type": "string"},
                "path": {"type": "string"},
                "line": {"type": "integer"},
                "scope": {"type": "string"},
                "severity": {"type": "string"},
                "enabled": {"type": "boolean"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "condition": {"type": "string"},
                "for_s": nullable("number"),
                "actions": {"type": "array", "items": {"type": "string"}},
                "counts": {"type": "object", "properties": {
                    "pending": {"type": "integer"}, "firing": {"type": "integer"}}},
            },
        },
        "RuleList": {
            "type": "object",
            "required": ["rules"],
            "properties": {"rules": {"type": "array", "items": schema("Rule")}},
        },
        "Diagnostic": {
            "type": "object",
            "required": ["level", "code", "message"],
            "properties": {
                "path": {"type": "string"}, "line": {"type": "integer"},
                "col": {"type": "integer"}, "end_line": {"type": "integer"},
                "end_col": {"type": "integer"},
                "level": {"type": "string", "enum": ["error", "warning", "note"]},
                "code": {"type": "string"}, "message": {"type": "string"},
                "hint": nullable("string"),
                "excerpt": nullable("string", description=(
                    "the source line and the carets under what the diagnostic is about, as "
                    "'linnix check' shows them (two lines); null when it points at no text")),
            },
        },
        "ReloadRequest": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "note": nullable("string", maxLength=128, description=(
                    "one line for the audit log, beside the token's name (which is who "
                    "reloaded)")),
                "actor": nullable("string", maxLength=128,
                                   description="the old name of 'note'; give one of them"),
            },
        },
        "Reloaded": {
            "type": "object",
            "required": ["reloaded", "warnings"],
            "properties": {"reloaded": {"const": True},
                           "warnings": {"type": "array", "items": schema("Diagnostic")}},
        },
        "IncidentSummary": {
            "type": "object",
            "required": ["id", "rule", "opened_at", "message"],
            "properties": _INCIDENT_SUMMARY,
        },
        "Incident": {
            "type": "object",
            "required": ["id", "rule", "opened_at", "message", "actions"],
            "properties": {
                **_INCIDENT_SUMMARY,
                "start": nullable("number"),
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "history": {"type": "array", "items": {"type": "object"},
                            "description": "the values that led to the alert"},
                "trail": {"type": "array", "items": {"type": "object"},
                          "description": "the values its rule read while it was open, "
                          "each {at: Unix time, values} (thinned; saved every 30 s while "
                          "open and when it resolved)"},
                "subtree": {"type": "array", "items": {"type": "object"},
                            "description": "the processes involved when it opened"},
                "host": {"type": "object", "description": "host telemetry when it opened"},
                "context": {"type": "object", "description": "what its analysis reads "
                            "beyond the snapshot: ancestors, forkers, condition, runbook"},
                "actions": {"type": "array", "items": schema("Action")},
                "analysis": {"oneOf": [schema("Analysis"), {"type": "null"}],
                             "description": "null: never analysed"},
            },
        },
        "Analysis": {
            "type": "object",
            "required": ["created_at", "analysis", "error"],
            "properties": {
                "created_at": {"type": "number"},
                "time": {"type": "string", "format": "date-time"},
                "analysis": {"oneOf": [{"type": "object", "required": ["facts"], "properties": {
                    "facts": {"type": "array", "items": {
                        "type": "object", "required": ["id", "kind"],
                        "properties": {"id": {"type": "string"}, "kind": {"type": "string"}}}},
                    "model": {"type": "object", "required": ["backend", "model"],
                              "description": "the model's part (docs/model.md), with a "
                              "model configured"},
                }}, {"type": "null"}], "description": "null: see error"},
                "error": nullable("string", description="why it could not be made"),
            },
        },
        "IncidentPage": _page("incidents", "IncidentSummary"),
        "Insight": {"allOf": [schema("Analysis"), {
            "type": "object",
            "description": "an analysis (its 'time': when it was made) and its incident",
            "required": ["incident_id", "rule", "opened_at", "message"],
            "properties": {
                "incident_id": {"type": "integer"},
                **{k: v for k, v in _INCIDENT_SUMMARY.items() if k not in ("id", "time")},
            },
        }]},
        "InsightPage": _page("insights", "Insight"),
        "Action": {
            "type": "object",
            "required": ["id", "rule", "kind", "status", "mode", "created_at"],
            "properties": {
                "id": {"type": "integer"},
                "incident_id": nullable("integer"),
                "rule": {"type": "string"},
                "kind": {"type": "string",
                         "enum": ["kill", "kill_tree", "signal", "renice", "analyze", "freeze",
                                  "kill_cgroup"]},
                "params": {"type": "object"},
                "pid": nullable("integer"),
                "start_ticks": nullable("integer"),
                "comm": nullable("string"),
                "exe": nullable("string"),
                "status": {"type": "string", "enum": action_status},
                "mode": {"type": "string", "enum": ["monitor", "enforce"]},
                "created_at": {"type": "number", "description": "Unix time"},
                "time": {"type": "string", "format": "date-time",
                         "description": "created_at in RFC 3339 (UTC)"},
                "expires_at": nullable("number"),
                "decided_by": nullable("string"),
                "decided_at": nullable("number"),
                "reason": nullable("string"),
                "result": {"type": ["object", "null"]},
                "finished_at": nullable("number"),
                "repeats": {"type": "integer", "minimum": 0, "description": (
                    "how many more times the rule fired for the same process (pid and start "
                    "time) while the action was pending: counted here, not proposed again")},
                "last_seen_at": nullable("number", description=(
                    "Unix time of the latest firing (created_at until it repeats)")),
                "cgroup": nullable("string", description=(
                    "a cgroup action's target: the cgroup v2 path (null for a process)")),
                "cgroup_id": nullable("integer", description=(
                    "the id (directory inode) of that cgroup when it was proposed: a cgroup "
                    "re-created at the same path since is refused")),
            },
        },
        "ActionPage": _page("actions", "Action"),
        "Decision": {
            "type": "object",
            "additionalProperties": False,
            "description": "who decides is the name of the token the request presents",
            "properties": {
                "note": nullable("string", maxLength=128, description=(
                    "one line for the audit log (an 'action.note' record), such as who "
                    "used a shared token")),
                "approver": nullable("string", maxLength=128,
                                      description="the old name of 'note'; give one of them"),
                "reason": nullable("string", maxLength=1024),
            },
        },
        "Pause": {
            "type": "object",
            "required": ["since", "until", "reason", "by"],
            "properties": {
                "since": {"type": "number", "description": "Unix time"},
                "until": nullable("number", description="Unix time; null: until resumed"),
                "reason": nullable("string"),
                "by": {"type": "string", "description": "the token's name"},
            },
        },
        "ActionsState": {
            "type": "object",
            "required": ["actions"],
            "properties": {
                "actions": {"enum": ["active", "paused"]},
                "paused": {**schema("Pause"), "description": "the pause, while paused"},
                "resumed": {**schema("Pause"), "description": "the pause that ended"},
            },
        },
        "PauseRequest": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "reason": nullable("string", maxLength=1024),
                "for": {"type": ["string", "number", "null"], "description": (
                    "end the pause by itself after this long: '30m', '2h', '1d' or "
                    "seconds, at most 30 days; absent: until resumed")},
                "note": nullable("string", maxLength=128),
            },
        },
        "AuditRecord": {
            "type": "object",
            "required": ["id", "at", "actor", "event"],
            "properties": {
                "id": {"type": "integer"},
                "at": {"type": "number", "description": "Unix time"},
                "actor": {"type": "string"},
                "event": {"type": "string", "description": "e.g. action.approved"},
                "action_id": nullable("integer"),
                "incident_id": nullable("integer"),
                "detail": {"type": "object"},
            },
        },
        "AuditPage": _page("audit", "AuditRecord"),
    }

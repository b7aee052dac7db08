"""The OpenAPI 3.1 description of the HTTP API, served at ``GET /openapi.json``.

Written by hand next to the routes of :mod:`linnix.api.app`; a test checks
that both list the same paths and methods.
"""

from __future__ import annotations

from .openapi_schemas import Json, ref, schema, schemas

__all__ = ["openapi_document"]


def _ok(description: str, schema: Json, content_type: str = "application/json") -> Json:
    return {"description": description, "content": {content_type: {"schema": schema}}}


def _op(summary: str, description: str, tag: str, ok: Json, *, errors: tuple[str, ...] = (),
        parameters: tuple[Json, ...] = (), body: Json | None = None,
        public: bool = False, ok_status: str = "200") -> Json:
    responses: Json = {ok_status: ok}
    needs = () if public else ("Unauthorized",)
    for name in (*needs, *errors, "MisdirectedRequest", "InternalError"):
        status = _ERROR_STATUS[name]
        responses[status] = ref("responses", name)
    op: Json = {"summary": summary, "description": description, "tags": [tag],
                "responses": responses}
    if parameters:
        op["parameters"] = list(parameters)
    if body is not None:
        op["requestBody"] = body
    op["security"] = [] if public else [{"bearer": []}]
    return op


_ERROR_STATUS = {
    "BadRequest": "400",
    "Unauthorized": "401",
    "Forbidden": "403",
    "NotFound": "404",
    "Conflict": "409",
    "PayloadTooLarge": "413",
    "MisdirectedRequest": "421",
    "ReloadRejected": "422",
    "RateLimited": "429",
    "InternalError": "500",
    "NotReady": "503",
}

def _parameters() -> Json:
    def query(name: str, description: str, schema: Json) -> Json:
        return {"name": name, "in": "query", "required": False, "description": description,
                "schema": schema}

    def path(name: str, description: str) -> Json:
        return {"name": name, "in": "path", "required": True, "description": description,
                "schema": {"type": "integer", "minimum": 0}}

    flag = {"type": "string", "enum": ["1", "0", "true", "false"]}
    return {
        "limit": query("limit", "how many records at most (default 100)",
                       {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}),
        "before": query("before", "only records with a smaller id (paging: pass next_before)",
                        {"type": "integer", "minimum": 1}),
        "pid": path("pid", "a live process id"),
        "incident_id": path("incident_id", "an incident id"),
        "action_id": path("action_id", "an action id"),
        "history": query("history", "1: the recent alert transitions instead of the active "
                         "alerts", flag),
        "analysis_format": query("format", "json (the default) or markdown",
                                 {"type": "string", "enum": ["json", "markdown"]}),
        "open": query("open", "1: only incidents that are still open", flag),
        "status": query("status", "only actions in this status",
                        {"type": "string", "enum": ["pending", "approved", "executing",
                                                    "succeeded", "failed", "rejected",
                                                    "expired", "refused", "recorded"]}),
        "audit_action": query("action", "only records about this action id",
                              {"type": "integer", "minimum": 1}),
        "audit_actor": query("actor", "only records of this actor (exactly): the token's "
                             "name that approved, rejected or reloaded, or linnix",
                             {"type": "string", "maxLength": 128}),
        "last_event_id": query("last_event_id", "resume after this event id (like the "
                               "Last-Event-ID header, which wins when both are given)",
                               {"type": "integer", "minimum": 0}),
        "last_event_id_header": {"name": "Last-Event-ID", "in": "header", "required": False,
                                 "description": "resume after this event id",
                                 "schema": {"type": "integer", "minimum": 0}},
    }


def _responses() -> Json:
    def error(description: str, headers: Json | None = None) -> Json:
        out = _ok(description, schema("Error"))
        if headers:
            out["headers"] = headers
        return out

    return {
        "BadRequest": error("the body is not valid JSON, or a field or parameter is invalid"),
        "Unauthorized": error(
            "the Authorization header is missing or its token is wrong",
            {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}}),
        "Forbidden": error("the token's role does not allow this request: a reader may "
                           "only read, an approver also approve, reject, pause and "
                           "resume, an admin anything"),
        "NotFound": error("no record has this id, or there is no such route"),
        "Conflict": error("the action is not pending any more ('status' says what it is), "
                          "or actions are paused ('paused'), or not paused (a resume)"),
        "PayloadTooLarge": error("the request body is larger than api.max_body_bytes"),
        "MisdirectedRequest": error(
            "the Host header names this API by a name that is neither an IP address, "
            "'localhost' nor one of api.allowed_hosts (a guard against DNS rebinding)"),
        "ReloadRejected": error("the new rules have errors; the running rules are kept "
                                "('diagnostics' lists them)"),
        "RateLimited": error(
            "executing now would exceed actions.rate_limit",
            {"Retry-After": {"description": "seconds to wait",
                             "schema": {"type": "integer"}}}),
        "InternalError": error("the daemon failed; the body never contains a traceback"),
        "NotReady": error("the event source is not attached yet"),
    }



def _liveness(path: str) -> Json:
    alias = "" if path == "/health" else " The same as /health, under the name Kubernetes " \
        "probes use."
    return _op(
        "Liveness", "Always 200 while the daemon answers; 'actions' says whether every "
        "action is paused (and 'paused' by whom, since and until when, why)." + alias, "health",
        _ok("alive", {"allOf": [schema("ActionsState"), {
            "type": "object", "properties": {"status": {"const": "ok"}}}]}),
        public=True)


def _readiness(path: str) -> Json:
    alias = "" if path == "/ready" else " The same as /ready, under the name Kubernetes " \
        "probes use."
    return _op(
        "Readiness", "200 once the event source is attached, 503 before." + alias, "health",
        _ok("ready", {"type": "object", "properties": {
            "status": {"const": "ready"}, "source": {"type": "string"}}}),
        errors=("NotReady",), public=True)


def _paths() -> Json:
    p = {name: ref("parameters", name) for name in _parameters()}
    body_decision = {"required": False, "content": {
        "application/json": {"schema": schema("Decision")}}}
    decision_errors = ("BadRequest", "Forbidden", "NotFound", "Conflict",
                       "PayloadTooLarge", "RateLimited")
    return {
        **{path: {"get": _liveness(path)} for path in ("/health", "/healthz", "/livez")},
        **{path: {"get": _readiness(path)} for path in ("/ready", "/readyz")},
        "/metrics": {"get": _op(
            "Prometheus metrics", "The text exposition format, version 0.0.4.", "health",
            _ok("metrics", {"type": "string"}, "text/plain; version=0.0.4; charset=utf-8"),
            public=True)},
        "/openapi.json": {"get": _op(
            "This document", "The OpenAPI 3.1 description of the API.", "health",
            _ok("the document", {"type": "object"}))},
        "/processes": {"get": _op(
            "Live processes", "Every process in the engine's table, by pid.", "processes",
            _ok("the processes", schema("ProcessList")))},
        "/processes/{pid}": {"get": _op(
            "One live process", "The same fields as in the list, and its last network "
            "events.", "processes",
            _ok("the process", schema("ProcessDetail")), errors=("NotFound",),
            parameters=(p["pid"],))},
        "/graph/{pid}": {"get": _op(
            "A process in its tree", "Its ancestors and its whole subtree, with subtree "
            "totals; very large subtrees are truncated.", "processes",
            _ok("the graph", schema("Graph")), errors=("NotFound",),
            parameters=(p["pid"],))},
        "/alerts": {"get": _op(
            "Active alerts", "Instances pending or firing now; with history=1 the most "
            "recent transitions and proposals instead.", "alerts",
            _ok("the alerts", schema("AlertList")), errors=("BadRequest",),
            parameters=(p["history"], p["limit"]))},
        "/rules": {"get": _op(
            "Loaded rules", "Every rule with its instance counts.", "rules",
            _ok("the rules", schema("RuleList")))},
        "/rules/reload": {"post": _op(
            "Reload the rules", "Rebuild every rule file all-or-nothing: with any error the "
            "running rules are kept and the answer is 422. Needs the role admin.", "rules",
            _ok("the new rules are running", schema("Reloaded")),
            errors=("BadRequest", "Forbidden", "PayloadTooLarge", "ReloadRejected"),
            body={"required": False, "content": {
                "application/json": {"schema": schema("ReloadRequest")}}})},
        "/stream": {"get": _op(
            "Live events", "Server-sent events: 'event:' is alert, action, incident, process "
            "or reset, 'id:' an increasing integer, 'data:' one JSON object (for an action, "
            "its record as /actions/{action_id} shows it, sent again at each change of status "
            "and each repeat). A comment line "
            "is sent every 15 seconds while idle. Reconnect with Last-Event-ID to resume; a "
            "'reset' event says events were missed. A client that does not keep up is "
            "disconnected and resumes the same way.", "events",
            _ok("the event stream", {"type": "string"}, "text/event-stream"),
            errors=("BadRequest",),
            parameters=(p["last_event_id_header"], p["last_event_id"]))},
        "/incidents": {"get": _op(
            "Incidents", "Newest first; page with 'before'.", "incidents",
            _ok("a page of incidents", schema("IncidentPage")), errors=("BadRequest",),
            parameters=(p["open"], p["limit"], p["before"]))},
        "/incidents/{incident_id}": {"get": _op(
            "One incident", "With its history, subtree, host snapshot and actions.",
            "incidents", _ok("the incident", schema("Incident")), errors=("NotFound",),
            parameters=(p["incident_id"],))},
        "/incidents/{incident_id}/analysis": {"get": _op(
            "An incident's analysis", "The built-in analyst's facts, each with an id (F1, "
            "F2, ...), as JSON, or rendered as Markdown (format=markdown), where what a "
            "process controls is in code spans. 'error' says why there is no analysis. 404 "
            "when the incident was never analysed. With a model configured ([analysis] "
            "backend), 'model' holds its part: pending, its error, a verified summary and "
            "hypotheses citing facts, or unverified text.",
            "incidents", {"description": "the analysis", "content": {
                "application/json": {"schema": schema("Analysis")},
                "text/markdown": {"schema": {"type": "string"}}}},
            errors=("BadRequest", "NotFound"),
            parameters=(p["incident_id"], p["analysis_format"]))},
        "/incidents/{incident_id}/analyze": {"post": _op(
            "Analyse an incident now", "Runs the built-in analyst on the stored incident and "
            "keeps the result, replacing an earlier one; with a model configured, asks it "
            "again in the background. Needs the role approver or admin.",
            "incidents", _ok("the analysis", schema("Analysis")),
            errors=("Forbidden", "NotFound"), parameters=(p["incident_id"],))},
        "/insights": {"get": _op(
            "Recent analyses", "The incidents that have an analysis, newest incident first "
            "(an incident analysed again keeps its place; 'time' says when its analysis was "
            "made); page with 'before' (an incident id). 'error' says why an analysis could "
            "not be made. Empty until an incident is analysed: by a rule's analyze action, "
            "or by POST /incidents/{incident_id}/analyze.", "incidents",
            _ok("a page of analyses", schema("InsightPage")), errors=("BadRequest",),
            parameters=(p["limit"], p["before"]))},
        "/actions": {"get": _op(
            "Actions", "Newest first; page with 'before'.", "actions",
            _ok("a page of actions", schema("ActionPage")), errors=("BadRequest",),
            parameters=(p["status"], p["limit"], p["before"]))},
        "/actions/{action_id}": {"get": _op(
            "One action", "Its whole record.", "actions",
            _ok("the action", schema("Action")), errors=("NotFound",),
            parameters=(p["action_id"],))},
        "/actions/pause": {"post": _op(
            "Pause every action", "Until resumed, or for a while ('for'): nothing executes "
            "and approving answers 409; proposals are still made and marked. Pausing again "
            "sets a new end and reason. Needs the role approver or admin.", "actions",
            _ok("paused", schema("ActionsState")),
            errors=("BadRequest", "Forbidden", "PayloadTooLarge"),
            body={"required": False, "content": {
                "application/json": {"schema": schema("PauseRequest")}}})},
        "/actions/resume": {"post": _op(
            "Resume actions", "Pending actions stay pending: none runs unless approved. "
            "409 when actions are not paused. Needs the role approver or admin.", "actions",
            _ok("resumed", schema("ActionsState")),
            errors=("BadRequest", "Forbidden", "Conflict", "PayloadTooLarge"),
            body={"required": False, "content": {"application/json": {"schema": {
                "type": "object", "additionalProperties": False, "properties": {
                    k: v for k, v in schemas()["PauseRequest"]["properties"].items()
                    if k != "for"}}}}})},
        "/actions/{action_id}/approve": {"post": _op(
            "Approve a pending action", "It executes now, exactly once, after the safety "
            "guards are checked again. Needs the role approver or admin.", "actions",
            _ok("approved; the record as it is now", schema("Action")),
            errors=decision_errors, parameters=(p["action_id"],), body=body_decision)},
        "/actions/{action_id}/reject": {"post": _op(
            "Reject a pending action", "It never executes. Needs the role approver or "
            "admin.", "actions",
            _ok("rejected; the record as it is now", schema("Action")),
            errors=decision_errors, parameters=(p["action_id"],), body=body_decision)},
        "/actions/{action_id}/thaw": {"post": _op(
            "Thaw a freeze", "Undo the freeze this action made (the cgroup's processes run "
            "again) before its paired kill is decided or freeze_ttl passes. 409 when the "
            "action holds no freeze in force. Needs the role approver or admin.", "actions",
            _ok("thawed; the freeze action's record", schema("Action")),
            errors=("BadRequest", "Forbidden", "NotFound", "Conflict", "PayloadTooLarge"),
            parameters=(p["action_id"],), body=body_decision)},
        "/audit": {"get": _op(
            "The audit log", "Who did what and why, newest first; page with 'before'.",
            "audit", _ok("a page of records", schema("AuditPage")), errors=("BadRequest",),
            parameters=(p["audit_action"], p["audit_actor"], p["limit"], p["before"]))},
    }


def openapi_document() -> Json:
    """A fresh copy of the document."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "linnix daemon API",
            "version": "1",
            "description": (
                "Read the state of a running 'linnix run', approve or reject the actions "
                "it proposes, and follow its events. Every route but /health, /ready and "
                "/metrics needs 'Authorization: Bearer <token>' with the token from the "
                "daemon's token file (GETs need none when api.public_reads is true). Errors "
                "are JSON objects {\"error\", \"detail\"}; a method a route does "
                "not support answers 405 with an Allow header."),
        },
        "servers": [{"url": "http://127.0.0.1:9333"}],
        "paths": _paths(),
        "components": {
            "schemas": schemas(),
            "parameters": _parameters(),
            "responses": _responses(),
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "the admin's token in the daemon's token file (api.token), "
                               "or a named token made by 'linnix token add'"}},
        },
    }

"""The HTTP API: read the daemon's state, decide on proposed actions, follow events.

Every answer is JSON (``/metrics`` and ``/stream`` aside).  Every error is
``{"error": short, "detail": longer}`` with the matching status, and an
unexpected exception becomes a 500 whose body says nothing about the code.
Every route but ``/health``, ``/ready`` and ``/metrics`` needs
``Authorization: Bearer <token>``: the process list shows every command line,
which may hold secrets.  ``public_reads`` lets GETs through without one (the
old behaviour).  An app created without a token serves only what needs none.
A token has a name and a role (:mod:`linnix.api.tokens`): a reader may read,
an approver also approve and reject, pause and resume every action, an admin
also reload the rules.  Whoever
decides is recorded by the token's name; the free text a request adds (the
old ``approver`` and ``actor`` fields) is kept as a note.

The app only talks to a :class:`~linnix.api.context.DaemonView`; the routes
are listed, with their parameters and answers, in :mod:`linnix.api.openapi`.
"""

from __future__ import annotations

import ipaddress
import logging
import weakref
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import trio
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from quart import Blueprint, g, request
from quart.wrappers import Response
from quart_trio import QuartTrio
from werkzeug.exceptions import BadHost, HTTPException, MethodNotAllowed, NotFound

from ..actions import NotPausedError
from ..actions.pause import PAUSE_MAX_S, status_json
from ..actions.store import ACTION_STATES
from ..analysis import markdown as analysis_markdown
from ..analysis import md_escape
from .analyses import analyze_now
from .context import DaemonView
from .decisions import decide
from .fields import (
    ACTOR_MAX,
    NOTE_MAX,
    REASON_MAX,
    HttpError,
    check_id,
    duration_field,
    fail,
    flag_arg,
    int_arg,
    json_body,
    last_event_id,
    limit_arg,
    next_before,
    note_field,
    only,
    text_arg,
    text_field,
)
from .openapi import openapi_document
from .stream import StreamClient, StreamHub, encode_json
from .tokens import Principal, TokenBook

__all__ = ["KEEPALIVE_S", "METRICS_CONTENT_TYPE", "create_app", "host_allowed"]

log = logging.getLogger("linnix.api")

KEEPALIVE_S = 15.0  # a comment line on /stream when nothing else was sent for this long
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
RETRY_MS = 3000  # how long an EventSource waits before it reconnects
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# the probe names Kubernetes uses answer as /health (livez, healthz) and /ready (readyz)
LIVENESS_ROUTES = ("/health", "/healthz", "/livez")
READINESS_ROUTES = ("/ready", "/readyz")
PUBLIC_ROUTES = frozenset({*LIVENESS_ROUTES, *READINESS_ROUTES, "/metrics"})  # no token
# The role each POST needs (a read needs "reader"; a POST not listed, "admin").
_NEEDS = {"/actions/<int:action_id>/approve": "approver",
          "/actions/<int:action_id>/reject": "approver",
          "/actions/<int:action_id>/thaw": "approver",
          "/actions/pause": "approver", "/actions/resume": "approver",
          "/incidents/<int:incident_id>/analyze": "approver"}
_KNOWN_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"})

def _json(data: object, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(encode_json(data), status=status, headers=dict(headers or {}),
                    content_type="application/json")


# ---- metrics --------------------------------------------------------------------------

class _StreamCollector(Collector):
    """Subscribers of /stream, read from the hub when scraped."""

    def __init__(self) -> None:
        self.hub: StreamHub | None = None

    def collect(self) -> Any:
        hub = self.hub
        clients = GaugeMetricFamily("linnix_api_sse_clients",
                                    "Clients connected to /stream now")
        dropped = CounterMetricFamily("linnix_api_sse_dropped_clients",
                                      "Clients of /stream dropped because they fell behind")
        events = CounterMetricFamily("linnix_api_sse_events",
                                     "Events published to /stream")
        clients.add_metric([], hub.clients if hub is not None else 0)
        dropped.add_metric([], hub.dropped if hub is not None else 0)
        events.add_metric([], hub.published if hub is not None else 0)
        yield from (clients, dropped, events)


class _ApiMetrics:
    """The API's own metrics, registered once per registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter("linnix_api_requests", "HTTP requests answered by the API",
                                ["method", "route", "status"], registry=registry)
        self.stream = _StreamCollector()
        registry.register(self.stream)


_METRICS: weakref.WeakKeyDictionary[CollectorRegistry, _ApiMetrics] = \
    weakref.WeakKeyDictionary()


def _metrics_for(registry: CollectorRegistry) -> _ApiMetrics:
    """The API metrics of ``registry``, registered on first use (an app may be rebuilt)."""
    metrics = _METRICS.get(registry)
    if metrics is None:
        metrics = _METRICS[registry] = _ApiMetrics(registry)
    return metrics


# ---- the app ---------------------------------------------------------------------------

def host_allowed(header: str | None, allowed: frozenset[str]) -> bool:
    """Whether a request's Host header names this API by an address, "localhost"
    or one of the ``allowed`` names (lower case).

    A browser sends the name from the page's address: a page on a name its
    author controls and points at 127.0.0.1 (DNS rebinding) arrives here with
    that name, and is refused.  A request without a Host header (``header`` is
    None: HTTP/1.0, as HTTP/1.1 requires one) is not from a browser, which always
    sends one, and is let through; an empty one names nothing and is refused.
    """
    if header is None:
        return True
    host = header.strip().lower()
    if host.startswith("["):  # an IPv6 address, maybe with a port
        end = host.find("]")
        return end > 0 and _is_address(host[1:end])
    name, colon, port = host.rpartition(":")
    if colon and port.isdigit():
        host = name
    return host == "localhost" or host in allowed or _is_address(host)


def _principal(book: TokenBook) -> Principal:
    """Whose token the request presents; 401 when none or an unknown one."""
    challenge = 'Bearer realm="linnix"'
    header = request.headers.get("Authorization")
    if book.empty:
        fail(401, "unauthorized", "this API has no token configured: only /health, "
             "/ready and /metrics are served",
             headers={"WWW-Authenticate": challenge})
    if header is None:
        fail(401, "unauthorized",
             "this request needs an 'Authorization: Bearer <token>' header; the token "
             "is in the daemon's token file (api.token in its state directory)",
             headers={"WWW-Authenticate": challenge})
    scheme, _, given = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        fail(401, "unauthorized", "expected 'Authorization: Bearer <token>'",
             headers={"WWW-Authenticate": challenge})
    who = book.identify(given.strip())
    if who is None:
        fail(401, "unauthorized", "the token is not valid",
             headers={"WWW-Authenticate": f'{challenge}, error="invalid_token"'})
    return who


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class _App(QuartTrio):
    """QuartTrio, whose routing survives any Host header."""

    def create_url_adapter(self, request: Any) -> Any:
        try:
            return super().create_url_adapter(request)
        except BadHost:
            # A name IDNA cannot encode (an empty or over-long label: "a..b") made
            # routing raise outside every error handler: a bare 500, logged as a
            # crash.  Route under a placeholder instead: check_host refuses the name.
            if request is None:
                raise
            return self.url_map.bind("invalid", request.root_path, None, request.scheme,
                                     request.method, request.path,
                                     request.query_string.decode())


def create_app(view: DaemonView, *, max_body: int, token: str = "",
               tokens: TokenBook | None = None, keepalive: float = KEEPALIVE_S,
               allowed_hosts: Iterable[str] = (), public_reads: bool = False,
               blueprints: Iterable[Blueprint] = ()) -> QuartTrio:
    """The API over ``view``; every route but :data:`PUBLIC_ROUTES` needs a token of
    ``tokens`` (by default just ``token``, the admin's); GETs do not when ``public_reads``.
    ``blueprints`` (the dashboard) are served beside the API and check who may use
    their routes themselves.

    Requests must name the API by an IP address, "localhost" or one of
    ``allowed_hosts`` in their Host header (see :func:`host_allowed`).
    """
    app = _App("linnix.api", static_folder=None)
    app.config.update(MAX_CONTENT_LENGTH=max_body, PROPAGATE_EXCEPTIONS=False,
                      JSON_SORT_KEYS=False, PROVIDE_AUTOMATIC_OPTIONS=True)
    metrics = _metrics_for(view.registry)
    metrics.stream.hub = view.hub
    book = tokens if tokens is not None else TokenBook(admin=token)

    hosts = frozenset(h.lower() for h in allowed_hosts)
    own_checks = set()  # blueprints that say themselves who may use them
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
        own_checks.add(blueprint.name)

    # -- plumbing

    @app.before_request
    async def check_host() -> None:
        # Quart makes up an empty Host header when there was none: ask what was sent
        sent = any(name.lower() == b"host" for name, _ in request.scope.get("headers", ()))
        if not host_allowed(request.headers.get("Host") if sent else None, hosts):
            fail(421, "misdirected_request",
                 f"this API is not served under the name {request.headers.get('Host')!r}; "
                 "use its address (e.g. 127.0.0.1:9333) or add the name to "
                 "api.allowed_hosts in linnix.toml")

    @app.before_request
    async def authorize() -> None:
        rule = request.url_rule
        if rule is None or request.method == "OPTIONS" or rule.rule in PUBLIC_ROUTES:
            return  # an unknown route is a 404 for anyone; OPTIONS shows only methods
        if request.blueprint in own_checks:
            return
        safe = request.method in _SAFE_METHODS
        if public_reads and safe:
            return
        who = _principal(book)
        need = "reader" if safe else _NEEDS.get(rule.rule, "admin")
        if not who.may(need):
            fail(403, "forbidden",
                 f"the token {who.name!r} has the role {who.role}; {request.method} "
                 f"{request.path} needs the role {need}"
                 f"{' or admin' if need != 'admin' else ''}")
        g.principal = who

    @app.after_request
    async def count(response: Response) -> Response:
        rule = request.url_rule
        method = request.method if request.method in _KNOWN_METHODS else "OTHER"
        route = rule.rule if rule is not None else "unmatched"
        metrics.requests.labels(method, route, str(response.status_code)).inc()
        return response

    @app.errorhandler(HttpError)
    async def problem(err: HttpError) -> Response:
        return _json({"error": err.error, "detail": err.detail, **err.extra}, err.status,
                     err.headers)

    @app.errorhandler(HTTPException)
    async def http_error(err: HTTPException) -> Response:
        status = err.code or 500
        headers: dict[str, str] = {}
        if isinstance(err, NotFound):
            detail = f"there is no {request.path}; GET /openapi.json lists the routes"
        elif isinstance(err, MethodNotAllowed):
            allowed = sorted(m for m in (err.valid_methods or ()) if m not in ("HEAD", "OPTIONS"))
            headers["Allow"] = ", ".join(sorted(err.valid_methods or ()))
            detail = f"{request.method} is not allowed on {request.path}"
            if allowed:
                detail += f"; use {' or '.join(allowed)}"
        elif status == 413:
            detail = f"the request body is larger than {max_body} bytes"
        else:
            detail = err.description or err.name
        name = "payload too large" if status == 413 else (err.name or "error").lower()
        return _json({"error": name, "detail": detail}, status, headers)

    @app.errorhandler(Exception)
    async def internal(err: Exception) -> Response:
        log.error("internal error answering %s %s", request.method, request.path, exc_info=err)
        return _json({"error": "internal error",
                      "detail": "the daemon failed to answer this request; its log says why"},
                     500)

    # -- health and metrics

    async def health() -> Response:
        manager = view.actions  # None: a view without actions (tests of reads)
        return _json({"status": "ok", **(status_json(manager.paused) if manager else {})})

    async def ready() -> Response:
        ok, why = view.ready()
        if ok:
            return _json({"status": "ready", "source": why})
        return _json({"error": "not ready", "detail": why}, 503)

    for path in LIVENESS_ROUTES:
        app.add_url_rule(path, "health", health, methods=["GET"])
    for path in READINESS_ROUTES:
        app.add_url_rule(path, "ready", ready, methods=["GET"])

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(view.registry), content_type=METRICS_CONTENT_TYPE)

    @app.get("/openapi.json")
    async def openapi() -> Response:
        return _json(openapi_document())

    # -- processes

    @app.get("/processes")
    async def processes() -> Response:
        procs = await view.processes()
        return _json({"processes": procs, "count": len(procs)})

    @app.get("/processes/<int:pid>")
    async def process(pid: int) -> Response:
        found = await view.process(pid)
        if found is None:
            fail(404, "not found", f"no live process has pid {pid}")
        return _json(found)

    @app.get("/graph/<int:pid>")
    async def graph(pid: int) -> Response:
        found = await view.graph(pid)
        if found is None:
            fail(404, "not found", f"no live process has pid {pid}")
        return _json(found)

    # -- alerts and rules

    @app.get("/alerts")
    async def alerts() -> Response:
        limit = limit_arg()
        if flag_arg("history"):
            return _json({"history": view.alert_history(limit)})
        return _json({"alerts": view.alerts()[:limit]})

    @app.get("/rules")
    async def rules() -> Response:
        return _json({"rules": view.rules()})

    @app.post("/rules/reload")
    async def reload() -> Response:
        body = await json_body(required=False)
        only(body, ("note", "actor"))
        note = note_field(body, "actor")
        accepted, diagnostics = await view.reload(g.principal.name, note)
        if accepted:
            return _json({"reloaded": True, "warnings": diagnostics})
        errors = sum(1 for d in diagnostics if d.get("level", "error") == "error")
        if errors:
            detail = (f"the rules have {errors} error{'s' * (errors != 1)}; "
                      "the running rules are kept")
        else:
            detail = "the rules could not be rebuilt; the running rules are kept"
        return _json({"error": "reload rejected", "detail": detail,
                      "diagnostics": diagnostics}, 422)

    # -- the event stream

    @app.get("/stream")
    async def stream() -> Response:
        last = last_event_id()
        hub: StreamHub = view.hub
        response = Response(_sse(hub, last, keepalive), content_type="text/event-stream",
                            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        response.timeout = None  # the stream lasts as long as the client stays
        return response

    # -- incidents

    @app.get("/incidents")
    async def incidents() -> Response:
        limit = limit_arg()
        rows = await view.store.incidents(open_only=flag_arg("open"), limit=limit,
                                          before=int_arg("before"))
        return _json({"incidents": rows, "next_before": next_before(rows, limit)})

    @app.get("/incidents/<int:incident_id>")
    async def incident(incident_id: int) -> Response:
        found = await view.store.incident(check_id(incident_id, "incident"))
        if found is None:
            fail(404, "not found", f"no incident has id {incident_id}")
        return _json(found)

    @app.get("/incidents/<int:incident_id>/analysis")
    async def incident_analysis(incident_id: int) -> Response:
        shape = request.args.get("format") or "json"
        if shape not in ("json", "markdown"):
            fail(400, "bad request", f"'format' must be json or markdown, not {shape!r}")
        if await view.store.incident(check_id(incident_id, "incident")) is None:
            fail(404, "not found", f"no incident has id {incident_id}")
        found = await view.store.analysis(incident_id)
        if found is None:
            fail(404, "not found", f"incident {incident_id} has not been analysed (POST "
                 f"/incidents/{incident_id}/analyze analyses it)")
        if shape == "json":
            return _json(found)
        body = (analysis_markdown(found["analysis"]) if found["analysis"] is not None
                else f"Incident {incident_id} could not be analysed: "
                     f"{md_escape(found['error'])}\n")
        return Response(body, content_type="text/markdown; charset=utf-8")

    @app.post("/incidents/<int:incident_id>/analyze")
    async def analyze_incident(incident_id: int) -> Response:
        return _json(await analyze_now(view, incident_id))

    @app.get("/insights")
    async def insights() -> Response:
        limit = limit_arg()
        rows = await view.store.analyses(limit=limit, before=int_arg("before"))
        more = int(rows[-1]["incident_id"]) if len(rows) == limit and rows else None
        return _json({"insights": rows, "next_before": more})

    # -- actions

    @app.get("/actions")
    async def actions() -> Response:
        status = request.args.get("status") or None
        if status is not None and status not in ACTION_STATES:
            fail(400, "bad request",
                 f"'status' must be one of {', '.join(ACTION_STATES)}, not {status!r}")
        limit = limit_arg()
        rows = await view.store.actions(status=status, limit=limit, before=int_arg("before"))
        return _json({"actions": rows, "next_before": next_before(rows, limit)})

    @app.get("/actions/<int:action_id>")
    async def action(action_id: int) -> Response:
        found = await view.store.action(check_id(action_id, "action"))
        if found is None:
            fail(404, "not found", f"no action has id {action_id}")
        return _json(found)

    async def decide_on(action_id: int, verb: str) -> Response:
        body = await json_body(required=False)
        only(body, ("note", "approver", "reason"))
        note = note_field(body, "approver")
        reason = text_field(body, "reason", required=False, limit=REASON_MAX,
                            single_line=False)
        approver = g.principal.name
        row = await decide(view, action_id, verb, approver, reason)
        if note is not None:  # the manager records who and why; the note beside it
            await view.store.audit(approver, "action.note", action_id=action_id, note=note)
        return _json(row)

    @app.post("/actions/pause")
    async def pause() -> Response:
        body = await json_body(required=False)
        only(body, ("reason", "for", "note"))
        reason = text_field(body, "reason", required=False, limit=REASON_MAX,
                            single_line=False)
        for_s = duration_field(body, "for", high=PAUSE_MAX_S)
        note = text_field(body, "note", required=False, limit=NOTE_MAX, single_line=True)
        paused = await view.actions.pause(g.principal.name, reason, for_s, note)
        return _json(status_json(paused))

    @app.post("/actions/resume")
    async def resume() -> Response:
        body = await json_body(required=False)
        only(body, ("reason", "note"))
        reason = text_field(body, "reason", required=False, limit=REASON_MAX,
                            single_line=False)
        note = text_field(body, "note", required=False, limit=NOTE_MAX, single_line=True)
        try:
            ended = await view.actions.resume(g.principal.name, reason, note)
        except NotPausedError:
            fail(409, "conflict", "actions are not paused: there is nothing to resume",
                 extra=status_json(None))
        return _json({**status_json(None), "resumed": ended.to_json()})

    @app.post("/actions/<int:action_id>/approve")
    async def approve(action_id: int) -> Response:
        return await decide_on(action_id, "approve")

    @app.post("/actions/<int:action_id>/reject")
    async def reject(action_id: int) -> Response:
        return await decide_on(action_id, "reject")

    @app.post("/actions/<int:action_id>/thaw")
    async def thaw(action_id: int) -> Response:
        return await decide_on(action_id, "thaw")

    # -- audit

    @app.get("/audit")
    async def audit() -> Response:
        limit = limit_arg()
        rows = await view.store.audit_log(limit=limit, before=int_arg("before"),
                                          action_id=int_arg("action"),
                                          actor=text_arg("actor", limit=ACTOR_MAX))
        return _json({"audit": rows, "next_before": next_before(rows, limit)})

    return app


async def _sse(hub: StreamHub, last_event_id: int | None,
               keepalive: float) -> AsyncIterator[bytes]:
    """The body of one /stream response: events as they come, comments while idle."""
    client: StreamClient = hub.subscribe(last_event_id)
    try:
        yield b"retry: %d\n\n" % RETRY_MS
        while True:
            event = None
            with trio.move_on_after(keepalive):
                try:
                    event = await client.receive()
                except trio.EndOfChannel:
                    return  # dropped for being too slow: the client reconnects and resumes
            if event is None:
                yield b": keep-alive\n\n"
            else:
                yield event.frame
    finally:
        client.close()

"""``linnix run``: the long-running process and its lifecycle (``linnix record`` is
:mod:`.recording`).

:class:`Daemon` builds the rules (refusing to start on any error), opens the
best event source, feeds the engine on the real clock, and sends what the
engine produces to: stdout (readable lines), ``<state_dir>/alerts.jsonl``
(replay's format), the incident and action store (SQLite), the SSE stream
and the HTTP API.  SIGINT/SIGTERM stop it cleanly; SIGHUP (or ``POST
/rules/reload``) reloads the rules all-or-nothing: a rule set with errors, or
one without an active rule, is rejected and the running one kept; instances
of unchanged rules keep their state.
"""

from __future__ import annotations

import contextlib
import gc
import os
import socket
import sqlite3
import sys
from collections.abc import Callable, Sequence
from functools import partial
from typing import IO, Any

import attrs
import trio

from ..config.schema import IDLE_SAMPLE_MAX_S
from ..engine import trace as t
from ..engine.core import Core, Output
from ..errors import LinnixError
from ..language.pipeline import Build, TagSwitch, build
from ..language.source import Diagnostic, Level, SourceFile, render_all
from ..plan import Plan, needs_network
from ..procfs import Clock
from ..terminal import TextOut, printable_lines, write_safely
from ..timefmt import stamp
from .console import Console, consoles
from .live import (
    FRESH_WITHIN_S,
    STATE_DIR_MODE,
    AlertFile,
    AlertLog,
    LiveEngine,
    fan_out,
    header_event,
    live_cgroups,
    needs_cmdline,
    open_state_file,
    watch_signals,
)
from .sdnotify import Notifier
from .sources import Source, Telemetry, held_ring, open_source
from .sources.netcap import follow_plan
from .tracefilter import open_recorder
from .wakes import wire as wire_wakes

__all__ = ["Daemon", "DaemonOptions"]

Sink = Callable[[Sequence[Output]], None]


@attrs.define
class DaemonOptions:
    """Everything ``linnix run`` was asked to do, after config and flags are merged."""

    rules: list[str]
    state_dir: str
    tick_s: float = 0.5
    sample_interval: float = 1.0
    idle_sample_max: float = IDLE_SAMPLE_MAX_S  # an idle process is sampled at least this often
    ring_pages: int = 4096
    source: str = "auto"
    sample_fds: str = "auto"
    disabled_tags: frozenset[str] = frozenset()
    enabled_tags: frozenset[str] = frozenset()  # on, even when the rule says `enabled false`
    record: str | None = None
    record_only_tree: tuple[int, ...] = ()  # record these process trees only
    record_redact: bool = False  # record no command line, no environment text
    duration: float | None = None
    config: Any = None  # linnix.config.Config; None: the defaults
    api: bool = True
    verbose: bool = False  # the terminal shows PENDING alert transitions too


@attrs.define
class _Stack:
    """The parts that turn alerts into incidents and actions."""

    store: Any
    manager: Any
    responder: Any
    policy: Any
    keeper: Any  # the rules' state, saved for the next start

    def close(self) -> None:
        self.keeper.save_now()
        self.store.close()


def _check_unprotect(config: Any) -> None:
    """Refuse to start when ``[actions] unprotect`` names a process that is not built in."""
    from ..actions.guards import protected_names

    if config is not None:
        protected_names(config.actions.protected, config.actions.unprotect)


def _at(path: str, message: str, hint: str | None = None) -> Diagnostic:
    """An error about a whole rule path (one that could not be loaded, or holds nothing)."""
    return Diagnostic("E110", Level.ERROR, message, SourceFile(path, "").whole(), hint)


class Daemon:
    """One daemon run."""

    def __init__(self, opts: DaemonOptions, out: IO[str] | None = None,
                 err: IO[str] | None = None, sinks: Sequence[Sink] = ()) -> None:
        self.opts = opts
        self.out: TextOut = out or sys.stdout
        self.err: TextOut | None = err or sys.stderr
        self.consoles: dict[str, Console] = {}  # stdout and stderr, while it runs
        self.extra_sinks = list(sinks)
        self.core: Core | None = None
        self.telemetry: Telemetry | None = None
        self.source: Source | None = None
        self.engine: LiveEngine | None = None
        self._cancel: trio.CancelScope | None = None
        self._nursery: trio.Nursery | None = None
        self._reloading = trio.Lock()
        self.not_ready: str | None = "starting"
        self.astore: Any = None
        self.action_manager: Any = None
        self.hub: Any = None
        self.registry: Any = None
        self.history: Any = None
        self.responder: Any = None  # its open incidents, by instance (the view's alerts)
        self.api_address: str | None = None
        self.console: AlertLog | None = None  # the terminal: alerts and actions
        self.notifier: Any = None  # alerts to Alertmanager and webhooks, if configured
        self.notify = Notifier()  # systemd's notify socket, when run as a service

    # ---- rules ---------------------------------------------------------------------
    @property
    def switch(self) -> TagSwitch:
        return TagSwitch(self.opts.enabled_tags, self.opts.disabled_tags)

    def build(self) -> Build:
        return build(self.opts.rules, self.switch)

    async def reload(self, actor: str,
                     note: str | None = None) -> tuple[bool, list[Diagnostic]]:
        """Rebuild the rules; swap them in only if they have no error.

        The build reads files and may take seconds: it runs in a worker thread
        while the engine goes on, and the plan is swapped in here, on the trio
        thread, between two batches.  Reloads run one at a time, in order; a
        shutdown does not wait for a build in progress.  Each one is audited:
        ``actor`` asked for it (``SIGHUP`` for the signal), with ``note`` if given.
        """
        async with self._reloading:
            self.notify.reloading()
            plan, diagnostics = await trio.to_thread.run_sync(self._rebuild,
                                                              abandon_on_cancel=True)
            errors = [d for d in diagnostics if d.is_error]
            if plan is not None:
                self._swap(plan)
            else:
                self.say(f"reload rejected: {len(errors)} error(s); keeping the running "
                         f"rules\n{render_all(errors, 20)}")
            self.notify.reloaded()
            await self._audit_reload(actor, plan, diagnostics, note)
            return plan is not None, diagnostics

    async def _audit_reload(self, actor: str, plan: Plan | None,
                            diagnostics: list[Diagnostic], note: str | None = None) -> None:
        """Who asked for a reload, of what, and what came of it: one audit record."""
        if self.astore is None:
            return
        errors = [d for d in diagnostics if d.is_error]
        try:
            await self.astore.audit(
                actor, "rules.reload", accepted=plan is not None, paths=list(self.opts.rules),
                rules=len(plan.active) if plan is not None else None, errors=len(errors),
                warnings=len(diagnostics) - len(errors), diagnostics=len(diagnostics),
                reason=errors[0].message if errors else None,
                **({"note": note} if note is not None else {}))
        except sqlite3.Error as err:  # the reload itself is done either way
            self.say(f"cannot write the reload to the audit log: {err}")

    def _rebuild(self) -> tuple[Plan | None, list[Diagnostic]]:
        """In a worker thread: the new plan and its warnings, or None and its errors."""
        try:
            result = self.build()
        except LinnixError as err:
            return None, self._unreadable(err)
        if result.plan is None:
            return None, result.errors
        plan = result.plan
        if not plan.active:  # most likely a mistake: an emptied folder, a wrong path
            return None, [_at(p, f"no active rule in '{p}': a reload that would leave "
                                 "nothing watched is refused", hint="to watch nothing, stop "
                                 "the daemon") for p in self.opts.rules]
        return plan, result.warnings

    def _unreadable(self, err: LinnixError) -> list[Diagnostic]:
        """Diagnostics naming the rule paths that are gone (or, failing that, the error)."""
        gone = [p for p in self.opts.rules if not os.path.exists(p)]
        if not gone:
            return [_at(self.opts.rules[0] if self.opts.rules else ".", str(err))]
        return [_at(p, f"cannot read '{p}': no such file or directory") for p in gone]

    def _swap(self, plan: Plan) -> None:
        """Put a built plan to work (on the trio thread: the engine is not thread-safe)."""
        assert self.core is not None and self.engine is not None
        resolved = self.core.replace_plan(plan)
        if self.telemetry is not None:
            self.telemetry.configure(plan)
        self.engine.cmdline = needs_cmdline(plan)
        if (problem := follow_plan(self.source, plan)) is not None:
            self.say(problem)
        if resolved:
            self.engine.emit(resolved)
        self.say(f"reloaded: {len(plan.active)} active rule(s)")

    # ---- lifecycle ----------------------------------------------------------------
    def say(self, text: str) -> None:
        """A line for the operator on stderr; every line of ``text`` is shown as data.

        Best-effort, like the terminal: a full disk or a reader that went away
        (journald restarting) costs the message, never the daemon.
        """
        if self.err is None:
            return
        try:
            write_safely(self.err, "".join(f"linnix: {line}\n" for line in printable_lines(text)))
            self.err.flush()
        except (OSError, ValueError):
            self.err = None

    def stop(self, signum: int = 0) -> None:
        self.notify.stopping()
        if self._cancel is not None:
            self._cancel.cancel()

    def run(self) -> int:
        result = self.build()
        if result.plan is None:
            self.say(render_all(result.errors, 100))
            self.say(f"not starting: the rules have {len(result.errors)} error(s)")
            return 1
        plan = result.plan
        if unknown := self.switch.unknown(result.rules):
            self.say(f"no loaded rule carries the tag(s) {', '.join(map(repr, unknown))} "
                     "named by [rules] enabled_tags/disabled_tags or --enable-tag/--disable-tag")
        _check_unprotect(self.opts.config)  # before anything is opened
        try:
            _make_state_dir(self.opts.state_dir)
            probe = os.path.join(self.opts.state_dir, ".writable")
            os.close(open_state_file(probe))
            os.unlink(probe)
        except OSError as err:
            raise LinnixError(f"cannot use the state directory {self.opts.state_dir}: "
                              f"{err.strerror or err}") from None
        with consoles(self.out, self.err) as self.consoles:  # a stuck reader stops no one
            self.out = self.consoles.get("stdout", self.out)
            self.err = self.consoles.get("stderr", self.err)
            return trio.run(self._main, plan)

    async def _main(self, plan: Plan) -> int:
        from ..config import Config

        opts = self.opts
        config = opts.config or Config()
        clock = Clock()
        header = header_event(clock)
        recorder = (open_recorder(opts.record, header, only_tree=opts.record_only_tree,
                                  redact=opts.record_redact, on_failure=self.say)
                    if opts.record else None)  # a path that cannot be written stops the start
        try:
            self.source = source = open_source(clock, prefer=opts.source,
                                               ring_pages=opts.ring_pages, warn=self.say,
                                               network=needs_network(plan))
        except BaseException:
            if recorder is not None:
                recorder.close()
            raise
        self.telemetry = telemetry = Telemetry(clock, plan, source, opts.sample_interval,
                                               opts.sample_fds, opts.idle_sample_max)
        self.core = core = Core(plan, opts.tick_s, history=True, recent_network=True,
                                trails=True)
        telemetry.cgroup_paths, telemetry.cgroup_root = live_cgroups(core), config.cgroups.root
        core.header(header)
        alerts = AlertFile(os.path.join(opts.state_dir, "alerts.jsonl"),
                           max_bytes=config.retention.alerts_file_mb * 1024 * 1024,
                           on_problem=self.say)
        self.console = console = AlertLog(self.out, verbose=opts.verbose)
        stack = self._response_stack(config, clock)
        self.responder = stack.responder
        sink = fan_out(console, alerts, self.history, stack.responder, stack.keeper,
                       *self.extra_sinks)
        self.engine = engine = LiveEngine(
            core, clock, sink, recorder, needs_cmdline(plan), say=self.say,
            fresh_within=max(FRESH_WITHIN_S, 3 * opts.sample_interval),
            on_tick=self.notify.ticked)
        wire_wakes(engine, telemetry)  # what events concern is read at once, however idle
        pump = held_ring(source)
        if pump is not None:  # kernel events wait in the ring until a tick or a round needs them
            pump.hold = lambda: not engine.core.events.by_kind  # not while an event rule waits
            engine.catch_up = pump.flush
        problem = self.notify.watch(core, lambda: stack.manager.paused is not None)
        if problem is not None:
            self.say(problem)
        try:
            snap = telemetry.snapshot()
            engine.snapshot = {p.pid: p.start or 0.0 for p in snap}
            engine.feed(list(snap))
            await self._serve(engine, source, telemetry, stack, config)
        finally:
            source.close()
            alerts.close()
            engine.close()
            stack.close()
        self.say(f"stopped after {core.table.events:,} events and {core.ticks:,} ticks; "
                 f"{core.table.lost_total:,} event(s) lost by the kernel")
        return 0

    def _response_stack(self, config: Any, clock: Clock) -> _Stack:
        """Store, action manager, stream hub, metrics and history for this run."""
        from ..actions import ActionManager, ActionPolicy, Guards
        from ..actions.manager import cgroup_guards
        from ..actions.pause import PAUSE_FILE, PauseFile
        from ..actions.store import AsyncStore, Store
        from ..api.stream import StreamHub
        from ..engine.trail import firing_trails
        from .analyst import analyses_for
        from .keeper import StateKeeper, settle_time
        from .metrics import make_registry
        from .notify import notifier_for
        from .responder import Responder
        from .view import History

        store = Store(os.path.join(self.opts.state_dir, "linnix.db"))  # created 0640
        if store.notice is not None:
            self.say(store.notice)
        self.astore = astore = AsyncStore(store)
        self.hub = hub = StreamHub()
        acts = config.actions
        policy = ActionPolicy(config.runtime.mode, acts.ttl, acts.rate_limit, acts.kill_grace,
                              acts.degraded_window, frozenset(acts.auto), acts.freeze_ttl,
                              acts.cgroup_kills_per_unit)
        guards = Guards(frozenset(acts.protected), frozenset(acts.protected_exe),
                        unprotect=frozenset(acts.unprotect))
        if guards.namespace is not None:
            self.say(guards.namespace)
        self.action_manager = manager = ActionManager(
            astore, guards, policy, degraded=lambda: self._degraded(clock, policy),
            publish=self._publish(hub), boot_offset=lambda: clock.origin, on_problem=self.say,
            pause_file=PauseFile(os.path.join(self.opts.state_dir, PAUSE_FILE)),
            cgroup_guards=cgroup_guards(guards, frozenset(acts.protected_cgroups)))
        self.registry = make_registry(lambda: self)
        self.history = History()
        self.analyses = analyses_for(config.analysis, astore, self.say)  # [analysis]
        responder = Responder(astore, manager, lambda: self.core.table,  # type: ignore[union-attr]
                              self._publish(hub), on_problem=self.say, clock=clock,
                              describe=self._describe, analyses=self.analyses,
                              trails=lambda: firing_trails(self.core.evaluator.rules))  # type: ignore[union-attr]
        self.notifier = notifier_for(self, config.notify, clock)
        if self.notifier is not None:  # one more sink of every batch the engine makes
            self.extra_sinks.append(self.notifier)
        keeper = StateKeeper(self.core, astore, clock,  # type: ignore[arg-type]
                             settle_time(self.opts.sample_interval), say=self.say)
        return _Stack(store, manager, responder, policy, keeper)

    def _describe(self, rule: str) -> dict[str, Any]:
        """What an incident of ``rule`` keeps of the rule for its analysis."""
        from .responder import describe_rule

        assert self.core is not None
        return describe_rule(self.core.plan, rule)

    def _publish(self, hub: Any) -> Callable[[str, dict[str, Any]], None]:
        """What the responder and the action manager report goes to the stream, each
        event with the time it happened (an alert carries its transition's); and to the
        terminal: each action's real status (a guard's refusal, an execution in enforce
        mode), and every pause and resume."""
        console = self.console

        def publish(kind: str, data: dict[str, Any]) -> None:
            if kind != "alert":
                data = {**data, "time": stamp()}
            hub.publish(kind, data)
            if kind == "action" and console is not None:
                console.action(data)
            elif kind == "pause" and console is not None:
                console.pause(data)

        return publish

    def _degraded(self, clock: Clock, policy: Any) -> str | None:
        """Why the input cannot be trusted now (events lost recently, or time jumped and
        no fresh sample came since); None when it can."""
        if self.engine is not None and self.engine.degraded:
            return "time jumped and no fresh sample has come since"
        core = self.core
        last = core.table.last_lost_ts if core is not None else None
        if last is not None and clock.now() - last < policy.degraded_window_s:
            return "events were lost recently"
        return None

    async def _serve(self, engine: LiveEngine, source: Source, telemetry: Telemetry,
                     stack: _Stack, config: Any) -> None:
        send, receive = trio.open_memory_channel[list[t.Event]](256)
        async with trio.open_nursery() as nursery:
            self._cancel, self._nursery = nursery.cancel_scope, nursery
            nursery.start_soon(watch_signals, self.stop, self._reload_on_signal)
            await self._start_responses(nursery, stack, config)
            nursery.start_soon(source.run, send.clone())
            if engine.catch_up is not None:  # ticks and rounds after what the ring holds
                nursery.start_soon(engine.ticker, send.clone())
                telemetry.settle = partial(engine.settle, send.clone())
            else:
                nursery.start_soon(engine.ticker)
            nursery.start_soon(telemetry.run, send.clone())
            send.close()
            nursery.start_soon(engine.consume, receive)
            if self.opts.duration is not None:
                nursery.start_soon(self._stop_after, self.opts.duration)
            self.not_ready = None
            _settle_heap()
            self._write_status(engine.clock, source)
            api = f"; API on http://{self.api_address}" if self.api_address else ""
            paused = "; every action is paused" if stack.manager.paused is not None else ""
            self.say(f"watching {len(engine.snapshot)} processes with "
                     f"{len(engine.core.plan.active)} rule(s) via {source.name} in "
                     f"{stack.policy.mode} mode{paused}{api}")

    async def _start_responses(self, nursery: trio.Nursery, stack: _Stack,
                               config: Any) -> None:
        store = self.astore
        resumed = await stack.keeper.resume(stack.responder, self.notifier)
        closed = await store.close_open_incidents("the daemon restarted", keep=resumed.incidents)
        previous = await store.audit_log(limit=1, event="daemon.started")
        mode = stack.policy.mode
        if previous and previous[0]["detail"].get("mode") not in (None, mode):
            await store.audit("linnix", "mode.changed", was=previous[0]["detail"]["mode"],
                              now=mode)
        await store.audit("linnix", "daemon.started", mode=mode, pid=os.getpid(),
                          closed_incidents=closed, **resumed.summary())
        unprotected = sorted(config.actions.unprotect)
        if unprotected:  # said at every start, for the operator and in the audit log
            self.say(f"actions.unprotect: {', '.join(unprotected)} lose(s) the built-in "
                     "protection: rules may act on them")
            await store.audit("linnix", "guards.unprotected", names=unprotected)
        await nursery.start(stack.manager.run)
        nursery.start_soon(stack.responder.run)
        nursery.start_soon(stack.keeper.run)
        nursery.start_soon(self._retention, config)
        if self.notifier is not None:  # reads the webhooks' secrets, or stops the start
            await nursery.start(self.notifier.run)
        if self.opts.api:
            await self._start_api(nursery, config)
        if resumed.restored is not None and resumed.restored.ended:
            assert self.engine is not None  # firing instances whose process is gone: resolved
            self.engine.emit(resumed.restored.ended)

    async def _start_api(self, nursery: trio.Nursery, config: Any) -> None:
        from ..api.app import create_app
        from ..api.server import serve
        from ..api.tokens import TokenBook, load_or_create_token
        from ..config import resolve_token_file, resolve_tokens_file
        from ..errors import ApiError
        from ..ui import dashboard
        from .view import LiveView

        token = await trio.to_thread.run_sync(
            load_or_create_token, resolve_token_file(config, self.opts.state_dir))
        tokens = TokenBook(token, resolve_tokens_file(self.opts.state_dir))
        await tokens.refresh()
        if tokens.problem is not None:
            raise ApiError(tokens.problem)
        nursery.start_soon(tokens.watch)  # tokens added or revoked count without a restart
        # the names the API is bound to and this host's own name are ours too
        names = (*config.api.allowed_hosts, config.api.host, socket.gethostname())
        app = create_app(view := LiveView(self), tokens=tokens, max_body=config.api.max_body_bytes,
                         allowed_hosts=names, public_reads=config.api.public_reads,
                         blueprints=(dashboard(view, tokens),))
        self.api_address = await nursery.start(partial(
            serve, app, config.api.bind, token=token,
            max_connections=config.api.max_connections))

    def _write_status(self, clock: Clock, source: Source) -> None:
        """``<state_dir>/daemon.json``: who is running, where its clock starts, its API."""
        import json

        status = {"pid": os.getpid(), "source": source.name, "clock_origin_boottime":
                  clock.origin, "rules": list(self.opts.rules), "api": self.api_address}
        path = os.path.join(self.opts.state_dir, "daemon.json")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}.tmp")  # left by a crash: created anew, with its mode
        with os.fdopen(open_state_file(f"{path}.tmp", os.O_WRONLY), "w",
                       encoding="utf-8") as f:
            json.dump(status, f)
        os.replace(f"{path}.tmp", path)

    async def _retention(self, config: Any) -> None:
        keep = config.retention
        while True:
            try:
                removed = await self.astore.retain(max_age=keep.max_age,
                                                   max_incidents=keep.max_incidents,
                                                   max_audit=keep.max_audit)
            except sqlite3.Error as err:  # tried again in an hour
                self.say(f"retention could not trim the store: {err}")
                removed = {}
            if any(removed.values()):
                self.say("retention removed " + ", ".join(
                    f"{n} {kind}" for kind, n in removed.items() if n))
            await trio.sleep(3600)

    def _reload_on_signal(self) -> None:
        self.say("SIGHUP: reloading rules")
        if self._nursery is not None:  # the signal watcher runs in it: it is open
            self._nursery.start_soon(self.reload, "SIGHUP")

    async def _stop_after(self, seconds: float) -> None:
        await trio.sleep(seconds)
        self.stop()


def _make_state_dir(path: str) -> None:
    """Create the state directory (0750) and any missing parent (0755), whatever the umask.

    A directory that exists keeps its mode: an operator or a package may have chosen it.
    """
    missing: list[str] = []
    here = os.path.abspath(path)
    while not os.path.lexists(here):
        missing.append(here)
        here = os.path.dirname(here)
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:  # made meanwhile by someone else: theirs
            continue
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:  # O_NOFOLLOW: a link put in its place meanwhile is not followed
            os.fchmod(fd, STATE_DIR_MODE if directory == missing[0] else 0o755)
        finally:
            os.close(fd)


def _settle_heap() -> None:
    """Move everything built at start-up out of the cyclic collector's way.

    Modules, the web framework, the compiled plan and the start-up scan live
    as long as the daemon; frozen, they are never traversed again, so a
    collection costs what the short-lived objects of the event path cost.
    The young generation is also collected less often: each process that
    forks and exits allocates a few containers, and at thousands of forks a
    second the default threshold meant a collection every few milliseconds.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


"""The commands that talk to a running daemon over its API: ``actions`` (with the
switch that pauses them all), ``incidents`` and ``stream``.

For each command, the function that adds its arguments to its parser and the
function that runs it (``cmd_*``).  The requests are made by
:mod:`linnix.api.client` and the answers are shown by :mod:`.views`, unless
``--json`` asks for the API's own JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

from ..terminal import printable
from .argtypes import positive_duration, positive_int
from .exits import EXIT_INTERRUPTED, EXIT_OK

__all__ = [
    "actions_arguments", "cmd_actions", "incidents_arguments", "cmd_incidents",
    "stream_arguments", "cmd_stream", "env_approver",
]

_STATUSES = ("pending", "approved", "executing", "succeeded", "failed", "rejected", "expired",
             "refused", "recorded", "all")


def _client(args: argparse.Namespace) -> Any:
    """The API client the options point at (the config's bind and token file by default)."""
    from ..api.client import ApiClient, api_url, read_token
    from ..config import Config, load_config, resolve_state_dir, resolve_token_file

    config: Config | None = None

    def configured() -> Config:
        nonlocal config
        if config is None:
            config = load_config(args.config)
        return config

    url = args.api or api_url(configured().api.bind)

    def token() -> str:
        if args.token_file:
            return read_token(args.token_file)
        conf = configured()
        return read_token(resolve_token_file(conf, resolve_state_dir(args.state_dir, conf)))

    return ApiClient(url, token_source=token, timeout=args.timeout)


def _show(args: argparse.Namespace, data: Any, render: Callable[[Any], str]) -> None:
    """``data`` as JSON with --json, else as ``render`` writes it for people."""
    if args.json:
        _print_json(data)
    else:
        sys.stdout.write(render(data))


def _print_json(value: object) -> None:
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=True) + "\n")


def env_approver(environ: Mapping[str, str] | None = None) -> str | None:
    """Who is at the keyboard: ``$SUDO_USER``, else ``$USER`` (the default note of a
    decision: several people may share one token)."""
    env = os.environ if environ is None else environ
    return env.get("SUDO_USER") or env.get("USER") or None


# ---- options shared by the commands ----------------------------------------------------

def _connection_options(p: argparse.ArgumentParser, *, nested: bool) -> None:
    """The options saying where the daemon is.  ``nested``: for the parser of a verb
    (``actions approve``), whose defaults must not hide what was given before the verb."""
    group = p.add_argument_group("reaching the daemon")

    def default(value: object) -> object:
        return argparse.SUPPRESS if nested else value

    group.add_argument("--api", metavar="URL", default=default(None),
                       help="the API's URL (default: from the config's [api] bind)")
    group.add_argument("--config", metavar="FILE", default=default(None),
                       help="linnix.toml of the daemon (default: built-in settings)")
    group.add_argument("--state-dir", metavar="DIR", default=default(None),
                       help="the daemon's state directory, where its token file is")
    group.add_argument("--token-file", metavar="FILE", default=default(None),
                       help="the API token file (default: api.token in the state directory)")
    group.add_argument("--timeout", type=positive_duration, default=default(10.0),
                       metavar="DURATION", help="how long to wait for an answer (default 10s)")


def _json_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the API's JSON")


def _verb(verbs: argparse._SubParsersAction,  # type: ignore[type-arg]
          name: str, what: str) -> argparse.ArgumentParser:
    """A verb's parser: the connection options again (after the verb), and --json."""
    p: argparse.ArgumentParser = verbs.add_parser(name, help=what)
    _connection_options(p, nested=True)
    _json_option(p)
    return p


# ---- actions ---------------------------------------------------------------------------

def actions_arguments(p: argparse.ArgumentParser) -> None:
    _connection_options(p, nested=False)
    p.set_defaults(verb=None, status="pending", limit=100, json=False)
    verbs = p.add_subparsers(
        dest="verb",
        metavar="[list|show ID|approve ID|reject ID|thaw ID|pause|resume|status]")
    lst = _verb(verbs, "list", "list actions (default: the pending ones)")
    lst.add_argument("--status", choices=_STATUSES, default="pending",
                     help="only actions in this status; 'all' for every one (default pending)")
    lst.add_argument("--limit", type=positive_int, default=100, metavar="N",
                     help="at most N actions, newest first (default 100)")
    show = _verb(verbs, "show", "show one action")
    show.add_argument("id", type=positive_int, metavar="ID", help="the action's id")
    for verb, what, which in (
            ("approve", "approve a pending action: it executes now", "pending action"),
            ("reject", "reject a pending action: it never executes", "pending action"),
            ("thaw", "thaw a cgroup a freeze action froze: its processes run again",
             "freeze action")):
        d = _verb(verbs, verb, what)
        d.add_argument("id", type=positive_int, metavar="ID",
                       help=f"the {which}'s id ('linnix actions' lists them)")
        d.add_argument("--note", "--approver", dest="note", metavar="TEXT",
                       help="a note for the audit log beside the token's name, which is "
                            "who decided (default: $SUDO_USER or $USER; --approver is its "
                            "old name)")
        d.add_argument("--reason", metavar="TEXT", help="why, for the audit log")
    _switch_arguments(verbs)


def _switch_arguments(verbs: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``actions pause``, ``resume`` and ``status``: the switch that pauses every action."""
    pause = _verb(verbs, "pause", "pause every action: nothing executes until resumed")
    pause.add_argument("--for", dest="for_s", type=_pause_length, metavar="DURATION",
                       help="resume by itself after this long (e.g. 30m, 2h, 1d; at most "
                            "30d); default: until 'linnix actions resume'")
    resume = _verb(verbs, "resume", "resume actions: pending ones still need an approval")
    for p in (pause, resume):
        p.add_argument("--reason", metavar="TEXT", help="why, for the audit log")
        p.add_argument("--note", metavar="TEXT",
                       help="a note for the audit log beside the token's name (default: "
                            "$SUDO_USER or $USER)")
    _verb(verbs, "status", "say whether actions are paused, by whom, since and until when")


def _pause_length(text: str) -> float:
    from ..actions.pause import PAUSE_MAX_S

    value = positive_duration(text)
    if value > PAUSE_MAX_S:
        raise argparse.ArgumentTypeError(f"'{text}' is longer than {PAUSE_MAX_S / 86400:g} "
                                         "days; leave --for out to pause until resumed")
    return value


def cmd_actions(args: argparse.Namespace) -> int:
    from .views import action_detail, actions_table, paused_banner

    client = _client(args)
    verb = args.verb or "list"
    if verb == "list":
        status = None if args.status == "all" else args.status
        _show(args, client.actions(status=status, limit=args.limit),
              lambda rows: actions_table(rows, status))
        banner = None if args.json else paused_banner(_health(client))
        if banner is not None:  # beside the table, not in it: a notice like the others
            sys.stderr.write(f"linnix: {banner}\n")
        return EXIT_OK
    if verb == "show":
        _show(args, client.action(args.id), action_detail)
        return EXIT_OK
    if verb in ("pause", "resume", "status"):
        return _switch(args, client, verb)
    return _decide(args, client, verb)


def _health(client: Any) -> dict[str, Any]:
    """``/health``, or nothing when it cannot be read (the list was, which matters more)."""
    from ..errors import ApiError

    try:
        return dict(client.health())
    except ApiError:
        return {}


def _switch(args: argparse.Namespace, client: Any, verb: str) -> int:
    """``actions pause|resume|status``: the switch as it is afterwards."""
    from .views import pause_text

    if verb == "pause":
        state = client.pause(args.reason, args.for_s, args.note or env_approver())
    elif verb == "resume":
        state = client.resume(args.reason, args.note or env_approver())
    else:
        state = {k: v for k, v in client.health().items() if k != "status"}
    _show(args, state, pause_text)
    return EXIT_OK


def _decide(args: argparse.Namespace, client: Any, verb: str) -> int:
    """``actions approve|reject|thaw ID``: the decision, and what the action is now."""
    row = client.decide(args.id, verb, args.note or env_approver(), args.reason)
    if args.json:
        _print_json(row)
        return EXIT_OK
    if verb == "thaw":
        sys.stdout.write(printable(f"action {row.get('id')}: {row.get('cgroup') or '?'} "
                                   "thawed") + "\n")
        return EXIT_OK
    done = "approved" if verb == "approve" else "rejected"
    target = f"{row.get('comm') or '?'}[{row.get('pid')}]" if row.get("pid") else (
        row.get("cgroup") or "-")
    sys.stdout.write(printable(f"action {row.get('id')} {done} by {row.get('decided_by')}: "
                               f"{row.get('kind')} {target} (now {row.get('status')})") + "\n")
    return EXIT_OK


# ---- incidents -------------------------------------------------------------------------

def incidents_arguments(p: argparse.ArgumentParser) -> None:
    _connection_options(p, nested=False)
    p.set_defaults(verb=None, open=False, limit=100, json=False)
    verbs = p.add_subparsers(dest="verb", metavar="[list|show ID|analyze ID]")
    lst = _verb(verbs, "list", "list incidents, newest first")
    lst.add_argument("--open", action="store_true", help="only the open ones")
    lst.add_argument("--limit", type=positive_int, default=100, metavar="N",
                     help="at most N incidents (default 100)")
    show = _verb(verbs, "show", "show one incident (with its analysis, once it has one)")
    show.add_argument("id", type=positive_int, metavar="ID", help="the incident's id")
    analyze = _verb(verbs, "analyze", "analyse one incident now (the built-in analyst; a "
                    "configured model is asked again in the background), keep the analysis "
                    "and show it")
    analyze.add_argument("id", type=positive_int, metavar="ID", help="the incident's id")


def cmd_incidents(args: argparse.Namespace) -> int:
    from .views import analysis_text, incident_detail, incidents_table

    client = _client(args)
    if (args.verb or "list") == "list":
        _show(args, client.incidents(open_only=args.open, limit=args.limit),
              lambda rows: incidents_table(rows, args.open))
        return EXIT_OK
    if args.verb == "analyze":
        _show(args, client.analyze(args.id), analysis_text)
        return EXIT_OK
    _show(args, client.incident(args.id), incident_detail)
    return EXIT_OK


# ---- stream ----------------------------------------------------------------------------

def stream_arguments(p: argparse.ArgumentParser) -> None:
    _connection_options(p, nested=False)
    _json_option(p)


def cmd_stream(args: argparse.Namespace) -> int:
    # `follow` is looked up when the command runs, so that tests can replace it
    from ..api.client import SseEvent, follow
    from .views import event_line

    client = _client(args)

    def show(event: SseEvent) -> None:
        if args.json:
            line: str | None = json.dumps({"id": event.id, "event": event.event,
                                           "data": event.json()})
        else:
            line = event_line(event)
        if line is not None:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def notice(text: str) -> None:
        sys.stderr.write(f"linnix: {printable(text)}\n")
        sys.stderr.flush()

    try:
        follow(client, show, notice=notice)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return EXIT_OK

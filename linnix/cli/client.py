"""Argument parsing for the commands that talk to a running daemon over its API:
``linnix actions``, ``linnix incidents`` and ``linnix stream``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from ..errors import UsageError
from ..terminal import printable
from .argtypes import positive_duration, positive_int

__all__ = ["register"]

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


# ---- actions ------------------------------------------------------------------------

def cmd_actions(args: argparse.Namespace) -> int:
    from ..api.client import action_detail, actions_table, env_approver

    client = _client(args)
    verb = args.verb or "list"
    if verb == "list":
        status = None if args.status == "all" else args.status
        _show(args, client.actions(status=status, limit=args.limit),
              lambda rows: actions_table(rows, status))
        return 0
    if verb == "show":
        _show(args, client.action(args.id), action_detail)
        return 0
    approver = args.approver or env_approver()
    if not approver:
        raise UsageError("say who decides with --approver NAME ($SUDO_USER and $USER are unset)")
    row = client.decide(args.id, verb, approver, args.reason)
    if args.json:
        _print_json(row)
        return 0
    done = "approved" if verb == "approve" else "rejected"
    target = f"{row.get('comm') or '?'}[{row.get('pid')}]" if row.get("pid") else "-"
    sys.stdout.write(printable(f"action {row.get('id')} {done} by {approver}: "
                               f"{row.get('kind')} {target} (now {row.get('status')})") + "\n")
    return 0


# ---- incidents ------------------------------------------------------------------------

def cmd_incidents(args: argparse.Namespace) -> int:
    from ..api.client import incident_detail, incidents_table

    client = _client(args)
    if (args.verb or "list") == "list":
        _show(args, client.incidents(open_only=args.open, limit=args.limit),
              lambda rows: incidents_table(rows, args.open))
        return 0
    _show(args, client.incident(args.id), incident_detail)
    return 0


# ---- stream ------------------------------------------------------------------------------

def cmd_stream(args: argparse.Namespace) -> int:
    from ..api.client import SseEvent, event_line, follow

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
        return 130
    return 0


# ---- parsers -----------------------------------------------------------------------------

def _connection_options(*, nested: bool) -> argparse.ArgumentParser:
    """The options saying where the daemon is.  ``nested``: for the parser of a verb
    (``actions approve``), whose defaults must not hide what was given before the verb."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("reaching the daemon")

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
    return common


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``actions``, ``incidents`` and ``stream`` to the parser."""
    common = _connection_options(nested=False)
    nested = _connection_options(nested=True)
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--json", action="store_true", help="print the API's JSON")

    a = sub.add_parser("actions", help="list, show, approve or reject proposed actions",
                       parents=[common])
    a.set_defaults(func=cmd_actions, verb=None, status="pending", limit=100, json=False)
    verbs = a.add_subparsers(dest="verb", metavar="[list|show ID|approve ID|reject ID]")
    lst = verbs.add_parser("list", help="list actions (default: the pending ones)",
                           parents=[nested, output])
    lst.add_argument("--status", choices=_STATUSES, default="pending",
                     help="only actions in this status; 'all' for every one (default pending)")
    lst.add_argument("--limit", type=positive_int, default=100, metavar="N",
                     help="at most N actions, newest first (default 100)")
    show = verbs.add_parser("show", help="show one action", parents=[nested, output])
    show.add_argument("id", type=positive_int, metavar="ID")
    for verb, what in (("approve", "approve a pending action: it executes now"),
                       ("reject", "reject a pending action: it never executes")):
        d = verbs.add_parser(verb, help=what, parents=[nested, output])
        d.add_argument("id", type=positive_int, metavar="ID")
        d.add_argument("--approver", metavar="NAME",
                       help="who decides, for the audit log (default: $SUDO_USER or $USER)")
        d.add_argument("--reason", metavar="TEXT", help="why, for the audit log")

    i = sub.add_parser("incidents", help="list or show incidents", parents=[common])
    i.set_defaults(func=cmd_incidents, verb=None, open=False, limit=100, json=False)
    iverbs = i.add_subparsers(dest="verb", metavar="[list|show ID]")
    ilist = iverbs.add_parser("list", help="list incidents, newest first",
                              parents=[nested, output])
    ilist.add_argument("--open", action="store_true", help="only the open ones")
    ilist.add_argument("--limit", type=positive_int, default=100, metavar="N",
                       help="at most N incidents (default 100)")
    ishow = iverbs.add_parser("show", help="show one incident", parents=[nested, output])
    ishow.add_argument("id", type=positive_int, metavar="ID")

    s = sub.add_parser("stream", help="follow the daemon's alerts and actions as they happen",
                       parents=[common, output])
    s.set_defaults(func=cmd_stream)

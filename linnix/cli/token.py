"""``linnix token``: add, list and revoke the API's named tokens.

The tokens live in ``api.tokens`` in the daemon's state directory
(:mod:`linnix.api.tokens` does the work); a running daemon sees a change
within a second, without a restart.  A new token is printed once, alone on
standard output, so that a script can capture it; only its digest is kept.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from .exits import EXIT_OK

__all__ = ["cmd_token", "token_arguments"]


def _options(p: argparse.ArgumentParser, *, nested: bool) -> None:
    """Where the state directory is; ``nested`` for a verb's parser, whose defaults must
    not hide what was given before the verb."""
    default = argparse.SUPPRESS if nested else None
    p.add_argument("--config", metavar="FILE", default=default,
                   help="linnix.toml of the daemon (default: built-in settings)")
    p.add_argument("--state-dir", metavar="DIR", default=default,
                   help="the daemon's state directory, where api.tokens is")


def token_arguments(p: argparse.ArgumentParser) -> None:
    from ..api.tokens import ROLES

    _options(p, nested=False)
    p.set_defaults(verb=None, json=False)
    verbs = p.add_subparsers(dest="verb", metavar="{add NAME --role ROLE|list|revoke NAME}")
    add = verbs.add_parser("add", help="make a token; it is printed once")
    add.add_argument("name", metavar="NAME", help="who holds it: recorded as who decided")
    add.add_argument("--role", choices=ROLES, required=True,
                     help="reader: reads; approver: also approves and rejects actions; "
                          "admin: also reloads the rules")
    lst = verbs.add_parser("list", help="names, roles and when each was made")
    lst.add_argument("--json", action="store_true", help="print JSON")
    revoke = verbs.add_parser("revoke", help="remove a token: it stops working at once")
    revoke.add_argument("name", metavar="NAME",
                        help="the token to revoke ('linnix token list' names them)")
    for verb in (add, lst, revoke):
        _options(verb, nested=True)


def _tokens_file(args: argparse.Namespace) -> str:
    from ..config import load_config, resolve_state_dir, resolve_tokens_file

    config = load_config(args.config)
    return resolve_tokens_file(resolve_state_dir(args.state_dir, config))


def cmd_token(args: argparse.Namespace) -> int:
    from ..api.tokens import add_token, revoke_token

    path = _tokens_file(args)
    if args.verb == "add":
        token = add_token(path, args.name, args.role)
        sys.stdout.write(token + "\n")
        sys.stdout.flush()
        sys.stderr.write(f"linnix: added the {args.role} token {args.name!r} to {path}; it is "
                         "shown only this once\n")
        return EXIT_OK
    if args.verb == "revoke":
        revoke_token(path, args.name)
        sys.stderr.write(f"linnix: revoked the token {args.name!r}\n")
        return EXIT_OK
    return _list(args, path)


def _list(args: argparse.Namespace, path: str) -> int:
    """Every token, the admin's (api.token) first; never a secret nor a digest."""
    from ..api.tokens import ADMIN, read_tokens
    from .views import local_time, table

    rows: list[tuple[str, str, float | None, str]] = [(ADMIN, "admin", None,
                                                       "the token in api.token")]
    rows += [(t.name, t.role, t.created, "") for t in read_tokens(path)]
    if args.json:
        sys.stdout.write(json.dumps([{"name": n, "role": r, "created": c}
                                     for n, r, c, _ in rows], indent=2) + "\n")
        return EXIT_OK
    lines = [(n, r, local_time(c), note) for n, r, c, note in rows]
    sys.stdout.write(table(("NAME", "ROLE", "CREATED", ""), lines))
    if not os.path.exists(path):
        sys.stdout.write("no named tokens yet: 'linnix token add NAME --role ROLE' makes one\n")
    return EXIT_OK

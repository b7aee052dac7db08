"""``linnix ui``: print a one-time link that signs a browser in to the dashboard.

The daemon makes the code (``POST /ui/codes`` with the API token); the link is
good once, for a minute.  The token itself never goes into the link.
"""

from __future__ import annotations

import argparse

from ..terminal import printable
from .client import _client, _connection_options, _print_json
from .exits import EXIT_OK

__all__ = ["cmd_ui", "ui_arguments"]


def ui_arguments(p: argparse.ArgumentParser) -> None:
    _connection_options(p, nested=False)
    p.add_argument("--json", action="store_true", help="print the daemon's answer as JSON")


def cmd_ui(args: argparse.Namespace) -> int:
    client = _client(args)
    found = client.sign_in_code()
    link = client.url(str(found["path"]))
    if args.json:
        _print_json({**found, "url": link})
        return EXIT_OK
    print(link)
    print(f"Open it within {found['expires_in']:g}s to sign in as "
          f"{printable(str(found['name']))}; it works once.")
    return EXIT_OK

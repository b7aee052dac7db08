"""Where the daemon keeps its state and finds its API token.

The state directory is, first that applies (:func:`resolve_state_dir`):

1. the command line's ``--state-dir``;
2. ``$LINNIX_STATE_DIR``;
3. ``runtime.state_dir`` in the config file;
4. ``./state`` when it holds ``daemon.json``: a checkout where ``make run``
   (``--state-dir state``) has started the daemon;
5. :func:`default_state_dir`, which depends on who runs the command.

The token file is ``api.token_file``, else ``<state_dir>/api.token``; the
named tokens are ``<state_dir>/api.tokens``.  The daemon and the client both
resolve them here, so that they agree.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from .schema import Config

__all__ = [
    "CHECKOUT_STATE_DIR",
    "ROOT_STATE_DIR",
    "STATE_DIR_ENV",
    "TOKEN_FILE_NAME",
    "TOKENS_FILE_NAME",
    "default_state_dir",
    "resolve_state_dir",
    "resolve_token_file",
    "resolve_tokens_file",
]

TOKEN_FILE_NAME = "api.token"
TOKENS_FILE_NAME = "api.tokens"  # the named tokens (linnix token add)
ROOT_STATE_DIR = "/var/lib/linnix"
STATE_DIR_ENV = "LINNIX_STATE_DIR"
CHECKOUT_STATE_DIR = "state"  # what `make run` passes as --state-dir


def default_state_dir(
    *, euid: int | None = None, environ: Mapping[str, str] | None = None
) -> str:
    """Where the daemon keeps its state when neither the CLI nor the file says.

    ``/var/lib/linnix`` for root; otherwise ``$XDG_STATE_HOME/linnix`` when
    that variable holds an absolute path, else ``~/.local/state/linnix``.
    """
    env = os.environ if environ is None else environ
    if (os.geteuid() if euid is None else euid) == 0:
        return ROOT_STATE_DIR
    xdg = env.get("XDG_STATE_HOME", "")
    if os.path.isabs(xdg):  # the XDG rules say to ignore a relative value
        return os.path.join(xdg, "linnix")
    home = env.get("HOME") or os.path.expanduser("~")
    return os.path.join(home, ".local", "state", "linnix")


def resolve_state_dir(cli_value: str | None, config: Config,
                      environ: Mapping[str, str] | None = None) -> str:
    """The state directory: the CLI flag, else ``$LINNIX_STATE_DIR``, else the file's
    value, else the current directory's ``state/`` if a daemon has run there, else the
    default (the order is the module's)."""
    env = os.environ if environ is None else environ
    if cli_value:
        return os.path.abspath(cli_value)
    if env.get(STATE_DIR_ENV):
        return os.path.abspath(env[STATE_DIR_ENV])
    if config.runtime.state_dir is not None:
        return config.runtime.state_dir
    if os.path.isfile(os.path.join(CHECKOUT_STATE_DIR, "daemon.json")):
        return os.path.abspath(CHECKOUT_STATE_DIR)
    return default_state_dir(environ=env)


def resolve_token_file(config: Config, state_dir: str) -> str:
    """The API token file: ``api.token_file``, else ``<state_dir>/api.token``."""
    if config.api.token_file is not None:
        return config.api.token_file
    return os.path.join(state_dir, TOKEN_FILE_NAME)


def resolve_tokens_file(state_dir: str) -> str:
    """The named API tokens: ``<state_dir>/api.tokens``."""
    return os.path.join(state_dir, TOKENS_FILE_NAME)

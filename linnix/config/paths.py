"""Where the daemon keeps its state and finds its API token.

The state directory comes from the command line, else from
``runtime.state_dir``, else from :func:`default_state_dir` (which depends on
who runs the daemon); the token file from ``api.token_file``, else
``<state_dir>/api.token``; the named tokens are ``<state_dir>/api.tokens``.
The daemon and the client both resolve them here, so that they agree.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from .schema import Config

__all__ = [
    "ROOT_STATE_DIR",
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


def resolve_state_dir(cli_value: str | None, config: Config) -> str:
    """The state directory: the CLI flag, else the file's value, else the default."""
    if cli_value:
        return os.path.abspath(cli_value)
    if config.runtime.state_dir is not None:
        return config.runtime.state_dir
    return default_state_dir()


def resolve_token_file(config: Config, state_dir: str) -> str:
    """The API token file: ``api.token_file``, else ``<state_dir>/api.token``."""
    if config.api.token_file is not None:
        return config.api.token_file
    return os.path.join(state_dir, TOKEN_FILE_NAME)


def resolve_tokens_file(state_dir: str) -> str:
    """The named API tokens: ``<state_dir>/api.tokens``."""
    return os.path.join(state_dir, TOKENS_FILE_NAME)

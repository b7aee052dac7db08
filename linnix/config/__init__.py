"""The daemon's configuration file, ``linnix.toml``.

Import from here; the modules behind it own one subject each:

- :mod:`.schema`: the :class:`Config` classes and their defaults, which check
  each key gets, and reading a file against them (:func:`load_config`,
  :func:`parse_config`, :func:`config_problems`), every problem collected
  into one :class:`ConfigFileError` that names file, line and key;
- :mod:`.checks`: checks of single values (durations, whole numbers, paths,
  process and host names, ``host:port``), with the parsers
  :func:`parse_duration` and :func:`parse_bind`;
- :mod:`.paths`: the state directory and the API token file
  (:func:`default_state_dir`, :func:`resolve_state_dir`,
  :func:`resolve_token_file`, :func:`resolve_tokens_file`);
- ``_toml`` (private): where each key sits in the TOML text, which tomllib
  does not say, and values and keys written back as TOML for messages.

Durations follow the one grammar of :func:`linnix.names.duration_seconds`,
which the command line uses too.
"""

from __future__ import annotations

from .checks import parse_bind, parse_duration
from .paths import (
    default_state_dir,
    resolve_state_dir,
    resolve_token_file,
    resolve_tokens_file,
)
from .schema import (
    ActionsConfig,
    ApiConfig,
    Config,
    ConfigFileError,
    ConfigProblem,
    FdSampling,
    Mode,
    RetentionConfig,
    RulesConfig,
    RuntimeConfig,
    TelemetryConfig,
    config_problems,
    load_config,
    parse_config,
)

__all__ = [
    "ActionsConfig",
    "ApiConfig",
    "Config",
    "ConfigFileError",
    "ConfigProblem",
    "FdSampling",
    "Mode",
    "RetentionConfig",
    "RulesConfig",
    "RuntimeConfig",
    "TelemetryConfig",
    "config_problems",
    "default_state_dir",
    "load_config",
    "parse_bind",
    "parse_config",
    "parse_duration",
    "resolve_state_dir",
    "resolve_token_file",
    "resolve_tokens_file",
]

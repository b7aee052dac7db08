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
- :mod:`.secret`: secret files the configuration names (a webhook's key),
  read only when their mode is 0600 or stricter (:func:`read_secret`);
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
    AlertmanagerTarget,
    AnalysisConfig,
    ApiConfig,
    Config,
    ConfigFileError,
    ConfigProblem,
    FdSampling,
    Mode,
    NotifyConfig,
    RetentionConfig,
    RulesConfig,
    RuntimeConfig,
    TelemetryConfig,
    WebhookTarget,
    config_problems,
    load_config,
    parse_config,
)
from .secret import SecretFileError, read_secret

__all__ = [
    "ActionsConfig",
    "AnalysisConfig",
    "AlertmanagerTarget",
    "ApiConfig",
    "Config",
    "ConfigFileError",
    "ConfigProblem",
    "FdSampling",
    "Mode",
    "NotifyConfig",
    "RetentionConfig",
    "RulesConfig",
    "RuntimeConfig",
    "SecretFileError",
    "TelemetryConfig",
    "WebhookTarget",
    "config_problems",
    "default_state_dir",
    "load_config",
    "parse_bind",
    "parse_config",
    "parse_duration",
    "read_secret",
    "resolve_state_dir",
    "resolve_token_file",
    "resolve_tokens_file",
]

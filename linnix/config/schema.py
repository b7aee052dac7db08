"""What ``linnix.toml`` may contain, and reading a file against it.

Every key has a default, so an empty file (or none at all) is a valid
configuration: ``Config()`` is the default one.  The file is read with
:mod:`tomllib` and then checked key by key (``_SCHEMA`` says which check of
:mod:`linnix.config.checks` each key gets); every problem found is
collected, and all of them are reported together in one
:class:`ConfigFileError`, each naming the file, the line and the dotted key
it is about::

    linnix.toml:12: actions.rate_limit: expected a whole number >= 0, got "six"

Durations are written as strings with a unit (``"500ms"``, ``"30s"``,
``"5m"``, ``"2h"``, ``"30d"``) or as plain numbers of seconds; they are stored
as float seconds.  Lists are stored as tuples so that a :class:`Config` is
immutable and hashable.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import attrs

from ..errors import ConfigError
from ..names import suggest
from ._toml import Key, Locator, dotted, show, syntax_error
from .checks import (
    Check,
    ValueProblemError,
    absolute_path,
    analysis_backend,
    bind,
    boolean,
    cgroup_path,
    choice,
    distinct,
    duration,
    host_name,
    http_url,
    key_file,
    list_of,
    model_name,
    nonempty_text,
    parse_bind,
    power_of_two,
    process_name,
    reversible_kind,
    secret_file,
    table,
    whole,
)

__all__ = [
    "ActionsConfig",
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
    "TelemetryConfig",
    "WebhookTarget",
    "config_problems",
    "load_config",
    "parse_config",
]

Mode = Literal["monitor", "enforce"]
FdSampling = Literal["auto", "always", "never"]
IDLE_SAMPLE_MAX_S = 8.0  # an idle process is sampled at least this often
IDLE_SAMPLE_MAX_LIMIT_S = 60.0  # ... and no configuration lets it go longer

# ---- the configuration ----------------------------------------------------------------

@attrs.frozen
class RuntimeConfig:
    """``[runtime]``: how the daemon runs."""

    mode: Mode = "monitor"
    state_dir: str | None = None  # None: see default_state_dir()


@attrs.frozen
class ApiConfig:
    """``[api]``: the HTTP API through which actions are approved."""

    bind: str = "127.0.0.1:9333"
    token_file: str | None = None  # None: <state_dir>/api.token
    max_body_bytes: int = 16384
    # Host names (besides IP addresses and "localhost") that requests may name in
    # their Host header; any other name is refused (DNS rebinding).
    allowed_hosts: tuple[str, ...] = ()
    # Connections served at once; one more is answered 503 and closed.
    max_connections: int = 64
    # Whether GET requests may be made without a token (as before tokens were needed).
    public_reads: bool = False

    @property
    def host(self) -> str:
        """The address to listen on, without the brackets of an IPv6 address."""
        return parse_bind(self.bind)[0]

    @property
    def port(self) -> int:
        return parse_bind(self.bind)[1]


@attrs.frozen
class TelemetryConfig:
    """``[telemetry]``: how often processes are sampled and rules evaluated."""

    sample_interval: float = 1.0
    # the longest an idle process goes unsampled (0, or sample_interval or less: every
    # process at every interval)
    idle_sample_max: float = IDLE_SAMPLE_MAX_S
    tick: float = 0.5
    ring_buffer_pages: int = 4096
    sample_fds: FdSampling = "auto"


@attrs.frozen
class CgroupsConfig:
    """``[cgroups]``: which cgroups cgroup rules watch besides those of live processes."""

    root: str | None = None  # every cgroup under it too (bounded), e.g. "/system.slice"


@attrs.frozen
class RulesConfig:
    """``[rules]``: where the rule files are and which rules are switched off."""

    paths: tuple[str, ...] = ("/etc/linnix/rules",)
    disabled_tags: tuple[str, ...] = ()
    enabled_tags: tuple[str, ...] = ()


@attrs.frozen
class ActionsConfig:
    """``[actions]``: lifetime, rate and safety guards of proposed actions."""

    ttl: float = 300.0
    rate_limit: int = 6
    # Names protected besides the built-in ones (linnix.actions.guards.BUILTIN_PROTECTED),
    # which no setting here removes but ``unprotect``, name by name.
    protected: tuple[str, ...] = ()
    protected_exe: tuple[str, ...] = ()
    unprotect: tuple[str, ...] = ()
    kill_grace: float = 5.0
    degraded_window: float = 60.0
    # Reversible action kinds run without approval, in monitor mode too (only "freeze").
    auto: tuple[str, ...] = ()
    freeze_ttl: float | None = None  # a freeze thaws after this at the latest; None: ttl
    cgroup_kills_per_unit: int = 3  # kill_cgroup executions per unit per 10 minutes
    # Cgroups no cgroup action touches: unit names ("nginx.service") or cgroup paths.
    protected_cgroups: tuple[str, ...] = ()


@attrs.frozen
class RetentionConfig:
    """``[retention]``: how much history (incidents, audit log, alerts file) is kept."""

    max_age: float = 30 * 86400.0
    max_incidents: int = 10000
    max_audit: int = 100000
    alerts_file_mb: int = 100  # alerts.jsonl rotates to alerts.jsonl.1 past this size


@attrs.frozen
class AlertmanagerTarget:
    """One ``[[notify.alertmanager]]``: an Alertmanager every alert is sent to."""

    url: str


@attrs.frozen
class WebhookTarget:
    """One ``[[notify.webhook]]``: a URL each transition is posted to, signed."""

    url: str
    secret_file: str  # checked (0600 or stricter, not empty) when the file is read


@attrs.frozen
class NotifyConfig:
    """``[notify]``: where alerts go besides the terminal, alerts.jsonl and the API."""

    alertmanager: tuple[AlertmanagerTarget, ...] = ()
    webhook: tuple[WebhookTarget, ...] = ()
    resend_interval: float = 60.0  # a firing alert is sent to Alertmanager again this often
    timeout: float = 10.0  # one request, connecting included
    queue_size: int = 10000  # per receiver; the oldest is dropped when full


@attrs.frozen
class AnalysisConfig:
    """``[analysis]``: who analyses incidents: the built-in analyst, and optionally a model
    behind an OpenAI-compatible chat completions API (``backend = "openai"``)."""

    backend: str = "builtin"
    endpoint: str | None = None  # the API's base URL: {endpoint}/chat/completions
    model: str | None = None
    api_key_file: str | None = None  # None: requests carry no key (a local server)
    timeout: float = 30.0  # one request to the model, connecting included
    max_tokens: int = 1024
    send_cmdlines: bool = False  # command lines are left out of what the model is sent
    concurrency: int = 2  # requests to the model at once
    queue_size: int = 32  # incidents waiting for their analysis
    breaker_failures: int = 5  # consecutive failures that stop the requests for a while
    breaker_cooldown: float = 60.0  # how long; then one request is tried


@attrs.frozen
class Config:
    """The whole configuration; ``Config()`` is the default one.

    ``path`` says which file it was read from (None for the defaults); it takes
    no part in comparisons.
    """

    runtime: RuntimeConfig = attrs.field(factory=RuntimeConfig)
    api: ApiConfig = attrs.field(factory=ApiConfig)
    telemetry: TelemetryConfig = attrs.field(factory=TelemetryConfig)
    cgroups: CgroupsConfig = attrs.field(factory=CgroupsConfig)
    rules: RulesConfig = attrs.field(factory=RulesConfig)
    actions: ActionsConfig = attrs.field(factory=ActionsConfig)
    retention: RetentionConfig = attrs.field(factory=RetentionConfig)
    notify: NotifyConfig = attrs.field(factory=NotifyConfig)
    analysis: AnalysisConfig = attrs.field(factory=AnalysisConfig)
    path: str | None = attrs.field(default=None, eq=False)


# ---- which check each key gets ----------------------------------------------------------

_TOKEN_MESSAGE = ("secrets do not belong in the configuration file; write the token to a file "
                  "only the daemon can read (mode 0600) and set api.token_file to its path")

# section -> (class, key -> check); the keys and their order follow the classes.
_SCHEMA: Mapping[str, tuple[type[Any], Mapping[str, Check]]] = {
    "runtime": (RuntimeConfig, {
        "mode": choice("monitor", "enforce"),
        "state_dir": absolute_path,
    }),
    "api": (ApiConfig, {
        "bind": bind,
        "token_file": absolute_path,
        "max_body_bytes": whole(1024, 16 * 1024 * 1024),
        "allowed_hosts": list_of(host_name, "host names"),
        "max_connections": whole(1, 4096),
        "public_reads": boolean,
    }),
    "telemetry": (TelemetryConfig, {
        "sample_interval": duration(zero_ok=False),
        "idle_sample_max": duration(zero_ok=True, at_most=IDLE_SAMPLE_MAX_LIMIT_S),
        "tick": duration(zero_ok=False),
        "ring_buffer_pages": power_of_two,
        "sample_fds": choice("auto", "always", "never"),
    }),
    "cgroups": (CgroupsConfig, {
        "root": cgroup_path,
    }),
    "rules": (RulesConfig, {
        "paths": list_of(nonempty_text, "paths", at_least_one="path"),
        "disabled_tags": list_of(nonempty_text, "tags"),
        "enabled_tags": list_of(nonempty_text, "tags"),
    }),
    "actions": (ActionsConfig, {
        "ttl": duration(zero_ok=False),
        "rate_limit": whole(0),
        "protected": list_of(process_name, "process names"),
        "protected_exe": list_of(absolute_path, "absolute paths"),
        "unprotect": list_of(process_name, "process names"),
        "kill_grace": duration(zero_ok=True),
        "degraded_window": duration(zero_ok=True),
        "auto": list_of(reversible_kind, "action kinds"),
        "freeze_ttl": duration(zero_ok=False),
        "cgroup_kills_per_unit": whole(0),
        "protected_cgroups": list_of(nonempty_text, "unit names or cgroup paths"),
    }),
    "retention": (RetentionConfig, {
        "max_age": duration(zero_ok=False),
        "max_incidents": whole(1),
        "max_audit": whole(1),
        "alerts_file_mb": whole(1, 1024 * 1024),
    }),
    "notify": (NotifyConfig, {
        "alertmanager": distinct("url", list_of(
            table(AlertmanagerTarget, {"url": http_url}),
            "tables ([[notify.alertmanager]] with url = ...)")),
        "webhook": list_of(table(WebhookTarget, {"url": http_url,
                                                 "secret_file": secret_file}),
                           "tables ([[notify.webhook]] with url = ... and secret_file = ...)"),
        "resend_interval": duration(zero_ok=False),
        "timeout": duration(zero_ok=False),
        "queue_size": whole(1, 1_000_000),
    }),
    "analysis": (AnalysisConfig, {
        "backend": analysis_backend,
        "endpoint": http_url,
        "model": model_name,
        "api_key_file": key_file,
        "timeout": duration(zero_ok=False),
        "max_tokens": whole(16, 1_000_000),
        "send_cmdlines": boolean,
        "concurrency": whole(1, 64),
        "queue_size": whole(1, 100_000),
        "breaker_failures": whole(1, 1000),
        "breaker_cooldown": duration(zero_ok=False),
    }),
}
# Keys refused with a message of their own, before they could count as unknown.
_FORBIDDEN: Mapping[tuple[str, str], str] = {("api", "token"): _TOKEN_MESSAGE}


# ---- problems ---------------------------------------------------------------------------

@attrs.frozen
class ConfigProblem:
    """One thing wrong with a configuration file."""

    path: str
    line: int  # 1-based; 0 when the problem is about the whole file
    key: str  # dotted key, '' when the problem is not about one key
    message: str

    def where(self) -> str:
        return f"{self.path}:{self.line}" if self.line > 0 else self.path

    def __str__(self) -> str:
        if self.key:
            return f"{self.where()}: {self.key}: {self.message}"
        return f"{self.where()}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.line,
            "key": self.key,
            "level": "error",
            "code": "C001",
            "message": self.message,
        }


class ConfigFileError(ConfigError):
    """A configuration file is invalid; ``problems`` lists everything wrong with it."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems) or "invalid configuration")


# ---- entry points -----------------------------------------------------------------------

def load_config(path: str | None) -> Config:
    """Read and check the file at ``path``; ``None`` gives the defaults.

    Raises :class:`ConfigFileError` (a :class:`~linnix.errors.ConfigError`)
    listing every problem, including a file that cannot be read.
    """
    if path is None:
        return Config()
    return parse_config(_read(path), path)


def parse_config(text: str, path: str) -> Config:
    """Check the TOML ``text`` of the file ``path`` and build its :class:`Config`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        line, detail = syntax_error(err, text)
        raise ConfigFileError(
            [ConfigProblem(path, line, "", f"invalid TOML: {detail}")]) from None
    reader = _Reader(path, Locator(text))
    config = reader.config(data)
    if reader.problems:
        raise ConfigFileError(sorted(reader.problems, key=lambda p: p.line))
    return config


def config_problems(path: str) -> list[ConfigProblem]:
    """Everything wrong with the file at ``path`` (empty when it is valid)."""
    try:
        load_config(path)
    except ConfigFileError as err:
        return err.problems
    return []


def _read(path: str) -> str:
    def fail(message: str) -> ConfigFileError:
        return ConfigFileError([ConfigProblem(path, 0, "", message)])

    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise fail("no such file") from None
    except IsADirectoryError:
        raise fail("is a directory, not a file") from None
    except OSError as err:
        raise fail(f"cannot read: {err.strerror or err}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ConfigFileError(
            [ConfigProblem(path, line, "", "the file is not UTF-8 text")]) from None


# ---- checking ---------------------------------------------------------------------------

def _home_of(name: str) -> str | None:
    """The section that has a key called ``name``, if one does."""
    return next((s for s, (_, checks) in _SCHEMA.items() if name in checks), None)


class _Reader:
    """Checks parsed TOML against the schema, collecting problems as it goes."""

    def __init__(self, path: str, locator: Locator) -> None:
        self.path = path
        self.locator = locator
        self.problems: list[ConfigProblem] = []

    def problem(self, key: Key, message: str) -> None:
        line = self.locator.line_of(key)
        self.problems.append(ConfigProblem(self.path, line, dotted(key), message))

    def config(self, data: Mapping[str, object]) -> Config:
        sections: dict[str, Any] = {}
        for name, value in data.items():
            if name in _SCHEMA:
                sections[name] = self.section(name, value)
            elif isinstance(value, dict):
                close = suggest(name, _SCHEMA)
                hint = (f"did you mean '{close}'?" if close
                        else "the sections are " + ", ".join(_SCHEMA))
                self.problem((name,), f"unknown section ({hint})")
            else:
                home = _home_of(name)
                hint = f" ('{name}' belongs in [{home}])" if home else ""
                self.problem((name,), f"unknown key{hint}")
        return Config(**sections, path=self.path)

    def section(self, name: str, value: object) -> object:
        cls, checks = _SCHEMA[name]
        if not isinstance(value, dict):
            self.problem((name,), f"expected a table ([{name}]), got {show(value)}")
            return cls()
        fields: dict[str, object] = {}
        for key, item in value.items():
            forbidden = _FORBIDDEN.get((name, key))
            check = checks.get(key)
            if forbidden is not None:
                self.problem((name, key), forbidden)
            elif check is None:
                self.problem((name, key), self.unknown_key(name, key, checks))
            else:
                try:
                    fields[key] = check(item)
                except ValueProblemError as err:
                    for sub, message in err.issues:
                        self.problem((name, key, *sub), message)
        built = cls(**fields)
        if isinstance(built, ActionsConfig):
            self.actions_agree(built)
        if isinstance(built, AnalysisConfig):
            self.model_named(built, value)
        return built

    def actions_agree(self, acts: ActionsConfig) -> None:
        """A freeze must never outlive the decision about it: freeze_ttl <= ttl."""
        if acts.freeze_ttl is not None and acts.freeze_ttl > acts.ttl:
            self.problem(("actions", "freeze_ttl"),
                         f"{acts.freeze_ttl:g}s is longer than actions.ttl ({acts.ttl:g}s): a "
                         "freeze must be undone by the time its decision is due; at most "
                         "the TTL")

    def model_named(self, analysis: AnalysisConfig, keys: Mapping[str, object]) -> None:
        """A model backend needs to know where it is and which model to ask."""
        if analysis.backend != "openai" or "backend" not in keys:
            return
        for key in ("endpoint", "model"):
            if key not in keys:
                self.problem(("analysis", "backend"),
                             f'backend "openai" needs analysis.{key} too')

    @staticmethod
    def unknown_key(section: str, key: str, checks: Iterable[str]) -> str:
        close = suggest(key, checks)
        if close is not None:
            return f"unknown key (did you mean '{close}'?)"
        home = _home_of(key)
        if home is not None:
            return f"unknown key in [{section}] ('{key}' belongs in [{home}])"
        return f"unknown key; [{section}] has " + ", ".join(checks)

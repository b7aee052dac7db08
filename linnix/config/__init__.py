"""The daemon's configuration file, ``linnix.toml``.

Every key has a default, so an empty file (or none at all) is a valid
configuration.  The file is read with :mod:`tomllib` and then checked key by
key; every problem found is collected, and all of them are reported together
in one :class:`ConfigFileError`, each naming the file, the line and the dotted
key it is about::

    linnix.toml:12: actions.rate_limit: expected a whole number >= 0, got "six"

tomllib does not say where a key sits, so :class:`_Locator` scans the text
once more to find the line of every key, table header and array element.

Durations are written as strings with a unit (``"500ms"``, ``"30s"``,
``"5m"``, ``"2h"``, ``"30d"``) or as plain numbers of seconds; they are stored
as float seconds.  Lists are stored as tuples so that a :class:`Config` is
immutable and hashable.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import math
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, time
from typing import Any, Literal

import attrs

from ..errors import ConfigError
from ..names import suggest

__all__ = [
    "ActionsConfig",
    "ApiConfig",
    "Config",
    "ConfigFileError",
    "ConfigProblem",
    "DEFAULT_PROTECTED",
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
]

Mode = Literal["monitor", "enforce"]
FdSampling = Literal["auto", "always", "never"]

# The kernel keeps a process name (comm) in 16 bytes including the final NUL.
COMM_MAX_BYTES = 15
TOKEN_FILE_NAME = "api.token"
ROOT_STATE_DIR = "/var/lib/linnix"

# Process names that no action may touch unless the configuration says otherwise.
# Exact comm values: note 'systemd-journal', which is how the kernel truncates
# 'systemd-journald'.
DEFAULT_PROTECTED: tuple[str, ...] = (
    "systemd",
    "init",
    "sshd",
    "systemd-journal",
    "systemd-logind",
    "systemd-udevd",
    "dbus-daemon",
    "dbus-broker",
    "containerd",
    "dockerd",
    "kubelet",
    "linnix",
)


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
    tick: float = 0.5
    ring_buffer_pages: int = 4096
    sample_fds: FdSampling = "auto"


@attrs.frozen
class RulesConfig:
    """``[rules]``: where the rule files are and which rules are switched off."""

    paths: tuple[str, ...] = ("/etc/linnix/rules",)
    disabled_tags: tuple[str, ...] = ()


@attrs.frozen
class ActionsConfig:
    """``[actions]``: lifetime, rate and safety guards of proposed actions."""

    ttl: float = 300.0
    rate_limit: int = 6
    protected: tuple[str, ...] = DEFAULT_PROTECTED
    protected_exe: tuple[str, ...] = ()
    kill_grace: float = 5.0
    degraded_window: float = 60.0


@attrs.frozen
class RetentionConfig:
    """``[retention]``: how much history (incidents, audit log, alerts file) is kept."""

    max_age: float = 30 * 86400.0
    max_incidents: int = 10000
    max_audit: int = 100000
    alerts_file_mb: int = 100  # alerts.jsonl rotates to alerts.jsonl.1 past this size


@attrs.frozen
class Config:
    """The whole configuration; ``Config()`` is the default one.

    ``path`` says which file it was read from (None for the defaults); it takes
    no part in comparisons.
    """

    runtime: RuntimeConfig = attrs.field(factory=RuntimeConfig)
    api: ApiConfig = attrs.field(factory=ApiConfig)
    telemetry: TelemetryConfig = attrs.field(factory=TelemetryConfig)
    rules: RulesConfig = attrs.field(factory=RulesConfig)
    actions: ActionsConfig = attrs.field(factory=ActionsConfig)
    retention: RetentionConfig = attrs.field(factory=RetentionConfig)
    path: str | None = attrs.field(default=None, eq=False)


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
        raise ConfigFileError([_syntax_problem(err, text, path)]) from None
    reader = _Reader(path, _Locator(text))
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


# ---- values -------------------------------------------------------------------------

_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)?\s*")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_HELP = 'such as "500ms", "30s", "5m", "2h" or "30d" (a plain number means seconds)'


def parse_duration(value: object) -> float:
    """Seconds in a duration written as ``"500ms"`` .. ``"30d"`` or a number of seconds.

    Raises ValueError for anything else (booleans, negative or infinite numbers).
    """
    if isinstance(value, bool):
        raise ValueError("a boolean is not a duration")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        m = _DURATION.fullmatch(value)
        if m is None:
            raise ValueError(f"{value!r} is not a duration")
        seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2) or "s"]
    else:
        raise ValueError("not a duration")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError("a duration must be a finite number >= 0")
    return seconds


_HOSTNAME = re.compile(r"(?=.{1,253}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?")


def parse_bind(text: str) -> tuple[str, int]:
    """Split ``host:port`` (``[v6addr]:port`` for IPv6) into host and port.

    Raises ValueError saying what is wrong.
    """
    if text.startswith("["):
        close = text.find("]")
        if close < 0 or text[close + 1 : close + 2] != ":":
            raise ValueError("an IPv6 address is written as [address]:port")
        host, port_text = text[1:close], text[close + 2 :]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"'{host}' is not an IPv6 address") from None
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host:
            raise ValueError("expected host:port")
        if ":" in host:
            raise ValueError("put an IPv6 address in brackets: [address]:port")
        if not _HOSTNAME.fullmatch(host):
            raise ValueError(f"'{host}' is not an IP address or host name")
        if re.fullmatch(r"[0-9.]+", host):
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                raise ValueError(f"'{host}' is not an IPv4 address") from None
    if not re.fullmatch(r"[0-9]{1,5}", port_text) or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"the port must be a number from 1 to 65535, not '{port_text}'")
    return host, int(port_text)


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


_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_TOML_END = re.compile(r"\s*\(at end of document\)\s*$")


def _syntax_problem(err: tomllib.TOMLDecodeError, text: str, path: str) -> ConfigProblem:
    message = str(err)
    m = _TOML_AT.search(message)
    if m is not None:
        line = int(m.group(1))
        detail = f"{message[: m.start()]} (column {m.group(2)})"
    else:
        e = _TOML_END.search(message)
        line = max(1, text.count("\n") + (0 if text.endswith("\n") else 1))
        detail = message[: e.start()] + " (at the end of the file)" if e else message
    return ConfigProblem(path, line, "", f"invalid TOML: {detail}")


def _show(value: object) -> str:
    """A value as it would be written in TOML, shortened if long."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, float):
        shown = "nan" if math.isnan(value) else repr(value)
    elif isinstance(value, int):
        shown = str(value)
    elif isinstance(value, dict):
        return "a table"
    elif isinstance(value, list):
        shown = "[" + ", ".join(_show(v) for v in value) + "]"
    elif isinstance(value, datetime | date | time):
        shown = value.isoformat()
    else:
        shown = repr(value)
    return shown if len(shown) <= 60 else shown[:56] + "..." + shown[-1:]


# ---- checking ---------------------------------------------------------------------------

Part = str | int
Key = tuple[Part, ...]


class _ValueProblemError(Exception):
    """A value is wrong; ``issues`` holds (sub-key, message) pairs, one per problem."""

    def __init__(self, *issues: tuple[Key, str]) -> None:
        self.issues = list(issues)
        super().__init__(issues)


def _bad(message: str) -> _ValueProblemError:
    return _ValueProblemError(((), message))


Check = Callable[[object], object]


def _choice(*options: str) -> Check:
    quoted = [f'"{o}"' for o in options]
    listed = " or ".join([", ".join(quoted[:-1]), quoted[-1]] if len(quoted) > 1 else quoted)

    def check(value: object) -> object:
        if isinstance(value, str) and value in options:
            return value
        message = f"expected {listed}, got {_show(value)}"
        close = suggest(value.lower(), options) if isinstance(value, str) else None
        raise _bad(f'{message} (did you mean "{close}"?)' if close else message)

    return check


def _whole(minimum: int, maximum: int | None = None) -> Check:
    if maximum is None:
        wanted = f"a whole number >= {minimum}"
    else:
        wanted = f"a whole number from {minimum} to {maximum}"

    def check(value: object) -> object:
        if (isinstance(value, int) and not isinstance(value, bool) and value >= minimum
                and (maximum is None or value <= maximum)):
            return value
        raise _bad(f"expected {wanted}, got {_show(value)}")

    return check


def _power_of_two(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1 \
            and value & (value - 1) == 0:
        return value
    raise _bad(f"expected a power of two (1, 2, 4, ... 4096, ...), got {_show(value)}")


def _duration(*, zero_ok: bool) -> Check:
    wanted = "a duration of zero or more" if zero_ok else "a duration longer than zero"

    def check(value: object) -> object:
        try:
            seconds = parse_duration(value)
        except ValueError:
            raise _bad(f"expected {wanted} {_DURATION_HELP}, got {_show(value)}") from None
        if seconds == 0 and not zero_ok:
            raise _bad(f"expected {wanted}, got {_show(value)}")
        return seconds

    return check


def _string(value: object, wanted: str = "a non-empty string") -> str:
    if isinstance(value, str) and value.strip():
        return value
    raise _bad(f"expected {wanted}, got {_show(value)}")


def _text(value: object) -> object:
    return _string(value)


def _absolute_path(value: object) -> object:
    path = _string(value, "an absolute path")
    if not path.startswith("/"):
        raise _bad(f"expected an absolute path, got {_show(value)}")
    return path


def _bind(value: object) -> object:
    text = _string(value, 'host:port (e.g. "127.0.0.1:9333" or "[::1]:9333")')
    try:
        parse_bind(text)
    except ValueError as err:
        raise _bad(f"expected host:port, got {_show(value)}: {err}") from None
    return text


def _host_name(value: object) -> object:
    name = _string(value, "a host name")
    if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?", name):
        raise _bad(f"expected a host name without port (e.g. \"linnix.example.org\"), "
                   f"got {_show(value)}")
    return name.lower()


def _process_name(value: object) -> object:
    name = _string(value, "a process name")
    if "/" in name:
        raise _bad(f"expected a process name, got the path {_show(value)}; "
                   "list executables in actions.protected_exe")
    size = len(name.encode("utf-8"))
    if size > COMM_MAX_BYTES:
        short = name.encode("utf-8")[:COMM_MAX_BYTES].decode("utf-8", "ignore")
        raise _bad(f"{_show(value)} can never match: the kernel keeps only the first "
                   f"{COMM_MAX_BYTES} bytes of a process name (write \"{short}\")")
    return name


def _list_of(element: Check, wanted: str, *, at_least_one: str | None = None) -> Check:
    """A list whose every item passes ``element``; ``at_least_one`` names one item."""

    def check(value: object) -> object:
        if not isinstance(value, list):
            raise _bad(f"expected a list of {wanted}, got {_show(value)}")
        if at_least_one is not None and not value:
            raise _bad(f"expected a list of at least one {at_least_one}, got []")
        items: list[object] = []
        issues: list[tuple[Key, str]] = []
        for index, item in enumerate(value):
            try:
                items.append(element(item))
            except _ValueProblemError as err:
                issues.extend(((index, *sub), message) for sub, message in err.issues)
        if issues:
            raise _ValueProblemError(*issues)
        return tuple(items)

    return check


_TOKEN_MESSAGE = ("secrets do not belong in the configuration file; write the token to a file "
                  "only the daemon can read (mode 0600) and set api.token_file to its path")

# section -> (class, key -> check); the keys and their order follow the classes.
_SCHEMA: Mapping[str, tuple[type[Any], Mapping[str, Check]]] = {
    "runtime": (RuntimeConfig, {
        "mode": _choice("monitor", "enforce"),
        "state_dir": _absolute_path,
    }),
    "api": (ApiConfig, {
        "bind": _bind,
        "token_file": _absolute_path,
        "max_body_bytes": _whole(1024, 16 * 1024 * 1024),
        "allowed_hosts": _list_of(_host_name, "host names"),
    }),
    "telemetry": (TelemetryConfig, {
        "sample_interval": _duration(zero_ok=False),
        "tick": _duration(zero_ok=False),
        "ring_buffer_pages": _power_of_two,
        "sample_fds": _choice("auto", "always", "never"),
    }),
    "rules": (RulesConfig, {
        "paths": _list_of(_text, "paths", at_least_one="path"),
        "disabled_tags": _list_of(_text, "tags"),
    }),
    "actions": (ActionsConfig, {
        "ttl": _duration(zero_ok=False),
        "rate_limit": _whole(0),
        "protected": _list_of(_process_name, "process names"),
        "protected_exe": _list_of(_absolute_path, "absolute paths"),
        "kill_grace": _duration(zero_ok=True),
        "degraded_window": _duration(zero_ok=True),
    }),
    "retention": (RetentionConfig, {
        "max_age": _duration(zero_ok=False),
        "max_incidents": _whole(1),
        "max_audit": _whole(1),
        "alerts_file_mb": _whole(1, 1024 * 1024),
    }),
}
# Keys refused with a message of their own, before they could count as unknown.
_FORBIDDEN: Mapping[tuple[str, str], str] = {("api", "token"): _TOKEN_MESSAGE}

def _dotted(key: Key) -> str:
    out = ""
    for part in key:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = part if _BARE.fullmatch(part) else _show(part)
            out += f".{text}" if out else text
    return out


def _home_of(name: str) -> str | None:
    """The section that has a key called ``name``, if one does."""
    return next((s for s, (_, checks) in _SCHEMA.items() if name in checks), None)


class _Reader:
    """Checks parsed TOML against the schema, collecting problems as it goes."""

    def __init__(self, path: str, locator: _Locator) -> None:
        self.path = path
        self.locator = locator
        self.problems: list[ConfigProblem] = []

    def problem(self, key: Key, message: str) -> None:
        line = self.locator.line_of(key)
        self.problems.append(ConfigProblem(self.path, line, _dotted(key), message))

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
            self.problem((name,), f"expected a table ([{name}]), got {_show(value)}")
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
                except _ValueProblemError as err:
                    for sub, message in err.issues:
                        self.problem((name, key, *sub), message)
        return cls(**fields)

    @staticmethod
    def unknown_key(section: str, key: str, checks: Iterable[str]) -> str:
        close = suggest(key, checks)
        if close is not None:
            return f"unknown key (did you mean '{close}'?)"
        home = _home_of(key)
        if home is not None:
            return f"unknown key in [{section}] ('{key}' belongs in [{home}])"
        return f"unknown key; [{section}] has " + ", ".join(checks)


# ---- where keys are -----------------------------------------------------------------

_BARE = re.compile(r"[A-Za-z0-9_-]+")
_SCALAR = re.compile(r"[^,\]}#\r\n]+")
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\",
            "e": "\x1b"}


class _Locator:
    """The line of each key, table and array element of a TOML text tomllib accepted.

    Keys are tuples of parts (strings, and ints for array elements), as in
    the parsed data.  Only text tomllib has accepted is scanned, so the
    scanner can be simple; should it still be confused, it stops, and the
    keys it did not reach fall back to the line of their table.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.lines: dict[Key, int] = {}
        self._aot: dict[Key, int] = {}
        with contextlib.suppress(IndexError, ValueError):
            self._document()

    def line_of(self, key: Key) -> int:
        """Line of ``key``, else of its nearest enclosing table; 0 if none is known."""
        while key:
            found = self.lines.get(key)
            if found is not None:
                return found
            key = key[:-1]
        return 0

    # -- scanning

    def _peek(self, n: int = 1) -> str:
        return self.text[self.pos : self.pos + n]

    def _advance(self, n: int = 1) -> None:
        self.line += self.text.count("\n", self.pos, self.pos + n)
        self.pos += n

    def _expect(self, token: str) -> None:
        if self._peek(len(token)) != token:
            raise ValueError(f"expected {token!r} at offset {self.pos}")
        self._advance(len(token))

    def _skip(self, *, newlines: bool) -> None:
        text = self.text
        while self.pos < len(text):
            c = text[self.pos]
            if c in " \t" or (newlines and c in "\r\n"):
                self._advance()
            elif c == "#":
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            else:
                break

    def _record(self, key: Key, line: int) -> None:
        for i in range(1, len(key) + 1):
            self.lines.setdefault(key[:i], line)

    def _document(self) -> None:
        table: Key = ()
        while True:
            self._skip(newlines=True)
            if self.pos >= len(self.text):
                return
            line = self.line
            if self._peek(2) == "[[":
                self._advance(2)
                key = self._key()
                self._expect("]]")
                index = self._aot.get(key, -1) + 1
                self._aot[key] = index
                table = (*key, index)
                self._record(table, line)
            elif self._peek() == "[":
                self._advance()
                table = self._key()
                self._expect("]")
                self._record(table, line)
            else:
                key = (*table, *self._key())
                self._record(key, line)
                self._expect("=")
                self._value(key)

    def _key(self) -> Key:
        parts: list[Part] = []
        while True:
            self._skip(newlines=False)
            parts.append(self._simple_key())
            self._skip(newlines=False)
            if self._peek() != ".":
                return tuple(parts)
            self._advance()

    def _simple_key(self) -> str:
        c = self._peek()
        if c == '"':
            return self._basic_string()
        if c == "'":
            end = self.text.index("'", self.pos + 1)
            key = self.text[self.pos + 1 : end]
            self._advance(end + 1 - self.pos)
            return key
        m = _BARE.match(self.text, self.pos)
        if m is None:
            raise ValueError(f"expected a key at offset {self.pos}")
        self._advance(m.end() - self.pos)
        return m.group()

    def _basic_string(self) -> str:
        self._advance()  # the opening quote
        out: list[str] = []
        text = self.text
        while True:
            c = text[self.pos]
            if c == '"':
                self._advance()
                return "".join(out)
            if c == "\\":
                e = text[self.pos + 1]
                if e in "uU":
                    width = 4 if e == "u" else 8
                    out.append(chr(int(text[self.pos + 2 : self.pos + 2 + width], 16)))
                    self._advance(2 + width)
                    continue
                out.append(_ESCAPES.get(e, e))
                self._advance(2)
                continue
            if c == "\n":
                raise ValueError("newline in a basic string")
            out.append(c)
            self._advance()

    def _multiline(self, quote: str) -> None:
        self._advance(3)
        text = self.text
        while True:
            c = text[self.pos]
            if c == "\\" and quote == '"':
                self._advance(2)
            elif text.startswith(quote * 3, self.pos):
                run = 3
                while run < 5 and text.startswith(quote, self.pos + run):
                    run += 1
                self._advance(run)
                return
            else:
                self._advance()

    def _value(self, key: Key) -> None:
        self._skip(newlines=False)
        c = self._peek()
        if c == "{":
            self._advance()
            self._skip(newlines=True)
            if self._peek() == "}":
                self._advance()
                return
            while True:
                self._skip(newlines=True)
                line = self.line
                inner = (*key, *self._key())
                self._record(inner, line)
                self._expect("=")
                self._value(inner)
                self._skip(newlines=True)
                if self._peek() == ",":
                    self._advance()
                    continue
                self._expect("}")
                return
        elif c == "[":
            self._advance()
            index = 0
            while True:
                self._skip(newlines=True)
                if self._peek() == "]":
                    self._advance()
                    return
                self._record((*key, index), self.line)
                self._value((*key, index))
                self._skip(newlines=True)
                if self._peek() == ",":
                    self._advance()
                    index += 1
                    continue
                self._expect("]")
                return
        elif self._peek(3) in ('"""', "'''"):
            self._multiline(c)
        elif c == '"':
            self._basic_string()
        elif c == "'":
            end = self.text.index("'", self.pos + 1)
            self._advance(end + 1 - self.pos)
        else:
            m = _SCALAR.match(self.text, self.pos)
            if m is None:
                raise ValueError(f"expected a value at offset {self.pos}")
            self._advance(m.end() - self.pos)

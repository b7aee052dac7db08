"""Checks of single values of ``linnix.toml``: durations, numbers, names, paths, addresses.

Two parsers are public and used outside the file too: :func:`parse_duration`
(the grammar itself is :func:`linnix.names.duration_seconds`, shared with the
command line) and :func:`parse_bind` (``host:port``, which the API server
and client also read).

The rest are the checks the schema attaches to each key.  A check takes the
value tomllib produced and returns what the :class:`~linnix.config.Config`
stores (durations become float seconds, lists become tuples), or raises
:class:`ValueProblemError` saying what was expected and what was found, in
the words the file's author used.  A check knows nothing of which key it is
applied to; the schema's reader adds that.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import urllib.parse
from collections.abc import Callable, Mapping

from ..names import ACTIONS, duration_seconds, suggest
from ._toml import Key, show
from .secret import SecretFileError, read_secret

__all__ = [
    "COMM_MAX_BYTES",
    "Check",
    "ValueProblemError",
    "absolute_path",
    "analysis_backend",
    "bind",
    "boolean",
    "choice",
    "distinct",
    "duration",
    "host_name",
    "http_url",
    "key_file",
    "list_of",
    "model_name",
    "nonempty_text",
    "parse_bind",
    "parse_duration",
    "power_of_two",
    "process_name",
    "secret_file",
    "table",
    "whole",
]

# The kernel keeps a process name (comm) in 16 bytes including the final NUL.
COMM_MAX_BYTES = 15

_DURATION_HELP = 'such as "500ms", "30s", "5m", "2h" or "30d" (a plain number means seconds)'

_HOSTNAME = re.compile(r"(?=.{1,253}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?")


# ---- parsers ----------------------------------------------------------------------------

def parse_duration(value: object) -> float:
    """Seconds in a duration written as ``"500ms"`` .. ``"30d"`` or a number of seconds.

    Strings follow :func:`linnix.names.duration_seconds`, the one duration
    grammar of linnix.  Raises ValueError for anything else (booleans,
    negative or infinite numbers).
    """
    if isinstance(value, bool):
        raise ValueError("a boolean is not a duration")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = duration_seconds(value)
    else:
        raise ValueError("not a duration")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError("a duration must be a finite number >= 0")
    return seconds


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


# ---- checks -----------------------------------------------------------------------------

class ValueProblemError(Exception):
    """A value is wrong; ``issues`` holds (sub-key, message) pairs, one per problem."""

    def __init__(self, *issues: tuple[Key, str]) -> None:
        self.issues = list(issues)
        super().__init__(issues)


def _bad(message: str) -> ValueProblemError:
    return ValueProblemError(((), message))


Check = Callable[[object], object]


def choice(*options: str) -> Check:
    """One of the strings ``options``."""
    quoted = [f'"{o}"' for o in options]
    listed = " or ".join([", ".join(quoted[:-1]), quoted[-1]] if len(quoted) > 1 else quoted)

    def check(value: object) -> object:
        if isinstance(value, str) and value in options:
            return value
        message = f"expected {listed}, got {show(value)}"
        close = suggest(value.lower(), options) if isinstance(value, str) else None
        raise _bad(f'{message} (did you mean "{close}"?)' if close else message)

    return check


analysis_backend = choice("builtin", "openai")


def whole(minimum: int, maximum: int | None = None) -> Check:
    """A whole number from ``minimum`` to ``maximum`` (no upper bound when None)."""
    if maximum is None:
        wanted = f"a whole number >= {minimum}"
    else:
        wanted = f"a whole number from {minimum} to {maximum}"

    def check(value: object) -> object:
        if (isinstance(value, int) and not isinstance(value, bool) and value >= minimum
                and (maximum is None or value <= maximum)):
            return value
        raise _bad(f"expected {wanted}, got {show(value)}")

    return check


def boolean(value: object) -> object:
    """``true`` or ``false``."""
    if isinstance(value, bool):
        return value
    raise _bad(f"expected true or false, got {show(value)}")


def power_of_two(value: object) -> object:
    """A whole number that is a power of two."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1 \
            and value & (value - 1) == 0:
        return value
    raise _bad(f"expected a power of two (1, 2, 4, ... 4096, ...), got {show(value)}")


def duration(*, zero_ok: bool, at_most: float | None = None) -> Check:
    """A duration (see :func:`parse_duration`), stored as float seconds; ``at_most``: the
    longest allowed."""
    wanted = "a duration of zero or more" if zero_ok else "a duration longer than zero"
    if at_most is not None:
        wanted += f" and at most {at_most:g}s"

    def check(value: object) -> object:
        try:
            seconds = parse_duration(value)
        except ValueError:
            raise _bad(f"expected {wanted} {_DURATION_HELP}, got {show(value)}") from None
        if (seconds == 0 and not zero_ok) or (at_most is not None and seconds > at_most):
            raise _bad(f"expected {wanted}, got {show(value)}")
        return seconds

    return check


def _string(value: object, wanted: str = "a non-empty string") -> str:
    if isinstance(value, str) and value.strip():
        return value
    raise _bad(f"expected {wanted}, got {show(value)}")


def nonempty_text(value: object) -> object:
    """A string with something besides white space in it."""
    return _string(value)


def absolute_path(value: object) -> object:
    """A path starting with ``/``."""
    path = _string(value, "an absolute path")
    if not path.startswith("/"):
        raise _bad(f"expected an absolute path, got {show(value)}")
    return path


def cgroup_path(value: object) -> object:
    """A cgroup v2 path: ``/``, or ``/`` and names (no empty, ``.`` or ``..`` part)."""
    path = _string(value, "a cgroup path")
    parts = path.split("/")[1:]
    if not path.startswith("/") or len(path) > 4096 or "\0" in path or (
            path != "/" and any(p in ("", ".", "..") for p in parts)):
        raise _bad(f"expected a cgroup path such as \"/system.slice\", got {show(value)}")
    return path


def bind(value: object) -> object:
    """An address to listen on, ``host:port`` (see :func:`parse_bind`)."""
    text = _string(value, 'host:port (e.g. "127.0.0.1:9333" or "[::1]:9333")')
    try:
        parse_bind(text)
    except ValueError as err:
        raise _bad(f"expected host:port, got {show(value)}: {err}") from None
    return text


def host_name(value: object) -> object:
    """A host name without port, stored in lower case."""
    name = _string(value, "a host name")
    if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?", name):
        raise _bad(f"expected a host name without port (e.g. \"linnix.example.org\"), "
                   f"got {show(value)}")
    return name.lower()


def process_name(value: object) -> object:
    """A process name (comm) short enough for the kernel to keep whole."""
    name = _string(value, "a process name")
    if "/" in name:
        raise _bad(f"expected a process name, got the path {show(value)}; "
                   "list executables in actions.protected_exe")
    size = len(name.encode("utf-8"))
    if size > COMM_MAX_BYTES:
        short = name.encode("utf-8")[:COMM_MAX_BYTES].decode("utf-8", "ignore")
        raise _bad(f"{show(value)} can never match: the kernel keeps only the first "
                   f"{COMM_MAX_BYTES} bytes of a process name (write \"{short}\")")
    return name


# the action kinds [actions] auto may list: those a thaw undoes (the registry says which)
REVERSIBLE_KINDS = tuple(name for name, spec in ACTIONS.items() if spec.reversible)


def reversible_kind(value: object) -> object:
    """An action kind that can be undone, so that it may run without approval."""
    kind = _string(value, "an action kind")
    if kind not in REVERSIBLE_KINDS:
        raise _bad(f'"{kind}" cannot be undone, so it never runs without approval; only '
                   f'reversible kinds may be listed ({", ".join(REVERSIBLE_KINDS)})')
    return kind


def list_of(element: Check, wanted: str, *, at_least_one: str | None = None) -> Check:
    """A list whose every item passes ``element``; ``at_least_one`` names one item."""

    def check(value: object) -> object:
        if not isinstance(value, list):
            raise _bad(f"expected a list of {wanted}, got {show(value)}")
        if at_least_one is not None and not value:
            raise _bad(f"expected a list of at least one {at_least_one}, got []")
        items: list[object] = []
        issues: list[tuple[Key, str]] = []
        for index, item in enumerate(value):
            try:
                items.append(element(item))
            except ValueProblemError as err:
                issues.extend(((index, *sub), message) for sub, message in err.issues)
        if issues:
            raise ValueProblemError(*issues)
        return tuple(items)

    return check


def http_url(value: object) -> object:
    """An ``http://`` or ``https://`` URL with a host, and no credentials or fragment."""
    text = _string(value, 'a URL such as "http://alertmanager.example.org:9093"')
    problem = _url_problem(text)
    if problem is None:
        return text
    if problem is _CREDENTIALS:  # not shown back: the message may end up in a log
        raise _bad(f"expected an http:// or https:// URL: {problem}")
    raise _bad(f"expected an http:// or https:// URL, got {show(value)}: {problem}")


_CREDENTIALS = ("credentials (user:password@) do not belong in the configuration file; "
                "put an authenticating proxy in front of the receiver instead")


def _url_problem(text: str) -> str | None:
    """What is wrong with the URL ``text``, or None."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in text):
        return "it holds white space or control characters"
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
    except ValueError as err:
        return str(err)
    if parts.scheme not in ("http", "https"):
        return f"the scheme must be http or https, not '{parts.scheme}'" if parts.scheme \
            else "the scheme (http:// or https://) is missing"
    if not parts.hostname:
        return "the host is missing"
    try:
        parts.hostname.encode("idna")
    except UnicodeError:
        return f"'{parts.hostname}' is not a host name"
    if parts.username is not None or parts.password is not None:
        return _CREDENTIALS
    if parts.fragment or text.endswith("#"):
        return "a URL sent to a server has no #fragment"
    if port == 0:
        return "the port must be a number from 1 to 65535"
    return None


def secret_file(value: object) -> object:
    """The absolute path of a readable secret file of mode 0600 or stricter."""
    path = absolute_path(value)
    assert isinstance(path, str)
    try:
        read_secret(path)
    except SecretFileError as err:
        raise _bad(str(err)) from None
    return path


def key_file(value: object) -> object:
    """A secret file (see :func:`secret_file`) owned by root or the agent's own user:
    anyone else who owns it could change the key, or point it at another service."""
    path = absolute_path(value)
    assert isinstance(path, str)
    try:
        read_secret(path, owners={0, os.geteuid()})
    except SecretFileError as err:
        raise _bad(str(err)) from None
    return path


def model_name(value: object) -> object:
    """A model's name as its server knows it: printable, one line, at most 256 characters."""
    name = _string(value, 'a model name such as "llama3.1:8b"')
    if len(name) > 256 or any(not c.isprintable() for c in name):
        raise _bad(f"expected a model name of at most 256 printable characters, "
                   f"got {show(value)}")
    return name


def table(cls: Callable[..., object], checks: Mapping[str, Check]) -> Check:
    """A table with the keys of ``checks`` (each one required), built into ``cls``."""

    def check(value: object) -> object:
        if not isinstance(value, dict):
            raise _bad(f"expected a table, got {show(value)}")
        fields: dict[str, object] = {}
        issues: list[tuple[Key, str]] = []
        for key, item in value.items():
            inner = checks.get(key)
            if inner is None:
                close = suggest(key, checks)
                hint = f"did you mean '{close}'?" if close else "the keys are " + \
                    ", ".join(checks)
                issues.append(((key,), f"unknown key ({hint})"))
                continue
            try:
                fields[key] = inner(item)
            except ValueProblemError as err:
                issues.extend(((key, *sub), message) for sub, message in err.issues)
        issues.extend(((), f"'{key}' is missing") for key in checks if key not in value)
        if issues:
            raise ValueProblemError(*issues)
        return cls(**fields)

    return check


def distinct(field: str, check: Check) -> Check:
    """``check``, a list of tables, with no two tables sharing ``field``'s value."""

    def wrapped(value: object) -> object:
        items = check(value)
        assert isinstance(items, tuple)
        seen: set[object] = set()
        for index, item in enumerate(items):
            key = getattr(item, field)
            if key in seen:
                raise ValueProblemError(((index, field), f"{show(key)} is listed twice"))
            seen.add(key)
        return items

    return wrapped

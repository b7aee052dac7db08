"""The model backend of the analyst: one chat completions request per incident, guarded.

:class:`ModelClient` asks an OpenAI-compatible server (``[analysis] backend =
"openai"``) about a built-in analysis: the request and the judging of the
answer are :mod:`linnix.analysis.model`'s; this module is the network around
them.  Every request runs under the configured timeout, reads at most
:data:`ANSWER_MAX_BYTES`, and goes through a :class:`Breaker`: after
``breaker_failures`` failures in a row the model is not asked for
``breaker_cooldown`` seconds, then one request is tried, and its success
closes the breaker again.  The API key is read from its file (in a thread)
at each request, so a new key counts without a restart; it goes into the
Authorization header and nowhere else: no message here says it.

The client only ever returns the model part of an analysis, which the caller
stores; nothing here knows of actions.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import trio

from ..analysis.model import failed, judge, request
from ..config.schema import AnalysisConfig
from ..config.secret import SecretFileError, read_secret
from .notify.http import Endpoint, TimedOutError, TransportError, fetch

__all__ = ["ANSWER_MAX_BYTES", "OUTCOMES", "Breaker", "ModelClient", "probe"]

ANSWER_MAX_BYTES = 256 * 1024  # a chat completion's whole body; more is refused
PROBE_TIMEOUT_S = 3.0  # `linnix doctor`'s request
# What a request came to: verified (the answer validated), unverified (it did not: kept
# as text), failed (no usable answer), timeout, skipped (the breaker is open).
OUTCOMES = ("verified", "unverified", "failed", "timeout", "skipped")


class Breaker:
    """Closed, open after ``failures`` failures in a row, half open (one trial) after
    ``cooldown_s``; the time is whatever ``now`` says."""

    def __init__(self, failures: int, cooldown_s: float, now: Callable[[], float]) -> None:
        self.failures_max = failures
        self.cooldown_s = cooldown_s
        self.now = now
        self.failures = 0  # in a row
        self.opened_at: float | None = None
        self._trying = False  # the one trial after the cool-down is under way

    @property
    def open(self) -> bool:
        """Whether requests are being held back (half open counts as open)."""
        return self.opened_at is not None

    def allow(self) -> bool:
        """Whether a request may be made now (the trial, when half open)."""
        if self.opened_at is None:
            return True
        if self._trying or self.now() - self.opened_at < self.cooldown_s:
            return False
        self._trying = True
        return True

    def succeeded(self) -> None:
        self.failures, self.opened_at, self._trying = 0, None, False

    def failed(self) -> None:
        self.failures += 1
        if self._trying or self.failures >= self.failures_max:
            self.opened_at, self._trying = self.now(), False


def _headers(key: bytes | None) -> list[tuple[str, str]]:
    return [] if key is None else [("Authorization", f"Bearer {key.decode('latin-1')}")]


def _key(path: str | None) -> bytes | None:
    """The API key in ``path``, checked to fit in a header: HTTP would refuse another
    with a message quoting it, and the message is stored and shown."""
    if path is None:
        return None
    key = read_secret(path, owners={0, os.geteuid()})
    if not all(0x21 <= byte < 0x7F for byte in key):
        raise SecretFileError(f"the key in {path} holds white space or characters other "
                              "than printable ASCII: it cannot be sent in a header")
    return key


def _content(status: int, body: bytes) -> str:
    """The assistant's message in a chat completion; ValueError says why there is none."""
    if status != 200:
        raise ValueError(f"the model's server answered HTTP {status}")
    try:
        content = json.loads(body)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError, RecursionError):
        raise ValueError("the model's server did not answer with a chat completion") from None
    if not isinstance(content, str):
        raise ValueError("the model's server did not answer with a chat completion")
    return content


class ModelClient:
    """Asks the configured model about analyses, through a breaker."""

    def __init__(self, config: AnalysisConfig,
                 now: Callable[[], float] = trio.current_time) -> None:
        assert config.endpoint is not None and config.model is not None
        self.config = config
        self.model = config.model
        self.endpoint = Endpoint.parse(config.endpoint, "/chat/completions")
        self.breaker = Breaker(config.breaker_failures, config.breaker_cooldown, now)

    async def ask(self, analysis: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """The model part of ``analysis``, and the outcome (one of :data:`OUTCOMES`)."""
        if not self.breaker.allow():
            return failed(self.model, f"not asked: the model failed {self.breaker.failures} "
                          f"time(s) in a row; asked again after "
                          f"{self.breaker.cooldown_s:g}s"), "skipped"
        try:
            content = await self._complete(analysis)
        except TransportError as err:
            self.breaker.failed()
            return failed(self.model, str(err)), \
                "timeout" if isinstance(err, TimedOutError) else "failed"
        except (SecretFileError, ValueError) as err:
            self.breaker.failed()
            return failed(self.model, str(err)), "failed"
        self.breaker.succeeded()
        facts = [f.get("id") for f in analysis.get("facts") or [] if f.get("id")]
        part = judge(self.model, content, facts)
        return part, "verified" if part["verified"] else "unverified"

    async def _complete(self, analysis: dict[str, Any]) -> str:
        config = self.config
        key = await trio.to_thread.run_sync(_key, config.api_key_file)
        body = json.dumps(request(analysis, self.model, config.max_tokens,
                                  config.send_cmdlines)).encode()
        status, answer = await fetch(self.endpoint, body, _headers(key), config.timeout,
                                     ANSWER_MAX_BYTES)
        return _content(status, answer)


async def probe(config: AnalysisConfig, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Whether the model's server answers: None if it does (``GET {endpoint}/models``
    answers 200), else why not.  The key is sent, never shown."""
    assert config.endpoint is not None
    try:
        key = await trio.to_thread.run_sync(_key, config.api_key_file)
        status, _ = await fetch(Endpoint.parse(config.endpoint, "/models"), None,
                                _headers(key), timeout, ANSWER_MAX_BYTES)
    except (TransportError, SecretFileError) as err:
        return str(err)
    return None if status == 200 else f"GET /models answered HTTP {status}"

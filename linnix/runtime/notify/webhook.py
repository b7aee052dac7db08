"""Webhook deliveries: each transition POSTed alone, signed with a shared secret.

The body is the transition as one line of ``alerts.jsonl`` holds it.  The
signature is HMAC-SHA256, keyed with the secret, over the Unix time in
seconds, a dot, and the body; the time goes in ``X-Linnix-Timestamp`` and the
signature, as ``sha256=<hex>``, in ``X-Linnix-Signature``.  Each try is signed
anew, so a try after a long outage carries a current time: a receiver may
refuse old timestamps (docs/alerting.md shows how, in five minutes' terms)
without refusing late deliveries.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

from .alertmanager import judge
from .delivery import SendFailedError
from .http import Endpoint, TransportError, post

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "sender", "sign"]

TIMESTAMP_HEADER = "X-Linnix-Timestamp"
SIGNATURE_HEADER = "X-Linnix-Signature"


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The value of ``X-Linnix-Signature`` for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def sender(url: str, timeout: float, secret: Callable[[], bytes],
           wall_now: Callable[[], float], transport: Callable[..., Any] = post,
           ) -> Callable[[Any], Any]:
    """A Delivery's ``send``: one body (a batch of one), signed at each try."""
    endpoint = Endpoint.parse(url)

    async def send(batch: list[bytes]) -> None:
        (body,) = batch
        stamp = str(int(wall_now()))
        headers = ((TIMESTAMP_HEADER, stamp), (SIGNATURE_HEADER, sign(secret(), stamp, body)))
        try:
            status = await transport(endpoint, body, headers, timeout)
        except TransportError as err:
            raise SendFailedError(str(err)) from None
        judge(status)

    return send

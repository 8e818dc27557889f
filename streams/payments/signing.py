"""Webhook signatures: HMAC-SHA256 over the timestamp and the raw body.

The header reads ``t=<unix seconds>,v1=<hex digest>[,v1=<hex digest>...]``; the
digest is HMAC-SHA256 with the shared secret over ``"<t>." + body``. Several ``v1``
entries let a provider sign with an old and a new secret while keys rotate. A
signature older or newer than the tolerance is refused, so a captured webhook
cannot be replayed later; within the tolerance, replays are caught by the event
id (``payments.dedup`` and the core's command ids).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

from commands.errors import WebhookRefused

SIGNATURE_HEADER: Final = "Provider-Signature"
SCHEME: Final = "v1"


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>." + body``."""
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The signature header value for a body sent at ``timestamp``."""
    return f"t={timestamp},{SCHEME}={signature(secret, timestamp, body)}"


def verify(
    secret: bytes,
    header: str | None,
    body: bytes,
    now_seconds: float,
    tolerance_seconds: float,
) -> int:
    """The signed timestamp if the header signs ``body`` recently, else raise."""
    if not header:
        raise WebhookRefused("missing_signature")
    timestamp, digests = _parse(header)
    if abs(now_seconds - timestamp) > tolerance_seconds:
        raise WebhookRefused("timestamp_outside_tolerance")
    expected = signature(secret, timestamp, body)
    # Compare every candidate in constant time; any match is enough.
    if not any(hmac.compare_digest(expected, digest) for digest in digests):
        raise WebhookRefused("signature_mismatch")
    return timestamp


def _parse(header: str) -> tuple[int, list[str]]:
    """The timestamp and the ``v1`` digests of a header, or raise."""
    timestamp: int | None = None
    digests: list[str] = []
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t" and value.isascii() and value.isdigit():
            timestamp = int(value)
        elif name == SCHEME and value:
            digests.append(value)
    if timestamp is None or not digests:
        raise WebhookRefused("malformed_signature")
    return timestamp, digests

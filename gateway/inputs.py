"""What every command route checks first: path ids, the key and the media type.

The command id of a buyer's request is derived from the buyer and their
Idempotency-Key, so a retry maps to the same command on every gateway instance.
"""

from __future__ import annotations

import hashlib
from typing import Final

from aiohttp import web

from gateway.fields import valid_id
from gateway.problems import FieldError, HttpProblem
from gateway.validation import PRINTABLE_PATTERN

IDEMPOTENCY_KEY_MAX_CHARS: Final = 128
JSON_MEDIA_TYPE: Final = "application/json"
JSON_CHARSETS: Final = frozenset({"utf-8", "utf8"})


def buyer_command_id(buyer_id: str, idempotency_key: str) -> str:
    """The command id of a buyer's request: 32 hex of sha256(buyer, NUL, key)."""
    digest = hashlib.sha256(f"{buyer_id}\x00{idempotency_key}".encode())
    return digest.hexdigest()[:32]


def idempotency_key(request: web.Request) -> str:
    """The request's Idempotency-Key header, refused with 400 if absent or bad."""
    keys = request.headers.getall("Idempotency-Key", [])
    if not keys:
        raise HttpProblem("missing-idempotency-key", "send an Idempotency-Key header")
    if len(keys) > 1:
        # Which one a proxy or a server keeps differs; taking one silently
        # would let a retry that sends only the other create a second hold.
        raise HttpProblem(
            "invalid-idempotency-key", "send exactly one Idempotency-Key header"
        )
    key = keys[0]
    if len(key) > IDEMPOTENCY_KEY_MAX_CHARS or not PRINTABLE_PATTERN.fullmatch(key):
        raise HttpProblem(
            "invalid-idempotency-key",
            f"1 to {IDEMPOTENCY_KEY_MAX_CHARS} printable ASCII characters",
        )
    return key


def path_ids(request: web.Request, *names: str) -> tuple[str, ...]:
    """Path parameters that must be ids, refused together with 422."""
    values = tuple(request.match_info[name] for name in names)
    errors = [
        FieldError(f"path.{name}", "an id: 1 to 64 of [A-Za-z0-9_.-]")
        for name, value in zip(names, values, strict=True)
        if not valid_id(value)
    ]
    if errors:
        raise HttpProblem("invalid-request", "invalid path", errors=errors)
    return values


def require_json(request: web.Request) -> None:
    """Refuse with 415 a body not declared as application/json in UTF-8."""
    charset = request.charset
    if request.content_type != JSON_MEDIA_TYPE or (
        charset is not None and charset.lower() not in JSON_CHARSETS
    ):
        raise HttpProblem(
            "unsupported-media-type",
            "send Content-Type: application/json (charset utf-8 if any)",
        )

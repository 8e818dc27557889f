"""Small HTTP helpers: JSON answers with orjson and bounded request bodies."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from aiohttp import web

from gateway.problems import HttpProblem

COMPRESS_ABOVE_BYTES: Final = 1024


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON answer, compressed when large and the client accepts it."""
    return body_response(orjson.dumps(data), status, headers)


def body_response(
    body: bytes, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """An already encoded JSON body, compressed when large."""
    response = web.Response(
        body=body, status=status, content_type="application/json", headers=headers
    )
    if len(body) > COMPRESS_ABOVE_BYTES:
        response.enable_compression()
    return response


async def read_body(request: web.Request, limit_bytes: int) -> bytes:
    """The request body, refused with 413 above ``limit_bytes``."""
    declared = request.content_length
    if declared is not None and declared > limit_bytes:
        raise _too_large(limit_bytes)
    body = await request.read()
    if len(body) > limit_bytes:
        raise _too_large(limit_bytes)
    return body


def _too_large(limit_bytes: int) -> HttpProblem:
    """The 413 problem of a body above its limit."""
    return HttpProblem("payload-too-large", f"the body may be at most {limit_bytes} B")


def rfc3339_ms(epoch_ms: int) -> str:
    """An epoch time in milliseconds as RFC 3339 UTC, e.g. 2025-01-01T00:00:00.000Z."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

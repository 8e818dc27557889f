"""What stands between a request and the command log: limits and admission.

``limit_middleware`` gives every ``/v1/`` request a token from its IP's bucket.
``admit_command`` guards each hold and checkout, in this order (cheapest first,
nothing reaches the command topic unless all pass):

1. shedding: the write path lags past its bound → 503 ``overloaded``;
2. the admission token: present (401), genuine (401), unexpired beyond the
   leeway (401), for this show (403), this buyer's and this device's (403);
3. buckets: the device's (this instance), the buyer's (shared by every
   instance, in the room store) and this instance's global one → 429;
4. for a hold, the token's quota, charged per command id in the room store, so
   a retry is free and a copied token cannot go beyond it → 403.
"""

from __future__ import annotations

import math
from typing import Final

from aiohttp import web

from gateway.deps import ROOMS
from gateway.fields import valid_id
from gateway.passes import AdmissionToken, ExpiredPass, WrongPass, read_token
from gateway.problems import Handler, HttpProblem
from gateway.rate_limits import Verdict
from gateway.room import Rooms
from gateway.signing import InvalidPass

LIMITED_PREFIX: Final = "/v1/"


def _limited(verdict: Verdict, what: str) -> None:
    if not verdict.allowed:
        retry = {"Retry-After": str(verdict.retry_after_seconds)}
        raise HttpProblem("rate-limited", f"too many requests {what}", headers=retry)


@web.middleware
async def limit_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """A token from the client address's bucket for every API request."""
    if request.path.startswith(LIMITED_PREFIX):
        limit_address(request.app[ROOMS], request.remote)
    return await handler(request)


def limit_address(rooms: Rooms, remote: str | None) -> None:
    """A token from the client address's bucket, or 429 with Retry-After."""
    # TODO(limit): request.remote is the proxy's address behind a load
    # balancer; trust X-Forwarded-For from known proxies when there is one.
    verdict = rooms.ip_buckets.take(remote or "", rooms.now_us())
    _limited(verdict, "from this address")


def device_id(request: web.Request) -> str:
    """The visitor's Device-Id header, refused with 400 if absent or bad."""
    found = request.headers.get("Device-Id")
    if found is None or not valid_id(found):
        raise HttpProblem("missing-device-id", "send a Device-Id header")
    return found


def limit_device(rooms: Rooms, device: str) -> None:
    """A token from the device's bucket, or 429 with Retry-After."""
    _limited(rooms.device_buckets.take(device, rooms.now_us()), "from this device")


async def admit_command(
    request: web.Request, show_id: str, buyer_id: str, hold_command_id: str | None
) -> AdmissionToken:
    """Check shedding, the admission token, the buckets and the hold quota."""
    rooms = request.app[ROOMS]
    config = rooms.config
    lag = rooms.lag.lag_seconds
    if lag > config.lag_shed_seconds:
        retry = {"Retry-After": str(max(1, math.ceil(lag)))}
        raise HttpProblem("overloaded", "the write path is behind", headers=retry)

    token = _token(request, show_id, buyer_id)
    now_us = rooms.now_us()
    limit_device(rooms, token.device_id)
    bucket = f"buyer:{show_id}:{buyer_id}"
    _limited(await rooms.store.take_shared(bucket, config.buyer, now_us), "by buyer")
    _limited(rooms.global_bucket.take("commands", now_us), "for this sale")

    if hold_command_id is not None and not await rooms.store.use_quota(
        token.token_id, hold_command_id, token.hold_quota
    ):
        raise HttpProblem(
            "admission-quota-exhausted",
            f"this admission allows {token.hold_quota} holds",
        )
    return token


def _token(request: web.Request, show_id: str, buyer_id: str) -> AdmissionToken:
    """The request's admission token if it is genuine and the visitor's."""
    text = request.headers.get("Admission-Token")
    if text is None:
        raise HttpProblem("admission-required", "send the Admission-Token header")
    device = device_id(request)
    rooms = request.app[ROOMS]
    try:
        token = read_token(
            rooms.config.keyring, text, show_id, rooms.now_ms(), rooms.config.leeway_ms
        )
    except ExpiredPass as exc:
        raise HttpProblem("admission-expired", "the admission has expired") from exc
    except WrongPass as exc:
        raise HttpProblem(
            "admission-for-another-show", "the admission is for another show"
        ) from exc
    except InvalidPass as exc:
        raise HttpProblem("invalid-admission-token", str(exc)) from exc
    if token.buyer_id != buyer_id or token.device_id != device:
        raise HttpProblem("admission-not-yours", "another visitor's admission")
    return token


def admitted_buyer(request: web.Request) -> str | None:
    """The buyer of the request's admission token, if genuine, unexpired and
    bound to the request's Device-Id; of any show (orders span shows)."""
    text = request.headers.get("Admission-Token")
    device = request.headers.get("Device-Id")
    if text is None or device is None:
        return None
    rooms = request.app[ROOMS]
    try:
        token = read_token(
            rooms.config.keyring, text, None, rooms.now_ms(), rooms.config.leeway_ms
        )
    except InvalidPass:
        return None
    return token.buyer_id if token.device_id == device else None

"""Hold routes: place a hold through the command log and read its outcome.

The command id (which the core also uses as the hold id) is derived from the buyer
and the Idempotency-Key, so a retry maps to the same command: if its outcome is
already known it is answered at once and nothing is sent again.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any, Final

from aiohttp import web

from commands.inventory import section_key
from commands.model import HoldPlaced, HoldRejected, PlaceHold
from gateway.book import hold_verdict
from gateway.deps import BUS, OUTCOMES, REPLY_TIMEOUT
from gateway.fields import valid_id
from gateway.http import json_response, read_body, rfc3339_ms
from gateway.problems import FieldError, HttpProblem, rejection_problem
from gateway.validation import PRINTABLE_PATTERN, parse_hold, parse_json

HOLD_BODY_LIMIT_BYTES: Final = 16 * 1024
IDEMPOTENCY_KEY_MAX_CHARS: Final = 128
PENDING_RETRY_AFTER_SECONDS: Final = 1


def hold_command_id(buyer_id: str, idempotency_key: str) -> str:
    """The command id of a hold: 32 hex digits of sha256(buyer, NUL, key)."""
    digest = hashlib.sha256(f"{buyer_id}\x00{idempotency_key}".encode())
    return digest.hexdigest()[:32]


def hold_location(hold_id: str) -> str:
    """Where a hold's outcome can be read."""
    return f"/v1/holds/{hold_id}"


def idempotency_key(request: web.Request) -> str:
    """The request's Idempotency-Key header, refused with 400 if absent or bad."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        raise HttpProblem("missing-idempotency-key", "send an Idempotency-Key header")
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


async def place_hold(request: web.Request) -> web.Response:
    """POST /v1/shows/{show_id}/sections/{section_id}/holds."""
    show_id, section_id = path_ids(request, "show_id", "section_id")
    key = idempotency_key(request)
    hold = parse_hold(parse_json(await read_body(request, HOLD_BODY_LIMIT_BYTES)))
    command = PlaceHold(
        command_id=hold_command_id(hold.buyer_id, key),
        issued_at_ms=time.time_ns() // 1_000_000,
        show_id=show_id,
        section_id=section_id,
        buyer_id=hold.buyer_id,
        seat_ids=hold.seat_ids,
        quantity=hold.quantity,
    )

    # Expect before sending, so the outcome cannot arrive unseen.
    outcomes = request.app[OUTCOMES]
    future = outcomes.expect(command.command_id)
    try:
        if not future.done():
            await request.app[BUS].send(section_key(show_id, section_id), [command])
        events = await asyncio.wait_for(future, request.app[REPLY_TIMEOUT])
    except TimeoutError:
        return _pending(command.command_id)
    finally:
        outcomes.forget(command.command_id, future)

    verdict = hold_verdict(events)
    assert verdict is not None
    if not _same_request(command, verdict):
        raise HttpProblem(
            "idempotency-key-reused", "the key was used for a different request"
        )
    return _answer(verdict)


async def get_hold(request: web.Request) -> web.Response:
    """GET /v1/holds/{hold_id}: the outcome this gateway saw recently."""
    hold_id = request.match_info["hold_id"]
    events = request.app[OUTCOMES].outcome(hold_id)
    verdict = None if events is None else hold_verdict(events)
    if verdict is None:
        raise HttpProblem("hold-not-found", "no outcome seen for this hold")
    return _answer(verdict)


def _same_request(command: PlaceHold, verdict: HoldPlaced | HoldRejected) -> bool:
    """Whether a known outcome answers this very request, not another one."""
    if (verdict.show_id, verdict.section_id) != (command.show_id, command.section_id):
        return False
    if isinstance(verdict, HoldRejected):
        return True
    if command.seat_ids:
        return verdict.seat_ids == command.seat_ids
    return not verdict.seat_ids and verdict.quantity == command.quantity


def _answer(verdict: HoldPlaced | HoldRejected) -> web.Response:
    """201 for a placed hold, the refusal's problem otherwise."""
    if isinstance(verdict, HoldRejected):
        raise rejection_problem(verdict.reason, verdict.detail)
    location = {"Location": hold_location(verdict.hold_id)}
    return json_response(_held_body(verdict), status=201, headers=location)


def _held_body(placed: HoldPlaced) -> dict[str, Any]:
    """The public view of a placed hold."""
    return {
        "hold_id": placed.hold_id,
        "status": "held",
        "show_id": placed.show_id,
        "section_id": placed.section_id,
        "seat_ids": list(placed.seat_ids),
        "quantity": placed.quantity,
        "expires_at": rfc3339_ms(placed.expires_at_ms),
    }


def _pending(hold_id: str) -> web.Response:
    """202: the command is on the log but its outcome has not come back yet."""
    headers = {
        "Location": hold_location(hold_id),
        "Retry-After": str(PENDING_RETRY_AFTER_SECONDS),
    }
    body = {"hold_id": hold_id, "status": "pending"}
    return json_response(body, status=202, headers=headers)

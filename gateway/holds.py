"""Hold routes: place a hold through the command log and read what became of it.

The command id (which the core also uses as the hold id) is derived from the buyer
and the Idempotency-Key, so a retry maps to the same command. Before sending, the
gateway looks the id up in its own outcomes, then in the holds read model: a hold
known to either is answered from there (``Idempotent-Replayed: true``) and nothing
is sent again, also at another instance or after a restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Sequence
from typing import Final

from aiohttp import web

from commands.buyers import buyer_key
from commands.errors import InfrastructureError
from commands.model import Event, IdempotencyKeyReused, RequestHold
from gateway.admission import admit_command
from gateway.book import has_hold_verdict
from gateway.deps import BUS, HOLDS, OUTCOMES, REPLY_TIMEOUT, ROOMS
from gateway.fields import valid_id
from gateway.hold_views import (
    HoldState,
    answer_hold,
    hold_location,
    key_reused,
    same_hold_request,
    state_from_events,
    state_from_view,
)
from gateway.http import json_response, read_body
from gateway.inputs import buyer_command_id, idempotency_key, path_ids, require_json
from gateway.ports import OutcomeSource
from gateway.problems import HttpProblem
from gateway.validation import parse_hold, parse_json

__all__ = ["get_hold", "hold_command_id", "hold_location", "place_hold"]

logger = logging.getLogger(__name__)

HOLD_BODY_LIMIT_BYTES: Final = 16 * 1024
PENDING_RETRY_AFTER_SECONDS: Final = 1

hold_command_id = buyer_command_id
"""The command id of a hold: 32 hex digits of sha256(buyer, NUL, key)."""


async def place_hold(request: web.Request) -> web.Response:
    """POST /v1/shows/{show_id}/sections/{section_id}/holds."""
    show_id, section_id = path_ids(request, "show_id", "section_id")
    key = idempotency_key(request)
    require_json(request)
    hold = parse_hold(parse_json(await read_body(request, HOLD_BODY_LIMIT_BYTES)))
    command = RequestHold(
        command_id=hold_command_id(hold.buyer_id, key),
        issued_at_ms=time.time_ns() // 1_000_000,
        show_id=show_id,
        section_id=section_id,
        buyer_id=hold.buyer_id,
        seat_ids=hold.seat_ids,
        quantity=hold.quantity,
        request_digest=request_digest(section_id, hold.seat_ids, hold.quantity),
    )
    await admit_command(request, show_id, hold.buyer_id, command.command_id)

    # Claim the command id before any await: another request with this key while
    # this one is at work is told so (case C2) and never sent twice.
    outcomes = request.app[OUTCOMES]
    refuse_if_claimed(outcomes, command.command_id, command.request_digest)
    try:
        return await _place(request, command)
    finally:
        outcomes.release(command.command_id)


def refuse_if_claimed(outcomes: OutcomeSource, command_id: str, digest: str) -> None:
    """Claim the command id, or refuse: 409 for the same request at work, 422 for
    another request with this key, at work or answered here before.

    A refusal records nothing that tells requests apart (a refused hold has no
    places), so the digest of the first request decides whether a retry is one.
    """
    # TODO(limit): only this instance's recent requests are remembered; another
    # instance replays a refused hold's problem to a different request with the
    # same key. Keep the digest in the holds read model if clients do that.
    earlier = outcomes.claim(command_id, digest)
    if earlier is None:
        first = outcomes.first_digest(command_id)
        if first is None or first == digest:
            return
        outcomes.release(command_id)
        raise key_reused()
    if earlier != digest:
        raise key_reused()
    raise HttpProblem(
        "request-in-flight",
        "a request with this key is still being decided; retry it later",
        headers={"Retry-After": str(PENDING_RETRY_AFTER_SECONDS)},
    )


async def _place(request: web.Request, command: RequestHold) -> web.Response:
    """Answer from what is known, or send the request and wait for its answer."""
    outcomes = request.app[OUTCOMES]
    future = outcomes.expect(command.command_id, answers_hold_request)
    lag = request.app[ROOMS].lag
    sent_at = time.monotonic()
    try:
        replayed = future.done()
        if not replayed:
            # The buyers' ledger of the show decides first (limit, key reuse). A
            # request it already decided gives no event: its answer is then read
            # from the holds read model, off the hot path of first requests.
            key = buyer_key(command.show_id, command.buyer_id)
            await request.app[BUS].send(key, [command])
            outcomes.mark_sent(command.command_id)
        events = await asyncio.wait_for(future, request.app[REPLY_TIMEOUT])
        if not replayed:
            lag.observe(time.monotonic() - sent_at)
    except TimeoutError:
        lag.observe(time.monotonic() - sent_at)
        known = await _read_model_hold(request, command)
        if known is not None:
            return _replay(command, known)
        return pending_hold(command.command_id)
    finally:
        outcomes.forget(command.command_id, future)

    state = state_from_events(command.command_id, events)
    if state is None:
        raise key_reused()
    return _replay(command, state) if replayed else _answer(command, state)


def _replay(command: RequestHold, state: HoldState) -> web.Response:
    """The recorded answer of a request with this key, if it is this request."""
    if not same_hold_request(command, state):
        raise key_reused()
    return answer_hold(state, replayed=True)


def _answer(command: RequestHold, state: HoldState) -> web.Response:
    if not same_hold_request(command, state):
        raise key_reused()
    return answer_hold(state)


def request_digest(section_id: str, seat_ids: tuple[str, ...], quantity: int) -> str:
    """What a hold request asks for, so a reused key can be told apart."""
    content = "\x00".join((section_id, ",".join(seat_ids), str(quantity)))
    return hashlib.sha256(content.encode()).hexdigest()[:32]


def answers_hold_request(events: Sequence[Event]) -> bool:
    """Whether a hold request has its answer: a verdict, or its key was reused."""
    return has_hold_verdict(events) or any(
        isinstance(event, IdempotencyKeyReused) for event in events
    )


async def get_hold(request: web.Request) -> web.Response:
    """GET /v1/holds/{hold_id}: recent outcome, pending, read model, or 404."""
    hold_id = request.match_info["hold_id"]
    if not valid_id(hold_id):
        raise HttpProblem("hold-not-found", "no hold has this id")
    outcomes = request.app[OUTCOMES]
    events = outcomes.hold_events(hold_id)
    state = None if events is None else state_from_events(hold_id, events)
    if state is not None:
        return answer_hold(state)
    view = await request.app[HOLDS].by_id(hold_id)
    if view is not None:
        return answer_hold(state_from_view(view))
    # A request the buyers' ledger passed on (HoldRequested) but whose section
    # has not decided yet is on its way: 202, not 404, also at another instance.
    on_its_way = events is not None and not answers_hold_request(events)
    if on_its_way or outcomes.is_pending(hold_id):
        return pending_hold(hold_id)
    raise HttpProblem("hold-not-found", "no outcome is known for this hold")


async def _read_model_hold(
    request: web.Request, command: RequestHold
) -> HoldState | None:
    """The hold of this command id if the holds read model knows it."""
    try:
        view = await request.app[HOLDS].by_id(command.command_id)
    except InfrastructureError:
        # Sending is still safe: the core never decides one command id twice.
        logger.debug("holds read model unavailable; sending", exc_info=True)
        return None
    return None if view is None else state_from_view(view)


def pending_hold(hold_id: str) -> web.Response:
    """202: the command is on the log but its outcome has not come back yet."""
    headers = {
        "Location": hold_location(hold_id),
        "Retry-After": str(PENDING_RETRY_AFTER_SECONDS),
    }
    body = {"hold_id": hold_id, "status": "pending"}
    return json_response(body, status=202, headers=headers)

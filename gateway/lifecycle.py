"""Hold lifecycle routes: a buyer releases a hold, or checks it out for payment.

``POST /v1/holds/{hold_id}/release`` and ``/checkout`` take ``{"buyer_id": ...}``
and an Idempotency-Key; the command id comes from (buyer, key) as for holds. The
gateway finds the hold's section in its own outcomes or the holds read model, sends
``ReleaseHold`` / ``Checkout`` to that section's partition and waits for the
verdict of that command id: ``HoldReleased`` / ``CheckoutStarted`` answer 200 with
the hold's new state, ``CommandRejected`` its problem, no verdict in time 202.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from commands.errors import InfrastructureError
from commands.inventory import section_key
from commands.model import (
    Checkout,
    CheckoutStarted,
    CommandRejected,
    Event,
    HoldPlaced,
    HoldRejected,
    HoldReleased,
    ReleaseHold,
    SectionCreated,
    SectionRejected,
)
from gateway.admission import admit_command
from gateway.deps import BUS, HOLDS, OUTCOMES, REPLY_TIMEOUT
from gateway.hold_views import (
    REPLAYED,
    HoldState,
    apply_later,
    hold_body,
    hold_location,
    key_reused,
    state_from_events,
    state_from_view,
)
from gateway.holds import pending_hold, refuse_if_claimed
from gateway.http import json_response, read_body
from gateway.inputs import buyer_command_id, idempotency_key, path_ids, require_json
from gateway.problems import HttpProblem, rejection_problem
from gateway.validation import parse_buyer, parse_json
from projections.holds import HoldStatus

BODY_LIMIT_BYTES: Final = 4 * 1024
Verdict = (
    HoldReleased
    | CheckoutStarted
    | CommandRejected
    | HoldPlaced
    | HoldRejected
    | SectionCreated
    | SectionRejected
)
"""An event that decides a command (a HoldExpired it caused decides nothing)."""


@dataclass(frozen=True, slots=True)
class Action:
    """One lifecycle step: its command type and the event that confirms it."""

    command: type[ReleaseHold] | type[Checkout]
    confirmed_by: type[HoldReleased] | type[CheckoutStarted]


RELEASE: Final = Action(ReleaseHold, HoldReleased)
CHECKOUT: Final = Action(Checkout, CheckoutStarted)


async def release_hold(request: web.Request) -> web.Response:
    """POST /v1/holds/{hold_id}/release: give the hold's places back."""
    return await _act(request, RELEASE)


async def checkout_hold(request: web.Request) -> web.Response:
    """POST /v1/holds/{hold_id}/checkout: keep the hold until its payment."""
    return await _act(request, CHECKOUT)


def verdict_of(events: Sequence[Event], command_id: str) -> Verdict | None:
    """The event that decided this command id, if it has been seen."""
    for event in events:
        if isinstance(event, Verdict) and event.command_id == command_id:
            return event
    return None


async def _act(request: web.Request, action: Action) -> web.Response:
    """Validate, find the hold, then replay a known verdict or send and wait."""
    (hold_id,) = path_ids(request, "hold_id")
    key = idempotency_key(request)
    require_json(request)
    buyer_id = parse_buyer(parse_json(await read_body(request, BODY_LIMIT_BYTES)))
    command_id = buyer_command_id(buyer_id, key)
    outcomes = request.app[OUTCOMES]
    refuse_if_claimed(outcomes, command_id, f"{action.command.__name__}:{hold_id}")
    try:
        return await _act_claimed(request, action, hold_id, buyer_id, command_id)
    finally:
        outcomes.release(command_id)


async def _act_claimed(
    request: web.Request, action: Action, hold_id: str, buyer_id: str, command_id: str
) -> web.Response:
    """The step of a claimed command id: replay a known verdict or send and wait."""
    outcomes = request.app[OUTCOMES]
    known = verdict_of(outcomes.outcome(command_id) or [], command_id)
    if known is not None or await _placed_with(request, command_id):
        _refuse_if_reused(action, hold_id, known)
    hold = await _find_hold(request, hold_id)
    if action is CHECKOUT:
        await admit_command(request, hold.show_id, buyer_id, None)
    if known is not None:
        return _answer(hold, known, replayed=True)

    command = action.command(
        command_id=command_id,
        issued_at_ms=time.time_ns() // 1_000_000,
        show_id=hold.show_id,
        section_id=hold.section_id,
        buyer_id=buyer_id,
        hold_id=hold_id,
    )
    future = outcomes.expect(
        command_id, lambda seen: verdict_of(seen, command_id) is not None
    )
    try:
        if not future.done():
            await request.app[BUS].send(
                section_key(hold.show_id, hold.section_id), [command]
            )
        events = await asyncio.wait_for(future, request.app[REPLY_TIMEOUT])
    except TimeoutError:
        return pending_hold(hold_id)
    finally:
        outcomes.forget(command_id, future)

    verdict = verdict_of(events, command_id)
    assert verdict is not None
    _refuse_if_reused(action, hold_id, verdict)
    return _answer(hold, verdict)


async def _placed_with(request: web.Request, command_id: str) -> bool:
    """Whether the read model has a hold placed (or refused) with this command id."""
    try:
        return await request.app[HOLDS].by_id(command_id) is not None
    except InfrastructureError:
        return False  # this instance's outcomes were checked; the rest is best effort


def _refuse_if_reused(action: Action, hold_id: str, verdict: Verdict | None) -> None:
    """Raise 422 unless the verdict answers this very step of this very hold."""
    if isinstance(verdict, CommandRejected):
        if verdict.command == action.command.__name__:
            return
    elif isinstance(verdict, action.confirmed_by) and verdict.hold_id == hold_id:
        return
    raise key_reused()


async def _find_hold(request: web.Request, hold_id: str) -> HoldState:
    """The hold as this instance saw it, else as the read model has it; or 404."""
    events = request.app[OUTCOMES].hold_events(hold_id)
    state = None if events is None else state_from_events(hold_id, events)
    if state is None:
        view = await request.app[HOLDS].by_id(hold_id)
        state = None if view is None else state_from_view(view)
    if state is None or state.status is HoldStatus.REJECTED:
        raise HttpProblem("hold-not-found", "no hold has this id")
    return state


def _answer(hold: HoldState, verdict: Verdict, replayed: bool = False) -> web.Response:
    """200 with the hold's new state, or the refusal's problem."""
    extra = REPLAYED if replayed else {}
    if isinstance(verdict, CommandRejected):
        problem = rejection_problem(verdict.reason, verdict.detail)
        problem.headers.update(extra)
        raise problem
    headers = {"Location": hold_location(hold.hold_id), **extra}
    return json_response(hold_body(apply_later(hold, verdict)), 200, headers)

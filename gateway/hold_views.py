"""A hold as buyers see it, from this instance's events or from the read model.

Both sources become one ``HoldState``; ``answer_hold`` renders it the same way
whichever it came from: a refused hold as its problem, any other as the hold's body
with ``status`` held, payment_pending, sold, released or expired.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from commands.model import (
    CheckoutStarted,
    Event,
    HoldExpired,
    HoldPlaced,
    HoldRejected,
    HoldReleased,
    PlaceHold,
    RejectionReason,
    RequestHold,
    TicketsSold,
)
from commands.stripes import base_section_id
from gateway.http import json_response, rfc3339_ms
from gateway.problems import HttpProblem, rejection_problem
from projections.holds import HoldStatus, HoldView

REPLAYED: Final = {"Idempotent-Replayed": "true"}
"""The header that marks an answer given again for a retried request."""
OPEN_STATUSES: Final = frozenset({HoldStatus.HELD, HoldStatus.PAYMENT_PENDING})


@dataclass(frozen=True, slots=True)
class HoldState:
    """Where a hold is: its places, status, deadline, and why it was refused."""

    hold_id: str
    show_id: str
    section_id: str
    buyer_id: str | None
    status: HoldStatus
    seat_ids: tuple[str, ...] = ()
    quantity: int = 0
    expires_at_ms: int | None = None
    reason: RejectionReason | None = None
    detail: str = ""


def hold_location(hold_id: str) -> str:
    """Where a hold's outcome can be read."""
    return f"/v1/holds/{hold_id}"


def state_from_events(hold_id: str, events: Sequence[Event]) -> HoldState | None:
    """The hold after its placing command's verdict and the later events seen."""
    state: HoldState | None = None
    for event in events:
        if state is None:
            state = _placement(hold_id, event)
        else:
            state = apply_later(state, event)
    return state


def _placement(hold_id: str, event: Event) -> HoldState | None:
    """The state a placing command's verdict starts; None for any other event."""
    if isinstance(event, HoldRejected) and event.command_id == hold_id:
        return HoldState(
            hold_id,
            event.show_id,
            event.section_id,
            event.buyer_id,
            HoldStatus.REJECTED,
            reason=event.reason,
            detail=event.detail,
        )
    if isinstance(event, HoldPlaced) and event.hold_id == hold_id:
        return HoldState(
            hold_id,
            event.show_id,
            event.section_id,
            event.buyer_id,
            HoldStatus.HELD,
            event.seat_ids,
            event.quantity,
            event.expires_at_ms,
        )
    return None


def apply_later(state: HoldState, event: Event) -> HoldState:
    """The hold after one later event of its life; other events change nothing."""
    if getattr(event, "hold_id", None) != state.hold_id:
        return state
    if isinstance(event, CheckoutStarted):
        return dataclasses.replace(
            state,
            status=HoldStatus.PAYMENT_PENDING,
            expires_at_ms=event.payment_deadline_ms,
        )
    if isinstance(event, TicketsSold):
        return dataclasses.replace(state, status=HoldStatus.SOLD)
    if isinstance(event, HoldReleased):
        return dataclasses.replace(state, status=HoldStatus.RELEASED)
    if isinstance(event, HoldExpired):
        return dataclasses.replace(state, status=HoldStatus.EXPIRED)
    return state


def state_from_view(view: HoldView) -> HoldState:
    """The hold as the read model has it."""
    reason = None
    if view.status is HoldStatus.REJECTED:
        reason = RejectionReason(str(view.reason))
    return HoldState(
        view.hold_id,
        view.show_id,
        view.section_id,
        view.buyer_id,
        view.status,
        tuple(view.seat_ids or ()),
        view.quantity or 0,
        view.expires_at_ms,
        reason,
        f"the hold was refused: {view.reason}" if reason else "",
    )


def same_hold_request(command: PlaceHold | RequestHold, state: HoldState) -> bool:
    """Whether a known hold answers this very request, not another one."""
    # A hold of a striped section may sit on any of its stripes.
    where = (state.show_id, base_section_id(state.section_id))
    if where != (command.show_id, base_section_id(command.section_id)):
        return False
    if state.status is HoldStatus.REJECTED:
        return True
    if command.seat_ids:
        return sorted(state.seat_ids) == sorted(command.seat_ids)
    # A quantity asks for GA places or the best seats together: any seats match.
    return state.quantity == command.quantity


def hold_body(state: HoldState) -> dict[str, Any]:
    """The public view of a hold that was placed; a deadline only while open."""
    expires = state.expires_at_ms if state.status in OPEN_STATUSES else None
    return {
        "hold_id": state.hold_id,
        "status": str(state.status),
        "show_id": state.show_id,
        "section_id": base_section_id(state.section_id),
        "seat_ids": list(state.seat_ids),
        "quantity": state.quantity,
        "expires_at": None if expires is None else rfc3339_ms(expires),
    }


def answer_hold(
    state: HoldState, status: int = 201, replayed: bool = False
) -> web.Response:
    """The hold's body with its Location, or the refusal's problem."""
    extra: Mapping[str, str] = REPLAYED if replayed else {}
    if state.reason is not None:
        problem = rejection_problem(state.reason, state.detail)
        problem.headers.update(extra)
        raise problem
    headers = {"Location": hold_location(state.hold_id), **extra}
    return json_response(hold_body(state), status=status, headers=headers)


def key_reused() -> HttpProblem:
    """The 422 problem of an idempotency key used for another request."""
    return HttpProblem(
        "idempotency-key-reused", "the key was used for a different request"
    )

"""What follows from events: the commands one writer sends to another.

A hold request admitted by the buyers' ledger goes on to its section; a hold the
section refused, or that ended unsold, gives the buyer's places back to the
ledger. Each follow-up command has an id derived from the event, so a replay or
a redelivery sends the same command, which its receiver then ignores.
"""

from __future__ import annotations

from collections.abc import Iterable

from commands.buyers import buyer_key, limit_key
from commands.inventory import section_key
from commands.model import (
    BuyerLimitSet,
    BuyerPlacesReturned,
    Command,
    Event,
    HoldExpired,
    HoldRejected,
    HoldReleased,
    HoldRequested,
    IdempotencyKeyReused,
    PlaceHold,
    ReturnBuyerPlaces,
)


def event_key(event: Event) -> str:
    """The key an event is stored under: its section, or the ledger it came from."""
    if isinstance(event, HoldRequested | IdempotencyKeyReused | BuyerPlacesReturned):
        return buyer_key(event.show_id, event.buyer_id)
    if isinstance(event, BuyerLimitSet):
        return limit_key(event.show_id)
    return section_key(event.show_id, event.section_id)


def follow_ups(events: Iterable[Event]) -> list[tuple[str, Command]]:
    """The commands the events call for, each with the key it is routed by."""
    commands: list[tuple[str, Command]] = []
    for event in events:
        if isinstance(event, HoldRequested):
            commands.append(
                (section_key(event.show_id, event.section_id), _hold(event))
            )
        elif isinstance(event, HoldRejected):
            commands.append(_give_back(event, event.command_id, event.buyer_id))
        elif isinstance(event, HoldExpired | HoldReleased) and event.buyer_id:
            commands.append(_give_back(event, event.hold_id, event.buyer_id))
    return commands


def _hold(event: HoldRequested) -> PlaceHold:
    return PlaceHold(
        command_id=event.command_id,
        issued_at_ms=event.occurred_at_ms,
        show_id=event.show_id,
        section_id=event.section_id,
        buyer_id=event.buyer_id,
        seat_ids=event.seat_ids,
        quantity=event.quantity,
    )


def _give_back(
    event: HoldRejected | HoldExpired | HoldReleased, hold_id: str, buyer_id: str
) -> tuple[str, Command]:
    command = ReturnBuyerPlaces(
        command_id=f"return:{hold_id}",
        issued_at_ms=event.occurred_at_ms,
        show_id=event.show_id,
        buyer_id=buyer_id,
        hold_id=hold_id,
    )
    return buyer_key(event.show_id, buyer_id), command

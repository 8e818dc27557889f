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
    CapacityRequested,
    CapacityTransferredOut,
    Command,
    CreateShow,
    Event,
    HoldExpired,
    HoldForwarded,
    HoldRejected,
    HoldReleased,
    HoldRequested,
    IdempotencyKeyReused,
    PlaceHold,
    ReceiveCapacity,
    RequestCapacity,
    ReturnBuyerPlaces,
    SectionKind,
    SectionSpec,
    SectionStriped,
)
from commands.stripes import base_section_id, stripe_id


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
        else:
            commands.extend(_stripe_follow_ups(event))
    return commands


def _stripe_follow_ups(event: Event) -> list[tuple[str, Command]]:
    """Commands of striping and of capacity transfers between stripes."""
    if isinstance(event, SectionStriped):
        return [_create_stripe(event, i) for i in range(event.stripes)]
    if isinstance(event, CapacityRequested):
        return _requests(event)
    if isinstance(event, CapacityTransferredOut):
        receive = ReceiveCapacity(
            command_id=f"in:{event.transfer_id}",
            issued_at_ms=event.occurred_at_ms,
            show_id=event.show_id,
            section_id=event.to_section_id,
            from_section_id=event.section_id,
            quantity=event.quantity,
            transfer_id=event.transfer_id,
            request_id=event.request_id,
        )
        return [(section_key(event.show_id, event.to_section_id), receive)]
    if isinstance(event, HoldForwarded):
        hold = PlaceHold(
            command_id=event.command_id,
            issued_at_ms=event.occurred_at_ms,
            show_id=event.show_id,
            section_id=event.to_section_id,
            buyer_id=event.buyer_id,
            quantity=event.quantity,
        )
        return [(section_key(event.show_id, event.to_section_id), hold)]
    return []


def _create_stripe(event: SectionStriped, index: int) -> tuple[str, Command]:
    section_id = stripe_id(event.section_id, index)
    spec = SectionSpec(
        section_id=section_id,
        kind=SectionKind.GENERAL_ADMISSION,
        capacity=event.shares[index],
        price_cents=event.price_cents,
        stripes=event.stripes,
    )
    create = CreateShow(
        command_id=f"{event.command_id}:{section_id}",
        issued_at_ms=event.occurred_at_ms,
        show_id=event.show_id,
        hold_ttl_seconds=event.hold_ttl_seconds,
        max_tickets_per_buyer=event.max_tickets_per_buyer,
        sections=(spec,),
        inventory_mode=event.inventory_mode,
        payment_window_seconds=event.payment_window_seconds,
        sale_open=event.sale_open,
    )
    return section_key(event.show_id, section_id), create


def _requests(event: CapacityRequested) -> list[tuple[str, Command]]:
    base = base_section_id(event.section_id)
    requests: list[tuple[str, Command]] = []
    for index in range(event.stripes):
        sibling = stripe_id(base, index)
        if sibling == event.section_id:
            continue
        request = RequestCapacity(
            command_id=f"{event.request_id}>{sibling}",
            issued_at_ms=event.occurred_at_ms,
            show_id=event.show_id,
            section_id=sibling,
            to_section_id=event.section_id,
            quantity=event.quantity,
            request_id=event.request_id,
        )
        requests.append((section_key(event.show_id, sibling), request))
    return requests


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

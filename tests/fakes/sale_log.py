"""Plausible event logs of a sale, made from a seed, for projection tests and bench.

Every section's events form a consistent history: seats are held only when free,
holds end once (expired, released or sold), an order follows a checkout. Records
carry one to three events, like the agent's batches, and are keyed
``show/section`` so a section stays on one partition.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from commands.model import (
    CheckoutStarted,
    Event,
    HoldExpired,
    HoldPlaced,
    HoldRejected,
    HoldReleased,
    RejectionReason,
    ReleaseReason,
    SaleOpened,
    SectionCreated,
    SectionKind,
    TicketsSold,
)

LogRecord = tuple[str, list[Event]]
"""(key, events) of one record of the events topic."""


@dataclass
class _Section:
    section_id: str
    kind: SectionKind
    capacity: int
    free_seats: list[str] = field(default_factory=list)
    free_places: int = 0
    holds: dict[str, HoldPlaced] = field(default_factory=dict)
    checked_out: set[str] = field(default_factory=set)


def sale_log(
    seed: int,
    steps: int,
    show_id: str = "show-1",
    sections: int = 3,
    seats_per_section: int = 40,
    buyers: int = 25,
) -> list[LogRecord]:
    """A log of ``steps`` decisions over ``sections`` sections (GA every third)."""
    rng = random.Random(seed)
    clock = [1_700_000_000_000]
    state = [_new_section(i, seats_per_section) for i in range(sections)]
    records: list[LogRecord] = []

    def emit(section: _Section, events: list[Event]) -> None:
        records.append((f"{show_id}/{section.section_id}", events))

    def now() -> int:
        clock[0] += rng.randint(1, 500)
        return clock[0]

    for section in state:
        emit(
            section,
            [
                SectionCreated(
                    f"create-{section.section_id}",
                    now(),
                    show_id,
                    section.section_id,
                    section.kind,
                    section.capacity,
                    600,
                ),
                SaleOpened(
                    f"open-{section.section_id}", now(), show_id, section.section_id
                ),
            ],
        )
    for step in range(steps):
        section = rng.choice(state)
        events = _step(rng, section, show_id, f"c{step}", buyers, now)
        if events:
            # One to three decisions of a section may share a record.
            key = f"{show_id}/{section.section_id}"
            if records and records[-1][0] == key and rng.random() < 0.3:
                records[-1][1].extend(events)
            else:
                emit(section, events)
    return records


def _new_section(index: int, seats: int) -> _Section:
    name = f"S{index}"
    if index % 3 == 2:
        return _Section(name, SectionKind.GENERAL_ADMISSION, seats, free_places=seats)
    seat_ids = [f"{row}-{n}" for row in "ABCD" for n in range(1, seats // 4 + 1)]
    return _Section(name, SectionKind.RESERVED, len(seat_ids), free_seats=seat_ids)


def _step(
    rng: random.Random,
    section: _Section,
    show_id: str,
    command_id: str,
    buyers: int,
    now: Callable[[], int],
) -> list[Event]:
    """One decision of the section's core: place, reject, expire, release or sell."""
    buyer = f"buyer-{rng.randrange(buyers)}"
    sid = section.section_id
    roll = rng.random()
    if roll < 0.45 or not section.holds:
        return [_place(rng, section, show_id, command_id, buyer, now())]
    hold_id = rng.choice(sorted(section.holds))
    hold = section.holds[hold_id]
    if roll < 0.6 and hold_id not in section.checked_out:
        section.checked_out.add(hold_id)
        return [
            CheckoutStarted(command_id, now(), hold_id, show_id, sid, hold.buyer_id, 9)
        ]
    del section.holds[hold_id]
    section.checked_out.discard(hold_id)
    _give_back(section, hold)
    if roll < 0.8:
        _take(section, hold)
        return [
            TicketsSold(
                command_id,
                now(),
                hold_id,
                f"order-{hold_id}",
                show_id,
                sid,
                hold.buyer_id,
                hold.seat_ids,
                hold.quantity,
                tuple(f"t-{hold_id}-{i}" for i in range(hold.quantity)),
            )
        ]
    if roll < 0.9:
        return [
            HoldExpired(
                command_id, now(), hold_id, show_id, sid, hold.seat_ids, hold.quantity
            )
        ]
    return [
        HoldReleased(
            command_id,
            now(),
            hold_id,
            show_id,
            sid,
            ReleaseReason.RELEASED_BY_BUYER,
            hold.seat_ids,
            hold.quantity,
        )
    ]


def _place(
    rng: random.Random,
    section: _Section,
    show_id: str,
    command_id: str,
    buyer: str,
    at_ms: int,
) -> Event:
    """A hold of one to four places, or a refusal when they are not free."""
    quantity = rng.randint(1, 4)
    seats: tuple[str, ...] = ()
    if section.kind is SectionKind.RESERVED:
        if len(section.free_seats) < quantity:
            return _sold_out(section, show_id, command_id, buyer, at_ms)
        seats = tuple(rng.sample(section.free_seats, quantity))
    elif section.free_places < quantity:
        return _sold_out(section, show_id, command_id, buyer, at_ms)
    hold = HoldPlaced(
        command_id,
        at_ms,
        command_id,
        show_id,
        section.section_id,
        buyer,
        seats,
        quantity,
        at_ms + 600_000,
    )
    _take(section, hold)
    section.holds[command_id] = hold
    return hold


def _sold_out(
    section: _Section, show_id: str, command_id: str, buyer: str, at_ms: int
) -> Event:
    return HoldRejected(
        command_id,
        at_ms,
        show_id,
        section.section_id,
        buyer,
        RejectionReason.SOLD_OUT,
        "not enough free places",
    )


def _take(section: _Section, hold: HoldPlaced) -> None:
    """Mark a hold's places as taken (held, or sold after a give-back)."""
    for seat in hold.seat_ids:
        section.free_seats.remove(seat)
    if not hold.seat_ids:
        section.free_places -= hold.quantity


def _give_back(section: _Section, hold: HoldPlaced) -> None:
    """Return a hold's places."""
    section.free_seats.extend(hold.seat_ids)
    if not hold.seat_ids:
        section.free_places += hold.quantity

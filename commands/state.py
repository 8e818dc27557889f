"""A section's state as a fold of its events, and its persisted entries.

Holds go through these states; every hold ends in exactly one of sold, released,
expired::

    held ──► payment pending ──► sold
     │             │
     └─────────────┴──► ended (released by the buyer or on payment failure, expired)

One entry per name, JSON-ready (``drain_changes`` returns ``None`` for none here):

==================  ==============================================================
``meta``            show id, spec, hold TTL, buyer limit, mode, payment window, sale,
                    route epoch (how many times the section moved partition)
``clock``           the section's log time, epoch millis
``hold:<id>``       held: ``[buyer, seats, quantity, expires_at_ms]``;
                    payment pending: ``[buyer, seats, quantity, deadline_ms, 1]``;
                    sold: ``[buyer, seats, quantity, last_deadline_ms, 2]``;
                    ended unsold: ``0``, or ``1`` once a refund was required
``cmd:<id>``        ``1``: a decided command other than a hold (redelivery guard);
                    older versions wrote one for each hold refused as well
``decided:<n>``     ids of holds decided without leaving a hold here (refused, or
                    forwarded to a stripe), ``DECIDED_BLOCK_SIZE`` a block in the
                    order decided; only the last block grows, so a batch of
                    thousands of refusals writes a few entries, not one each
``stripe``          a stripe's or striped section's transfer state:
                    ``[rounds, open round id, answers awaited, places gained,
                    unasked transfers out, holds parked so far, log time the
                    last round closed]``
``parks:<n>``       holds waiting for capacity, ``PARK_BLOCK_SIZE`` park orders a
                    block (orders ``n * size`` up to the next block): a list of
                    ``[order, hold id, buyer, quantity]`` (the block's holds still
                    parked); one entry for many holds, so a stripe that parks and
                    then refuses thousands of holds writes a few entries, not one
                    or two per hold
``park:<id>``       (read only) an older form of one parked hold:
                    ``[order, buyer, quantity]``; rewritten as ``parks:<n>``
==================  ==============================================================
"""

from __future__ import annotations

import dataclasses
import enum
import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from commands.model import (
    CapacityRequested,
    CapacityTransferredIn,
    CapacityTransferredOut,
    CheckoutStarted,
    Event,
    HoldExpired,
    HoldParked,
    HoldPlaced,
    HoldRejected,
    HoldReleased,
    HoldTtlChanged,
    InventoryAdded,
    InventoryMode,
    InventoryWithdrawn,
    RefundRequired,
    Row,
    SaleClosed,
    SaleOpened,
    SectionKind,
    SectionSpec,
    SectionStriped,
    TicketsSold,
)
from commands.seating import with_rows_added, with_seats_removed

EntryValue = Any
"""A JSON-ready value of one persisted state entry (``None`` deletes it)."""

META_ENTRY = "meta"
CLOCK_ENTRY = "clock"
HOLD_ENTRY_PREFIX = "hold:"
COMMAND_ENTRY_PREFIX = "cmd:"
STRIPE_ENTRY = "stripe"
DECIDED_BLOCK_PREFIX = "decided:"
DECIDED_BLOCK_SIZE = 256
"""Hold ids per ``decided:<n>`` entry."""
PARK_ENTRY_PREFIX = "park:"
"""Entry of one parked hold as older versions wrote it; read, then rewritten."""
PARK_BLOCK_PREFIX = "parks:"
PARK_BLOCK_SIZE = 256
"""Parked holds per ``parks:<n>`` entry, by the order they parked in."""
CLOSED_HOLD = 0
"""Entry value of a hold that ended unsold: its id stays known, its places free."""
REFUNDED_HOLD = 1
"""Entry value of a hold that ended unsold and whose late payment is refunded."""
DEFAULT_PAYMENT_WINDOW_SECONDS = 900


class HoldState(enum.IntEnum):
    """Where a hold that has not ended stands; the value is its entry code."""

    HELD = 0
    PAYMENT_PENDING = 1
    SOLD = 2


@dataclass(slots=True)
class OpenHold:
    """Places kept for one buyer: held or payment pending until a deadline, or sold."""

    hold_id: str
    buyer_id: str
    seat_ids: tuple[str, ...]
    quantity: int
    expires_at_ms: int
    state: HoldState = HoldState.HELD


@dataclass(slots=True)
class ParkedHold:
    """A GA hold a stripe could not place yet: it waits for a transfer in."""

    order: int
    hold_id: str
    buyer_id: str
    quantity: int


@dataclass(slots=True)
class StripeState:
    """How a stripe asks its siblings for places, one round of requests at a time.

    Also used by a section that was striped: it counts the unasked transfers that
    send the places its holds give back on to its stripes.
    """

    rounds: int = 0
    round_id: str = ""
    answers_awaited: int = 0
    round_gain: int = 0
    transfers_out: int = 0
    parked_total: int = 0
    round_closed_ms: int = 0
    """Log time the last round got its last answer."""

    def entry(self) -> list[Any]:
        """The persisted entry."""
        return [
            self.rounds,
            self.round_id,
            self.answers_awaited,
            self.round_gain,
            self.transfers_out,
            self.parked_total,
            self.round_closed_ms,
        ]


@dataclass(slots=True)
class SectionState:
    """One section's places: free, held (held or payment pending) or sold."""

    show_id: str
    spec: SectionSpec
    hold_ttl_seconds: int
    max_tickets_per_buyer: int
    clock_ms: int = 0
    holds: dict[str, OpenHold] = field(default_factory=dict)
    sold_count: int = 0
    inventory_mode: InventoryMode = InventoryMode.HOLDS
    payment_window_seconds: int = DEFAULT_PAYMENT_WINDOW_SECONDS
    sale_open: bool = True
    route_epoch: int = 0
    stripes: int = 0
    """Stripes of a stripe's section (its id is ``<section>~<i>``), or how many
    stripes a striped section was split into; 0 for a section never striped."""
    low_water: int = 0
    """A stripe asks its siblings for places when its free places fall below."""
    stripe: StripeState = field(default_factory=StripeState)
    parked: dict[str, ParkedHold] = field(default_factory=dict)
    """Holds waiting for capacity, in the order they parked."""
    _park_blocks: dict[int, dict[str, ParkedHold]] = field(default_factory=dict)
    """The parked holds again, by ``parks:<n>`` entry."""
    sold_holds: dict[str, OpenHold] = field(default_factory=dict)
    ended_holds: dict[str, int] = field(default_factory=dict)
    _all_seats: set[str] = field(default_factory=set)
    _free_seats: set[str] = field(default_factory=set)
    _capacity: int = 0
    _held_count: int = 0
    _buyer_places: dict[str, int] = field(default_factory=dict)
    _expiries: list[tuple[int, str]] = field(default_factory=list)
    _decided_ids: set[str] = field(default_factory=set)
    _decided_blocks: list[list[str]] = field(default_factory=list)
    """Hold ids decided without a hold, by ``decided:<n>`` entry (also in the
    ids above); any other decided id has its own ``cmd:<id>`` entry."""
    _dirty: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._all_seats = set(self.spec.seat_ids())
        self._free_seats = set(self._all_seats)
        self._capacity = self.spec.place_count()

    # -- counts ------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        """All places of the section, whatever their state."""
        return self._capacity

    @property
    def held_count(self) -> int:
        """Places kept by open holds, held or payment pending."""
        return self._held_count

    @property
    def free_count(self) -> int:
        """Places that a new hold could take."""
        return self._capacity - self._held_count - self.sold_count

    def free_seat_ids(self) -> frozenset[str]:
        """Seats of a reserved section that are neither held nor sold."""
        return frozenset(self._free_seats)

    def buyer_places(self, buyer_id: str) -> int:
        """Places a buyer holds, awaits payment for or bought in this section."""
        return self._buyer_places.get(buyer_id, 0)

    def is_known_hold(self, hold_id: str) -> bool:
        """Whether a hold of this id was ever placed here."""
        return (
            hold_id in self.holds
            or hold_id in self.sold_holds
            or hold_id in self.ended_holds
        )

    # -- fold --------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Fold one event of this section into the state."""
        if isinstance(event, HoldPlaced):
            self._add_hold(
                OpenHold(
                    event.hold_id,
                    event.buyer_id,
                    event.seat_ids,
                    event.quantity,
                    event.expires_at_ms,
                )
            )
        elif isinstance(event, HoldExpired | HoldReleased):
            self._end_hold(event.hold_id)
        elif isinstance(event, CheckoutStarted):
            self._await_payment(event.hold_id, event.payment_deadline_ms)
        elif isinstance(event, TicketsSold):
            self._sell(event.hold_id)
        elif isinstance(event, RefundRequired):
            self.ended_holds[event.hold_id] = REFUNDED_HOLD
            self._dirty.add(HOLD_ENTRY_PREFIX + event.hold_id)
        elif isinstance(event, HoldParked | HoldRejected):
            self._apply_parking(event)
        elif isinstance(
            event, CapacityRequested | CapacityTransferredOut | CapacityTransferredIn
        ):
            self._apply_transfer(event)
        else:
            self._apply_admin(event)

    def _apply_parking(self, event: HoldParked | HoldRejected) -> None:
        if isinstance(event, HoldParked):
            stripe = self.stripe
            self._park(
                ParkedHold(
                    stripe.parked_total,
                    event.command_id,
                    event.buyer_id,
                    event.quantity,
                )
            )
            stripe.parked_total += 1
            self._dirty.add(STRIPE_ENTRY)
        elif self._unpark(event.command_id):
            # A parked hold refused after all: remember its id like any refusal.
            self.remember_hold_decided(event.command_id)

    def remember_hold_decided(self, hold_id: str) -> None:
        """Keep the id of a hold refused or forwarded: a redelivery decides nothing."""
        self._decided_ids.add(hold_id)
        blocks = self._decided_blocks
        if not blocks or len(blocks[-1]) >= DECIDED_BLOCK_SIZE:
            blocks.append([])
        blocks[-1].append(hold_id)
        self._dirty.add(f"{DECIDED_BLOCK_PREFIX}{len(blocks) - 1}")

    def _park(self, parked: ParkedHold) -> None:
        """Keep a hold waiting, in its block of parked holds."""
        block = parked.order // PARK_BLOCK_SIZE
        self.parked[parked.hold_id] = parked
        self._park_blocks.setdefault(block, {})[parked.hold_id] = parked
        self._dirty.add(f"{PARK_BLOCK_PREFIX}{block}")

    def _unpark(self, hold_id: str) -> bool:
        """Take a hold off the parked ones; whether it was parked."""
        parked = self.parked.pop(hold_id, None)
        if parked is None:
            return False
        block = parked.order // PARK_BLOCK_SIZE
        members = self._park_blocks[block]
        del members[hold_id]
        if not members:
            del self._park_blocks[block]
        self._dirty.add(f"{PARK_BLOCK_PREFIX}{block}")
        return True

    def _apply_transfer(
        self,
        event: CapacityRequested | CapacityTransferredOut | CapacityTransferredIn,
    ) -> None:
        stripe = self.stripe
        if isinstance(event, CapacityRequested):
            stripe.rounds += 1
            stripe.round_id = event.request_id
            stripe.answers_awaited = event.stripes - 1
            stripe.round_gain = 0
        elif isinstance(event, CapacityTransferredOut):
            self._set_capacity(event.capacity)
            if not event.request_id:
                stripe.transfers_out += 1
        else:
            self._set_capacity(event.capacity)
            if event.request_id and event.request_id == stripe.round_id:
                stripe.answers_awaited -= 1
                stripe.round_gain += event.quantity
                if not stripe.answers_awaited:
                    stripe.round_closed_ms = event.occurred_at_ms
        self._dirty.add(STRIPE_ENTRY)

    def _set_capacity(self, capacity: int) -> None:
        self.spec = _with_capacity(self.spec, capacity)
        self._capacity = capacity
        self._dirty.add(META_ENTRY)

    def _apply_admin(self, event: Event) -> None:
        if isinstance(event, SaleOpened | SaleClosed):
            self.sale_open = isinstance(event, SaleOpened)
        elif isinstance(event, HoldTtlChanged):
            self.hold_ttl_seconds = event.hold_ttl_seconds
        elif isinstance(event, InventoryAdded):
            self._add_places(event.rows, event.seat_ids, event.quantity)
        elif isinstance(event, InventoryWithdrawn):
            self._remove_places(event.seat_ids, event.quantity)
        elif isinstance(event, SectionStriped):
            self.stripes = event.stripes
            self._set_capacity(event.capacity)
        else:
            return
        self._dirty.add(META_ENTRY)

    def _add_hold(self, hold: OpenHold) -> None:
        self._unpark(hold.hold_id)
        # TODO(limit): ids of every hold are kept for the life of the section so a
        # redelivery never places twice and a late payment is refunded, not sold;
        # past ~1M holds per section (~100 MB), bound them by the command topic's
        # retention.
        if hold.state is HoldState.SOLD:
            self.sold_holds[hold.hold_id] = hold
            self.sold_count += hold.quantity
        else:
            self.holds[hold.hold_id] = hold
            self._held_count += hold.quantity
            heapq.heappush(self._expiries, (hold.expires_at_ms, hold.hold_id))
        self._free_seats.difference_update(hold.seat_ids)
        self._buyer_places[hold.buyer_id] = (
            self._buyer_places.get(hold.buyer_id, 0) + hold.quantity
        )
        self._dirty.add(HOLD_ENTRY_PREFIX + hold.hold_id)

    def _end_hold(self, hold_id: str) -> None:
        hold = self.holds.pop(hold_id)
        self.ended_holds[hold_id] = CLOSED_HOLD
        self._free_seats.update(hold.seat_ids)
        self._held_count -= hold.quantity
        remaining = self._buyer_places[hold.buyer_id] - hold.quantity
        if remaining:
            self._buyer_places[hold.buyer_id] = remaining
        else:
            del self._buyer_places[hold.buyer_id]
        self._dirty.add(HOLD_ENTRY_PREFIX + hold_id)

    def _await_payment(self, hold_id: str, deadline_ms: int) -> None:
        hold = self.holds[hold_id]
        hold.state = HoldState.PAYMENT_PENDING
        hold.expires_at_ms = deadline_ms
        heapq.heappush(self._expiries, (deadline_ms, hold_id))
        self._dirty.add(HOLD_ENTRY_PREFIX + hold_id)

    def _sell(self, hold_id: str) -> None:
        hold = self.holds.pop(hold_id)
        hold.state = HoldState.SOLD
        self.sold_holds[hold_id] = hold
        self._held_count -= hold.quantity
        self.sold_count += hold.quantity
        self._dirty.add(HOLD_ENTRY_PREFIX + hold_id)

    def _add_places(
        self, rows: tuple[Row, ...], seat_ids: tuple[str, ...], quantity: int
    ) -> None:
        if self.spec.kind is SectionKind.RESERVED:
            self.spec = with_rows_added(self.spec, rows)
        else:
            self.spec = _with_capacity(self.spec, self.spec.capacity + quantity)
        self._all_seats.update(seat_ids)
        self._free_seats.update(seat_ids)
        self._capacity += quantity

    def _remove_places(self, seat_ids: tuple[str, ...], quantity: int) -> None:
        if self.spec.kind is SectionKind.RESERVED:
            self.spec = with_seats_removed(self.spec, frozenset(seat_ids))
        else:
            self.spec = _with_capacity(self.spec, self.spec.capacity - quantity)
        self._all_seats.difference_update(seat_ids)
        self._free_seats.difference_update(seat_ids)
        self._capacity -= quantity

    def _pop_due_holds(self, now_ms: int) -> list[OpenHold]:
        """Open holds whose deadline is at or before ``now_ms``, by deadline, id."""
        due: list[OpenHold] = []
        expiries = self._expiries
        while expiries and expiries[0][0] <= now_ms:
            deadline_ms, hold_id = heapq.heappop(expiries)
            hold = self.holds.get(hold_id)
            # An entry whose hold ended, moved its deadline or is already due
            # (checkout to the same deadline pushes it twice) is stale: skip it.
            if hold is not None and hold.expires_at_ms == deadline_ms:
                if not due or due[-1] is not hold:
                    due.append(hold)
        return due

    # -- entries -----------------------------------------------------------------

    def entries(self) -> dict[str, EntryValue]:
        """Every entry of the section, as ``restore`` takes them back."""
        holds = [*self.holds, *self.sold_holds, *self.ended_holds]
        in_blocks = {hold_id for block in self._decided_blocks for hold_id in block}
        commands = self._decided_ids - in_blocks
        names = [
            META_ENTRY,
            CLOCK_ENTRY,
            *(HOLD_ENTRY_PREFIX + hold_id for hold_id in holds),
            *(COMMAND_ENTRY_PREFIX + command_id for command_id in commands),
            *(f"{DECIDED_BLOCK_PREFIX}{n}" for n in range(len(self._decided_blocks))),
            *(f"{PARK_BLOCK_PREFIX}{block}" for block in self._park_blocks),
        ]
        if self.stripe != StripeState():
            names.append(STRIPE_ENTRY)
        return {name: self._entry(name) for name in names}

    def drain_changes(self) -> dict[str, EntryValue]:
        """Entries changed since the last drain, ``None`` for deleted ones."""
        changes = {name: self._entry(name) for name in self._dirty}
        self._dirty.clear()
        return changes

    def _entry(self, name: str) -> EntryValue:
        if name == META_ENTRY:
            return _meta_entry(self)
        if name == CLOCK_ENTRY:
            return self.clock_ms
        if name.startswith(COMMAND_ENTRY_PREFIX):
            return 1
        if name.startswith(DECIDED_BLOCK_PREFIX):
            return list(
                self._decided_blocks[int(name.removeprefix(DECIDED_BLOCK_PREFIX))]
            )
        if name == STRIPE_ENTRY:
            return self.stripe.entry()
        if name.startswith(PARK_BLOCK_PREFIX):
            members = self._park_blocks.get(int(name.removeprefix(PARK_BLOCK_PREFIX)))
            if not members:
                return None
            return [
                [p.order, p.hold_id, p.buyer_id, p.quantity] for p in members.values()
            ]
        if name.startswith(PARK_ENTRY_PREFIX):
            return None  # an older form, rewritten in blocks once restored
        hold_id = name.removeprefix(HOLD_ENTRY_PREFIX)
        hold = self.holds.get(hold_id) or self.sold_holds.get(hold_id)
        if hold is None:
            return self.ended_holds[hold_id]
        entry = [hold.buyer_id, list(hold.seat_ids), hold.quantity, hold.expires_at_ms]
        if hold.state is not HoldState.HELD:
            entry.append(int(hold.state))
        return entry

    @classmethod
    def restore(cls, entries: Mapping[str, EntryValue]) -> Self:
        """Rebuild a section from the entries ``drain_changes`` produced."""
        meta = entries[META_ENTRY]
        section = cls(
            show_id=meta["show_id"],
            spec=_spec_from_entry(meta["spec"]),
            hold_ttl_seconds=meta["hold_ttl_seconds"],
            max_tickets_per_buyer=meta["max_tickets_per_buyer"],
            clock_ms=entries.get(CLOCK_ENTRY, 0),
            inventory_mode=InventoryMode(
                meta.get("inventory_mode", InventoryMode.HOLDS.value)
            ),
            payment_window_seconds=meta.get(
                "payment_window_seconds", DEFAULT_PAYMENT_WINDOW_SECONDS
            ),
            sale_open=meta.get("sale_open", True),
            route_epoch=meta.get("route_epoch", 0),
            stripes=meta.get("stripes", 0),
            low_water=meta.get("low_water", 0),
        )
        if STRIPE_ENTRY in entries:
            section.stripe = StripeState(*entries[STRIPE_ENTRY])
        parked: list[ParkedHold] = []
        older_park_entries: set[str] = set()
        decided_blocks: dict[int, list[str]] = {}
        for name, value in sorted(entries.items()):
            if value is None:
                continue
            if name.startswith(DECIDED_BLOCK_PREFIX):
                decided_blocks[int(name.removeprefix(DECIDED_BLOCK_PREFIX))] = value
                section._decided_ids.update(value)
            elif name.startswith(PARK_BLOCK_PREFIX):
                parked.extend(ParkedHold(*member) for member in value)
            elif name.startswith(PARK_ENTRY_PREFIX):
                order, buyer_id, quantity = value
                hold_id = name.removeprefix(PARK_ENTRY_PREFIX)
                parked.append(ParkedHold(order, hold_id, buyer_id, quantity))
                older_park_entries.add(name)
            elif name.startswith(COMMAND_ENTRY_PREFIX):
                section._decided_ids.add(name.removeprefix(COMMAND_ENTRY_PREFIX))
            elif name.startswith(HOLD_ENTRY_PREFIX):
                section._restore_hold(name.removeprefix(HOLD_ENTRY_PREFIX), value)
        section._decided_blocks = [
            list(decided_blocks.get(n, ())) for n in range(len(decided_blocks))
        ]
        section._dirty.clear()
        for hold in sorted(parked, key=lambda p: p.order):
            section._park(hold)
        # Holds parked in the older form are written again in blocks, and their
        # entries deleted, with the section's next changes.
        section._dirty.intersection_update(
            f"{PARK_BLOCK_PREFIX}{p.order // PARK_BLOCK_SIZE}"
            for p in parked
            if PARK_ENTRY_PREFIX + p.hold_id in older_park_entries
        )
        section._dirty.update(older_park_entries)
        return section

    def _restore_hold(self, hold_id: str, value: EntryValue) -> None:
        if isinstance(value, int):
            self.ended_holds[hold_id] = value
            return
        buyer_id, seat_ids, quantity, expires_at_ms, *state = value
        self._add_hold(
            OpenHold(
                hold_id,
                buyer_id,
                tuple(seat_ids),
                quantity,
                expires_at_ms,
                HoldState(state[0] if state else HoldState.HELD),
            )
        )


def _with_capacity(spec: SectionSpec, capacity: int) -> SectionSpec:
    return dataclasses.replace(spec, capacity=capacity)


def _meta_entry(section: SectionState) -> dict[str, Any]:
    spec = section.spec
    return {
        "show_id": section.show_id,
        "hold_ttl_seconds": section.hold_ttl_seconds,
        "max_tickets_per_buyer": section.max_tickets_per_buyer,
        "spec": {
            "section_id": spec.section_id,
            "kind": spec.kind.value,
            "capacity": spec.capacity,
            "rows": [[row.label, list(row.seat_numbers)] for row in spec.rows],
            "price_cents": spec.price_cents,
        },
        "inventory_mode": section.inventory_mode.value,
        "payment_window_seconds": section.payment_window_seconds,
        "sale_open": section.sale_open,
        "route_epoch": section.route_epoch,
        "stripes": section.stripes,
        "low_water": section.low_water,
    }


def _spec_from_entry(raw: Mapping[str, Any]) -> SectionSpec:
    return SectionSpec(
        section_id=raw["section_id"],
        kind=SectionKind(raw["kind"]),
        capacity=raw["capacity"],
        rows=tuple(Row(label, tuple(numbers)) for label, numbers in raw["rows"]),
        price_cents=raw.get("price_cents", 0),
    )

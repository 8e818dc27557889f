"""Stripes of a hot GA section: sub-inventories that trade places by commands.

A GA section ``floor`` may be split into K stripes ``floor~0`` .. ``floor~K-1``,
each an ordinary GA section inventory with its own share of the capacity, on its
own partition, decided by its own single writer. Places move between stripes
only by commands, each decided once by the writer that owns the places:

1. A stripe that cannot place a hold parks it (``HoldParked``, folded and
   stored but not written to the event log) and asks each sibling for places
   (``CapacityRequested``: one ``RequestCapacity`` each).
   A stripe whose free places fall below its low-water mark asks the same way.
2. A sibling answers with ``CapacityTransferredOut`` (its capacity drops; zero
   places when it has none to spare or holds of its own parked), whose follow-up
   ``ReceiveCapacity`` raises the asker's capacity (``CapacityTransferredIn``).
3. The asker places parked holds as places arrive, in the order they parked.
   When every sibling has answered: if the round brought places and holds are
   still parked, it asks again; if it brought none, the parked holds are refused
   as sold out, and for ``DRY_RETRY_MS`` of log time holds that do not fit are
   refused at once instead of parked.

Ids: a round is ``<show>/<stripe>#<n>``; the request to (and transfer from)
sibling S is ``<round>><S>``; its transfer-in is ``in:<transfer>``. Every
decided id is remembered by the section that decided it, so a redelivered
request or transfer changes nothing. Capacity is conserved: the sum of the
capacities of a section and its stripes plus the places of transfers on their
way is the section's capacity at every step.

A section striped while on sale (``StripeSection``) keeps its open and sold
holds, hands its free places to the new stripes, and from then on forwards
holds to a stripe and passes on every place its holds give back.
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Final

from commands.buyers import is_ledger_key
from commands.model import (
    CapacityRequested,
    CapacityTransferredIn,
    CapacityTransferredOut,
    CommandRejected,
    Event,
    HoldForwarded,
    HoldParked,
    HoldRejected,
    PlaceHold,
    ReceiveCapacity,
    RejectionReason,
    RequestCapacity,
    SectionKind,
    SectionSpec,
    SectionStriped,
    StripeSection,
)
from commands.state import SectionState

STRIPE_MARK: Final = "~"
MAX_STRIPES: Final = 64
DRY_RETRY_MS: Final = 1_000
"""After a round found no places to spare, a stripe refuses holds it cannot place
at once for this long (log time) before it asks its siblings again."""
LOW_WATER_DIVISOR: Final = 10
"""A stripe's low-water mark is this fraction of its first capacity (at least 1)."""

StripeCommand = StripeSection | RequestCapacity | ReceiveCapacity


def stripe_id(section_id: str, index: int) -> str:
    """The section id of stripe ``index`` of a section."""
    return f"{section_id}{STRIPE_MARK}{index}"


def stripe_of(section_id: str) -> tuple[str, int] | None:
    """The section and index a stripe id names; None for any other section id."""
    base, mark, index = section_id.rpartition(STRIPE_MARK)
    if not mark or not base or not index.isdigit():
        return None
    return base, int(index)


def base_section_id(section_id: str) -> str:
    """The section a stripe belongs to; a section id that is no stripe's, as is."""
    found = stripe_of(section_id)
    return section_id if found is None else found[0]


def stripe_key_parts(key: str) -> tuple[str, int] | None:
    """For the key of a stripe, the key of its section and its index; else None."""
    if is_ledger_key(key):
        return None
    head, slash, last = key.rpartition("/")
    found = stripe_of(last)
    if not slash or found is None:
        return None
    return f"{head}/{found[0]}", found[1]


def stripe_shares(places: int, stripes: int) -> tuple[int, ...]:
    """Places split as evenly as possible, the first stripes taking the rest."""
    share, rest = divmod(places, stripes)
    return tuple(share + (1 if i < rest else 0) for i in range(stripes))


def stripe_specs(spec: SectionSpec) -> tuple[SectionSpec, ...]:
    """The specs of a GA section's stripes when it asks for two or more, else it."""
    if spec.stripes < 2 or stripe_of(spec.section_id) is not None:
        return (spec,)
    return tuple(
        dataclasses.replace(spec, section_id=stripe_id(spec.section_id, i), capacity=c)
        for i, c in enumerate(stripe_shares(spec.capacity, spec.stripes))
    )


def low_water_for(capacity: int) -> int:
    """The low-water mark of a stripe created with ``capacity`` places."""
    return max(1, capacity // LOW_WATER_DIVISOR)


def stripe_for_buyer(buyer_id: str, stripes: int) -> int:
    """A stable stripe index for a buyer: the same in every process."""
    return zlib.crc32(buyer_id.encode()) % stripes


class StripedSection(SectionState):
    """The decisions of stripes and of striped sections (a mixin of the section)."""

    __slots__ = ()

    @property
    def has_siblings(self) -> bool:
        """Whether this is a stripe with siblings to trade places with."""
        return self.stripes > 1 and stripe_of(self.spec.section_id) is not None

    @property
    def is_striped(self) -> bool:
        """Whether this section was split into stripes (it is no stripe itself)."""
        return self.stripes > 0 and stripe_of(self.spec.section_id) is None

    def found_siblings_dry(self, now_ms: int) -> bool:
        """Whether the last round, closed under ``DRY_RETRY_MS`` ago, got nothing.

        Then a hold that does not fit is refused at once: near the end of a
        sale every refusal would otherwise wait for a round of requests.
        """
        stripe = self.stripe
        return (
            stripe.rounds > 0
            and not stripe.answers_awaited
            and stripe.round_gain == 0
            and now_ms - stripe.round_closed_ms < DRY_RETRY_MS
        )

    def placed_events(
        self, hold_id: str, buyer_id: str, quantity: int, now_ms: int
    ) -> list[Event]:
        """The events of placing a GA hold (defined by the section)."""
        raise NotImplementedError

    def decide_stripe_command(self, command: StripeCommand, now_ms: int) -> list[Event]:
        """Decide a command about stripes or transfers."""
        if isinstance(command, StripeSection):
            return self._decide_striping(command, now_ms)
        if isinstance(command, RequestCapacity):
            return [self._give(command, now_ms)]
        return self._receive(command, now_ms)

    def forward(self, command: PlaceHold, now_ms: int) -> list[Event]:
        """A striped section sends a hold on to the buyer's stripe."""
        index = stripe_for_buyer(command.buyer_id, self.stripes)
        return [
            HoldForwarded(
                command_id=command.command_id,
                occurred_at_ms=now_ms,
                show_id=self.show_id,
                section_id=self.spec.section_id,
                to_section_id=stripe_id(self.spec.section_id, index),
                buyer_id=command.buyer_id,
                quantity=command.quantity,
            )
        ]

    def park(self, command: PlaceHold, now_ms: int) -> list[Event]:
        """A stripe short of places parks the hold; it asks unless a round is open.

        Parking folds its own events (the round it opens asks for this hold too).
        """
        # The park is folded and stored, not written to the event log (nothing
        # reads it; the log gets the hold's outcome): a sale-out refused 90,000
        # parked holds with twice the events of one stripe (bench.stripes).
        parked = HoldParked(
            command_id=command.command_id,
            occurred_at_ms=now_ms,
            show_id=self.show_id,
            section_id=self.spec.section_id,
            buyer_id=command.buyer_id,
            quantity=command.quantity,
        )
        self.apply(parked)
        if self.stripe.answers_awaited:
            return []
        return self._ask(command.command_id, now_ms)

    def after_command(
        self, command_id: str, now_ms: int, placed_hold: bool = False
    ) -> list[Event]:
        """What a stripe or striped section does once a command was decided.

        A striped section passes its free places on; a stripe places the holds
        that fit now, asks again or refuses them when a round ended, and, when
        it just placed a hold, asks for a refill below its low-water mark (only
        demand asks: a stripe that gave places away does not ask them back).
        """
        if self.is_striped:
            return self._pass_on(command_id, now_ms)
        if not self.has_siblings:
            return []

        events = self._place_parked(now_ms)
        stripe = self.stripe
        if stripe.answers_awaited:
            return events
        if self.parked:
            if stripe.round_gain > 0:
                return events + self._ask(command_id, now_ms)
            return events + self._refuse_parked(now_ms)
        refill_helps = stripe.rounds == 0 or stripe.round_gain > 0
        if placed_hold and self.free_count < self.low_water and refill_helps:
            events += self._ask(command_id, now_ms)
        return events

    def _decide_striping(self, command: StripeSection, now_ms: int) -> list[Event]:
        refusal = self._striping_refusal(command)
        if refusal is not None:
            return [self._stripe_rejected(command, now_ms, refusal)]
        free = self.free_count
        striped = SectionStriped(
            command_id=command.command_id,
            occurred_at_ms=now_ms,
            show_id=self.show_id,
            section_id=self.spec.section_id,
            stripes=command.stripes,
            shares=stripe_shares(free, command.stripes),
            capacity=self.capacity - free,
            hold_ttl_seconds=self.hold_ttl_seconds,
            max_tickets_per_buyer=self.max_tickets_per_buyer,
            price_cents=self.spec.price_cents,
            inventory_mode=self.inventory_mode,
            payment_window_seconds=self.payment_window_seconds,
            sale_open=self.sale_open,
        )
        return [striped]

    def _striping_refusal(self, command: StripeSection) -> str | None:
        if self.spec.kind is not SectionKind.GENERAL_ADMISSION:
            return "only a general-admission section can be striped"
        if self.stripes or stripe_of(self.spec.section_id) is not None:
            return "the section is striped already"
        if not 2 <= command.stripes <= MAX_STRIPES:
            return f"ask for 2 to {MAX_STRIPES} stripes"
        return None

    def _stripe_rejected(
        self, command: StripeSection | ReceiveCapacity, now_ms: int, detail: str
    ) -> CommandRejected:
        return CommandRejected(
            command_id=command.command_id,
            occurred_at_ms=now_ms,
            show_id=self.show_id,
            section_id=self.spec.section_id,
            command=type(command).__name__,
            reason=RejectionReason.INVALID_REQUEST,
            detail=detail,
        )

    def _give(self, command: RequestCapacity, now_ms: int) -> CapacityTransferredOut:
        # A stripe with holds of its own parked keeps its places for them.
        spare = 0 if self.parked else max(0, self.free_count)
        quantity = max(0, min(command.quantity, spare))
        return CapacityTransferredOut(
            command_id=command.command_id,
            occurred_at_ms=now_ms,
            show_id=self.show_id,
            section_id=self.spec.section_id,
            transfer_id=command.command_id,
            to_section_id=command.to_section_id,
            quantity=quantity,
            capacity=self.capacity - quantity,
            request_id=command.request_id,
        )

    def _receive(self, command: ReceiveCapacity, now_ms: int) -> list[Event]:
        if command.quantity < 0:
            detail = "a transfer moves zero places or more"
            return [self._stripe_rejected(command, now_ms, detail)]
        return [
            CapacityTransferredIn(
                command_id=command.command_id,
                occurred_at_ms=now_ms,
                show_id=self.show_id,
                section_id=self.spec.section_id,
                transfer_id=command.transfer_id,
                from_section_id=command.from_section_id,
                quantity=command.quantity,
                capacity=self.capacity + command.quantity,
                request_id=command.request_id,
            )
        ]

    def _ask(self, command_id: str, now_ms: int) -> list[Event]:
        wanted = sum(p.quantity for p in self.parked.values())
        quantity = max(1, wanted - self.free_count + self.low_water)
        asked = CapacityRequested(
            command_id=command_id,
            occurred_at_ms=now_ms,
            show_id=self.show_id,
            section_id=self.spec.section_id,
            request_id=f"{self.show_id}/{self.spec.section_id}#{self.stripe.rounds}",
            quantity=quantity,
            stripes=self.stripes,
        )
        self.apply(asked)
        return [asked]

    def _place_parked(self, now_ms: int) -> list[Event]:
        # Only the first parked hold is looked at each time: a stripe with
        # thousands parked checks one per command, not all of them.
        events: list[Event] = []
        while self.parked:
            parked = next(iter(self.parked.values()))
            if parked.quantity > self.free_count:
                break
            placed = self.placed_events(
                parked.hold_id, parked.buyer_id, parked.quantity, now_ms
            )
            for event in placed:
                # Folding the HoldPlaced takes the hold off the parked ones.
                self.apply(event)
            events.extend(placed)
        return events

    def _refuse_parked(self, now_ms: int) -> list[Event]:
        events: list[Event] = []
        for parked in list(self.parked.values()):
            refused = HoldRejected(
                command_id=parked.hold_id,
                occurred_at_ms=now_ms,
                show_id=self.show_id,
                section_id=self.spec.section_id,
                buyer_id=parked.buyer_id,
                reason=RejectionReason.SOLD_OUT,
                detail="no stripe of the section had places to spare",
            )
            self.apply(refused)
            events.append(refused)
        return events

    def _pass_on(self, command_id: str, now_ms: int) -> list[Event]:
        free = self.free_count
        if free <= 0:
            return []
        index = self.stripe.transfers_out % self.stripes
        transfer_id = (
            f"{self.show_id}/{self.spec.section_id}>{self.stripe.transfers_out}"
        )
        passed = CapacityTransferredOut(
            command_id=command_id,
            occurred_at_ms=now_ms,
            show_id=self.show_id,
            section_id=self.spec.section_id,
            transfer_id=transfer_id,
            to_section_id=stripe_id(self.spec.section_id, index),
            quantity=free,
            capacity=self.capacity - free,
        )
        self.apply(passed)
        return [passed]

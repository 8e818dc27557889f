"""Decisions of one section: commands in, events out, decided in log order.

Every command first lets log time pass (``now = max(clock, issued_at_ms)``) and
expires the holds due by then; a redelivered command then decides nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass

from commands.model import (
    AddInventory,
    CapacityRequested,
    ChangeHoldTtl,
    Checkout,
    CheckoutStarted,
    CloseSale,
    CommandRejected,
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
    OpenSale,
    PlaceHold,
    ReceiveCapacity,
    RecordPaymentResult,
    RefundReason,
    RefundRequired,
    RejectionReason,
    ReleaseHold,
    ReleaseReason,
    RequestCapacity,
    SaleClosed,
    SaleOpened,
    SectionCommand,
    SectionKind,
    StripeSection,
    TicketsSold,
    WithdrawInventory,
)
from commands.seating import best_block, row_seat_ids
from commands.state import (
    CLOCK_ENTRY,
    CLOSED_HOLD,
    COMMAND_ENTRY_PREFIX,
    HoldState,
    OpenHold,
)
from commands.stripes import StripedSection

Refusal = tuple[RejectionReason, str]
"""A stable reason and a short human detail."""


@dataclass(slots=True)
class SectionInventory(StripedSection):
    """One section's places: free, held or sold, decided in log order."""

    def handle(self, command: SectionCommand) -> list[Event]:
        """Expire lapsed holds, then decide the command; fold and return."""
        if isinstance(command, PlaceHold):
            return self.handle_hold(command)
        now_ms, events = self.advance_clock(command.command_id, command.issued_at_ms)
        if command.command_id in self._decided_ids:
            # A redelivered command gives no event: its first events stand, and
            # the gateway answers a retry from what it saw or from read models.
            return events + self._after(command.command_id, now_ms)

        decided = self._decide(command, now_ms)
        for event in decided:
            self.apply(event)
        self._decided_ids.add(command.command_id)
        self._dirty.add(COMMAND_ENTRY_PREFIX + command.command_id)
        return events + decided + self._after(command.command_id, now_ms)

    def _after(
        self, command_id: str, now_ms: int, placed_hold: bool = False
    ) -> list[Event]:
        if not self.stripes:
            return []
        return self.after_command(command_id, now_ms, placed_hold)

    def handle_hold(self, command: PlaceHold) -> list[Event]:
        """Expire lapsed holds, then place or refuse the hold; fold and return."""
        now_ms, events = self.advance_clock(command.command_id, command.issued_at_ms)
        if (
            self.is_known_hold(command.command_id)
            or command.command_id in self._decided_ids
            or command.command_id in self.parked
        ):
            # A redelivered hold gives no event, placed or refused; retries are
            # answered from the holds read model, and keys reused elsewhere are
            # caught by the buyers' ledger (docs/idempotency.md).
            return events

        if self.is_striped:
            decided = self.forward(command, now_ms)
        else:
            decided = self._decide_hold(command, now_ms)
        for event in decided:
            # Parking folds its own events as it decides (it asks for what the
            # parked holds need, this one included); folded twice, a hold would
            # take two park orders and a round two round numbers.
            if not isinstance(event, HoldParked | CapacityRequested):
                self.apply(event)
        parked = command.command_id in self.parked
        if not parked and not self.is_known_hold(command.command_id):
            # A refusal leaves no hold behind: remember its id, so a record the
            # consumer hands over again (after a restart or a seek) is not
            # refused a second time on the log. (A parked hold is known by its
            # park entry until it is placed, or refused and remembered then.)
            # TODO(limit): every refused hold id is kept for the show's life
            # (in blocks of entries); at millions of refusals per show, expire
            # them after the longest redelivery window (the commit interval
            # plus a rebalance).
            self.remember_hold_decided(command.command_id)
        placed = self.is_known_hold(command.command_id)
        return events + decided + self._after(command.command_id, now_ms, placed)

    def advance_clock(
        self, command_id: str, issued_at_ms: int
    ) -> tuple[int, list[Event]]:
        """Move log time to the command's, expiring due holds; the time and expiries."""
        now_ms = max(self.clock_ms, issued_at_ms)
        events: list[Event] = [
            self.expired(command_id, now_ms, hold)
            for hold in self._pop_due_holds(now_ms)
        ]
        for event in events:
            self.apply(event)
        self.clock_ms = now_ms
        self._dirty.add(CLOCK_ENTRY)
        return now_ms, events

    def expired(self, command_id: str, now_ms: int, hold: OpenHold) -> HoldExpired:
        """The event of ``hold`` lapsing at ``now_ms``."""
        return HoldExpired(
            command_id=command_id,
            occurred_at_ms=now_ms,
            hold_id=hold.hold_id,
            show_id=self.show_id,
            section_id=self.spec.section_id,
            seat_ids=hold.seat_ids,
            quantity=hold.quantity,
            buyer_id=hold.buyer_id,
        )

    def _decide(self, command: SectionCommand, now_ms: int) -> list[Event]:
        if isinstance(command, ReleaseHold):
            return self._decide_release(command, now_ms)
        if isinstance(command, Checkout):
            return self._decide_checkout(command, now_ms)
        if isinstance(command, RecordPaymentResult):
            return self._decide_payment(command, now_ms)
        if isinstance(command, AddInventory):
            return self._decide_add(command, now_ms)
        if isinstance(command, WithdrawInventory):
            return self._decide_withdraw(command, now_ms)
        if isinstance(command, ChangeHoldTtl):
            return self._decide_ttl(command, now_ms)
        if isinstance(command, OpenSale):
            return [SaleOpened(command.command_id, now_ms, *self._where())]
        if isinstance(command, CloseSale):
            return [SaleClosed(command.command_id, now_ms, *self._where())]
        if isinstance(command, StripeSection | RequestCapacity | ReceiveCapacity):
            return self.decide_stripe_command(command, now_ms)
        raise TypeError(f"not a section command: {type(command).__name__}")

    def _where(self) -> tuple[str, str]:
        return self.show_id, self.spec.section_id

    def _rejected(
        self, command: SectionCommand, now_ms: int, refusal: Refusal
    ) -> list[Event]:
        reason, detail = refusal
        return [
            CommandRejected(
                command_id=command.command_id,
                occurred_at_ms=now_ms,
                show_id=self.show_id,
                section_id=self.spec.section_id,
                command=type(command).__name__,
                reason=reason,
                detail=detail,
            )
        ]

    # -- holds -------------------------------------------------------------------

    def _decide_hold(self, command: PlaceHold, now_ms: int) -> list[Event]:
        refusal, seat_ids = self._hold_refusal(command)
        if refusal is not None and self._parks(refusal[0], command, now_ms):
            return self.park(command, now_ms)
        if refusal is not None:
            reason, detail = refusal
            return [
                HoldRejected(
                    command_id=command.command_id,
                    occurred_at_ms=now_ms,
                    show_id=self.show_id,
                    section_id=self.spec.section_id,
                    buyer_id=command.buyer_id,
                    reason=reason,
                    detail=detail,
                )
            ]

        quantity = len(seat_ids) if seat_ids else command.quantity
        return self._placed(
            command.command_id, command.buyer_id, seat_ids, quantity, now_ms
        )

    def _parks(self, reason: RejectionReason, command: PlaceHold, now_ms: int) -> bool:
        """Whether a stripe keeps a hold waiting for places instead of refusing it."""
        return (
            reason is RejectionReason.SOLD_OUT
            and self.has_siblings
            and command.quantity <= self.max_tickets_per_buyer
            and not self.found_siblings_dry(now_ms)
        )

    def placed_events(
        self, hold_id: str, buyer_id: str, quantity: int, now_ms: int
    ) -> list[Event]:
        """The events of placing a GA hold of ``quantity`` places."""
        return self._placed(hold_id, buyer_id, (), quantity, now_ms)

    def _placed(
        self,
        hold_id: str,
        buyer_id: str,
        seat_ids: tuple[str, ...],
        quantity: int,
        now_ms: int,
    ) -> list[Event]:
        placed = HoldPlaced(
            command_id=hold_id,
            occurred_at_ms=now_ms,
            hold_id=hold_id,
            show_id=self.show_id,
            section_id=self.spec.section_id,
            buyer_id=buyer_id,
            seat_ids=seat_ids,
            quantity=quantity,
            expires_at_ms=now_ms + self.hold_ttl_seconds * 1000,
        )
        if self.inventory_mode is InventoryMode.HOLDS:
            return [placed]
        return [placed, self._checkout_started(hold_id, placed, now_ms)]

    def _hold_refusal(
        self, command: PlaceHold
    ) -> tuple[Refusal | None, tuple[str, ...]]:
        """Why the hold is refused, else the seats it takes (none for GA)."""
        if not self.sale_open:
            return (RejectionReason.SALE_CLOSED, "the sale is closed"), ()
        reserved = self.spec.kind is SectionKind.RESERVED
        invalid = _invalid_hold(command, reserved)
        if invalid is not None:
            return (RejectionReason.INVALID_REQUEST, invalid), ()

        quantity = len(command.seat_ids) or command.quantity
        if self.buyer_places(command.buyer_id) + quantity > self.max_tickets_per_buyer:
            limit = self.max_tickets_per_buyer
            return (
                RejectionReason.BUYER_LIMIT_REACHED,
                f"at most {limit} per buyer",
            ), ()

        if not reserved:
            if quantity > self.free_count:
                return (RejectionReason.SOLD_OUT, f"{self.free_count} places left"), ()
            return None, ()
        if not command.seat_ids:
            block = best_block(self.spec.rows, self._free_seats, quantity)
            if block is None:
                return (RejectionReason.SOLD_OUT, f"no {quantity} seats together"), ()
            return None, block
        return self._named_seats_refusal(command.seat_ids), command.seat_ids

    def _named_seats_refusal(self, seat_ids: tuple[str, ...]) -> Refusal | None:
        unknown = [s for s in seat_ids if s not in self._all_seats]
        if unknown:
            return RejectionReason.UNKNOWN_SEAT, f"no seat {unknown[0]}"
        taken = [s for s in seat_ids if s not in self._free_seats]
        if taken:
            return RejectionReason.SEAT_UNAVAILABLE, f"seat {taken[0]} is taken"
        return None

    def _decide_release(self, command: ReleaseHold, now_ms: int) -> list[Event]:
        refusal = self._buyer_hold_refusal(command.hold_id, command.buyer_id)
        if refusal is not None:
            return self._rejected(command, now_ms, refusal)
        hold = self.holds[command.hold_id]
        return [
            self._released(command.command_id, now_ms, hold, _BY_BUYER),
        ]

    def _decide_checkout(self, command: Checkout, now_ms: int) -> list[Event]:
        refusal = self._buyer_hold_refusal(command.hold_id, command.buyer_id)
        if refusal is not None:
            return self._rejected(command, now_ms, refusal)
        hold = self.holds[command.hold_id]
        return [self._checkout_started(command.command_id, hold, now_ms)]

    def _buyer_hold_refusal(self, hold_id: str, buyer_id: str) -> Refusal | None:
        """Why a buyer may not release or check out the hold, if they may not."""
        if not self.is_known_hold(hold_id):
            return RejectionReason.UNKNOWN_HOLD, f"no hold {hold_id}"
        hold = self.holds.get(hold_id)
        if hold is None:
            return RejectionReason.HOLD_ENDED, f"hold {hold_id} has ended"
        if hold.buyer_id != buyer_id:
            return RejectionReason.NOT_HOLD_OWNER, "the hold is another buyer's"
        if hold.state is HoldState.PAYMENT_PENDING:
            return RejectionReason.PAYMENT_PENDING, "the hold awaits its payment"
        return None

    def _checkout_started(
        self, command_id: str, hold: OpenHold | HoldPlaced, now_ms: int
    ) -> CheckoutStarted:
        return CheckoutStarted(
            command_id=command_id,
            occurred_at_ms=now_ms,
            hold_id=hold.hold_id,
            show_id=self.show_id,
            section_id=self.spec.section_id,
            buyer_id=hold.buyer_id,
            payment_deadline_ms=now_ms + self.payment_window_seconds * 1000,
            quantity=hold.quantity,
            amount_cents=hold.quantity * self.spec.price_cents,
        )

    def _released(
        self, command_id: str, now_ms: int, hold: OpenHold, reason: ReleaseReason
    ) -> HoldReleased:
        return HoldReleased(
            command_id=command_id,
            occurred_at_ms=now_ms,
            hold_id=hold.hold_id,
            show_id=self.show_id,
            section_id=self.spec.section_id,
            reason=reason,
            seat_ids=hold.seat_ids,
            quantity=hold.quantity,
            buyer_id=hold.buyer_id,
        )

    # -- payments ----------------------------------------------------------------

    def _decide_payment(self, command: RecordPaymentResult, now_ms: int) -> list[Event]:
        hold_id = command.hold_id
        if not self.is_known_hold(hold_id):
            refusal = (RejectionReason.UNKNOWN_HOLD, f"no hold {hold_id}")
            return self._rejected(command, now_ms, refusal)
        hold = self.holds.get(hold_id)
        if hold is None:
            # Sold (any result) or ended: at most one refund per hold, since the
            # hold id is the payment's idempotency key at the provider.
            refund_due = self.ended_holds.get(hold_id) == CLOSED_HOLD
            if command.succeeded and refund_due:
                return [self._refund(command, now_ms)]
            return []
        if command.succeeded:
            # Also for a hold not checked out yet: a charge is never lost.
            return [self._sold(command.command_id, now_ms, hold)]
        if hold.state is HoldState.PAYMENT_PENDING:
            return [self._released(command.command_id, now_ms, hold, _FAILED)]
        return []

    def _sold(self, command_id: str, now_ms: int, hold: OpenHold) -> TicketsSold:
        return TicketsSold(
            command_id=command_id,
            occurred_at_ms=now_ms,
            hold_id=hold.hold_id,
            order_id=hold.hold_id,
            show_id=self.show_id,
            section_id=self.spec.section_id,
            buyer_id=hold.buyer_id,
            seat_ids=hold.seat_ids,
            quantity=hold.quantity,
            ticket_ids=tuple(
                f"{hold.hold_id}-{n}" for n in range(1, hold.quantity + 1)
            ),
        )

    def _refund(self, command: RecordPaymentResult, now_ms: int) -> RefundRequired:
        return RefundRequired(
            command_id=command.command_id,
            occurred_at_ms=now_ms,
            hold_id=command.hold_id,
            show_id=self.show_id,
            section_id=self.spec.section_id,
            provider_event_id=command.provider_event_id,
            reason=RefundReason.HOLD_ENDED,
        )

    # -- admin -------------------------------------------------------------------

    def _decide_ttl(self, command: ChangeHoldTtl, now_ms: int) -> list[Event]:
        if command.hold_ttl_seconds <= 0:
            refusal = (RejectionReason.INVALID_REQUEST, "a hold TTL must be positive")
            return self._rejected(command, now_ms, refusal)
        return [
            HoldTtlChanged(
                command.command_id, now_ms, *self._where(), command.hold_ttl_seconds
            )
        ]

    def _decide_add(self, command: AddInventory, now_ms: int) -> list[Event]:
        seat_ids = row_seat_ids(command.rows)
        refusal = self._add_refusal(command, seat_ids)
        if refusal is not None:
            return self._rejected(command, now_ms, refusal)
        quantity = len(seat_ids) or command.quantity
        return [
            InventoryAdded(
                command_id=command.command_id,
                occurred_at_ms=now_ms,
                show_id=self.show_id,
                section_id=self.spec.section_id,
                rows=command.rows,
                seat_ids=seat_ids,
                quantity=quantity,
                capacity=self.capacity + quantity,
            )
        ]

    def _add_refusal(
        self, command: AddInventory, seat_ids: tuple[str, ...]
    ) -> Refusal | None:
        if self.spec.kind is not SectionKind.RESERVED:
            if command.rows or command.quantity <= 0:
                return RejectionReason.INVALID_REQUEST, "add a positive quantity"
            return None
        if not seat_ids or command.quantity not in (0, len(seat_ids)):
            return RejectionReason.INVALID_REQUEST, "add rows of one or more seats"
        if len(set(seat_ids)) != len(seat_ids):
            return RejectionReason.INVALID_REQUEST, "a seat is named twice"
        existing = [s for s in seat_ids if s in self._all_seats]
        if existing:
            return RejectionReason.SEAT_EXISTS, f"seat {existing[0]} exists"
        return None

    def _decide_withdraw(self, command: WithdrawInventory, now_ms: int) -> list[Event]:
        refusal = self._withdraw_refusal(command)
        if refusal is not None:
            return self._rejected(command, now_ms, refusal)
        quantity = len(command.seat_ids) or command.quantity
        return [
            InventoryWithdrawn(
                command_id=command.command_id,
                occurred_at_ms=now_ms,
                show_id=self.show_id,
                section_id=self.spec.section_id,
                seat_ids=command.seat_ids,
                quantity=quantity,
                capacity=self.capacity - quantity,
            )
        ]

    def _withdraw_refusal(self, command: WithdrawInventory) -> Refusal | None:
        seat_ids = command.seat_ids
        if self.spec.kind is not SectionKind.RESERVED:
            if seat_ids or command.quantity <= 0:
                return RejectionReason.INVALID_REQUEST, "withdraw a positive quantity"
            if command.quantity > self.free_count:
                free = self.free_count
                return RejectionReason.INSUFFICIENT_FREE, f"{free} places free"
            return None
        if not seat_ids or command.quantity not in (0, len(seat_ids)):
            return RejectionReason.INVALID_REQUEST, "name one or more seats"
        if len(set(seat_ids)) != len(seat_ids):
            return RejectionReason.INVALID_REQUEST, "a seat is named twice"
        unknown = [s for s in seat_ids if s not in self._all_seats]
        if unknown:
            return RejectionReason.UNKNOWN_SEAT, f"no seat {unknown[0]}"
        in_use = [s for s in seat_ids if s not in self._free_seats]
        if in_use:
            return RejectionReason.SEAT_IN_USE, f"seat {in_use[0]} is held or sold"
        return None


_BY_BUYER = ReleaseReason.RELEASED_BY_BUYER
_FAILED = ReleaseReason.PAYMENT_FAILED


def _invalid_hold(command: PlaceHold, reserved: bool) -> str | None:
    """Why a hold's fields are inconsistent with the section's kind, if they are."""
    seat_ids, quantity = command.seat_ids, command.quantity
    if not reserved:
        return "ask for a positive quantity" if seat_ids or quantity <= 0 else None
    if not seat_ids:
        return None if quantity > 0 else "name seats or ask for a quantity"
    if quantity not in (0, len(seat_ids)):
        return "the quantity differs from the seats named"
    if len(set(seat_ids)) != len(seat_ids):
        return "a seat is named twice"
    return None

"""Commands and events of the sale: frozen dataclasses, the language of the core.

Commands are imperative requests that may be refused (``PlaceHold``); events are
immutable facts in the past tense (``HoldPlaced``). Every command carries the id that
makes it idempotent and the log time at which it was issued; the core reads time only
from there, never from a clock.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class SectionKind(enum.StrEnum):
    """How a section's places are sold."""

    RESERVED = "reserved"
    GENERAL_ADMISSION = "general_admission"


class RejectionReason(enum.StrEnum):
    """Stable codes for refused commands; the gateway maps each to a problem type."""

    SOLD_OUT = "sold_out"
    SEAT_UNAVAILABLE = "seat_unavailable"
    UNKNOWN_SEAT = "unknown_seat"
    UNKNOWN_SECTION = "unknown_section"
    INVALID_REQUEST = "invalid_request"
    BUYER_LIMIT_REACHED = "buyer_limit_reached"
    SECTION_EXISTS = "section_exists"
    UNKNOWN_HOLD = "unknown_hold"
    NOT_HOLD_OWNER = "not_hold_owner"
    HOLD_ENDED = "hold_ended"
    PAYMENT_PENDING = "payment_pending"
    SALE_CLOSED = "sale_closed"
    SEAT_IN_USE = "seat_in_use"
    SEAT_EXISTS = "seat_exists"
    INSUFFICIENT_FREE = "insufficient_free"
    UNKNOWN_SHOW = "unknown_show"


class InventoryMode(enum.StrEnum):
    """Whether a placed hold waits for checkout or goes straight to payment."""

    HOLDS = "holds"
    IMMEDIATE = "immediate"


class ReleaseReason(enum.StrEnum):
    """Why a hold gave its places back before its deadline."""

    RELEASED_BY_BUYER = "released_by_buyer"
    PAYMENT_FAILED = "payment_failed"


class RefundReason(enum.StrEnum):
    """Why a successful payment must be refunded."""

    HOLD_ENDED = "hold_ended"


@dataclass(frozen=True, slots=True)
class Row:
    """One row of a reserved section: its label and its seat numbers in order."""

    label: str
    seat_numbers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SectionSpec:
    """A section as the organiser defines it: reserved rows or a GA capacity."""

    section_id: str
    kind: SectionKind
    rows: tuple[Row, ...] = ()
    capacity: int = 0
    # TODO(limit): sections from an imported seating plan take no price yet
    # (charged 0); POST /v1/shows sets price_cents on "sections" and
    # "general_admission" entries.
    price_cents: int = 0
    """Price of one place, in minor units of the payment currency."""

    def seat_ids(self) -> tuple[str, ...]:
        """Seat ids of a reserved section, ``<row>-<number>``, in plan order."""
        return tuple(
            seat_id(row.label, number)
            for row in self.rows
            for number in row.seat_numbers
        )

    def place_count(self) -> int:
        """Number of places: seats of a reserved section, else the GA capacity."""
        if self.kind is SectionKind.RESERVED:
            return sum(len(row.seat_numbers) for row in self.rows)
        return self.capacity


def seat_id(row_label: str, seat_number: str) -> str:
    """The id of a seat within its section."""
    return f"{row_label}-{seat_number}"


@dataclass(frozen=True, slots=True)
class CreateShow:
    """Create a show's sections; sent to each partition with the sections it owns."""

    command_id: str
    issued_at_ms: int
    show_id: str
    hold_ttl_seconds: int
    max_tickets_per_buyer: int
    sections: tuple[SectionSpec, ...]
    inventory_mode: InventoryMode = InventoryMode.HOLDS
    payment_window_seconds: int = 900
    sale_open: bool = True


@dataclass(frozen=True, slots=True)
class PlaceHold:
    """Keep places for a buyer: named seats (reserved) or a quantity (GA)."""

    command_id: str
    issued_at_ms: int
    show_id: str
    section_id: str
    buyer_id: str
    seat_ids: tuple[str, ...] = ()
    quantity: int = 0


@dataclass(frozen=True, slots=True)
class ReleaseHold:
    """Give a buyer's held places back before the hold's deadline."""

    command_id: str
    issued_at_ms: int
    show_id: str
    section_id: str
    buyer_id: str
    hold_id: str


@dataclass(frozen=True, slots=True)
class Checkout:
    """Move a hold to payment pending until the section's payment deadline."""

    command_id: str
    issued_at_ms: int
    show_id: str
    section_id: str
    buyer_id: str
    hold_id: str


@dataclass(frozen=True, slots=True)
class RecordPaymentResult:
    """Apply the provider's outcome of a hold's payment (from the inbox)."""

    command_id: str
    issued_at_ms: int
    show_id: str
    section_id: str
    hold_id: str
    provider_event_id: str
    succeeded: bool


@dataclass(frozen=True, slots=True)
class Tick:
    """Let log time pass for a whole partition: expire every hold that is due."""

    command_id: str
    issued_at_ms: int


@dataclass(frozen=True, slots=True)
class OpenSale:
    """Let a section accept new holds."""

    command_id: str
    issued_at_ms: int
    show_id: str
    section_id: str


@dataclass(frozen=True, slots=True)
class CloseSale:
    """Refuse new holds in a section; existing holds still check out and pay."""

    command_id: str
    issued_at_ms: int
    show_id: str
    section_id: str


@dataclass(frozen=True, slots=True)
class ChangeHoldTtl:
    """Set how long new holds of a section last."""

    command_id: str
    issued_at_ms: int
    show_id: str
    section_id: str
    hold_ttl_seconds: int


@dataclass(frozen=True, slots=True)
class AddInventory:
    """Add places: new seats in rows (reserved) or a quantity (GA)."""

    command_id: str
    issued_at_ms: int
    show_id: str
    section_id: str
    rows: tuple[Row, ...] = ()
    quantity: int = 0


@dataclass(frozen=True, slots=True)
class WithdrawInventory:
    """Take free places off sale for good: named seats (reserved) or a quantity."""

    command_id: str
    issued_at_ms: int
    show_id: str
    section_id: str
    seat_ids: tuple[str, ...] = ()
    quantity: int = 0


SectionCommand = (
    PlaceHold
    | ReleaseHold
    | Checkout
    | RecordPaymentResult
    | OpenSale
    | CloseSale
    | ChangeHoldTtl
    | AddInventory
    | WithdrawInventory
)
"""A command addressed to one section (it carries show_id and section_id)."""


@dataclass(frozen=True, slots=True)
class RequestHold:
    """Ask the buyer's ledger for places; it forwards a PlaceHold if they fit.

    Routed by show and buyer, so every request of one buyer for one show, to any
    section, meets the same single writer: the home of the per-buyer limit and
    of the idempotency key record. ``request_digest`` identifies the request
    the key was first used for.
    """

    command_id: str
    issued_at_ms: int
    show_id: str
    section_id: str
    buyer_id: str
    seat_ids: tuple[str, ...] = ()
    quantity: int = 0
    request_digest: str = ""


@dataclass(frozen=True, slots=True)
class SetBuyerLimit:
    """Set how many places one buyer may hold or buy in a show."""

    command_id: str
    issued_at_ms: int
    show_id: str
    max_tickets_per_buyer: int


@dataclass(frozen=True, slots=True)
class ReturnBuyerPlaces:
    """Give a buyer's places back to the ledger: the hold was refused or ended."""

    command_id: str
    issued_at_ms: int
    show_id: str
    buyer_id: str
    hold_id: str


BuyerCommand = RequestHold | SetBuyerLimit | ReturnBuyerPlaces
"""A command addressed to the buyers' ledger of a show."""


@dataclass(frozen=True, slots=True)
class HandOffSection:
    """Move a section to another command partition (sent to its current owner)."""

    command_id: str
    issued_at_ms: int
    show_id: str
    section_id: str
    to_partition: int


@dataclass(frozen=True, slots=True)
class AdoptSection:
    """Take over a section from the snapshot its previous owner handed off.

    ``snapshot`` is the section's full state as JSON (the stored entries);
    ``epoch`` is the route epoch the section lives under from now on.
    """

    command_id: str
    issued_at_ms: int
    show_id: str
    section_id: str
    from_partition: int
    epoch: int
    snapshot: str


MoveCommand = HandOffSection | AdoptSection
"""A command that moves a section between command partitions."""

Command = CreateShow | Tick | SectionCommand | BuyerCommand | MoveCommand


@dataclass(frozen=True, slots=True)
class SectionCreated:
    """A section exists and its places are free."""

    command_id: str
    occurred_at_ms: int
    show_id: str
    section_id: str
    kind: SectionKind
    capacity: int
    hold_ttl_seconds: int
    inventory_mode: InventoryMode = InventoryMode.HOLDS


@dataclass(frozen=True, slots=True)
class SectionRejected:
    """A section could not be created."""

    command_id: str
    occurred_at_ms: int
    show_id: str
    section_id: str
    reason: RejectionReason


@dataclass(frozen=True, slots=True)
class HoldPlaced:
    """Places are kept for a buyer until ``expires_at_ms`` (log time)."""

    command_id: str
    occurred_at_ms: int
    hold_id: str
    show_id: str
    section_id: str
    buyer_id: str
    seat_ids: tuple[str, ...]
    quantity: int
    expires_at_ms: int


@dataclass(frozen=True, slots=True)
class HoldRejected:
    """A hold was refused, with a stable reason and a short human detail."""

    command_id: str
    occurred_at_ms: int
    show_id: str
    section_id: str
    buyer_id: str
    reason: RejectionReason
    detail: str


@dataclass(frozen=True, slots=True)
class HoldExpired:
    """A hold lapsed at its deadline; its places are free again."""

    command_id: str
    occurred_at_ms: int
    hold_id: str
    show_id: str
    section_id: str
    seat_ids: tuple[str, ...]
    quantity: int
    buyer_id: str = ""


@dataclass(frozen=True, slots=True)
class HoldReleased:
    """A hold ended before its deadline; its places are free again."""

    command_id: str
    occurred_at_ms: int
    hold_id: str
    show_id: str
    section_id: str
    reason: ReleaseReason
    seat_ids: tuple[str, ...]
    quantity: int
    buyer_id: str = ""


@dataclass(frozen=True, slots=True)
class CheckoutStarted:
    """A hold awaits payment until ``payment_deadline_ms`` (log time).

    This is the payment request of the outbox: the payments worker charges
    ``amount_cents`` (minor units) for it, with the hold id as idempotency key.
    """

    command_id: str
    occurred_at_ms: int
    hold_id: str
    show_id: str
    section_id: str
    buyer_id: str
    payment_deadline_ms: int
    quantity: int = 0
    amount_cents: int = 0


@dataclass(frozen=True, slots=True)
class TicketsSold:
    """A paid hold became an order with one ticket per place; sold for good."""

    command_id: str
    occurred_at_ms: int
    hold_id: str
    order_id: str
    show_id: str
    section_id: str
    buyer_id: str
    seat_ids: tuple[str, ...]
    quantity: int
    ticket_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RefundRequired:
    """A payment succeeded for a hold that had already ended unsold."""

    command_id: str
    occurred_at_ms: int
    hold_id: str
    show_id: str
    section_id: str
    provider_event_id: str
    reason: RefundReason


@dataclass(frozen=True, slots=True)
class SaleOpened:
    """A section accepts new holds."""

    command_id: str
    occurred_at_ms: int
    show_id: str
    section_id: str


@dataclass(frozen=True, slots=True)
class SaleClosed:
    """A section refuses new holds; existing holds may still be paid."""

    command_id: str
    occurred_at_ms: int
    show_id: str
    section_id: str


@dataclass(frozen=True, slots=True)
class HoldTtlChanged:
    """Holds placed from now on last ``hold_ttl_seconds``."""

    command_id: str
    occurred_at_ms: int
    show_id: str
    section_id: str
    hold_ttl_seconds: int


@dataclass(frozen=True, slots=True)
class InventoryAdded:
    """Places were added: ``rows`` of new seats (reserved) or ``quantity`` (GA).

    ``seat_ids`` lists the new seats; ``capacity`` is the section's capacity after.
    """

    command_id: str
    occurred_at_ms: int
    show_id: str
    section_id: str
    rows: tuple[Row, ...]
    seat_ids: tuple[str, ...]
    quantity: int
    capacity: int


@dataclass(frozen=True, slots=True)
class InventoryWithdrawn:
    """Free places were taken off sale; ``capacity`` is the section's capacity after."""

    command_id: str
    occurred_at_ms: int
    show_id: str
    section_id: str
    seat_ids: tuple[str, ...]
    quantity: int
    capacity: int


@dataclass(frozen=True, slots=True)
class CommandRejected:
    """A command other than a hold was refused: ``command`` names its type."""

    command_id: str
    occurred_at_ms: int
    show_id: str
    section_id: str
    command: str
    reason: RejectionReason
    detail: str


@dataclass(frozen=True, slots=True)
class HoldRequested:
    """A buyer's places fit the limit; the section will decide the hold."""

    command_id: str
    occurred_at_ms: int
    show_id: str
    section_id: str
    buyer_id: str
    seat_ids: tuple[str, ...]
    quantity: int


@dataclass(frozen=True, slots=True)
class IdempotencyKeyReused:
    """A request reused a key already used for another request; nothing happened."""

    command_id: str
    occurred_at_ms: int
    show_id: str
    section_id: str
    buyer_id: str


@dataclass(frozen=True, slots=True)
class BuyerLimitSet:
    """The per-buyer limit of a show, as one partition's ledger will apply it."""

    command_id: str
    occurred_at_ms: int
    show_id: str
    max_tickets_per_buyer: int


@dataclass(frozen=True, slots=True)
class BuyerPlacesReturned:
    """Places a buyer had counted against the limit are free for them again."""

    command_id: str
    occurred_at_ms: int
    show_id: str
    buyer_id: str
    hold_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class SectionHandedOff:
    """A section left this partition; ``snapshot`` is its full state as JSON.

    From now on its previous owner forwards the section's commands to
    ``to_partition``, where it lives under route ``epoch``.
    """

    command_id: str
    occurred_at_ms: int
    show_id: str
    section_id: str
    from_partition: int
    to_partition: int
    epoch: int
    snapshot: str


@dataclass(frozen=True, slots=True)
class SectionAdopted:
    """A section now lives on ``to_partition`` under route ``epoch``.

    The counts are the section's own at the hand-off, so a read model can take
    them as they are, whatever it folded of the previous owner's events.
    """

    command_id: str
    occurred_at_ms: int
    show_id: str
    section_id: str
    from_partition: int
    to_partition: int
    epoch: int
    kind: SectionKind
    capacity: int
    held: int
    sold: int
    hold_ttl_seconds: int


Event = (
    SectionCreated
    | SectionRejected
    | HoldPlaced
    | HoldRejected
    | HoldExpired
    | HoldReleased
    | CheckoutStarted
    | TicketsSold
    | RefundRequired
    | SaleOpened
    | SaleClosed
    | HoldTtlChanged
    | InventoryAdded
    | InventoryWithdrawn
    | CommandRejected
    | HoldRequested
    | IdempotencyKeyReused
    | BuyerLimitSet
    | BuyerPlacesReturned
    | SectionHandedOff
    | SectionAdopted
)

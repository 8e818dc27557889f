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
    """Stable codes for refused holds; the gateway maps each to a problem type."""

    SOLD_OUT = "sold_out"
    SEAT_UNAVAILABLE = "seat_unavailable"
    UNKNOWN_SEAT = "unknown_seat"
    UNKNOWN_SECTION = "unknown_section"
    INVALID_REQUEST = "invalid_request"
    BUYER_LIMIT_REACHED = "buyer_limit_reached"
    SECTION_EXISTS = "section_exists"


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


Command = CreateShow | PlaceHold


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


Event = SectionCreated | SectionRejected | HoldPlaced | HoldRejected | HoldExpired

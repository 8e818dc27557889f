"""The pure domain core: section inventories that turn commands into events.

No I/O and no clock: time is the log time carried by each command, so replaying the
same commands in the same order yields the same events. State is a fold of events
(``apply``); ``handle_hold`` decides, then folds what it decided. The stream adapter
persists state as small entries (``drain_changes``) and rebuilds it with
``SectionInventory.restore``.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from commands.model import (
    Command,
    CreateShow,
    Event,
    HoldExpired,
    HoldPlaced,
    HoldRejected,
    PlaceHold,
    RejectionReason,
    Row,
    SectionCreated,
    SectionKind,
    SectionRejected,
    SectionSpec,
)

EntryValue = Any
"""A JSON-ready value of one persisted state entry (``None`` deletes it)."""

META_ENTRY = "meta"
CLOCK_ENTRY = "clock"
HOLD_ENTRY_PREFIX = "hold:"
CLOSED_HOLD = 0
"""Entry value of a hold that ended: its id stays known, its places are free."""


@dataclass(slots=True)
class OpenHold:
    """Places kept for one buyer until a log-time deadline."""

    hold_id: str
    buyer_id: str
    seat_ids: tuple[str, ...]
    quantity: int
    expires_at_ms: int


@dataclass(slots=True)
class SectionInventory:
    """One section's places: free, held or sold, decided in log order."""

    show_id: str
    spec: SectionSpec
    hold_ttl_seconds: int
    max_tickets_per_buyer: int
    clock_ms: int = 0
    holds: dict[str, OpenHold] = field(default_factory=dict)
    sold_count: int = 0
    _all_seats: frozenset[str] = frozenset()
    _free_seats: set[str] = field(default_factory=set)
    _held_count: int = 0
    _buyer_places: dict[str, int] = field(default_factory=dict)
    _expiries: list[tuple[int, str]] = field(default_factory=list)
    _placed_ids: set[str] = field(default_factory=set)
    _dirty: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._all_seats = frozenset(self.spec.seat_ids())
        self._free_seats = set(self._all_seats)

    @property
    def capacity(self) -> int:
        """All places of the section, whatever their state."""
        return self.spec.place_count()

    @property
    def held_count(self) -> int:
        """Places kept by open holds."""
        return self._held_count

    @property
    def free_count(self) -> int:
        """Places that a new hold could take."""
        return self.capacity - self._held_count - self.sold_count

    def free_seat_ids(self) -> frozenset[str]:
        """Seats of a reserved section that are neither held nor sold."""
        return frozenset(self._free_seats)

    def handle_hold(self, command: PlaceHold) -> list[Event]:
        """Expire lapsed holds, then place or refuse the hold; fold and return."""
        now_ms = max(self.clock_ms, command.issued_at_ms)
        events: list[Event] = list(self._lapsed_holds(command.command_id, now_ms))
        for event in events:
            self.apply(event)
        self.clock_ms = now_ms
        self._dirty.add(CLOCK_ENTRY)

        if command.command_id in self._placed_ids:
            # TODO(limit): a redelivered hold gives no event and no answer of its own;
            # idempotent replies across sections and restarts come with the
            # idempotency-key store of the core issue.
            return events
        refusal = self._refusal(command)
        if refusal is not None:
            reason, detail = refusal
            events.append(
                HoldRejected(
                    command_id=command.command_id,
                    occurred_at_ms=now_ms,
                    show_id=self.show_id,
                    section_id=self.spec.section_id,
                    buyer_id=command.buyer_id,
                    reason=reason,
                    detail=detail,
                )
            )
        else:
            placed = self._placed(command, now_ms)
            self.apply(placed)
            events.append(placed)
        return events

    def _refusal(self, command: PlaceHold) -> tuple[RejectionReason, str] | None:
        reserved = self.spec.kind is SectionKind.RESERVED
        quantity = len(command.seat_ids) if reserved else command.quantity
        if reserved and (command.quantity not in (0, quantity) or not quantity):
            return RejectionReason.INVALID_REQUEST, "name one or more seats"
        if not reserved and (command.seat_ids or quantity <= 0):
            return RejectionReason.INVALID_REQUEST, "ask for a positive quantity"
        if reserved and len(set(command.seat_ids)) != quantity:
            return RejectionReason.INVALID_REQUEST, "a seat is named twice"

        already = self._buyer_places.get(command.buyer_id, 0)
        if already + quantity > self.max_tickets_per_buyer:
            limit = self.max_tickets_per_buyer
            return RejectionReason.BUYER_LIMIT_REACHED, f"at most {limit} per buyer"

        if reserved:
            unknown = [s for s in command.seat_ids if s not in self._all_seats]
            if unknown:
                return RejectionReason.UNKNOWN_SEAT, f"no seat {unknown[0]}"
            taken = [s for s in command.seat_ids if s not in self._free_seats]
            if taken:
                return RejectionReason.SEAT_UNAVAILABLE, f"seat {taken[0]} is taken"
            return None
        if quantity > self.free_count:
            return RejectionReason.SOLD_OUT, f"{self.free_count} places left"
        return None

    def _placed(self, command: PlaceHold, now_ms: int) -> HoldPlaced:
        reserved = self.spec.kind is SectionKind.RESERVED
        return HoldPlaced(
            command_id=command.command_id,
            occurred_at_ms=now_ms,
            hold_id=command.command_id,
            show_id=self.show_id,
            section_id=self.spec.section_id,
            buyer_id=command.buyer_id,
            seat_ids=command.seat_ids,
            quantity=len(command.seat_ids) if reserved else command.quantity,
            expires_at_ms=now_ms + self.hold_ttl_seconds * 1000,
        )

    def _lapsed_holds(self, command_id: str, now_ms: int) -> Iterator[HoldExpired]:
        expiries = self._expiries
        while expiries and expiries[0][0] <= now_ms:
            _, hold_id = heapq.heappop(expiries)
            hold = self.holds.get(hold_id)
            if hold is None or hold.expires_at_ms > now_ms:
                continue
            yield HoldExpired(
                command_id=command_id,
                occurred_at_ms=now_ms,
                hold_id=hold_id,
                show_id=self.show_id,
                section_id=self.spec.section_id,
                seat_ids=hold.seat_ids,
                quantity=hold.quantity,
            )

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
        elif isinstance(event, HoldExpired):
            self._remove_hold(event.hold_id)

    def _add_hold(self, hold: OpenHold) -> None:
        # TODO(limit): ids of placed holds are kept for the life of the section so
        # a redelivery never places twice; past ~1M holds per section (~100 MB),
        # bound them by the command topic's retention.
        self._placed_ids.add(hold.hold_id)
        self.holds[hold.hold_id] = hold
        self._free_seats.difference_update(hold.seat_ids)
        self._held_count += hold.quantity
        self._buyer_places[hold.buyer_id] = (
            self._buyer_places.get(hold.buyer_id, 0) + hold.quantity
        )
        heapq.heappush(self._expiries, (hold.expires_at_ms, hold.hold_id))
        self._dirty.add(HOLD_ENTRY_PREFIX + hold.hold_id)

    def _remove_hold(self, hold_id: str) -> None:
        hold = self.holds.pop(hold_id)
        self._free_seats.update(hold.seat_ids)
        self._held_count -= hold.quantity
        remaining = self._buyer_places[hold.buyer_id] - hold.quantity
        if remaining:
            self._buyer_places[hold.buyer_id] = remaining
        else:
            del self._buyer_places[hold.buyer_id]
        self._dirty.add(HOLD_ENTRY_PREFIX + hold_id)

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
        hold = self.holds.get(name.removeprefix(HOLD_ENTRY_PREFIX))
        if hold is None:
            return CLOSED_HOLD
        return [hold.buyer_id, list(hold.seat_ids), hold.quantity, hold.expires_at_ms]

    @classmethod
    def restore(cls, entries: Mapping[str, EntryValue]) -> SectionInventory:
        """Rebuild a section from the entries ``drain_changes`` produced."""
        meta = entries[META_ENTRY]
        section = cls(
            show_id=meta["show_id"],
            spec=_spec_from_entry(meta["spec"]),
            hold_ttl_seconds=meta["hold_ttl_seconds"],
            max_tickets_per_buyer=meta["max_tickets_per_buyer"],
            clock_ms=entries.get(CLOCK_ENTRY, 0),
        )
        for name, value in sorted(entries.items()):
            if name.startswith(HOLD_ENTRY_PREFIX) and value == CLOSED_HOLD:
                section._placed_ids.add(name.removeprefix(HOLD_ENTRY_PREFIX))
            elif name.startswith(HOLD_ENTRY_PREFIX) and value is not None:
                buyer_id, seat_ids, quantity, expires_at_ms = value
                hold_id = name.removeprefix(HOLD_ENTRY_PREFIX)
                section._add_hold(
                    OpenHold(
                        hold_id, buyer_id, tuple(seat_ids), quantity, expires_at_ms
                    )
                )
        section._dirty.clear()
        return section


def _meta_entry(section: SectionInventory) -> dict[str, Any]:
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
        },
    }


def _spec_from_entry(raw: Mapping[str, Any]) -> SectionSpec:
    return SectionSpec(
        section_id=raw["section_id"],
        kind=SectionKind(raw["kind"]),
        capacity=raw["capacity"],
        rows=tuple(Row(label, tuple(numbers)) for label, numbers in raw["rows"]),
    )


def section_key(show_id: str, section_id: str) -> str:
    """The inventory key of a section: what the log is keyed and partitioned by."""
    return f"{show_id}/{section_id}"


class PartitionInventory:
    """All sections one writer owns; routes each command to its section."""

    def __init__(self, sections: Mapping[str, SectionInventory] | None = None) -> None:
        self.sections: dict[str, SectionInventory] = dict(sections or {})

    def decide(self, command: Command) -> list[Event]:
        """Decide one command and fold its events into the state."""
        if isinstance(command, CreateShow):
            return self._create_sections(command)
        section = self.sections.get(section_key(command.show_id, command.section_id))
        if section is None:
            return [
                HoldRejected(
                    command_id=command.command_id,
                    occurred_at_ms=command.issued_at_ms,
                    show_id=command.show_id,
                    section_id=command.section_id,
                    buyer_id=command.buyer_id,
                    reason=RejectionReason.UNKNOWN_SECTION,
                    detail="no such section in this show",
                )
            ]
        return section.handle_hold(command)

    def decide_all(self, commands: Iterable[Command]) -> list[Event]:
        """Decide commands in log order."""
        events: list[Event] = []
        for command in commands:
            events.extend(self.decide(command))
        return events

    def _create_sections(self, command: CreateShow) -> list[Event]:
        events: list[Event] = []
        for spec in command.sections:
            key = section_key(command.show_id, spec.section_id)
            if key in self.sections:
                events.append(
                    SectionRejected(
                        command_id=command.command_id,
                        occurred_at_ms=command.issued_at_ms,
                        show_id=command.show_id,
                        section_id=spec.section_id,
                        reason=RejectionReason.SECTION_EXISTS,
                    )
                )
                continue
            section = SectionInventory(
                show_id=command.show_id,
                spec=spec,
                hold_ttl_seconds=command.hold_ttl_seconds,
                max_tickets_per_buyer=command.max_tickets_per_buyer,
                clock_ms=command.issued_at_ms,
            )
            section._dirty.update((META_ENTRY, CLOCK_ENTRY))
            self.sections[key] = section
            events.append(
                SectionCreated(
                    command_id=command.command_id,
                    occurred_at_ms=command.issued_at_ms,
                    show_id=command.show_id,
                    section_id=spec.section_id,
                    kind=spec.kind,
                    capacity=spec.place_count(),
                    hold_ttl_seconds=command.hold_ttl_seconds,
                )
            )
        return events

    def drain_changes(self) -> dict[str, dict[str, EntryValue]]:
        """Changed entries of every section, by section key."""
        changes = {}
        for key, section in self.sections.items():
            if section._dirty:
                changes[key] = section.drain_changes()
        return changes

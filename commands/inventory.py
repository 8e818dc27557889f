"""The pure domain core: section inventories that turn commands into events.

No I/O and no clock: time is the log time carried by each command, so replaying the
same commands in the same order yields the same events. State is a fold of events
(``SectionInventory.apply``, in ``commands.state``); decisions live in
``commands.section``; per-buyer limits and idempotency keys in ``commands.buyers``.
The stream adapter persists state as small entries (``drain_changes``) and
rebuilds it with ``PartitionInventory.restore``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Self

from commands.buyers import BuyerLedgers, is_ledger_key
from commands.model import (
    Command,
    CommandRejected,
    CreateShow,
    Event,
    HoldRejected,
    PlaceHold,
    RejectionReason,
    RequestHold,
    ReturnBuyerPlaces,
    SectionCommand,
    SectionCreated,
    SectionKind,
    SectionRejected,
    SectionSpec,
    SetBuyerLimit,
    Tick,
)
from commands.section import SectionInventory
from commands.state import (
    CLOCK_ENTRY,
    CLOSED_HOLD,
    COMMAND_ENTRY_PREFIX,
    META_ENTRY,
    EntryValue,
    HoldState,
    OpenHold,
)
from commands.stripes import MAX_STRIPES, low_water_for, stripe_of

__all__ = [
    "CLOSED_HOLD",
    "EntryValue",
    "HoldState",
    "OpenHold",
    "PartitionInventory",
    "SectionInventory",
    "section_key",
]


def section_key(show_id: str, section_id: str) -> str:
    """The inventory key of a section: what the log is keyed and partitioned by."""
    return f"{show_id}/{section_id}"


class PartitionInventory:
    """All one writer owns: its sections and its share of the buyers' ledgers."""

    def __init__(
        self,
        sections: Mapping[str, SectionInventory] | None = None,
        buyers: BuyerLedgers | None = None,
    ) -> None:
        self.sections: dict[str, SectionInventory] = dict(sections or {})
        self.buyers = buyers or BuyerLedgers()

    @classmethod
    def restore(cls, entries: Mapping[str, Mapping[str, EntryValue]]) -> Self:
        """Rebuild from stored entries by key, as ``drain_changes`` produced them."""
        inventory = cls()
        for key, found in entries.items():
            if is_ledger_key(key):
                inventory.buyers.restore(key, found)
            else:
                inventory.sections[key] = SectionInventory.restore(found)
        return inventory

    def decide(self, command: Command) -> list[Event]:
        """Decide one command and fold its events into the state."""
        if isinstance(command, CreateShow):
            return self._create_sections(command)
        if isinstance(command, Tick):
            return self._tick(command)
        if isinstance(command, RequestHold | SetBuyerLimit | ReturnBuyerPlaces):
            return self.buyers.decide(command)
        section = self.sections.get(section_key(command.show_id, command.section_id))
        if section is None:
            return [_unknown_section(command)]
        return section.handle(command)

    def decide_all(self, commands: Iterable[Command]) -> list[Event]:
        """Decide commands in log order."""
        events: list[Event] = []
        for command in commands:
            events.extend(self.decide(command))
        return events

    def _tick(self, tick: Tick) -> list[Event]:
        """Expire every due hold of every section, by deadline, then hold id."""
        due = []
        for key, section in self.sections.items():
            now_ms = max(section.clock_ms, tick.issued_at_ms)
            for hold in section._pop_due_holds(now_ms):
                due.append((hold.expires_at_ms, hold.hold_id, key, now_ms, hold))
            section.clock_ms = now_ms
            section._dirty.add(CLOCK_ENTRY)

        events: list[Event] = []
        for _, _, key, now_ms, hold in sorted(due, key=lambda d: d[:3]):
            section = self.sections[key]
            expired = section.expired(tick.command_id, now_ms, hold)
            section.apply(expired)
            events.append(expired)
        for section in self.sections.values():
            # Places given back by expiry go on to the stripes of a striped
            # section, and may let a stripe place the holds it parked.
            if section.stripes:
                events.extend(section.after_command(tick.command_id, section.clock_ms))
        return events

    def _create_sections(self, command: CreateShow) -> list[Event]:
        events: list[Event] = []
        for spec in command.sections:
            key = section_key(command.show_id, spec.section_id)
            existing = self.sections.get(key)
            if existing is not None and command.command_id in existing._decided_ids:
                continue  # a stripe's creation, delivered again
            refusal = stripe_spec_refusal(spec)
            if existing is not None or refusal is not None:
                events.append(
                    SectionRejected(
                        command_id=command.command_id,
                        occurred_at_ms=command.issued_at_ms,
                        show_id=command.show_id,
                        section_id=spec.section_id,
                        reason=refusal or RejectionReason.SECTION_EXISTS,
                    )
                )
                continue
            section = SectionInventory(
                show_id=command.show_id,
                spec=spec,
                hold_ttl_seconds=command.hold_ttl_seconds,
                max_tickets_per_buyer=command.max_tickets_per_buyer,
                clock_ms=command.issued_at_ms,
                inventory_mode=command.inventory_mode,
                payment_window_seconds=command.payment_window_seconds,
                sale_open=command.sale_open,
            )
            if spec.stripes:
                section.stripes = spec.stripes
                section.low_water = low_water_for(spec.capacity)
                section._decided_ids.add(command.command_id)
                section._dirty.add(COMMAND_ENTRY_PREFIX + command.command_id)
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
                    inventory_mode=command.inventory_mode,
                )
            )
        return events

    def drain_changes(self) -> dict[str, dict[str, EntryValue]]:
        """Changed entries of every section and ledger, by stored key."""
        changes = self.buyers.drain_changes()
        for key, section in self.sections.items():
            if section._dirty:
                changes[key] = section.drain_changes()
        return changes


def stripe_spec_refusal(spec: SectionSpec) -> RejectionReason | None:
    """Why a section spec cannot be created, if it names stripes wrongly."""
    found = stripe_of(spec.section_id)
    if not spec.stripes and found is None:
        return None
    valid = (
        found is not None
        and spec.kind is SectionKind.GENERAL_ADMISSION
        and 1 <= spec.stripes <= MAX_STRIPES
        and found[1] < spec.stripes
    )
    return None if valid else RejectionReason.INVALID_REQUEST


def _unknown_section(command: SectionCommand) -> Event:
    if isinstance(command, PlaceHold):
        return HoldRejected(
            command_id=command.command_id,
            occurred_at_ms=command.issued_at_ms,
            show_id=command.show_id,
            section_id=command.section_id,
            buyer_id=command.buyer_id,
            reason=RejectionReason.UNKNOWN_SECTION,
            detail="no such section in this show",
        )
    return CommandRejected(
        command_id=command.command_id,
        occurred_at_ms=command.issued_at_ms,
        show_id=command.show_id,
        section_id=command.section_id,
        command=type(command).__name__,
        reason=RejectionReason.UNKNOWN_SECTION,
        detail="no such section in this show",
    )

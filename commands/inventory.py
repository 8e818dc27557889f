"""The pure domain core: section inventories that turn commands into events.

No I/O and no clock: time is the log time carried by each command, so replaying the
same commands in the same order yields the same events. State is a fold of events
(``SectionInventory.apply``, in ``commands.state``); decisions live in
``commands.section``; per-buyer limits and idempotency keys in ``commands.buyers``.
The stream adapter persists state as small entries (``drain_changes``) and
rebuilds it with ``PartitionInventory.restore``. Sections move between
partitions by hand-off and adopt (``commands.moves``); commands for a section
that left are forwarded (``drain_sends``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Self

from commands.buyers import BuyerLedgers, is_ledger_key
from commands.model import (
    AdoptSection,
    Command,
    CommandRejected,
    CreateShow,
    Event,
    HandOffSection,
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
from commands.moves import (
    MOVED_ENTRY,
    MovedSection,
    adopted,
    hand_off,
    hand_off_refusal,
    section_from_snapshot,
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
    """All one writer owns: its sections and its share of the buyers' ledgers.

    ``partition`` is the command partition it decides for; ``moved`` names the
    sections that left it and where they went.
    """

    def __init__(
        self,
        sections: Mapping[str, SectionInventory] | None = None,
        buyers: BuyerLedgers | None = None,
        partition: int = 0,
        moved: Mapping[str, MovedSection] | None = None,
    ) -> None:
        self.sections: dict[str, SectionInventory] = dict(sections or {})
        self.buyers = buyers or BuyerLedgers()
        self.partition = partition
        self.moved: dict[str, MovedSection] = dict(moved or {})
        self._sends: list[tuple[int, Command]] = []
        self._removed: dict[str, set[str]] = {}
        self._moved_dirty: set[str] = set()

    @classmethod
    def restore(
        cls, entries: Mapping[str, Mapping[str, EntryValue]], partition: int = 0
    ) -> Self:
        """Rebuild from stored entries by key, as ``drain_changes`` produced them."""
        inventory = cls(partition=partition)
        for key, found in entries.items():
            if is_ledger_key(key):
                inventory.buyers.restore(key, found)
            elif META_ENTRY in found:
                inventory.sections[key] = SectionInventory.restore(found)
            elif found.get(MOVED_ENTRY) is not None:
                inventory.moved[key] = MovedSection.from_entry(found[MOVED_ENTRY])
        return inventory

    def decide(self, command: Command) -> list[Event]:
        """Decide one command and fold its events into the state."""
        if isinstance(command, CreateShow):
            return self._create_sections(command)
        if isinstance(command, Tick):
            return self._tick(command)
        if isinstance(command, RequestHold | SetBuyerLimit | ReturnBuyerPlaces):
            return self.buyers.decide(command)
        key = section_key(command.show_id, command.section_id)
        if isinstance(command, AdoptSection):
            return self._adopt(key, command)
        section = self.sections.get(key)
        if section is None:
            moved = self.moved.get(key)
            if moved is not None:
                # Sent with a stale route: the section's owner decides it.
                self._sends.append((moved.to_partition, command))
                return []
            return [_unknown_section(command)]
        if isinstance(command, HandOffSection):
            return self._hand_off(key, section, command)
        return section.handle(command)

    def drain_sends(self) -> list[tuple[int, Command]]:
        """Commands for other partitions (adopts, forwards) since the last drain.

        Each goes to the partition named with it, in this order, atomically with
        the decisions that produced it.
        """
        sends, self._sends = self._sends, []
        return sends

    def route_epoch(self, key: str) -> int:
        """The route epoch under which this partition decides a section's events."""
        section = self.sections.get(key)
        if section is not None:
            return section.route_epoch
        moved = self.moved.get(key)
        return moved.epoch - 1 if moved is not None else 0

    def _hand_off(
        self, key: str, section: SectionInventory, command: HandOffSection
    ) -> list[Event]:
        """Freeze the section here and send its snapshot to the target."""
        if command.command_id in section._decided_ids:
            return []
        refusal = hand_off_refusal(command, section, self.partition)
        if refusal is not None:
            section._decided_ids.add(command.command_id)
            section._dirty.add(COMMAND_ENTRY_PREFIX + command.command_id)
            return [refusal]

        event, adopt = hand_off(command, section, self.partition)
        del self.sections[key]
        # Names not stored yet (an older park entry due to be rewritten) go too.
        self._removed[key] = set(section.entries()) | section._dirty
        self.moved[key] = MovedSection(command.to_partition, event.epoch)
        self._moved_dirty.add(key)
        self._sends.append((command.to_partition, adopt))
        return [event]

    def _adopt(self, key: str, command: AdoptSection) -> list[Event]:
        """Take the section over from its snapshot, unless it is already newer."""
        known = self.sections.get(key)
        moved = self.moved.get(key)
        if known is not None or (moved is not None and moved.epoch >= command.epoch):
            # A redelivered or outdated adopt: the section's newer home stands.
            return []

        section = section_from_snapshot(command.snapshot)
        section.route_epoch = command.epoch
        self.sections[key] = section
        self._removed.pop(key, None)
        if self.moved.pop(key, None) is not None:
            self._moved_dirty.add(key)
        return [adopted(command, section, self.partition)]

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
            if existing is not None or key in self.moved or refusal is not None:
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
        for key, names in self._removed.items():
            changes.setdefault(key, {}).update(dict.fromkeys(names))
        for key in self._moved_dirty:
            moved = self.moved.get(key)
            entry = None if moved is None else moved.entry()
            changes.setdefault(key, {})[MOVED_ENTRY] = entry
        self._removed.clear()
        self._moved_dirty.clear()
        for key, section in self.sections.items():
            if section._dirty:
                changes.setdefault(key, {}).update(section.drain_changes())
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


def _unknown_section(command: SectionCommand | HandOffSection) -> Event:
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

"""Moving a section between command partitions: hand-off, adopt, forward.

A section lives on exactly one command partition at a time, whose single writer
decides its commands. To move it, its owner decides a ``HandOffSection``: in one
step the section leaves the owner's state, a ``SectionHandedOff`` event records
its full state (the snapshot), and an ``AdoptSection`` carrying that snapshot is
sent to the target partition; the owner keeps a *moved* marker. From then on the
old owner forwards every command for the section that still reaches it (sent
with a stale route) to the partition the marker names, and refuses to create
the section again. The target folds the snapshot back into a section, with its
decided command ids, so a command decided before the move and sent again after
it gives no second effect. Each move raises the section's route epoch by one: an
adopt of an older epoch than the one known changes nothing, so a section can
move back and forth.

The adapter sends the adopt and the forwards in the transaction of the partition
that decided them, so a move is atomic with the commands around it; it also
writes the new route (partition, epoch) to the routing topic from the
``SectionHandedOff`` event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from commands.model import (
    AdoptSection,
    CommandRejected,
    Event,
    HandOffSection,
    RejectionReason,
    SectionAdopted,
    SectionHandedOff,
)
from commands.section import SectionInventory
from commands.state import META_ENTRY, EntryValue

MOVED_ENTRY = "moved"
"""Stored entry of a section that left a partition: ``{"to": p, "epoch": e}``."""


@dataclass(frozen=True, slots=True)
class MovedSection:
    """Where a section that left this partition went, and under which epoch."""

    to_partition: int
    epoch: int

    def entry(self) -> dict[str, int]:
        """The stored form of the marker."""
        return {"to": self.to_partition, "epoch": self.epoch}

    @classmethod
    def from_entry(cls, value: EntryValue) -> MovedSection:
        """The marker a stored entry describes."""
        return cls(int(value["to"]), int(value["epoch"]))


def snapshot_of(section: SectionInventory) -> str:
    """The section's full state as canonical JSON: its entries by name."""
    # TODO(limit): the snapshot travels in one record (event and adopt); about
    # 10,000 holds and decided ids reach Kafka's default 1 MB record limit. For
    # bigger sections raise max.message.bytes or send the entries in chunks.
    return json.dumps(section.entries(), sort_keys=True, separators=(",", ":"))


def section_from_snapshot(snapshot: str) -> SectionInventory:
    """The section a snapshot describes; every entry is marked to be stored."""
    entries: dict[str, Any] = json.loads(snapshot)
    section = SectionInventory.restore(entries)
    section._dirty.update(entries)
    return section


def hand_off_refusal(
    command: HandOffSection, section: SectionInventory, partition: int
) -> CommandRejected | None:
    """Why the owner refuses to hand the section off, if it does."""
    if command.to_partition < 0 or command.to_partition == partition:
        detail = f"the section is on partition {partition} already"
        if command.to_partition < 0:
            detail = "a partition is a number from 0"
        return CommandRejected(
            command_id=command.command_id,
            occurred_at_ms=max(section.clock_ms, command.issued_at_ms),
            show_id=command.show_id,
            section_id=command.section_id,
            command=type(command).__name__,
            reason=RejectionReason.INVALID_REQUEST,
            detail=detail,
        )
    return None


def hand_off(
    command: HandOffSection, section: SectionInventory, partition: int
) -> tuple[SectionHandedOff, AdoptSection]:
    """The event of the hand-off and the adopt command for the target.

    The section's clock does not move: the hand-off decides nothing about its
    holds, so the events of the section stay those it would have without a move.
    The hand-off's own id travels as decided, so sending it again to the new
    owner does nothing.
    """
    section._decided_ids.add(command.command_id)
    section.route_epoch += 1
    section._dirty.add(META_ENTRY)
    snapshot = snapshot_of(section)
    at_ms = max(section.clock_ms, command.issued_at_ms)
    event = SectionHandedOff(
        command_id=command.command_id,
        occurred_at_ms=at_ms,
        show_id=command.show_id,
        section_id=command.section_id,
        from_partition=partition,
        to_partition=command.to_partition,
        epoch=section.route_epoch,
        snapshot=snapshot,
    )
    adopt = AdoptSection(
        command_id=f"adopt:{command.command_id}",
        issued_at_ms=command.issued_at_ms,
        show_id=command.show_id,
        section_id=command.section_id,
        from_partition=partition,
        epoch=section.route_epoch,
        snapshot=snapshot,
    )
    return event, adopt


def adopted(
    command: AdoptSection, section: SectionInventory, partition: int
) -> SectionAdopted:
    """The event of a section taken over from its snapshot, with its counts."""
    return SectionAdopted(
        command_id=command.command_id,
        occurred_at_ms=max(section.clock_ms, command.issued_at_ms),
        show_id=command.show_id,
        section_id=command.section_id,
        from_partition=command.from_partition,
        to_partition=partition,
        epoch=command.epoch,
        kind=section.spec.kind,
        capacity=section.capacity,
        held=section.held_count,
        sold=section.sold_count,
        hold_ttl_seconds=section.hold_ttl_seconds,
    )


def is_move_event(event: Event) -> bool:
    """Whether an event records a section changing partition (no effect on places)."""
    return isinstance(event, SectionHandedOff | SectionAdopted)

"""An independent audit of the event log: oversold places counted from events alone.

It shares no code with the core: it reads every committed event of a show from the
start of the log and folds holds per seat and per GA section on its own, so a bug
in the agent's counters cannot hide an oversell.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import cast

from confluent_kafka import Consumer, TopicPartition

from commands.model import (
    Event,
    HoldExpired,
    HoldPlaced,
    HoldRejected,
    HoldReleased,
    InventoryAdded,
    InventoryWithdrawn,
    SectionCreated,
    TicketsSold,
)
from infra.settings import Settings
from infra.topics import events_topic
from projections.availability import route_epoch
from schemas.codec import Headers, decode_events


@dataclass
class ShowLedger:
    """What the log says about one show, folded without the core's code."""

    capacity_by_section: Counter[str] = field(default_factory=Counter)
    held_by_section: Counter[str] = field(default_factory=Counter)
    sold_by_section: Counter[str] = field(default_factory=Counter)
    holders_by_seat: dict[str, set[str]] = field(default_factory=dict)
    open_holds: dict[str, HoldPlaced] = field(default_factory=dict)
    sold_holds: set[str] = field(default_factory=set)
    holds_placed: int = 0
    holds_expired: int = 0
    holds_released: int = 0
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    oversold: int = 0
    sold_twice: int = 0
    sold_without_hold: int = 0
    events: int = 0

    def apply(self, event: object) -> None:
        """Fold one event, counting any place held or sold beyond capacity."""
        self.events += 1
        if isinstance(event, SectionCreated):
            self.capacity_by_section[event.section_id] = event.capacity
        elif isinstance(event, InventoryAdded):
            self.capacity_by_section[event.section_id] += _places(event)
        elif isinstance(event, InventoryWithdrawn):
            self.capacity_by_section[event.section_id] -= _places(event)
        elif isinstance(event, HoldPlaced):
            self._placed(event)
        elif isinstance(event, HoldExpired | HoldReleased):
            self._ended(event.hold_id, released=isinstance(event, HoldReleased))
        elif isinstance(event, TicketsSold):
            self._sold(event)
        elif isinstance(event, HoldRejected):
            self.rejected_by_reason[event.reason.value] += 1

    def occupied(self, section_id: str) -> int:
        """Places of a section that are held or sold."""
        return self.held_by_section[section_id] + self.sold_by_section[section_id]

    def _placed(self, event: HoldPlaced) -> None:
        self.holds_placed += 1
        self.open_holds[event.hold_id] = event
        self.held_by_section[event.section_id] += event.quantity
        over = (
            self.occupied(event.section_id) - self.capacity_by_section[event.section_id]
        )
        self.oversold += max(0, min(over, event.quantity))
        for seat in event.seat_ids:
            holders = self.holders_by_seat.setdefault(
                f"{event.section_id}/{seat}", set()
            )
            if holders:
                self.oversold += 1
            holders.add(event.hold_id)

    def _ended(self, hold_id: str, released: bool) -> None:
        if released:
            self.holds_released += 1
        else:
            self.holds_expired += 1
        placed = self.open_holds.pop(hold_id, None)
        if placed is None:
            return
        self.held_by_section[placed.section_id] -= placed.quantity
        for seat in placed.seat_ids:
            self.holders_by_seat[f"{placed.section_id}/{seat}"].discard(hold_id)

    def _sold(self, event: TicketsSold) -> None:
        if event.hold_id in self.sold_holds:
            self.sold_twice += 1
            return
        placed = self.open_holds.pop(event.hold_id, None)
        if placed is None:
            self.sold_without_hold += 1
            return
        self.sold_holds.add(event.hold_id)
        self.held_by_section[placed.section_id] -= placed.quantity
        self.sold_by_section[placed.section_id] += placed.quantity


def _places(event: InventoryAdded | InventoryWithdrawn) -> int:
    return len(event.seat_ids) or event.quantity


def audit_show(
    settings: Settings, show_id: str, timeout_seconds: float = 60.0
) -> ShowLedger:
    """Read every committed event of the show up to the current end of the log."""
    topic = events_topic(settings)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"audit-{show_id}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
        ends = {p: end for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        return _fold_until(consumer, show_id, topic, ends, timeout_seconds)
    finally:
        consumer.close()


def _fold_until(
    consumer: Consumer,
    show_id: str,
    topic: str,
    ends: dict[int, int],
    timeout_seconds: float,
) -> ShowLedger:
    ledger = ShowLedger()
    prefix = f"{show_id}/".encode()
    # Events of sections that moved partition are folded last, by route epoch
    # then offset: each of them follows every epoch-0 event of its section.
    moved: list[tuple[int, int, list[Event]]] = []
    deadline = time.monotonic() + timeout_seconds
    while not _reached(consumer, topic, ends):
        if time.monotonic() > deadline:
            raise TimeoutError("the event log was not read to its end in time")
        for message in consumer.consume(1000, 0.2):
            if message.error() or not (message.key() or b"").startswith(prefix):
                continue
            headers = cast(Headers, message.headers())
            events = decode_events(message.value(), headers)
            epoch = route_epoch(headers)
            if epoch:
                moved.append((epoch, message.offset() or 0, events))
                continue
            for event in events:
                ledger.apply(event)
    for _, _, events in sorted(moved, key=lambda m: m[:2]):
        for event in events:
            ledger.apply(event)
    return ledger


def _reached(consumer: Consumer, topic: str, ends: dict[int, int]) -> bool:
    # Transaction markers take offsets but are never delivered, so compare the
    # consumer's position, not the offsets of the records seen.
    positions = consumer.position([TopicPartition(topic, p) for p in ends])
    return all(tp.offset >= ends[tp.partition] for tp in positions)

"""What the log says about one show: the independent ledger, payments, times.

Reads every committed record of the show on the event and command topics
(``read_committed``) up to their current ends. Events are folded by
``projections.ledger.ShowLedger``, which shares no code with the core, for
oversold places; payment results of the inbox, ``CheckoutStarted``,
``TicketsSold`` and ``RefundRequired`` say which holds were paid, sold or must
be refunded, and their log times make the report's timelines.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from confluent_kafka import Consumer, TopicPartition

from commands.errors import CodecError
from commands.model import (
    CheckoutStarted,
    HoldPlaced,
    RecordPaymentResult,
    RefundRequired,
    TicketsSold,
)
from infra.settings import Settings
from infra.topics import commands_topic, events_topic
from projections.ledger import ShowLedger
from schemas.codec import Headers, decode_commands, decode_events


@dataclass(frozen=True, slots=True)
class Sold:
    """One ``TicketsSold``: whose, how many, when (log time, epoch seconds)."""

    hold_id: str
    buyer_id: str
    quantity: int
    at: float


@dataclass
class SaleLog:
    """The show's log, folded."""

    ledger: ShowLedger = field(default_factory=ShowLedger)
    placed_by_hold: dict[str, float] = field(default_factory=dict)
    """Log time of each HoldPlaced (epoch seconds)."""
    checkout_at: dict[str, float] = field(default_factory=dict)
    sold: dict[str, Sold] = field(default_factory=dict)
    sold_events: int = 0
    refund_required: set[str] = field(default_factory=set)
    paid: set[str] = field(default_factory=set)
    """Holds with a successful payment result in the inbox."""
    payment_results: int = 0
    """Payment result records of the inbox, duplicates included."""
    undecodable: int = 0
    """Records of the show that did not decode (the workers dead-letter them)."""

    def apply_event(self, event: object) -> None:
        """Fold one event of the show."""
        self.ledger.apply(event)
        if isinstance(event, HoldPlaced):
            self.placed_by_hold[event.hold_id] = event.occurred_at_ms / 1000
        elif isinstance(event, CheckoutStarted):
            self.checkout_at.setdefault(event.hold_id, event.occurred_at_ms / 1000)
        elif isinstance(event, TicketsSold):
            self.sold_events += 1
            self.sold.setdefault(
                event.hold_id,
                Sold(
                    event.hold_id,
                    event.buyer_id,
                    event.quantity,
                    event.occurred_at_ms / 1000,
                ),
            )
        elif isinstance(event, RefundRequired):
            self.refund_required.add(event.hold_id)

    def apply_command(self, command: object) -> None:
        """Note a payment result of the inbox (other commands: nothing)."""
        if isinstance(command, RecordPaymentResult):
            self.payment_results += 1
            if command.succeeded:
                self.paid.add(command.hold_id)

    @property
    def placed_at(self) -> list[float]:
        """Log times of every hold placed."""
        return list(self.placed_by_hold.values())

    @property
    def places_sold(self) -> int:
        """Places sold, once per sold hold."""
        return sum(sold.quantity for sold in self.sold.values())

    def paid_without_tickets(self) -> set[str]:
        """Paid holds with neither tickets nor a refund required."""
        return self.paid - self.sold.keys() - self.refund_required

    def payment_to_sold_seconds(self) -> list[float]:
        """Log time from each sold hold's checkout to its tickets."""
        return [
            sold.at - self.checkout_at[hold]
            for hold, sold in self.sold.items()
            if hold in self.checkout_at
        ]


def read_sale_log(
    settings: Settings, show_id: str, timeout_seconds: float = 120.0
) -> SaleLog:
    """Fold the show's committed records up to the current end of both topics."""
    sale_log = SaleLog()
    events, commands = events_topic(settings), commands_topic(settings)
    folds: dict[str, Callable[[bytes | None, Headers], None]] = {
        events: lambda value, headers: _fold_events(sale_log, show_id, value, headers),
        commands: lambda value, headers: _fold_commands(
            sale_log, show_id, value, headers
        ),
    }
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"onsale-report-{show_id}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    try:
        ends = _ends(consumer, [events, commands])
        consumer.assign([TopicPartition(t, p, 0) for t, p in ends])
        prefix = f"{show_id}/".encode()
        deadline = time.monotonic() + timeout_seconds
        while not _reached(consumer, ends):
            if time.monotonic() > deadline:
                raise TimeoutError("the log was not read to its end in time")
            for message in consumer.consume(1000, 0.2):
                if message.error() or not (message.key() or b"").startswith(prefix):
                    continue
                folds[message.topic() or ""](
                    message.value(), cast(Headers, message.headers())
                )
    finally:
        consumer.close()
    return sale_log


def _fold_events(
    sale_log: SaleLog, show_id: str, value: bytes | None, headers: Headers
) -> None:
    try:
        events = decode_events(value, headers)
    except CodecError:
        sale_log.undecodable += 1
        return
    for event in events:
        if getattr(event, "show_id", show_id) == show_id:
            sale_log.apply_event(event)


def _fold_commands(
    sale_log: SaleLog, show_id: str, value: bytes | None, headers: Headers
) -> None:
    try:
        commands = decode_commands(value, headers)
    except CodecError:
        sale_log.undecodable += 1
        return
    for command in commands:
        if getattr(command, "show_id", show_id) == show_id:
            sale_log.apply_command(command)


def _ends(consumer: Consumer, topics: list[str]) -> dict[tuple[str, int], int]:
    ends = {}
    for topic in topics:
        for p in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
            end = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[
                1
            ]
            if end > 0:
                ends[(topic, p)] = end
    return ends


def _reached(consumer: Consumer, ends: dict[tuple[str, int], int]) -> bool:
    # Transaction markers take offsets but are never delivered: compare positions.
    positions = consumer.position([TopicPartition(t, p) for t, p in ends])
    return all(tp.offset >= ends[(tp.topic, tp.partition)] for tp in positions)

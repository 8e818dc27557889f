"""``ticketing partitions stripe SHOW/SECTION --stripes K``: stripe a live GA section.

The tool sends one ``StripeSection`` command to the section's partition and waits
for its verdict on the event log. Nothing else changes hands outside the log:
the section's own writer moves its free places to the new stripes by follow-up
commands in its Kafka transaction (``commands.stripes``), holds still in flight
to the section are forwarded to a stripe, and places its open holds give back
later follow them. So the sale goes on while it runs: no command is lost or
decided twice, and the sum of the capacities stays the section's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from commands.errors import InfrastructureError, TicketingError
from commands.inventory import section_key
from commands.model import CommandRejected, Event, SectionStriped, StripeSection
from commands.stripes import MAX_STRIPES
from infra.routing import RoutingTable, read_routes
from infra.settings import Settings
from infra.topics import commands_topic, events_topic
from schemas.codec import Headers, command_headers, decode_events, encode_commands


class StripeRefused(TicketingError):
    """The section's writer refused to stripe it (detail says why)."""


@dataclass(frozen=True, slots=True)
class StripeResult:
    """What the writer decided: the shares of the free places, by stripe."""

    show_id: str
    section_id: str
    stripes: int
    shares: tuple[int, ...]
    kept_capacity: int


def add_stripe_parser(actions: Any) -> None:
    """The ``stripe`` action of the ``partitions`` group."""
    stripe = actions.add_parser(
        "stripe", help="split a live GA section into stripes on other partitions"
    )
    stripe.add_argument("target", metavar="SHOW/SECTION")
    stripe.add_argument(
        "--stripes", type=int, required=True, help=f"2 to {MAX_STRIPES} stripes"
    )
    stripe.add_argument("--timeout-seconds", type=float, default=30.0)


def run_stripe(settings: Settings, target: str, stripes: int, timeout: float) -> int:
    """Stripe the section named ``SHOW/SECTION`` and print the outcome."""
    show_id, slash, section_id = target.partition("/")
    if not slash or not show_id or not section_id or "/" in section_id:
        raise StripeRefused(f"name the section as SHOW/SECTION, not {target!r}")
    result = stripe_section(settings, show_id, section_id, stripes, timeout)
    print(
        f"{result.show_id}/{result.section_id}: {result.stripes} stripes, "
        f"free places {list(result.shares)}; the section keeps "
        f"{result.kept_capacity} held or sold places and passes on what they free"
    )
    return 0


def stripe_section(
    settings: Settings,
    show_id: str,
    section_id: str,
    stripes: int,
    timeout_seconds: float = 30.0,
) -> StripeResult:
    """Send ``StripeSection`` to the section's partition and await its verdict."""
    now_ms = time.time_ns() // 1_000_000
    command = StripeSection(
        command_id=f"stripe:{show_id}/{section_id}:{stripes}:{now_ms}",
        issued_at_ms=now_ms,
        show_id=show_id,
        section_id=section_id,
        stripes=stripes,
    )
    key = section_key(show_id, section_id)
    # Where the section lives now: a moved section's route, else the hash; its
    # verdict is written on that partition's events.
    partition = RoutingTable(read_routes(settings)).partition(
        key, settings.command_partitions
    )

    consumer = _verdict_reader(settings, partition)
    try:
        _send(settings, key, partition, command)
        event = _await_verdict(consumer, command.command_id, timeout_seconds)
    finally:
        consumer.close()

    if isinstance(event, CommandRejected):
        raise StripeRefused(f"{event.reason}: {event.detail}")
    if not isinstance(event, SectionStriped):
        raise StripeRefused(f"{type(event).__name__}: the section was not striped")
    return StripeResult(
        show_id, section_id, event.stripes, event.shares, event.capacity
    )


def _verdict_reader(settings: Settings, partition: int) -> Consumer:
    """A read-committed reader of the partition's events from its current end."""
    topic = events_topic(settings)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"stripe-tool-{time.time_ns()}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    try:
        _, end = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=10
        )
    except KafkaException as exc:
        consumer.close()
        raise InfrastructureError(f"cannot read {topic}: {exc}") from exc
    consumer.assign([TopicPartition(topic, partition, end)])
    return consumer


def _send(settings: Settings, key: str, partition: int, command: StripeSection) -> None:
    producer = Producer(
        {"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True}
    )
    producer.produce(
        commands_topic(settings),
        key=key.encode(),
        value=encode_commands([command]),
        partition=partition,
        headers=cast(Any, command_headers()),
    )
    if producer.flush(10.0):
        raise InfrastructureError("the stripe command was not acknowledged in time")


def _await_verdict(consumer: Consumer, command_id: str, timeout: float) -> Event:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in consumer.consume(500, 0.2):
            if message.error():
                continue
            events = decode_events(message.value(), cast(Headers, message.headers()))
            for event in events:
                verdict = isinstance(event, SectionStriped | CommandRejected)
                if verdict and event.command_id == command_id:
                    return event
    raise InfrastructureError(
        f"no verdict for {command_id} within {timeout:.0f} s: is the agent running?"
    )

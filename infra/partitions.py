"""``ticketing partitions``: see where load lands, and move a section.

``status`` reads, for every command partition, its offsets, the agent group's
committed offset (the lag), and a bounded sample of its newest records, decoded
to commands: their rate, the sections the partition serves with their share of
its commands, and its hottest keys. ``move`` sends a ``HandOffSection`` to the
section's current partition and waits, on the event log, until the new owner
adopted it; the pause a move costs a section is measured there.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from commands.buyers import buyer_key, limit_key
from commands.errors import CodecError, InfrastructureError, TicketingError
from commands.inventory import section_key
from commands.model import (
    Command,
    CommandRejected,
    CreateShow,
    Event,
    HandOffSection,
    RequestHold,
    ReturnBuyerPlaces,
    SectionAdopted,
    SectionHandedOff,
    SetBuyerLimit,
    Tick,
)
from infra.routing import Route, RoutingTable, read_routes
from infra.settings import Settings
from infra.topics import commands_topic, events_topic
from schemas.codec import (
    command_headers,
    decode_commands,
    decode_events,
    encode_commands,
)

logger = logging.getLogger(__name__)

TICK_KEY = "~tick"
HOTTEST = 5


class MoveRefused(TicketingError):
    """A move the tool or the section's owner refused; nothing moved."""


@dataclass(slots=True)
class PartitionStatus:
    """What one command partition serves, from its offsets and newest records."""

    partition: int
    end_offset: int
    committed_offset: int | None
    sampled_records: int = 0
    window_seconds: float = 0.0
    commands: Counter[str] = field(default_factory=Counter)
    ticks: int = 0

    @property
    def lag(self) -> int | None:
        """Records the agent group has not committed (markers included)."""
        if self.committed_offset is None:
            return None
        return max(0, self.end_offset - self.committed_offset)

    @property
    def command_count(self) -> int:
        """Commands sampled, ticks left out."""
        return sum(self.commands.values())

    @property
    def commands_per_second(self) -> float:
        """Commands per second over the sampled window, ticks left out."""
        if self.window_seconds <= 0:
            return 0.0
        return self.command_count / self.window_seconds

    def share(self, key: str) -> float:
        """The key's part of the partition's sampled commands."""
        return self.commands[key] / self.command_count if self.command_count else 0.0


def command_key(command: Command) -> str:
    """The inventory key a command is about (what its traffic is counted by)."""
    if isinstance(command, Tick):
        return TICK_KEY
    if isinstance(command, CreateShow):
        return section_key(command.show_id, command.sections[0].section_id)
    if isinstance(command, RequestHold | ReturnBuyerPlaces):
        return buyer_key(command.show_id, command.buyer_id)
    if isinstance(command, SetBuyerLimit):
        return limit_key(command.show_id)
    return section_key(command.show_id, command.section_id)


def is_section_key(key: str) -> bool:
    """Whether a key names a section (not a ledger, not ticks)."""
    return not key.startswith("~") and "/~" not in key


# -- status ---------------------------------------------------------------------


def read_status(
    settings: Settings,
    sample_records: int = 500,
    window_seconds: float = 10.0,
    timeout_seconds: float = 10.0,
) -> tuple[list[PartitionStatus], dict[str, Route]]:
    """Offsets, lag and a sample of the newest records of every command partition.

    At most ``sample_records`` records per partition are read, and of those only
    records from the last ``window_seconds``.
    """
    topic = commands_topic(settings)
    routes = read_routes(settings, timeout_seconds)
    consumer = _consumer(settings, settings.agent_id)
    try:
        partitions = range(settings.command_partitions)
        committed = consumer.committed(
            [TopicPartition(topic, p) for p in partitions], timeout=timeout_seconds
        )
        statuses = []
        for tp in committed:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, tp.partition), timeout=timeout_seconds
            )
            offset = tp.offset if tp.offset >= 0 else None
            statuses.append(PartitionStatus(tp.partition, high, offset))
            start = max(low, high - sample_records)
            if high > start:
                _sample(consumer, topic, statuses[-1], start, window_seconds)
    finally:
        consumer.close()
    return statuses, routes


def _sample(
    consumer: Any,
    topic: str,
    status: PartitionStatus,
    start: int,
    window_seconds: float,
    timeout_seconds: float = 5.0,
) -> None:
    """Count the commands of the partition's records from ``start`` to its end."""
    consumer.assign([TopicPartition(topic, status.partition, start)])
    now_ms = time.time() * 1000
    since_ms = now_ms - window_seconds * 1000
    oldest_ms = now_ms
    deadline = time.monotonic() + timeout_seconds
    done = False
    while not done and time.monotonic() < deadline:
        for message in consumer.consume(500, 0.2):
            if message.error() is not None:
                done |= message.error().code() == KafkaError._PARTITION_EOF
                continue
            status.sampled_records += 1
            done |= message.offset() >= status.end_offset - 1
            _, at_ms = message.timestamp()
            if at_ms < since_ms:
                continue
            oldest_ms = min(oldest_ms, at_ms)
            try:
                commands = decode_commands(message.value(), message.headers())
            except CodecError:
                continue
            for command in commands:
                key = command_key(command)
                if key == TICK_KEY:
                    status.ticks += 1
                else:
                    status.commands[key] += 1
    # The window the sample covers: all of it, unless the sample ran out first.
    status.window_seconds = min(window_seconds, max(0.001, (now_ms - oldest_ms) / 1000))
    if not status.commands and not status.ticks:
        status.window_seconds = window_seconds


def status_document(
    statuses: Iterable[PartitionStatus], routes: dict[str, Route], partitions: int
) -> dict[str, Any]:
    """The status as a JSON-ready document."""
    table = RoutingTable(routes)
    body = []
    for status in statuses:
        sections = {
            key
            for key in status.commands
            if is_section_key(key)
            and table.partition(key, partitions) == status.partition
        }
        sections.update(k for k, r in routes.items() if r.partition == status.partition)
        body.append(
            {
                "partition": status.partition,
                "commands_per_second": round(status.commands_per_second, 1),
                "window_seconds": round(status.window_seconds, 1),
                "end_offset": status.end_offset,
                "committed_offset": status.committed_offset,
                "lag": status.lag,
                "sampled_records": status.sampled_records,
                "sampled_commands": status.command_count,
                "ticks": status.ticks,
                "sections": [
                    {
                        "key": key,
                        "commands": status.commands[key],
                        "share": round(status.share(key), 3),
                        "route_epoch": routes[key].epoch if key in routes else 0,
                    }
                    for key in sorted(sections, key=lambda k: -status.commands[k])
                ],
                "hottest_keys": [
                    {"key": key, "commands": n, "share": round(status.share(key), 3)}
                    for key, n in status.commands.most_common(HOTTEST)
                ],
            }
        )
    return {
        "partitions": body,
        "routes": {
            key: {"partition": r.partition, "epoch": r.epoch}
            for key, r in sorted(routes.items())
        },
    }


def render_status(document: dict[str, Any]) -> str:
    """The status as lines for a person."""
    lines = []
    for p in document["partitions"]:
        lag = "unknown" if p["lag"] is None else str(p["lag"])
        lines.append(
            f"partition {p['partition']}: {p['commands_per_second']} commands/s "
            f"(last {p['window_seconds']} s), agent lag {lag} records, "
            f"{p['sampled_records']} records sampled"
        )
        sections = ", ".join(
            f"{s['key']} {s['share']:.0%}"
            + (f" (moved, epoch {s['route_epoch']})" if s["route_epoch"] else "")
            for s in p["sections"]
        )
        hottest = ", ".join(
            f"{k['key']} {k['commands']} ({k['share']:.0%})" for k in p["hottest_keys"]
        )
        lines.append(f"  sections: {sections or '-'}")
        lines.append(f"  hottest:  {hottest or '-'}")
    routes = document["routes"]
    lines.append(
        "routes: "
        + (
            ", ".join(
                f"{k} -> {r['partition']} (epoch {r['epoch']})"
                for k, r in routes.items()
            )
            or "none (every key on its hashed partition)"
        )
    )
    return "\n".join(lines)


# -- move -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MoveResult:
    """A finished move, with its wall times (Kafka record times, seconds)."""

    key: str
    from_partition: int
    to_partition: int
    epoch: int
    handed_off_after_seconds: float
    adopted_after_seconds: float

    def document(self) -> dict[str, Any]:
        """The result as a JSON-ready document."""
        return {
            "key": self.key,
            "from_partition": self.from_partition,
            "to_partition": self.to_partition,
            "epoch": self.epoch,
            "handed_off_after_seconds": round(self.handed_off_after_seconds, 3),
            "adopted_after_seconds": round(self.adopted_after_seconds, 3),
        }


def parse_section(text: str) -> tuple[str, str]:
    """``SHOW/SECTION`` as (show, section); raises ``MoveRefused`` otherwise."""
    show_id, _, section_id = text.partition("/")
    if not show_id or not section_id or "/" in section_id or section_id[0] == "~":
        raise MoveRefused(f"name a section as SHOW/SECTION, not {text!r}")
    return show_id, section_id


def move_section(
    settings: Settings, section: str, to_partition: int, timeout_seconds: float = 30.0
) -> MoveResult:
    """Hand a section off to ``to_partition`` and wait until it is adopted there."""
    show_id, section_id = parse_section(section)
    key = section_key(show_id, section_id)
    partitions = settings.command_partitions
    if not 0 <= to_partition < partitions:
        raise MoveRefused(f"--to must be a partition from 0 to {partitions - 1}")
    current = RoutingTable(read_routes(settings)).partition(key, partitions)
    if current == to_partition:
        raise MoveRefused(f"{key} is on partition {to_partition} already")

    watcher = _event_watcher(settings)
    try:
        command = HandOffSection(
            command_id=f"move-{uuid.uuid4().hex}",
            issued_at_ms=time.time_ns() // 1_000_000,
            show_id=show_id,
            section_id=section_id,
            to_partition=to_partition,
        )
        sent_at = time.time()
        _send(settings, key, current, command)
        logger.info(
            "section hand-off sent",
            extra={"key": key, "partition": current, "to_partition": to_partition},
        )
        return _await_move(watcher, key, command, sent_at, timeout_seconds)
    finally:
        watcher.close()


def _send(settings: Settings, key: str, partition: int, command: Command) -> None:
    producer = Producer(
        {"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True}
    )
    producer.produce(
        commands_topic(settings),
        encode_commands([command]),
        key.encode(),
        partition=partition,
        headers=command_headers(),
    )
    if producer.flush(10.0) != 0:
        raise InfrastructureError("the command log did not take the hand-off")


def _event_watcher(settings: Settings) -> Any:
    """A consumer of every event partition from its end now, committed only."""
    consumer = _consumer(settings, f"{settings.topic_prefix}-partitions-tool")
    topic = events_topic(settings)
    ends = []
    for p in range(settings.command_partitions):
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        ends.append(TopicPartition(topic, p, high))
    consumer.assign(ends)
    return consumer


def _await_move(
    watcher: Any,
    key: str,
    command: HandOffSection,
    sent_at: float,
    timeout_seconds: float,
) -> MoveResult:
    handed: tuple[SectionHandedOff, float] | None = None
    adopt_id = f"adopt:{command.command_id}"
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        for message in watcher.consume(500, 0.2):
            if message.error() is not None:
                continue
            at = message.timestamp()[1] / 1000
            for event in _decoded(message):
                if isinstance(event, CommandRejected) and (
                    event.command_id == command.command_id
                ):
                    raise MoveRefused(f"{key} not moved: {event.detail}")
                if (
                    isinstance(event, SectionHandedOff)
                    and event.command_id == command.command_id
                ):
                    handed = (event, at)
                if isinstance(event, SectionAdopted) and event.command_id == adopt_id:
                    return MoveResult(
                        key,
                        event.from_partition,
                        event.to_partition,
                        event.epoch,
                        (handed[1] if handed else at) - sent_at,
                        at - sent_at,
                    )
    state = "handed off, not adopted yet" if handed else "no answer from its owner"
    raise InfrastructureError(f"{key}: {state} after {timeout_seconds} s")


def _decoded(message: Any) -> list[Event]:
    try:
        return decode_events(message.value(), message.headers())
    except CodecError:
        return []


def _consumer(settings: Settings, group_id: str) -> Any:
    return Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": group_id,
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        }
    )


def dumps(document: dict[str, Any]) -> str:
    """A document as indented JSON."""
    return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode()

"""CommandBus and OutcomeWaiter against the real Kafka that ``infra`` starts.

Start it first with ``python -m infra.services up``; a broker that is down makes
these tests fail, never skip. Each test run uses its own topic prefix and deletes
its topics at the end.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from commands.errors import InfrastructureError
from commands.inventory import section_key
from commands.model import HoldPlaced, PlaceHold
from gateway.bus import CommandBus, CommandLogUnavailable
from gateway.outcomes import OutcomeWaiter
from infra.settings import Settings
from infra.topics import (
    commands_topic,
    ensure_topics,
    events_topic,
    partition_for,
    topic_specs,
)
from schemas.codec import decode_commands, encode_events, event_headers

pytestmark = pytest.mark.integration

TIMEOUT_SECONDS = 15.0
DOWN_HINT = "is it up? run: python -m infra.services up"
KEY = section_key("show-1", "sec-a")


@pytest.fixture(scope="module")
def settings() -> Iterator[Settings]:
    """Settings with a fresh topic prefix whose topics exist, deleted afterwards."""
    settings = dataclasses.replace(
        Settings.from_env(), topic_prefix=f"t{uuid.uuid4().hex[:8]}"
    )
    try:
        ensure_topics(settings, timeout_seconds=TIMEOUT_SECONDS)
    except InfrastructureError as exc:
        pytest.fail(f"Kafka at {settings.kafka_bootstrap} is down ({exc}); {DOWN_HINT}")
    yield settings
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    names = [spec.name for spec in topic_specs(settings)]
    for future in admin.delete_topics(
        names, operation_timeout=TIMEOUT_SECONDS
    ).values():
        future.result(timeout=TIMEOUT_SECONDS)


@pytest.fixture()
async def bus(settings: Settings) -> AsyncIterator[CommandBus]:
    """A started command bus, closed afterwards."""
    bus = CommandBus(settings)
    bus.start()
    yield bus
    bus.close()


@pytest.fixture()
async def waiter(settings: Settings) -> AsyncIterator[OutcomeWaiter]:
    """A started outcome waiter, stopped afterwards."""
    waiter = OutcomeWaiter(settings)
    waiter.start(asyncio.get_running_loop())
    yield waiter
    waiter.stop()


def place_hold(command_id: str) -> PlaceHold:
    """A GA hold for two places."""
    now_ms = time.time_ns() // 1_000_000
    return PlaceHold(command_id, now_ms, "show-1", "sec-a", "buyer-1", (), 2)


def read_one_command(settings: Settings) -> tuple[int, PlaceHold]:
    """The first command record of the commands topic: its partition and command."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"{settings.topic_prefix}-reader",
            "enable.auto.commit": False,
        }
    )
    topic = commands_topic(settings)
    try:
        consumer.assign(
            [TopicPartition(topic, p, 0) for p in range(settings.command_partitions)]
        )
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            [command] = decode_commands(message.value(), message.headers())
            assert isinstance(command, PlaceHold)
            return message.partition(), command
    finally:
        consumer.close()
    pytest.fail("no command record arrived in time")


def emit_events_in_transaction(settings: Settings, placed: HoldPlaced) -> None:
    """Write a poison record and an event batch in one committed transaction."""
    producer = Producer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "transactional.id": f"{settings.topic_prefix}-agent-test",
        }
    )
    topic, partition = (
        events_topic(settings),
        partition_for(KEY, settings.command_partitions),
    )
    producer.init_transactions(TIMEOUT_SECONDS)
    producer.begin_transaction()
    producer.produce(topic, b"\xff", KEY, partition=partition, headers=event_headers())
    producer.produce(
        topic,
        encode_events([placed]),
        KEY,
        partition=partition,
        headers=event_headers(),
    )
    producer.commit_transaction(TIMEOUT_SECONDS)


async def test_expected_outcome_resolves_when_its_events_are_committed(
    settings: Settings, bus: CommandBus, waiter: OutcomeWaiter
) -> None:
    command = place_hold(uuid.uuid4().hex[:32])
    outcome = waiter.expect(command.command_id)

    await bus.send(KEY, [command])
    partition, read_back = await asyncio.to_thread(read_one_command, settings)
    placed = HoldPlaced(
        command.command_id,
        command.issued_at_ms,
        command.command_id,
        "show-1",
        "sec-a",
        "buyer-1",
        (),
        2,
        command.issued_at_ms + 600_000,
    )
    await asyncio.to_thread(emit_events_in_transaction, settings, placed)
    events = await asyncio.wait_for(outcome, TIMEOUT_SECONDS)

    assert partition == partition_for(KEY, settings.command_partitions)
    assert read_back == command
    assert events == [placed]
    assert waiter.outcome(command.command_id) == [placed]


async def test_send_raises_command_log_unavailable_when_the_partition_is_missing(
    settings: Settings,
) -> None:
    wide = dataclasses.replace(settings, command_partitions=64)
    key = next(
        f"show-1/s{n}" for n in range(1000) if partition_for(f"show-1/s{n}", 64) >= 8
    )
    bus = CommandBus(wide, send_timeout_seconds=2.0)
    bus.start()

    try:
        with pytest.raises(CommandLogUnavailable):
            await bus.send(key, [place_hold(uuid.uuid4().hex[:32])])
    finally:
        bus.close(timeout_seconds=1.0)


def read_command_records(
    settings: Settings, expected_commands: int
) -> list[list[PlaceHold]]:
    """The command records of the topic, each as its decoded commands, in order."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"{settings.topic_prefix}-records",
            "enable.auto.commit": False,
        }
    )
    topic = commands_topic(settings)
    records: list[list[PlaceHold]] = []
    try:
        consumer.assign(
            [TopicPartition(topic, p, 0) for p in range(settings.command_partitions)]
        )
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while sum(map(len, records)) < expected_commands:
            if time.monotonic() > deadline:
                pytest.fail("the command records did not arrive in time")
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            commands = decode_commands(message.value(), message.headers())
            records.append([c for c in commands if isinstance(c, PlaceHold)])
    finally:
        consumer.close()
    return records


async def test_concurrent_sends_are_packed_into_few_records_in_order() -> None:
    packed_settings = dataclasses.replace(
        Settings.from_env(), topic_prefix=f"t{uuid.uuid4().hex[:8]}"
    )
    ensure_topics(packed_settings, timeout_seconds=TIMEOUT_SECONDS)
    bus = CommandBus(packed_settings, max_commands_per_record=64)
    bus.start()
    commands = [place_hold(f"packed-{n:03d}") for n in range(200)]
    try:
        await asyncio.gather(*(bus.send(KEY, [c]) for c in commands))
    finally:
        bus.close()
    records = await asyncio.to_thread(read_command_records, packed_settings, 200)
    AdminClient({"bootstrap.servers": packed_settings.kafka_bootstrap}).delete_topics(
        [spec.name for spec in topic_specs(packed_settings)]
    )

    assert [c for r in records for c in r] == commands
    assert bus.records_sent == len(records) == 4
    assert max(map(len, records)) == 64

"""Case C8: one poison record must not stop a partition."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition

from commands.model import (
    CreateShow,
    HoldPlaced,
    PlaceHold,
    Row,
    SectionKind,
    SectionSpec,
)
from infra.settings import Settings
from infra.topics import commands_topic, dead_letters_topic, partition_for
from schemas.codec import command_headers, encode_commands
from tests.integration.support import read_events, send_commands, start_agent

NOW_MS = 1_800_000_000_000
KEY = "show-1/stalls"


def _hold(command_id: str, seat: str) -> PlaceHold:
    return PlaceHold(command_id, NOW_MS + 1, "show-1", "stalls", command_id, (seat,))


def _produce_raw(settings: Settings, values: list[bytes]) -> int:
    partition = partition_for(KEY, settings.command_partitions)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    for value in values:
        producer.produce(
            commands_topic(settings),
            value,
            KEY.encode(),
            partition=partition,
            headers=command_headers(),
        )
    assert producer.flush(30) == 0
    return partition


def _dead_letters(settings: Settings, partition: int, expected: int) -> list:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"{settings.topic_prefix}-dlq",
            "isolation.level": "read_committed",
        }
    )
    consumer.assign([TopicPartition(dead_letters_topic(settings), partition, 0)])
    found: list = []
    deadline = time.monotonic() + 60
    while len(found) < expected and time.monotonic() < deadline:
        found.extend(m for m in consumer.consume(10, 0.5) if not m.error())
    consumer.close()
    return found


def test_poison_records_go_to_dead_letters_when_valid_holds_surround_them(
    isolated_settings: Settings, tmp_path: Path
) -> None:
    show = CreateShow(
        "create-1",
        NOW_MS,
        "show-1",
        600,
        4,
        (
            SectionSpec(
                "stalls", SectionKind.RESERVED, rows=(Row("A", ("1", "2", "3")),)
            ),
        ),
    )
    agent = start_agent(isolated_settings, tmp_path / "agent.log")

    try:
        send_commands(isolated_settings, [show])
        partition = _produce_raw(
            isolated_settings,
            [
                encode_commands([_hold("c-1", "A-1")]),
                b'{"quantity": "two"}',
                b"\xff\xfe",
                encode_commands([_hold("c-3", "A-3")]),
            ],
        )
        events = read_events(isolated_settings, expected=3)
        dead = _dead_letters(isolated_settings, partition, expected=2)
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(30)

    placed = {e.command_id for e in events if isinstance(e, HoldPlaced)}
    assert placed == {"c-1", "c-3"}
    assert [m.value() for m in dead] == [b'{"quantity": "two"}', b"\xff\xfe"]
    for message in dead:
        headers = dict(message.headers())
        assert headers["reason"] == b"corrupt_record"
        assert headers["source-partition"] == str(partition).encode()
        assert int(headers["source-offset"]) >= 0
        assert headers["error"]

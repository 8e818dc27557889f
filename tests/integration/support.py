"""Helpers shared by integration tests: run an agent, send commands, read events."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition

from commands.buyers import buyer_key
from commands.inventory import section_key
from commands.model import Command, CreateShow, Event, RequestHold
from infra.settings import Settings
from infra.topics import commands_topic, events_topic, partition_for
from projections.projector import WorkerCounts
from schemas.codec import command_headers, decode_events, encode_commands

ROOT = Path(__file__).resolve().parents[2]


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process these settings."""
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TICKETING_TOPIC_PREFIX": settings.topic_prefix,
        "TICKETING_AGENT_ID": settings.agent_id,
        "TICKETING_AGENT_DATA_DIR": settings.agent_data_dir,
        "TICKETING_PROJECTION_GROUP": settings.projection_group,
        "TICKETING_CASSANDRA_KEYSPACE": settings.cassandra_keyspace,
        "TICKETING_LOG_LEVEL": os.environ.get("TEST_AGENT_LOG_LEVEL", "WARNING"),
    }


def start_agent(settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    """Start ``ticketing agent`` as its own process, as production runs it."""
    return start_cli(settings_env(settings), ["agent"], log_path)


def start_cli(
    env: Mapping[str, str], args: Sequence[str], log_path: Path
) -> subprocess.Popen[bytes]:
    """Start ``ticketing <args>`` with ``env`` in a session of its own."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "infra.cli", *args],
            cwd=ROOT,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def command_key(command: Command) -> str:
    """The inventory key a command is routed by."""
    if isinstance(command, CreateShow):
        return section_key(command.show_id, command.sections[0].section_id)
    if isinstance(command, RequestHold):
        return buyer_key(command.show_id, command.buyer_id)
    return section_key(command.show_id, command.section_id)


def command_producer(settings: Settings) -> Producer:
    """An idempotent producer for the command topic."""
    return Producer(
        {"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True}
    )


def send_commands(
    settings: Settings,
    commands: Sequence[Command],
    producer: Producer | None = None,
) -> None:
    """Produce each command as its own record on its section's partition."""
    producer = producer or command_producer(settings)
    for command in commands:
        key = command_key(command)
        producer.produce(
            commands_topic(settings),
            encode_commands([command]),
            key.encode(),
            partition=partition_for(key, settings.command_partitions),
            headers=command_headers(),
        )
    assert producer.flush(30) == 0


def send_to_partitions(
    settings: Settings, commands: Sequence[tuple[int, Command]]
) -> None:
    """Produce each command on the partition named with it."""
    producer = command_producer(settings)
    for partition, command in commands:
        producer.produce(
            commands_topic(settings),
            encode_commands([command]),
            f"~partition/{partition}".encode(),
            partition=partition,
            headers=command_headers(),
        )
    assert producer.flush(30) == 0


def read_events(
    settings: Settings, expected: int, timeout_seconds: float = 60.0
) -> list[Event]:
    """Committed events from the start of the log until ``expected`` or timeout."""
    topic = events_topic(settings)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"{settings.topic_prefix}-reader-{time.monotonic_ns()}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    partitions = range(settings.command_partitions)
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    events: list[Event] = []
    deadline = time.monotonic() + timeout_seconds
    try:
        while len(events) < expected and time.monotonic() < deadline:
            for message in consumer.consume(500, 0.5):
                if not message.error():
                    events.extend(decode_events(message.value(), message.headers()))
        # Anything beyond the expected count is a duplicate: look a little longer.
        for message in consumer.consume(500, 1.0):
            if not message.error():
                events.extend(decode_events(message.value(), message.headers()))
    finally:
        consumer.close()
    return events


def fold_to_end(settings: Settings) -> WorkerCounts:
    """Run a projection worker until it stored every record the log holds now."""
    from projections.replay_command import fold_to_ends, log_ends

    return fold_to_ends(settings, log_ends(settings), 120.0, io.StringIO())


def wait_until_committed(
    settings: Settings, keys: Sequence[str], timeout_seconds: float = 30.0
) -> None:
    """Wait until one committed transaction of records with these keys is readable.

    With read_committed, the end of a partition is its last stable offset, which
    moves past a transaction only once its marker is written on that partition,
    a moment after the producer's commit returns. Each partition's end must cover
    its records and the marker.
    """
    from projections.replay_command import log_ends

    expected: dict[int, int] = {}
    for key in keys:
        partition = partition_for(key, settings.command_partitions)
        expected[partition] = expected.get(partition, 1) + 1
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        ends = log_ends(settings)
        if all(ends.get(p, 0) >= n for p, n in expected.items()):
            return
        time.sleep(0.1)
    raise TimeoutError("the produced transaction did not become readable")

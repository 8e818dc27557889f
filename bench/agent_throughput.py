"""Hold commands per second one agent process decides with exactly-once on.

Fills the command topic first (one command per record, GA sections spread over
all partitions), then starts ``ticketing agent`` and times how long it takes
until every decision is on the event log (read_committed). Needs the services:
``ticketing services up``. Usage: ``python -m bench.agent_throughput [N [B]]``:
N hold commands, B commands per record (default 1; the gateway's command bus
packs the commands of concurrent requests for one partition into one record).
With ``BENCH_PROFILE=FILE`` py-spy records the agent's first 20 s into FILE.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from commands.model import Command, CreateShow, PlaceHold, SectionKind, SectionSpec
from infra.settings import Settings
from infra.topics import commands_topic, ensure_topics, events_topic, partition_for
from schemas.codec import command_headers, decode_events, encode_commands
from tests.integration.support import (
    command_key,
    command_producer,
    send_commands,
    start_agent,
)

SECTIONS = 16


def _commands(count: int) -> list[CreateShow | PlaceHold]:
    now_ms = int(time.time() * 1000)
    specs = tuple(
        SectionSpec(f"ga{i}", SectionKind.GENERAL_ADMISSION, capacity=count)
        for i in range(SECTIONS)
    )
    shows = [
        CreateShow(f"create-{s.section_id}", now_ms, "bench", 600, 4, (s,))
        for s in specs
    ]
    holds = [
        PlaceHold(
            f"h{n}", now_ms + n, "bench", f"ga{n % SECTIONS}", f"b{n}", quantity=1
        )
        for n in range(count)
    ]
    return [*shows, *holds]


def _send_batched(settings: Settings, commands: list[Command], per_record: int) -> None:
    """Produce the commands packed per partition, ``per_record`` to a record."""
    by_partition: dict[int, list[Command]] = {}
    for command in commands:
        key = command_key(command)
        partition = partition_for(key, settings.command_partitions)
        by_partition.setdefault(partition, []).append(command)
    producer = command_producer(settings)
    for partition, queued in by_partition.items():
        for start in range(0, len(queued), per_record):
            producer.produce(
                commands_topic(settings),
                encode_commands(queued[start : start + per_record]),
                f"~batch/{partition}".encode(),
                partition=partition,
                headers=command_headers(),
            )
            producer.poll(0)
    assert producer.flush(60) == 0


def _count_decisions(settings: Settings, expected: int, timeout_seconds: float) -> int:
    topic = events_topic(settings)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex}",
            "isolation.level": "read_committed",
        }
    )
    consumer.assign(
        [TopicPartition(topic, p, 0) for p in range(settings.command_partitions)]
    )
    seen = 0
    deadline = time.monotonic() + timeout_seconds
    while seen < expected and time.monotonic() < deadline:
        for message in consumer.consume(1000, 0.2):
            if not message.error():
                seen += len(decode_events(message.value(), message.headers()))
    consumer.close()
    return seen


def main(count: int, per_record: int = 1) -> None:
    """Run the benchmark and print the figure."""
    run = uuid.uuid4().hex[:6]
    settings = dataclasses.replace(
        Settings.from_env(),
        topic_prefix=f"bench-{run}",
        agent_id=f"bench-{run}-agent",
        agent_data_dir=tempfile.mkdtemp(prefix="bench-agent-"),
    )
    ensure_topics(settings)
    commands = _commands(count)
    shows, holds = commands[:SECTIONS], commands[SECTIONS:]
    send_commands(settings, shows, command_producer(settings))
    _send_batched(settings, holds, per_record)
    print(
        f"{len(commands)} commands on the log, {per_record} per record;"
        " starting the agent",
        flush=True,
    )

    started = time.monotonic()
    log_path = Path(tempfile.mkdtemp(prefix="bench-logs-")) / "agent.log"
    agent = start_agent(settings, log_path)
    profile = os.environ.get("BENCH_PROFILE")
    if profile:
        subprocess.Popen(  # noqa: S603 - profiles the agent for 20 s, then exits
            [
                str(Path(sys.executable).with_name("py-spy")),
                "record",
                "-o",
                profile,
                "-f",
                "raw",
                "-d",
                "20",
                "-s",
                "-p",
                str(agent.pid),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    try:
        _count_decisions(settings, SECTIONS, 120)
        ready = time.monotonic()
        seen = _count_decisions(settings, len(commands), 600)
        done = time.monotonic()
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(30)
    print(f"agent log: {log_path}")
    print(f"agent start to first decision: {ready - started:.1f} s")
    print(f"decisions on the log: {seen} of {len(commands)}")
    print(f"throughput: {seen / (done - started):.0f} commands/s including start-up")
    print(f"  (wall {done - started:.1f} s)")


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 50_000,
        int(sys.argv[2]) if len(sys.argv) > 2 else 1,
    )

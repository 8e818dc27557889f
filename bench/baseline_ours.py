"""Design (c): our write path, commands on Kafka decided by ``ticketing agent``.

Each request is produced to the command topic on its key's partition, as the
gateway does, and is answered when its verdict (HoldPlaced or HoldRejected, or a
refusal of the request) is read back from the event topic with read_committed,
that is after the agent's exactly-once transaction committed. Two entry points:

- ``request``: a RequestHold routed by show and buyer, the gateway's path; the
  buyers' ledger checks the per-buyer limit and forwards a PlaceHold to the
  section, so an answer takes two transactions of the agent.
- ``place``: a PlaceHold straight to the section, one transaction; the same work
  the PostgreSQL and Redis baselines do.
"""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from bench.baseline_load import LoadOutcome, drive
from bench.baseline_stats import DesignResult, Workload
from commands.model import (
    BuyerLimitSet,
    Command,
    CommandRejected,
    CreateShow,
    HoldPlaced,
    HoldRejected,
    IdempotencyKeyReused,
    PlaceHold,
    RequestHold,
    SectionCreated,
    SectionKind,
    SectionSpec,
    SetBuyerLimit,
)
from infra.settings import Settings
from infra.topics import (
    commands_topic,
    ensure_topics,
    events_topic,
    keys_for_every_partition,
    partition_for,
)
from schemas.codec import command_headers, decode_events, encode_commands
from tests.integration.support import command_key, start_agent

SHOW = "baseline"
SECTION = "hot"
AGENT_READY_SECONDS = 180.0
TRAILING_EVENTS_SECONDS = 3.0
Answer = HoldPlaced | HoldRejected | CommandRejected | IdempotencyKeyReused


class EventReader:
    """Reads the event topic in a thread and answers the commands waiting on it."""

    def __init__(self, settings: Settings, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiting: dict[str, asyncio.Future[Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.placed_quantity: dict[str, int] = {}
        self._consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "group.id": f"{settings.topic_prefix}-reader",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 5,
            }
        )
        topic = events_topic(settings)
        self._consumer.assign(
            [TopicPartition(topic, p, 0) for p in range(settings.command_partitions)]
        )
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def expect(self, command_id: str) -> asyncio.Future[Any]:
        """A future that gets the first answer to ``command_id``."""
        future: asyncio.Future[Any] = self._loop.create_future()
        with self._lock:
            self._waiting[command_id] = future
        return future

    def close(self) -> None:
        """Stop reading and close the consumer."""
        self._stop.set()
        self._thread.join(30)
        self._consumer.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            for message in self._consumer.consume(1000, 0.1):
                if message.error():
                    continue
                # confluent-kafka types headers loosely; ours are name -> bytes.
                headers = cast(list[tuple[str, bytes]] | None, message.headers())
                for event in decode_events(message.value(), headers):
                    self._seen(event)

    def _seen(self, event: object) -> None:
        if isinstance(event, HoldPlaced) and event.section_id == SECTION:
            self.placed_quantity[event.hold_id] = event.quantity
        if not isinstance(event, Answer | SectionCreated | BuyerLimitSet):
            return
        with self._lock:
            future = self._waiting.pop(event.command_id, None)
        if future is not None:
            self._loop.call_soon_threadsafe(_resolve, future, event)


def _resolve(future: asyncio.Future[Any], event: object) -> None:
    if not future.done():
        future.set_result(event)


class CommandSender:
    """Produces commands on their key's partition; a thread serves callbacks."""

    def __init__(self, settings: Settings) -> None:
        self._topic = commands_topic(settings)
        self._partitions = settings.command_partitions
        self._producer = Producer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "enable.idempotence": True,
                "linger.ms": 1,
            }
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def send(self, command: Command, key: str | None = None) -> None:
        """Queue one command as its own record, by default on its own key."""
        key = key or command_key(command)
        self._producer.produce(
            self._topic,
            encode_commands([command]),
            key.encode(),
            partition=partition_for(key, self._partitions),
            headers=cast(list[tuple[str, str | bytes | None]], command_headers()),
        )

    def close(self) -> None:
        """Deliver what is queued and stop."""
        self._stop.set()
        self._thread.join(30)
        self._producer.flush(30)

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.05)


async def run(
    base: Settings, workload: Workload, entry: str, log_dir: Path
) -> DesignResult:
    """Start an agent on fresh topics, run the workload through it, stop it."""
    run_id = uuid.uuid4().hex[:6]
    settings = dataclasses.replace(
        base,
        topic_prefix=f"baseline-{run_id}",
        agent_id=f"baseline-{run_id}-agent",
        agent_data_dir=tempfile.mkdtemp(prefix="baseline-agent-"),
    )
    ensure_topics(settings)
    agent = start_agent(settings, log_dir / f"agent-{entry}.log")
    reader = EventReader(settings, asyncio.get_running_loop())
    sender = CommandSender(settings)
    try:
        await _create_show(reader, sender, workload, settings.command_partitions)
        outcome = await drive(_requester(reader, sender, entry, run_id), workload)
        await asyncio.sleep(TRAILING_EVENTS_SECONDS)
    finally:
        sender.close()
        reader.close()
        agent.terminate()
        agent.wait(60)
        _delete_topics(settings)
    return _result(f"ours-{entry}", outcome, reader, workload)


async def _create_show(
    reader: EventReader, sender: CommandSender, workload: Workload, partitions: int
) -> None:
    spec = SectionSpec(SECTION, SectionKind.GENERAL_ADMISSION, capacity=workload.places)
    create = CreateShow("create", _now_ms(), SHOW, 3600, 4, (spec,))
    created = reader.expect(create.command_id)
    sender.send(create)
    # Every partition's buyers' ledger learns the show's limit, as the gateway does.
    limits = [
        (key, SetBuyerLimit(f"limit-{n}", _now_ms(), SHOW, 4))
        for n, key in enumerate(keys_for_every_partition(f"{SHOW}/~limit", partitions))
    ]
    limits_set = [reader.expect(limit.command_id) for _, limit in limits]
    for key, limit in limits:
        sender.send(limit, key)

    event = await asyncio.wait_for(created, AGENT_READY_SECONDS)
    if not isinstance(event, SectionCreated):
        raise RuntimeError(f"the agent did not create the section: {event!r}")
    await asyncio.wait_for(asyncio.gather(*limits_set), AGENT_READY_SECONDS)


def _requester(
    reader: EventReader, sender: CommandSender, entry: str, run_id: str
) -> Callable[[int], Awaitable[bool]]:
    async def request(buyer: int) -> bool:
        command_id = f"{run_id}-{buyer}"
        command: PlaceHold | RequestHold
        if entry == "place":
            command = PlaceHold(
                command_id, _now_ms(), SHOW, SECTION, f"b{buyer}", quantity=1
            )
        else:
            command = RequestHold(
                command_id, _now_ms(), SHOW, SECTION, f"b{buyer}", quantity=1
            )
        answer = reader.expect(command_id)
        sender.send(command)
        event = await answer
        return isinstance(event, HoldPlaced)

    return request


def _result(
    design: str, outcome: LoadOutcome, reader: EventReader, workload: Workload
) -> DesignResult:
    return DesignResult(
        design=design,
        attempted=outcome.attempted,
        placed=outcome.placed,
        rejected=outcome.rejected,
        errors=outcome.errors,
        stored_holds=sum(reader.placed_quantity.values()),
        capacity=workload.places,
        seconds=outcome.seconds,
        latencies_seconds=tuple(outcome.latencies_seconds),
    )


def _delete_topics(settings: Settings) -> None:
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    topics = [
        name
        for name in admin.list_topics(timeout=10).topics
        if name.startswith((settings.topic_prefix, settings.agent_id))
    ]
    if not topics:
        return
    for future in admin.delete_topics(topics, operation_timeout=30).values():
        future.result(timeout=30)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000

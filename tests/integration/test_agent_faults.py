"""Case C7: exactly-once state after kill -9, a second worker, and resent commands."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from commands.inventory import PartitionInventory, SectionInventory, section_key
from commands.model import (
    CreateShow,
    Event,
    HoldPlaced,
    PlaceHold,
    Row,
    SectionCreated,
    SectionKind,
    SectionSpec,
)
from infra.settings import Settings
from infra.topics import partition_for
from streams.agent import TABLE_NAME, inventories_from_table
from tests.integration.support import (
    command_producer,
    read_events,
    send_commands,
    start_agent,
)

NOW_MS = 1_800_000_000_000
SEATS = 300


def _show() -> CreateShow:
    numbers = tuple(str(n) for n in range(1, SEATS + 1))
    return CreateShow(
        "create-1",
        NOW_MS,
        "show-1",
        3600,
        4,
        (SectionSpec("stalls", SectionKind.RESERVED, rows=(Row("A", numbers),)),),
    )


def _hold(n: int) -> PlaceHold:
    return PlaceHold(f"c{n}", NOW_MS + n, "show-1", "stalls", f"b{n}", (f"A-{n}",))


def committed_table(settings: Settings) -> dict[int, PartitionInventory]:
    """The agent's table as its changelog holds it (read_committed), per partition."""
    topic = f"{settings.agent_id}-{TABLE_NAME}-changelog"
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"{settings.topic_prefix}-table-{time.monotonic_ns()}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    consumer.assign(
        [TopicPartition(topic, p, 0) for p in range(settings.command_partitions)]
    )
    entries: dict[bytes, bytes] = {}
    try:
        while batch := consumer.consume(1000, 3.0):
            for message in batch:
                if message.error():
                    continue
                if message.value() is None:
                    entries.pop(message.key(), None)
                else:
                    entries[message.key()] = message.value()
    finally:
        consumer.close()
    return inventories_from_table(entries.items())


def folded(create: CreateShow, events: list[Event]) -> SectionInventory:
    """The show's one section built only by folding the log's events."""
    (spec,) = create.sections
    section = SectionInventory(
        show_id=create.show_id,
        spec=spec,
        hold_ttl_seconds=create.hold_ttl_seconds,
        max_tickets_per_buyer=create.max_tickets_per_buyer,
    )
    for event in events:
        if not isinstance(event, SectionCreated):
            section.apply(event)
    return section


def _send_slowly(settings: Settings, first: int, last: int, gap: float) -> None:
    producer = command_producer(settings)
    for n in range(first, last + 1):
        send_commands(settings, [_hold(n)], producer)
        time.sleep(gap)


def test_log_holds_each_hold_once_when_the_worker_is_killed_mid_stream(
    isolated_settings: Settings, tmp_path: Path
) -> None:
    log = tmp_path / "agent.log"
    send_commands(isolated_settings, [_show(), *(_hold(n) for n in range(1, 50))])
    agent = start_agent(isolated_settings, log)
    sender = threading.Thread(
        target=_send_slowly, args=(isolated_settings, 50, 220, 0.02)
    )

    read_events(isolated_settings, expected=50, timeout_seconds=60)
    sender.start()
    read_events(isolated_settings, expected=150, timeout_seconds=60)
    os.killpg(agent.pid, signal.SIGKILL)  # mid-stream: the sender is still going
    agent.wait(10)
    agent = start_agent(isolated_settings, log)
    sender.join()
    second = start_agent(
        dataclasses.replace(
            isolated_settings, agent_data_dir=str(tmp_path / "second-worker")
        ),
        tmp_path / "second.log",
    )
    try:
        _send_slowly(isolated_settings, 221, SEATS, 0.01)
        send_commands(isolated_settings, [_hold(n) for n in range(10, 20)])
        events = read_events(isolated_settings, expected=SEATS + 1, timeout_seconds=240)
    finally:
        for process in (agent, second):
            process.send_signal(signal.SIGTERM)
        for process in (agent, second):
            process.wait(30)

    placed = [e for e in events if isinstance(e, HoldPlaced)]
    duplicates = Counter(e.command_id for e in placed) - Counter(
        {e.command_id: 1 for e in placed}
    )
    seats = Counter(seat for e in placed for seat in e.seat_ids)
    assert sum(isinstance(e, SectionCreated) for e in events) == 1
    assert not duplicates, "no command decided twice on the log"
    missing = {f"c{n}" for n in range(1, SEATS + 1)} - {e.command_id for e in placed}
    assert len(placed) == SEATS, f"holds without a decision: {sorted(missing)}"
    assert max(seats.values()) == 1, "no seat held twice"
    assert len(events) == SEATS + 1, "resent commands add no events"
    table = committed_table(isolated_settings)
    key = section_key("show-1", "stalls")
    recovered = table[partition_for(key, isolated_settings.command_partitions)]
    fold = folded(_show(), events)
    assert recovered.sections[key].holds == fold.holds, "table equals a fold of the log"
    assert recovered.sections[key].free_seat_ids() == fold.free_seat_ids()


def test_no_place_is_sold_twice_when_a_second_agent_starts_beside_the_first(
    isolated_settings: Settings, tmp_path: Path
) -> None:
    ga = CreateShow(
        "create-ga",
        NOW_MS,
        "show-1",
        3600,
        4,
        (SectionSpec("ga", SectionKind.GENERAL_ADMISSION, capacity=5),),
    )
    holds = [
        PlaceHold(f"g{n}", NOW_MS + n, "show-1", "ga", f"b{n}", quantity=1)
        for n in range(1, 9)
    ]
    first = start_agent(isolated_settings, tmp_path / "first.log")
    send_commands(isolated_settings, [ga, *holds[:5]])
    assert len(read_events(isolated_settings, expected=6)) == 6

    second = start_agent(isolated_settings, tmp_path / "second.log")
    try:
        time.sleep(12)  # the second worker joins and the partitions move
        send_commands(isolated_settings, [ga, *holds[5:]])
        events = read_events(isolated_settings, expected=10, timeout_seconds=90)
        alive = first.poll() is None and second.poll() is None
    finally:
        for process in (first, second):
            process.send_signal(signal.SIGTERM)
        for process in (first, second):
            process.wait(30)

    placed = [e for e in events if isinstance(e, HoldPlaced)]
    assert alive, "starting a second agent must not crash either one"
    assert [e.command_id for e in placed] == [f"g{n}" for n in range(1, 6)]
    assert len(events) == 10, "the repeated show is refused, the extra holds too"

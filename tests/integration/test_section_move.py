"""Moving a section during a live sale, against the real Kafka and agent process.

A steady stream of holds goes to one reserved section (the one moved) and to a
GA section (the control) while ``ticketing partitions move`` moves the first to
another partition. Producers follow the routing topic as the gateway does; one
more producer keeps the hashed route on purpose, so the old owner must forward.
Then the event log is counted: every command decided exactly once, no seat held
twice, totals exact, the section's later events on its new partition.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition

from commands.inventory import section_key
from commands.model import (
    Command,
    CreateShow,
    Event,
    HoldPlaced,
    HoldRejected,
    PlaceHold,
    RecordPaymentResult,
    RejectionReason,
    Row,
    SectionAdopted,
    SectionHandedOff,
    SectionKind,
    SectionSpec,
    TicketsSold,
)
from infra.routing import Router
from infra.settings import Settings
from infra.topics import commands_topic, events_topic, partition_for
from projections.ledger import audit_show
from schemas.codec import command_headers, decode_events, encode_commands
from tests.integration.support import ROOT, settings_env, start_agent

SHOW, HOT, CONTROL = "show-m", "hot", "control"
HOT_KEY, CONTROL_KEY = section_key(SHOW, HOT), section_key(SHOW, CONTROL)
ROWS, SEATS_PER_ROW = 8, 50
HOLDS_PER_SECTION = 360
SEND_INTERVAL_SECONDS = 0.03
MOVE_AFTER = 120
STALE_SENDS = 20
PAID = 5


@dataclass(slots=True)
class Sent:
    """What the producers sent: send time of each command id, resends apart."""

    at: dict[str, float] = field(default_factory=dict)
    resent: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Decided:
    """One event as read back, with the partition and time of its record."""

    event: Event
    partition: int
    at: float


def _show(now_ms: int, spec: SectionSpec) -> CreateShow:
    return CreateShow(
        command_id=f"create-{spec.section_id}",
        issued_at_ms=now_ms,
        show_id=SHOW,
        hold_ttl_seconds=600,
        max_tickets_per_buyer=4,
        sections=(spec,),
    )


def _create_show(settings: Settings) -> None:
    """Each section created on its hashed partition, as the gateway does."""
    rows = tuple(
        Row(chr(ord("A") + r), tuple(str(n) for n in range(1, SEATS_PER_ROW + 1)))
        for r in range(ROWS)
    )
    now_ms = time.time_ns() // 1_000_000
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    for key, spec in (
        (HOT_KEY, SectionSpec(HOT, SectionKind.RESERVED, rows=rows)),
        (
            CONTROL_KEY,
            SectionSpec(CONTROL, SectionKind.GENERAL_ADMISSION, capacity=5000),
        ),
    ):
        partition = partition_for(key, settings.command_partitions)
        _produce(producer, commands_topic(settings), partition, _show(now_ms, spec))
    assert producer.flush(10) == 0


def _hot_hold(i: int, now_ms: int) -> PlaceHold:
    # Every tenth hold asks for the seat of the hold before it: contested.
    n = i - 1 if i % 10 == 9 else i
    seat = f"{chr(ord('A') + n // SEATS_PER_ROW)}-{n % SEATS_PER_ROW + 1}"
    return PlaceHold(f"hot-{i}", now_ms, SHOW, HOT, f"hb{i}", (seat,))


def _control_hold(i: int, now_ms: int) -> PlaceHold:
    return PlaceHold(f"control-{i}", now_ms, SHOW, CONTROL, f"cb{i}", quantity=1)


def _produce(producer: Producer, topic: str, partition: int, command: Command) -> None:
    if isinstance(command, CreateShow):
        key = section_key(command.show_id, command.sections[0].section_id)
    else:
        key = section_key(command.show_id, getattr(command, "section_id", ""))
    producer.produce(
        topic,
        encode_commands([command]),
        key.encode(),
        partition=partition,
        headers=command_headers(),
    )
    producer.poll(0)


def _stream(
    settings: Settings, router: Router, sent: Sent, moved: threading.Event
) -> None:
    """Send one hot and one control hold every interval; resend a few after the move."""
    topic = commands_topic(settings)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 1})
    stale = Producer({"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 1})
    hashed = partition_for(HOT_KEY, settings.command_partitions)
    stale_sent = 0
    for i in range(HOLDS_PER_SECTION):
        now_ms = time.time_ns() // 1_000_000
        hot, control = _hot_hold(i, now_ms), _control_hold(i, now_ms)
        sent.at[hot.command_id] = sent.at[control.command_id] = time.time()
        if moved.is_set() and stale_sent < STALE_SENDS:
            # A producer that never learnt the route: the old owner forwards.
            _produce(stale, topic, hashed, hot)
            stale_sent += 1
        else:
            _produce(producer, topic, router.partition(HOT_KEY), hot)
        _produce(producer, topic, router.partition(CONTROL_KEY), control)
        if moved.is_set() and i % 40 == 0:
            # A retry of a hold decided before the move: no second effect.
            again = _hot_hold(i % MOVE_AFTER, now_ms)
            _produce(producer, topic, router.partition(HOT_KEY), again)
            sent.resent.append(again.command_id)
        if i == MOVE_AFTER:
            moved.set()
        time.sleep(SEND_INTERVAL_SECONDS)
    assert producer.flush(30) == 0 and stale.flush(30) == 0


def _pay_for_early_holds(settings: Settings, router: Router) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    now_ms = time.time_ns() // 1_000_000
    for n in range(PAID):
        paid = RecordPaymentResult(
            f"pay-{n}", now_ms, SHOW, HOT, f"hot-{n}", f"evt-{n}", True
        )
        _produce(producer, commands_topic(settings), router.partition(HOT_KEY), paid)
    assert producer.flush(30) == 0


def _read_decided(
    settings: Settings, until: int, timeout_seconds: float
) -> list[Decided]:
    """Committed events from the start until ``until`` hold verdicts or timeout."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"{settings.topic_prefix}-move-reader",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    topic = events_topic(settings)
    consumer.assign(
        [TopicPartition(topic, p, 0) for p in range(settings.command_partitions)]
    )
    decided: list[Decided] = []
    verdicts = 0
    deadline = time.monotonic() + timeout_seconds
    try:
        while verdicts < until and time.monotonic() < deadline:
            for message in consumer.consume(500, 0.5):
                if message.error():
                    continue
                at = message.timestamp()[1] / 1000
                for event in decode_events(message.value(), message.headers()):
                    decided.append(Decided(event, message.partition(), at))
                    verdicts += isinstance(event, HoldPlaced | HoldRejected)
        # Anything beyond is a duplicate: look a little longer.
        for message in consumer.consume(500, 2.0):
            if not message.error():
                for event in decode_events(message.value(), message.headers()):
                    decided.append(Decided(event, message.partition(), 0.0))
    finally:
        consumer.close()
    return decided


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", *args],
        cwd=ROOT,
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=90,
    )


def test_move_during_a_live_sale_loses_nothing_and_decides_each_command_once(
    isolated_settings: Settings, tmp_path: Path
) -> None:
    settings = isolated_settings
    source = partition_for(HOT_KEY, settings.command_partitions)
    target = (source + 1) % settings.command_partitions
    if target == partition_for(CONTROL_KEY, settings.command_partitions):
        target = (source + 2) % settings.command_partitions
    agent = start_agent(settings, tmp_path / "agent.log")
    router = Router(settings)
    sent, moved = Sent(), threading.Event()
    _create_show(settings)
    try:
        router.start()
        stream = threading.Thread(target=_stream, args=(settings, router, sent, moved))
        stream.start()
        assert moved.wait(60), "the stream did not reach the move"
        move_started = time.time()
        move = _cli(
            settings,
            "partitions",
            "move",
            f"{SHOW}/{HOT}",
            "--to",
            str(target),
            "--json",
        )
        # Payments for holds the old owner placed, once it handed the section off.
        _pay_for_early_holds(settings, router)
        stream.join(120)
        decided = _read_decided(settings, 2 * HOLDS_PER_SECTION, 180)
        audit = audit_show(settings, SHOW)
        status = _cli(
            settings, "partitions", "status", "--json", "--window-seconds", "120"
        )
    finally:
        router.close()
        agent.send_signal(signal.SIGTERM)
        agent.wait(30)

    assert move.returncode == 0, move.stderr
    result = json.loads(move.stdout)
    assert (result["from_partition"], result["to_partition"]) == (source, target)
    assert result["epoch"] == 1

    # Every hold decided exactly once: one verdict per command id, resends too.
    verdicts = Counter(
        d.event.command_id
        for d in decided
        if isinstance(d.event, HoldPlaced | HoldRejected)
    )
    assert set(verdicts) == set(sent.at)
    assert max(verdicts.values()) == 1, verdicts.most_common(3)

    # No seat held twice; totals exact: contested seats refused, the rest placed.
    placed = [d.event for d in decided if isinstance(d.event, HoldPlaced)]
    hot_seats = [s for e in placed if e.section_id == HOT for s in e.seat_ids]
    assert len(hot_seats) == len(set(hot_seats))
    contested = sum(1 for i in range(HOLDS_PER_SECTION) if i % 10 == 9)
    assert len(hot_seats) == HOLDS_PER_SECTION - contested
    refused = [d.event for d in decided if isinstance(d.event, HoldRejected)]
    assert {e.reason for e in refused} == {RejectionReason.SEAT_UNAVAILABLE}
    assert len(refused) == contested
    assert sum(e.quantity for e in placed if e.section_id == CONTROL) == (
        HOLDS_PER_SECTION
    )

    # One hand-off, one adopt; the hot section decides on its new partition after.
    handed = [d for d in decided if isinstance(d.event, SectionHandedOff)]
    adopted = [d for d in decided if isinstance(d.event, SectionAdopted)]
    assert [(d.partition, d.event.to_partition) for d in handed] == [(source, target)]
    assert [d.partition for d in adopted] == [target]
    adopt = adopted[0]
    assert isinstance(adopt.event, SectionAdopted)
    # The reader keeps each partition's order: what the old owner placed before.
    on_source = [d.event for d in decided if d.partition == source]
    before = on_source[: on_source.index(handed[0].event)]
    held_before = sum(
        e.quantity for e in before if isinstance(e, HoldPlaced) and e.section_id == HOT
    )
    assert (adopt.event.held, adopt.event.sold) == (held_before, 0)
    hot_after = [
        d
        for d in decided
        if isinstance(d.event, HoldPlaced | HoldRejected)
        and d.event.section_id == HOT
        and d.at > adopt.at
    ]
    assert hot_after and {d.partition for d in hot_after} == {target}
    sold = [d for d in decided if isinstance(d.event, TicketsSold)]
    assert sorted(d.event.hold_id for d in sold) == [f"hot-{n}" for n in range(PAID)]
    assert {d.partition for d in sold} == {target}

    # The independent audit of the log agrees, across both partitions.
    assert (audit.oversold, audit.sold_twice, audit.sold_without_hold) == (0, 0, 0)
    assert audit.sold_by_section[HOT] == PAID
    assert audit.holds_placed == 2 * HOLDS_PER_SECTION - contested

    # The pause: how late the holds sent while the move ran were decided.
    window = (move_started - 1.0, move_started + result["adopted_after_seconds"] + 1)

    def worst_latency(section: str) -> float:
        late = [
            d.at - sent.at[d.event.command_id]
            for d in decided
            if isinstance(d.event, HoldPlaced | HoldRejected)
            and d.event.section_id == section
            and d.event.command_id in sent.at
            and window[0] <= sent.at[d.event.command_id] <= window[1]
        ]
        return max(late, default=0.0)

    print(
        f"\nmove: hand-off to adopt {adopt.at - handed[0].at:.3f} s; worst hold "
        f"latency around the move: moved {worst_latency(HOT):.3f} s, control "
        f"{worst_latency(CONTROL):.3f} s; tool: handed off "
        f"{result['handed_off_after_seconds']} s, adopted "
        f"{result['adopted_after_seconds']} s after sending"
    )

    # Status reads the route and places the hot section on its new partition.
    assert status.returncode == 0, status.stderr
    document = json.loads(status.stdout)
    assert document["routes"][HOT_KEY] == {"partition": target, "epoch": 1}
    by_partition = {p["partition"]: p for p in document["partitions"]}
    on_target = {s["key"]: s for s in by_partition[target]["sections"]}
    assert on_target[HOT_KEY]["route_epoch"] == 1
    assert by_partition[target]["lag"] is not None

"""One hot GA section hammered by buyers: one stripe against stripes on P partitions.

In one run, on one set of topics (``P`` command partitions) and the same agent
worker processes: for each mode a show with one GA section of ``places`` places
(one stripe: the plain section on one partition; striped: ``stripes`` stripes,
one per partition), then ``buyers`` holds of one place each, produced to Kafka
as ``PlaceHold`` commands on the stripe a gateway would pick for each buyer
(the buyer's hash over the stripes). The clock runs from the first hold produced
to the last verdict (placed or refused) on the event log. Then every placed hold
is paid (``RecordPaymentResult``), and the event log, read back independently
(``projections.ledger``), must show exactly ``places`` sold, nothing oversold,
and every capacity transfer out and in exactly once.

Before either mode is timed, every worker must be in the agents' consumer
group, the group stable, and a small warm-up sale (``--places / 100`` places,
``--buyers / 100`` holds, striped) decided on every partition: a worker that
joins late moves partitions, and a mode timed across that rebalance measured
the rebalance (one run took 10 s of its 16 s in it).

Usage: ``python -m bench.stripes [--places N] [--buyers N] [--stripes K]
[--workers W] [--out FILE]``. Needs the running Kafka; the figures depend on
the machine and its load (say which next to any figure).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, ConsumerGroupState, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from commands.inventory import section_key
from commands.model import (
    Command,
    CreateShow,
    HoldPlaced,
    HoldRejected,
    PlaceHold,
    RecordPaymentResult,
    SectionCreated,
    SectionKind,
    SectionSpec,
    TicketsSold,
)
from commands.stripes import stripe_for_buyer, stripe_specs
from infra.settings import Settings
from infra.topics import commands_topic, ensure_topics, events_topic, partition_for
from projections.ledger import audit_show
from schemas.codec import command_headers, decode_events, encode_commands
from tests.integration.support import (
    command_key,
    command_producer,
    send_commands,
    start_agent,
)

RESULTS = Path(__file__).resolve().parent / "results"
SECTION = "floor"


@dataclasses.dataclass
class EventCounter:
    """Reads the event log (read_committed) from where it ends now, and counts."""

    settings: Settings
    consumer: Consumer

    @classmethod
    def from_now(cls, settings: Settings) -> EventCounter:
        topic = events_topic(settings)
        consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "group.id": f"bench-stripes-{uuid.uuid4().hex}",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
            }
        )
        assigned = []
        for partition in range(settings.command_partitions):
            end = _end_offset(consumer, TopicPartition(topic, partition))
            assigned.append(TopicPartition(topic, partition, end))
        consumer.assign(assigned)
        return cls(settings, consumer)

    def until(
        self, show_id: str, types: tuple[type, ...], expected: int, timeout: float
    ) -> tuple[int, list[Any]]:
        """Events of these types for the show until ``expected`` or the timeout."""
        found: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(found) < expected and time.monotonic() < deadline:
            for message in self.consumer.consume(2000, 0.2):
                if message.error():
                    continue
                for event in decode_events(message.value(), message.headers()):
                    if isinstance(event, types) and event.show_id == show_id:
                        found.append(event)
        return len(found), found

    def close(self) -> None:
        self.consumer.close()


def _end_offset(consumer: Consumer, tp: TopicPartition) -> int:
    """The partition's end; a topic created a moment ago may lack a leader yet."""
    for _ in range(50):
        try:
            return int(consumer.get_watermark_offsets(tp, timeout=10)[1])
        except KafkaException:
            time.sleep(0.2)
    raise TimeoutError(f"no leader for {tp.topic}/{tp.partition}")


def _spec(places: int, stripes: int) -> SectionSpec:
    return SectionSpec(
        SECTION,
        SectionKind.GENERAL_ADMISSION,
        capacity=places,
        stripes=stripes if stripes > 1 else 0,
    )


def _create(show_id: str, places: int, stripes: int) -> list[Command]:
    spec = _spec(places, stripes)
    now_ms = time.time_ns() // 1_000_000
    return [
        CreateShow(f"create-{show_id}-{s.section_id}", now_ms, show_id, 600, 4, (s,))
        for s in stripe_specs(spec)
    ]


def _holds(
    show_id: str, buyers: int, stripes: int, hot_share: float = 0.0
) -> list[Command]:
    """One hold per buyer on the buyer's stripe; ``hot_share`` of them on stripe 0
    (a view that steers many buyers to one stripe, so places must move)."""
    now_ms = time.time_ns() // 1_000_000
    holds: list[Command] = []
    hot = int(buyers * hot_share)
    for n in range(buyers):
        buyer = f"b{n}"
        section_id = SECTION
        if stripes > 1:
            index = 0 if n < hot else stripe_for_buyer(buyer, stripes)
            section_id = f"{SECTION}~{index}"
        holds.append(
            PlaceHold(f"{show_id}-h{n}", now_ms, show_id, section_id, buyer, quantity=1)
        )
    return holds


def _payments(placed: Sequence[HoldPlaced]) -> list[Command]:
    now_ms = time.time_ns() // 1_000_000
    return [
        RecordPaymentResult(
            f"pay-{hold.hold_id}",
            now_ms,
            hold.show_id,
            hold.section_id,
            hold.hold_id,
            f"pe-{hold.hold_id}",
            True,
        )
        for hold in placed
    ]


def _send_batched(settings: Settings, holds: Sequence[Command], batch: int) -> None:
    """Holds in records of up to ``batch`` commands each, per stripe, in order."""
    producer = command_producer(settings)
    by_key: dict[str, list[Command]] = {}
    for hold in holds:
        by_key.setdefault(command_key(hold), []).append(hold)
    topic = commands_topic(settings)
    for key, commands in by_key.items():
        partition = partition_for(key, settings.command_partitions)
        for start in range(0, len(commands), batch):
            producer.produce(
                topic,
                encode_commands(commands[start : start + batch]),
                key.encode(),
                partition=partition,
                headers=command_headers(),
            )
            producer.poll(0)
    if producer.flush(60):
        raise TimeoutError("holds were not all acknowledged")


def run_mode(
    settings: Settings,
    show_id: str,
    places: int,
    buyers: int,
    stripes: int,
    batch: int = 100,
    hot_share: float = 0.0,
) -> dict[str, Any]:
    """One mode: create, hammer, pay, and check the log; the figures."""
    counter = EventCounter.from_now(settings)
    try:
        creates = _create(show_id, places, stripes)
        send_commands(settings, creates)
        created, _ = counter.until(show_id, (SectionCreated,), len(creates), 120)
        assert created == len(creates), f"{created} of {len(creates)} created"

        holds = _holds(show_id, buyers, stripes, hot_share)
        started = time.monotonic()
        _send_batched(settings, holds, batch)
        produced = time.monotonic()
        verdicts, events = counter.until(
            show_id, (HoldPlaced, HoldRejected), buyers, 900
        )
        decided = time.monotonic()
        print(
            f"{show_id}: {verdicts} verdicts in {decided - started:.1f} s",
            flush=True,
        )

        placed = [e for e in events if isinstance(e, HoldPlaced)]
        send_commands(settings, _payments(placed))
        sold_events, _ = counter.until(show_id, (TicketsSold,), len(placed), 300)
    finally:
        counter.close()

    ledger = audit_show(settings, show_id, 300)
    specs = stripe_specs(_spec(places, stripes))
    keys = {section_key(show_id, s.section_id) for s in specs}
    return {
        "stripes": stripes,
        "partitions_used": sorted(
            {partition_for(k, settings.command_partitions) for k in keys}
        ),
        "holds_sent": buyers,
        "holds_per_record": batch,
        "verdicts": verdicts,
        "placed": len(placed),
        "sold_from_log": sum(ledger.sold_by_section.values()),
        "oversold": ledger.oversold,
        "sold_twice": ledger.sold_twice,
        "tickets_sold_events": sold_events,
        "transfers": len(ledger.transfers_out),
        "places_transferred": sum(ledger.transfers_out.values()),
        "transfers_each_once": ledger.transfers_balanced(),
        "events_on_log": ledger.events,
        "produce_seconds": round(produced - started, 3),
        "wall_seconds": round(decided - started, 3),
        "holds_per_second": round(verdicts / (decided - started), 1),
    }


def _start_agents(settings: Settings, workers: int, logs: Path) -> list[Any]:
    return [start_agent(settings, logs / f"agent-{n}.log") for n in range(workers)]


def _wait_for_group(settings: Settings, workers: int, timeout: float = 120) -> None:
    """Until the agents' group is stable with every worker in it."""
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    group_id = settings.agent_id
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            group = admin.describe_consumer_groups([group_id])[group_id].result()
        except KafkaException:
            group = None
        if (
            group is not None
            and group.state == ConsumerGroupState.STABLE
            and len(group.members) == workers
        ):
            return
        time.sleep(0.5)
    raise TimeoutError(f"the group {group_id} has not got {workers} stable members")


def _stop(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run both modes on one set of agents and write the result JSON."""
    parser = argparse.ArgumentParser(prog="bench.stripes")
    parser.add_argument("--places", type=int, default=10_000)
    parser.add_argument("--buyers", type=int, default=100_000)
    parser.add_argument("--stripes", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--batch", type=int, default=100, help="holds per Kafka record, per stripe"
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    run = uuid.uuid4().hex[:6]
    # The agents read their settings from the environment they inherit.
    os.environ["TICKETING_COMMAND_PARTITIONS"] = str(args.stripes)
    settings = dataclasses.replace(
        Settings.from_env(),
        topic_prefix=f"bench-stripes-{run}",
        agent_id=f"bench-stripes-{run}-agent",
        agent_data_dir=tempfile.mkdtemp(prefix="bench-stripes-"),
    )
    ensure_topics(settings)
    logs = Path(tempfile.mkdtemp(prefix="bench-stripes-logs-"))
    agents = _start_agents(settings, args.workers, logs)
    load_at_start = list(os.getloadavg())
    try:
        _wait_for_group(settings, args.workers)
        warm_up = run_mode(
            settings,
            f"warm-{run}",
            max(1, args.places // 100),
            max(1, args.buyers // 100),
            args.stripes,
            args.batch,
        )
        modes = [
            run_mode(settings, f"one-{run}", args.places, args.buyers, 1, args.batch),
            run_mode(
                settings,
                f"striped-{run}",
                args.places,
                args.buyers,
                args.stripes,
                args.batch,
            ),
        ]
    finally:
        _stop(agents)

    result = {
        "bench": "stripes",
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "places": args.places,
        "buyers": args.buyers,
        "command_partitions": args.stripes,
        "agent_workers": args.workers,
        "cpus": os.cpu_count(),
        "load_average_at_start": load_at_start,
        "load_average_at_end": list(os.getloadavg()),
        "warm_up_verdicts": warm_up["verdicts"],
        "modes": modes,
        "speed_up": round(
            modes[1]["holds_per_second"] / max(modes[0]["holds_per_second"], 1e-9), 2
        ),
        "agent_logs": str(logs),
    }
    out = args.out or RESULTS / f"stripes-{result['date']}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()

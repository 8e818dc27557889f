"""A command record the consumer hands over again decides nothing twice.

The inventory writer keeps the offset of the last record a partition's state
includes, in the table beside the state. Records at or below it are skipped, so
a redelivery after a crash, a rebalance or a seek during table recovery gives no
second event, even for commands whose repeat the core would decide again (a
refused hold has no stored trace in the core).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from commands.model import (
    CreateShow,
    HoldRejected,
    PlaceHold,
    SectionKind,
    SectionSpec,
)
from infra.settings import Settings
from schemas.codec import (
    command_headers,
    decode_events,
    encode_commands,
    event_headers,
)
from streams.agent import InventoryWriter, state_from_table

NOW_MS = 1_800_000_000_000


@dataclass
class FakeRecord:
    partition: int
    offset: int
    value: bytes
    topic: str = "commands"
    key: bytes = b"show-1/ga"
    headers: list[tuple[str, bytes]] = field(default_factory=command_headers)


class FakeEvent:
    def __init__(self, record: FakeRecord) -> None:
        self.message = record
        self.acked = False

    def ack(self) -> bool:
        self.acked = True
        return True


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.buffer = SimpleNamespace(flush=self._flush)

    async def _flush(self) -> None:
        return None

    async def send(self, topic: str, key: bytes, value: bytes, *args: Any, **kw: Any):
        self.sent.append((topic, value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def _writer() -> tuple[InventoryWriter, FakeProducer, dict[bytes, bytes]]:
    settings = Settings.from_env({"TICKETING_TOPIC_PREFIX": "unit"})
    producer = FakeProducer()

    async def commit(offsets: Any, start_new_transaction: bool = True) -> bool:
        return True

    app = SimpleNamespace(
        producer=producer,
        consumer=SimpleNamespace(transactions=SimpleNamespace(commit=commit)),
        assignor=SimpleNamespace(group_for_topic=lambda topic: 0),
        conf=SimpleNamespace(id="agent"),
    )
    table: dict[bytes, bytes] = {}
    return InventoryWriter(app, settings, table), producer, table  # type: ignore[arg-type]


def _records() -> list[FakeEvent]:
    show = CreateShow(
        command_id="create-1",
        issued_at_ms=NOW_MS,
        show_id="show-1",
        hold_ttl_seconds=600,
        max_tickets_per_buyer=4,
        sections=(SectionSpec("ga", SectionKind.GENERAL_ADMISSION, capacity=1),),
    )
    holds = [
        PlaceHold(f"ga-{i}", NOW_MS + i, "show-1", "ga", f"buyer-{i}", quantity=1)
        for i in range(3)
    ]
    return [
        FakeEvent(FakeRecord(3, offset, encode_commands([command])))
        for offset, command in enumerate([show, *holds])
    ]


def _events(producer: FakeProducer) -> list[Any]:
    return [
        event
        for topic, value in producer.sent
        if topic.endswith(".events")
        for event in decode_events(value, event_headers())
    ]


def test_a_batch_handed_over_again_gives_no_second_event() -> None:
    writer, producer, _ = _writer()
    records = _records()

    asyncio.run(writer.process(records))
    first = _events(producer)
    asyncio.run(writer.process(_records()))
    again = _events(producer)

    assert sum(isinstance(e, HoldRejected) for e in first) == 2
    assert again == first, "a redelivered refusal must not be decided twice"
    assert writer.redeliveries_skipped_total == len(records)


def test_a_restarted_writer_skips_what_the_table_holds_and_decides_the_rest() -> None:
    writer, producer, table = _writer()
    records = _records()
    asyncio.run(writer.process(records[:2]))

    restarted, restarted_producer, restarted_table = _writer()
    restarted_table.update(table)
    redelivered = _records()
    asyncio.run(restarted.process(redelivered))

    decided = [e.command_id for e in _events(restarted_producer)]
    assert decided == ["ga-1", "ga-2"], "only the records after the applied offset"
    assert all(event.acked for event in redelivered)
    inventories, applied = state_from_table(restarted_table.items())
    assert applied == {3: 3}
    assert 3 in inventories

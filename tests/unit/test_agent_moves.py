"""The inventory writer carries out a move: adopt, route and forwards, one batch."""

from __future__ import annotations

import asyncio
from typing import Any

from commands.model import (
    AdoptSection,
    CreateShow,
    HandOffSection,
    PlaceHold,
    SectionKind,
    SectionSpec,
)
from infra.routing import Route, decode_route
from schemas.codec import (
    ROUTE_EPOCH_HEADER,
    command_headers,
    decode_commands,
    decode_events,
    encode_commands,
)
from tests.unit.test_agent_writer import FakeEvent, FakeProducer, FakeRecord, _writer

NOW_MS = 1_800_000_000_000
SOURCE, TARGET = 5, 2


class HeaderProducer(FakeProducer):
    """The writer's fake producer, which keeps every record's headers too."""


def _batch(partition: int, *commands: Any) -> list[FakeEvent]:
    return [
        FakeEvent(FakeRecord(partition, offset, encode_commands([command])))
        for offset, command in enumerate(commands)
    ]


def _run(partition: int, *commands: Any) -> tuple[Any, HeaderProducer]:
    writer, _, _ = _writer()
    producer = HeaderProducer()
    writer.app.producer = producer
    asyncio.run(writer.process(_batch(partition, *commands)))
    return writer, producer


def _sent_to(producer: HeaderProducer, suffix: str) -> list[tuple[int, bytes, list]]:
    return [
        (partition, value, headers)
        for (topic, value), partition, headers in zip(
            producer.sent, producer.partitions, producer.headers, strict=True
        )
        if topic.endswith(suffix)
    ]


def test_hand_off_sends_adopt_route_and_forwards_when_decided_in_one_batch() -> None:
    show = CreateShow(
        "c",
        NOW_MS,
        "show-1",
        600,
        4,
        (SectionSpec("ga", SectionKind.GENERAL_ADMISSION, capacity=5),),
    )
    hold = PlaceHold("h1", NOW_MS, "show-1", "ga", "b1", quantity=1)
    late = PlaceHold("h2", NOW_MS, "show-1", "ga", "b2", quantity=1)
    move = HandOffSection("mv", NOW_MS, "show-1", "ga", TARGET)

    writer, producer = _run(SOURCE, show, hold, move, late)

    (route,) = _sent_to(producer, ".routing")
    assert route[0] == 0 and decode_route(route[1]) == Route(TARGET, 1)
    sent_on = _sent_to(producer, ".commands")
    assert [partition for partition, _, _ in sent_on] == [TARGET]
    adopt, forwarded = decode_commands(sent_on[0][1], command_headers())
    assert isinstance(adopt, AdoptSection) and adopt.epoch == 1
    assert forwarded == late, "the late hold follows the adopt, undecided"
    records = _sent_to(producer, ".events")
    decided = [type(e).__name__ for _, v, h in records for e in decode_events(v, h)]
    assert decided == ["SectionCreated", "HoldPlaced", "SectionHandedOff"]
    assert all(ROUTE_EPOCH_HEADER not in dict(h) for _, _, h in records)

    # The new owner adopts it and decides the forwarded hold under epoch 1.
    target, producer = _run(TARGET, adopt, forwarded)

    records = _sent_to(producer, ".events")
    decided = [type(e).__name__ for _, v, h in records for e in decode_events(v, h)]
    assert decided == ["SectionAdopted", "HoldPlaced"]
    assert all(dict(h)[ROUTE_EPOCH_HEADER] == b"1" for _, _, h in records)
    assert writer.inventories[SOURCE].moved["show-1/ga"].to_partition == TARGET
    assert target.inventories[TARGET].sections["show-1/ga"].held_count == 2

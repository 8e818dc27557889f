"""The inventory writer sends a batch's follow-ups as one record per partition."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from commands.inventory import section_key
from commands.model import (
    CreateShow,
    PlaceHold,
    RequestHold,
    SectionKind,
    SectionSpec,
    SetBuyerLimit,
)
from infra.settings import Settings
from infra.topics import partition_for
from schemas.codec import (
    command_headers,
    decode_commands,
    decode_events,
    encode_commands,
)
from streams.agent import InventoryWriter
from streams.eos import NOTHING_DECIDED_YET

NOW_MS = 1_800_000_000_000


@dataclass
class FakeRecord:
    partition: int
    offset: int
    value: bytes
    topic: str = "commands"
    key: bytes = b"show-1/ga"
    headers: list[tuple[str, bytes]] = field(default_factory=command_headers)

    @property
    def tp(self) -> tuple[str, int]:
        return (self.topic, self.partition)


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
        self.partitions: list[int] = []
        self.headers: list[list[tuple[str, bytes]]] = []
        self.buffer = SimpleNamespace(flush=self._flush)

    async def _flush(self) -> None:
        return None

    async def send(self, topic: str, key: bytes, value: bytes, *args: Any, **kw: Any):
        self.sent.append((topic, value))
        self.partitions.append(args[0])
        self.headers.append(args[2])
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class FakeLog:
    """The command log as the writer's continuity check reads it."""

    def __init__(
        self,
        committed: dict[int, list[int]] | None = None,
        group_offsets: dict[int, int] | None = None,
    ) -> None:
        self.committed = committed or {}
        self.group_offsets = group_offsets or {}
        self.asked: list[tuple[int, int]] = []

    async def committed_offset(
        self, topic: str, partition: int, group: str
    ) -> int | None:
        return self.group_offsets.get(partition)

    async def first_committed(
        self, topic: str, partition: int, start: int
    ) -> int | None:
        self.asked.append((partition, start))
        return min(
            (o for o in self.committed.get(partition, []) if o >= start), default=None
        )


class FakeConsumer(SimpleNamespace):
    sought: list[tuple[Any, int]]

    async def seek_wait(self, partitions: dict[Any, int]) -> None:
        self.sought.extend(partitions.items())


def _writer(
    table: dict[bytes, bytes] | None = None,
    log: FakeLog | None = None,
) -> tuple[InventoryWriter, FakeProducer, dict[bytes, bytes]]:
    settings = Settings.from_env({"TICKETING_TOPIC_PREFIX": "unit"})
    producer = FakeProducer()

    async def commit(offsets: Any, start_new_transaction: bool = True) -> bool:
        return True

    crashes: list[BaseException] = []

    async def crash(exc: BaseException) -> None:
        crashes.append(exc)

    app = SimpleNamespace(
        producer=producer,
        consumer=FakeConsumer(
            force_commit=commit,
            transactions=SimpleNamespace(commit=commit),
            sought=[],
        ),
        assignor=SimpleNamespace(group_for_topic=lambda topic: 0),
        conf=SimpleNamespace(id="agent"),
        crash=crash,
        crashes=crashes,
    )
    table = {} if table is None else table
    writer = InventoryWriter(app, settings, table)  # type: ignore[arg-type]
    writer.finder = log or FakeLog()  # type: ignore[assignment]
    writer.on_tables_restored()
    return writer, producer, table


def test_follow_ups_of_a_batch_travel_as_one_record_per_target_partition() -> None:
    writer, producer, _ = _writer()
    requests = [
        RequestHold(f"r{i}", NOW_MS + i, "show-1", f"s{i % 2}", f"b{i}", quantity=1)
        for i in range(6)
    ]
    commands = [SetBuyerLimit("limit", NOW_MS, "show-1", 4), *requests]
    batch = [
        FakeEvent(FakeRecord(5, offset, encode_commands([command])))
        for offset, command in enumerate(commands)
    ]

    asyncio.run(writer.process(batch))

    follow_ups = [
        (partition, decode_commands(value, command_headers()))
        for (topic, value), partition in zip(
            producer.sent, producer.partitions, strict=True
        )
        if topic.endswith(".commands")
    ]
    targets = [partition for partition, _ in follow_ups]
    assert len(targets) == len(set(targets)), "one record per target partition"
    holds = [c for _, carried in follow_ups for c in carried]
    assert sorted(h.command_id for h in holds) == [f"r{i}" for i in range(6)]
    for partition, carried in follow_ups:
        for hold in carried:
            assert isinstance(hold, PlaceHold)
            key = section_key("show-1", hold.section_id)
            assert partition == partition_for(key, writer.settings.command_partitions)
        ids = [hold.command_id for hold in carried]
        assert ids == sorted(ids, key=lambda c: int(c[1:])), "decision order kept"


def _decided_ids(producer: FakeProducer) -> list[str]:
    """Command ids of the events a writer sent, one per decision."""
    return [
        event.command_id
        for (topic, value), headers in zip(producer.sent, producer.headers, strict=True)
        if topic.endswith(".events")
        for event in decode_events(value, headers)
    ]


def _batch(partition: int, first_offset: int, *commands: Any) -> list[FakeEvent]:
    return [
        FakeEvent(FakeRecord(partition, first_offset + n, encode_commands([command])))
        for n, command in enumerate(commands)
    ]


def test_a_record_handed_over_mid_restore_and_again_is_decided_once() -> None:
    show, (first, second), partition = _show_and_holds(2)
    previous_owner, _, changelog = _writer()
    asyncio.run(previous_owner.process(_batch(partition, 0, show, first)))
    restoring: dict[bytes, bytes] = {}
    writer, producer, _ = _writer(restoring)
    writer.app.consumer_generation_id = 2  # the group rebalanced
    writer.forget_state()  # the partition was assigned; its restore begins
    early = _batch(partition, 2, second)

    asyncio.run(writer.process(early))
    restoring.update(changelog)  # the restore reaches the changelog's end
    writer.on_tables_restored()
    asyncio.run(writer.process(_batch(partition, 1, first, second)))

    assert _decided_ids(producer) == ["h2"], "h1 was decided by the previous owner"
    assert not any(event.acked for event in early), "left for the seek back"
    assert writer.lowest_held_back(("commands", partition)) is None, "decided now"


def _show_and_hold() -> tuple[CreateShow, PlaceHold, int]:
    show = CreateShow(
        "create-1",
        NOW_MS,
        "show-1",
        3600,
        4,
        (SectionSpec("ga", SectionKind.GENERAL_ADMISSION, capacity=10),),
    )
    hold = PlaceHold("h1", NOW_MS + 1, "show-1", "ga", "b1", quantity=1)
    return show, hold, partition_for(section_key("show-1", "ga"), 8)


def test_a_record_held_back_keeps_the_commit_below_it_until_decided() -> None:
    show, hold, partition = _show_and_hold()
    # Offsets 0-6 are transaction markers and aborted records.
    writer, producer, _ = _writer(log=FakeLog({partition: [7, 8]}))
    writer.app.consumer_generation_id = 2  # the group rebalanced
    writer.forget_state()
    tp = ("commands", partition)

    asyncio.run(writer.process(_batch(partition, 7, show, hold)))

    assert _decided_ids(producer) == []
    assert writer.lowest_held_back(tp) == 7, "faust acks it all the same"
    writer.on_tables_restored()
    asyncio.run(writer.process(_batch(partition, 7, show, hold)))
    assert _decided_ids(producer) == ["create-1", "h1"]
    assert writer.lowest_held_back(tp) is None


def test_a_restore_signalled_before_its_assignment_counts_for_it() -> None:
    show, hold, partition = _show_and_hold()
    writer, producer, _ = _writer()
    writer.app.consumer_generation_id = 4
    # faust starts the restore before it signals the assignment; a quick
    # restore ends first.
    writer.on_tables_restored()
    writer.forget_state()

    asyncio.run(writer.process(_batch(partition, 0, show, hold)))

    assert _decided_ids(producer) == ["create-1", "h1"]


def test_a_restore_of_an_earlier_generation_does_not_count() -> None:
    show, hold, partition = _show_and_hold()
    writer, producer, _ = _writer()
    writer.app.consumer_generation_id = 4
    writer.on_tables_restored()
    writer.app.consumer_generation_id = 5  # the group rebalanced again
    writer.forget_state()

    asyncio.run(writer.process(_batch(partition, 0, show, hold)))

    assert _decided_ids(producer) == []
    assert writer.lowest_held_back(("commands", partition)) == 0


def _show_and_holds(count: int) -> tuple[CreateShow, list[PlaceHold], int]:
    show, _, partition = _show_and_hold()
    holds = [
        PlaceHold(f"h{n}", NOW_MS + n, "show-1", "ga", f"b{n}", quantity=1)
        for n in range(1, count + 1)
    ]
    return show, holds, partition


def test_records_faust_drops_from_its_queue_are_sought_back_and_decided() -> None:
    show, (h1, h2, h3), partition = _show_and_holds(3)
    writer, producer, _ = _writer(log=FakeLog({partition: [0, 1, 2, 3]}))
    asyncio.run(writer.process(_batch(partition, 0, show, h1)))

    # faust clears its stream queue (it held h2 at offset 2) when it resumes
    # flow; its fetch position has moved on, so the next record is h3.
    writer.on_records_dropped({partition: 2})
    after = _batch(partition, 3, h3)
    asyncio.run(writer.process(after))

    assert _decided_ids(producer) == ["create-1", "h1"], "h3 waits for h2"
    assert writer.app.consumer.sought == [(("commands", partition), 2)]
    assert writer.lowest_held_back(("commands", partition)) == 3
    asyncio.run(writer.process(_batch(partition, 2, h2, h3)))
    assert _decided_ids(producer) == ["create-1", "h1", "h2", "h3"]
    assert writer.lowest_held_back(("commands", partition)) is None


def test_records_past_the_cursor_handed_over_first_are_sought_back() -> None:
    show, (h1, h2, h3), partition = _show_and_holds(3)
    previous_owner, _, changelog = _writer(log=FakeLog({partition: [0, 1, 2, 3]}))
    asyncio.run(previous_owner.process(_batch(partition, 0, show, h1)))
    # The group committed offset 2 with the cursor, but faust's position after
    # the rebalance is past h2 (its queue was cleared): h3 is handed over first.
    writer, producer, _ = _writer(
        dict(changelog), log=FakeLog({partition: [0, 1, 2, 3]}, {partition: 2})
    )
    writer.app.consumer_generation_id = 2
    writer.forget_state()
    writer.on_tables_restored()

    asyncio.run(writer.process(_batch(partition, 3, h3)))
    assert _decided_ids(producer) == [], "h2 comes first"
    assert writer.finder.asked == [(partition, 2)], "checked from the table's cursor"
    assert writer.app.consumer.sought == [(("commands", partition), 2)]
    asyncio.run(writer.process(_batch(partition, 1, h1, h2, h3)))
    assert _decided_ids(producer) == ["h2", "h3"], "h1 is below the cursor"


def test_a_gap_of_markers_after_the_cursor_is_no_missing_record() -> None:
    show, (h1, h2), partition = _show_and_holds(2)
    previous_owner, _, changelog = _writer(log=FakeLog({partition: [0, 1, 5]}))
    asyncio.run(previous_owner.process(_batch(partition, 0, show, h1)))
    writer, producer, _ = _writer(dict(changelog), log=FakeLog({partition: [0, 1, 5]}))
    writer.app.consumer_generation_id = 2
    writer.forget_state()
    writer.on_tables_restored()

    asyncio.run(writer.process(_batch(partition, 5, h2)))

    assert _decided_ids(producer) == ["h2"]
    assert writer.app.consumer.sought == []


def test_a_local_copy_whose_decisions_may_have_aborted_is_dropped() -> None:
    writer, _, _ = _writer()
    kept, dropped = {b"a": b"1"}, {b"b": b"2", b"offset": b"9"}
    dbs = {1: FakeDB(kept), 2: FakeDB(dropped)}
    writer.table = SimpleNamespace(data=SimpleNamespace(_db_for_partition=dbs.get))

    writer.drop_local_copies({2})

    assert kept == {b"a": b"1"}
    assert dropped == {}, "entries and the restore offset: restored afresh"


class FakeDB:
    def __init__(self, items: dict[bytes, bytes]) -> None:
        self.items = items

    def keys(self) -> list[bytes]:
        return list(self.items)

    def delete(self, key: bytes) -> None:
        del self.items[key]


def test_nothing_is_decided_from_a_revocation_until_the_next_restore() -> None:
    show, (h1, h2), partition = _show_and_holds(2)
    writer, producer, _ = _writer(log=FakeLog({partition: [0, 1, 2]}))
    asyncio.run(writer.process(_batch(partition, 0, show, h1)))

    writer.stop_deciding()  # faust revokes; its stream still holds h2
    tp = SimpleNamespace(topic=writer.commands_topic, partition=partition)
    assert writer.decided_up_to(tp) == 2, "the revocation's commit reads the cursor"
    late = _batch(partition, 2, h2)
    asyncio.run(writer.process(late))
    assert _decided_ids(producer) == ["create-1", "h1"]
    assert writer.lowest_held_back(("commands", partition)) == 2

    writer.app.consumer_generation_id = 2  # the partition is assigned again
    writer.forget_state()
    writer.on_tables_restored()
    asyncio.run(writer.process(_batch(partition, 2, h2)))
    assert _decided_ids(producer) == ["create-1", "h1", "h2"]


def test_a_table_behind_the_committed_offset_stops_the_worker_deciding_nothing() -> (
    None
):
    show, (h1, h2), partition = _show_and_holds(2)
    previous_owner, _, _ = _writer(log=FakeLog({partition: [0, 1, 2]}))
    asyncio.run(previous_owner.process(_batch(partition, 0, show, h1)))
    # The restore missed the changelog (faust took it as read to its end): the
    # table is empty while the group committed offset 2 with the cursor.
    writer, producer, _ = _writer(
        {}, log=FakeLog({partition: [0, 1, 2]}, {partition: 2})
    )
    writer.app.consumer_generation_id = 2
    writer.forget_state()
    writer.on_tables_restored()

    async def handed_over_from_the_committed_offset() -> None:
        await writer.process(_batch(partition, 2, h2))
        await asyncio.sleep(0)

    asyncio.run(handed_over_from_the_committed_offset())

    assert _decided_ids(producer) == [], "nothing decided from an incomplete table"
    assert writer.app.consumer.sought == [], "not sent back to decide history again"
    assert [type(e).__name__ for e in writer.app.crashes] == ["IncompleteRestore"]
    assert writer.lowest_held_back(("commands", partition)) == 2
    tp = SimpleNamespace(topic=writer.commands_topic, partition=partition)
    assert writer.decided_up_to(tp) == NOTHING_DECIDED_YET, "the group's offset stays"

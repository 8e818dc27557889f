"""The commit gate: offsets are read after the batch in progress, then committed
for every partition at once, after the buffered table writes are flushed."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from functools import partial
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import IllegalOperation, ProducerFenced
from faust.transport.consumer import Consumer
from faust.types import TP
from intervaltree import IntervalTree

from streams import metrics
from streams.eos import (
    CommitGate,
    commit_before_revocation,
    continue_run,
    offset_before_held_back,
    offset_below,
    offset_from_cursor,
    offset_past_counted_twice,
)

PARTITIONS = [TP("commands", p) for p in range(4)]


class FakeProducer:
    def __init__(self, fail: dict[str, BaseException] | None = None) -> None:
        self.log: list[str] = []
        self.committed: dict[str, dict[TP, int]] = {}
        self.fail = fail or {}
        self.started = 0
        self.all_started = asyncio.Event()
        self.buffer = SimpleNamespace(flush=self._flush)

    async def _flush(self) -> None:
        self.log.append("flush")

    async def commit_transactions(
        self,
        offsets: dict[str, dict[TP, int]],
        group_id: str,
        start_new_transaction: bool = True,
    ) -> None:
        ((transactional_id, tp_offsets),) = offsets.items()
        self.log.append(f"start {transactional_id}")
        self.started += 1
        if self.started == len(PARTITIONS):
            self.all_started.set()
        # Sequential commits would wait here for ever: the last one never starts.
        await asyncio.wait_for(self.all_started.wait(), timeout=2)
        if transactional_id in self.fail:
            raise self.fail[transactional_id]
        self.committed[transactional_id] = tp_offsets


class FakeConsumer:
    """faust's commit path: force_commit reads the acked offsets, then commits."""

    def __init__(self, producer: FakeProducer) -> None:
        self.acked = {tp: 10 for tp in PARTITIONS}
        self._acked: dict[TP, list[int]] = {}
        self.producer = producer
        self.transactions = SimpleNamespace(commit=self._faust_sequential_commit)

    async def _faust_sequential_commit(self, *args: Any, **kwargs: Any) -> bool:
        raise AssertionError("faust's sequential commit must not run")

    async def force_commit(
        self, topics: Any = None, start_new_transaction: bool = True
    ) -> bool:
        self.producer.log.append("read offsets")
        offsets = dict(self.acked)
        result: bool = await self.transactions.commit(
            offsets, start_new_transaction=start_new_transaction
        )
        return result


def _gate(
    producer: FakeProducer, on_fenced: Any = None
) -> tuple[CommitGate, FakeConsumer, list[Any]]:
    crashes: list[BaseException] = []

    async def crash(exc: BaseException) -> None:
        crashes.append(exc)

    consumer = FakeConsumer(producer)
    app = SimpleNamespace(
        conf=SimpleNamespace(id="agent"),
        assignor=SimpleNamespace(group_for_topic=lambda topic: 1),
        producer=producer,
        consumer=consumer,
        crash=crash,
    )
    gate = CommitGate(app, on_fenced=on_fenced)  # type: ignore[arg-type]
    gate.install()
    return gate, consumer, crashes


def test_offsets_are_read_after_the_batch_in_progress_is_acked() -> None:
    producer = FakeProducer()
    gate, consumer, _ = _gate(producer)

    async def batch_then_commit() -> None:
        async def batch() -> None:
            async with gate.lock:
                await asyncio.sleep(0.05)  # the commit timer fires meanwhile
                consumer.acked[PARTITIONS[2]] = 25

        running = asyncio.create_task(batch())
        await asyncio.sleep(0)
        await consumer.force_commit()
        await running

    asyncio.run(batch_then_commit())

    assert producer.committed["agent-1-2"] == {PARTITIONS[2]: 25}


def test_every_partition_commits_its_own_offsets_concurrently_after_a_flush() -> None:
    producer = FakeProducer()
    _, consumer, crashes = _gate(producer)

    assert asyncio.run(consumer.force_commit()) is True

    assert producer.log[:2] == ["flush", "read offsets"]
    assert producer.committed == {
        f"agent-1-{tp.partition}": {tp: 10} for tp in PARTITIONS
    }
    assert not crashes


def test_a_fenced_producer_crashes_the_worker_as_faust_does() -> None:
    producer = FakeProducer(fail={"agent-1-2": ProducerFenced()})
    _, consumer, crashes = _gate(producer)

    asyncio.run(consumer.force_commit())

    assert len(crashes) == 1 and isinstance(crashes[0], ProducerFenced)
    assert "agent-1-2" not in producer.committed
    assert len(producer.committed) == 3


def test_any_other_commit_failure_is_raised() -> None:
    producer = FakeProducer(fail={"agent-1-0": RuntimeError("broker gone")})
    _, consumer, crashes = _gate(producer)

    with pytest.raises(RuntimeError, match="broker gone"):
        asyncio.run(consumer.force_commit())
    assert not crashes


def _acks_past_offsets() -> float:
    value = metrics.REGISTRY.get_sample_value("ticketing_agent_acks_past_offsets_total")
    return value or 0.0


def test_records_acked_past_a_hole_in_the_committed_offsets_are_reported() -> None:
    producer = FakeProducer()
    _, consumer, _ = _gate(producer)
    before = _acks_past_offsets()
    # faust commits up to offset 10; 10 was never acked, 11 and 12 were
    consumer._acked = {PARTITIONS[1]: [11, 12], PARTITIONS[3]: [7]}

    asyncio.run(consumer.force_commit())

    assert _acks_past_offsets() == before + 2


def _faust_consumer(committed: int) -> Any:
    """faust's own offset bookkeeping, on a bare object."""
    return SimpleNamespace(
        _acked=defaultdict(list),
        _gap=defaultdict(IntervalTree),
        _committed_offset=defaultdict(lambda: None, {PARTITIONS[0]: committed}),
        _acked_index=defaultdict(set),
    )


def test_the_offset_committed_covers_a_record_after_a_transaction_marker() -> None:
    tp = PARTITIONS[0]
    consumer = _faust_consumer(committed=10)
    consumer._new_offset = partial(Consumer._new_offset, consumer)
    new_offset = offset_past_counted_twice(consumer)
    # 10, 11, 13 and 14 are decided and acked; 12 is a transaction marker
    asyncio.run(Consumer._add_gap(consumer, tp, 12, 13))
    for offset in (10, 11, 13, 14):
        consumer._acked[tp].append(offset)
        consumer._acked_index[tp].add(offset)

    assert new_offset(tp) == 15, "the next record to read; 14 is decided"
    assert consumer._acked[tp] == [] and consumer._acked_index[tp] == set()


def test_a_record_not_acked_still_stops_the_offset_committed() -> None:
    acked, index = [13, 14, 17], {13, 14, 17}

    assert continue_run(acked, index, 14) == 15
    assert acked == [17] and index == {17}


def test_records_held_back_and_acked_by_faust_are_not_committed_until_decided() -> None:
    tp = PARTITIONS[0]
    consumer = _faust_consumer(committed=10)
    consumer._new_offset = partial(Consumer._new_offset, consumer)
    held_back: set[int] = {10, 11}

    def lowest(partition: Any) -> int | None:
        return min(held_back) if partition == tp and held_back else None

    new_offset = offset_before_held_back(
        consumer, offset_past_counted_twice(consumer), lowest
    )

    def ack(offset: int) -> None:  # as faust's Consumer.ack records it
        if offset not in consumer._acked_index[tp]:
            consumer._acked[tp].append(offset)
            consumer._acked_index[tp].add(offset)

    # take_events acks the held-back records 10 and 11 when the agent returns
    ack(10)
    ack(11)
    assert new_offset(tp) == 10, "nothing past the first record held back"

    # faust seeks back; both are handed over again, decided and acked
    ack(10)
    ack(11)
    held_back.clear()
    assert new_offset(tp) == 12


def test_the_offset_committed_stays_below_a_record_held_back() -> None:
    assert offset_below(15, None, 10) == 15
    assert offset_below(15, 12, 10) == 12
    assert offset_below(12, 12, 10) == 12, "12 itself is the next to read"
    assert offset_below(15, 12, None) is None, "committed offset unknown: wait"
    assert offset_below(15, 8, 10) == 15, "held back below the committed offset"


@pytest.mark.parametrize(
    "failure",
    [ProducerFenced(), IllegalOperation("Not in the middle of a transaction")],
    ids=["fenced", "no-transaction-after-a-fence"],
)
def test_a_fenced_commit_goes_to_the_fence_watch_and_the_others_commit(
    failure: Exception,
) -> None:
    producer = FakeProducer(fail={"agent-1-2": failure})
    fences: list[BaseException] = []
    _, consumer, crashes = _gate(producer, on_fenced=fences.append)

    asyncio.run(consumer.force_commit())

    assert not crashes, "a rebalance may explain the fence (streams.fencing)"
    assert fences == [failure]
    assert len(producer.committed) == 3


class RevokingConsumer:
    """faust's consumer at a revocation: it forgets the acked offsets."""

    def __init__(self, gate: CommitGate, fail: set[int], assigned: set[TP]) -> None:
        self.gate = gate
        self.fail = fail
        self.assigned = assigned
        self.log: list[str] = []

    def assignment(self) -> set[TP]:
        return self.assigned

    async def force_commit(self) -> bool:
        self.log.append("commit")
        self.gate.failed_partitions = set(self.fail)
        return True

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.log.append("forget acked offsets")


def _revoke(fail: set[int], assigned: set[TP]) -> tuple[list[str], list[set[int]]]:
    gate = CommitGate(SimpleNamespace())  # type: ignore[arg-type]
    consumer = RevokingConsumer(gate, fail, assigned)
    uncommitted: list[set[int]] = []
    commit_before_revocation(
        consumer,
        gate,
        "commands",
        uncommitted.append,
        lambda: consumer.log.append("stop deciding"),
    )
    revoked = {TP("commands", 1), TP("commands", 2), TP("changelog", 1)}
    asyncio.run(consumer.on_partitions_revoked(revoked))
    return consumer.log, uncommitted


def test_decisions_are_committed_before_faust_forgets_revoked_partitions() -> None:
    log, uncommitted = _revoke(fail=set(), assigned=set(PARTITIONS))

    assert log == ["stop deciding", "commit", "forget acked offsets"]
    assert uncommitted == []


def test_partitions_whose_commit_failed_at_revocation_are_reported() -> None:
    log, uncommitted = _revoke(fail={2, 3}, assigned=set(PARTITIONS))
    assert uncommitted == [{2}], "only revoked command partitions"

    # faust commits nothing for a partition no longer in the assignment.
    _, uncommitted = _revoke(fail=set(), assigned={TP("commands", 2)})
    assert uncommitted == [{1}]


def test_the_agents_cursor_commits_past_a_hole_faust_never_filled() -> None:
    tp = PARTITIONS[0]
    consumer = _faust_consumer(committed=77)
    consumer._new_offset = partial(Consumer._new_offset, consumer)
    # 77-79 were handed over, dropped by faust's read offset after a seek back,
    # and decided once handed over again; faust saw only the later acks.
    for offset in (80, 81, 85):
        consumer._acked[tp].append(offset)
        consumer._acked_index[tp].add(offset)
    assert Consumer._new_offset(consumer, tp) is None, "faust commits nothing"

    new_offset = offset_from_cursor(consumer, lambda tp: 82, consumer._new_offset)

    assert new_offset(tp) == 82, "the agent decided everything below 82"
    assert consumer._acked[tp] == [85] and consumer._acked_index[tp] == {85}
    unknown = offset_from_cursor(consumer, lambda tp: None, lambda tp: 78)
    assert unknown(tp) == 78, "without a verified cursor, faust's offset"


def test_commits_are_noted_where_fausts_stall_detector_reads_them() -> None:
    producer = FakeProducer(fail={"agent-1-2": ProducerFenced()})
    fences: list[BaseException] = []
    _, consumer, _ = _gate(producer, on_fenced=fences.append)
    consumer._thread = SimpleNamespace(tp_last_committed_at={})

    asyncio.run(consumer.force_commit())

    noted = consumer._thread.tp_last_committed_at
    assert sorted(tp.partition for tp in noted) == [0, 1, 3], "not the fenced one"

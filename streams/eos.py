"""A commit gate that makes faust's exactly-once hold for batched table writes.

Faust commits a partition's transaction from a background timer. Three gaps let
a crash or a rebalance duplicate or lose work:

- the timer may commit while an agent is half-way through a batch (its sends
  land in a committed transaction whose offsets do not include the batch);
- faust reads the offsets to commit before the commit waits for anything, so a
  batch decided meanwhile was committed with the older offsets, and decided a
  second time by the next owner of the partition (a refused hold then gave a
  second HoldRejected);
- table changelog writes wait in a producer buffer that the commit does not flush.

The gate closes all three: an agent decides and sends a whole batch while holding
the gate, and a commit takes the gate before faust reads the acked offsets, then
flushes the buffer into the open transaction and commits. The offsets committed
are then exactly those of the batches whose sends the transaction holds.

Faust commits the partitions' transactions one after another, four round trips
each; with eight partitions that held the gate for 0.1-0.25 s of every 0.1 s
commit interval. Each partition has its own transactional producer, so the gate
commits them concurrently.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Set
from typing import Any

import faust
from aiokafka.errors import IllegalOperation, ProducerFenced

from streams import metrics

logger = logging.getLogger(__name__)


class CommitGate:
    """Mutual exclusion between batch processing and transaction commits."""

    def __init__(
        self,
        app: faust.App,
        lowest_held_back: Callable[[Any], int | None] = lambda tp: None,
        on_fenced: Callable[[BaseException], None] | None = None,
        decided_up_to: Callable[[Any], int | None] = lambda tp: None,
    ) -> None:
        self.app = app
        self.lowest_held_back = lowest_held_back
        self.decided_up_to = decided_up_to
        self.on_fenced = on_fenced
        self.failed_partitions: set[int] = set()
        """Partitions whose transaction failed to commit in the last commit."""
        self.lock = asyncio.Lock()
        self._installed = False

    def install(self) -> None:
        """Wrap the worker's commit; safe to call more than once."""
        if self._installed:
            return
        # faust's Consumer, not its ConsumerT protocol: force_commit is where the
        # offsets to commit are read.
        consumer: Any = self.app.consumer
        force_commit: Callable[..., Awaitable[bool]] = consumer.force_commit

        async def gated_force_commit(
            topics: Any = None, start_new_transaction: bool = True
        ) -> bool:
            async with self.lock:
                await self.flush_buffered_sends()
                return await force_commit(
                    topics, start_new_transaction=start_new_transaction
                )

        async def concurrent_commit(
            offsets: Mapping[Any, int], start_new_transaction: bool = True
        ) -> bool:
            # Reached only through gated_force_commit, with the gate held.
            self.report_acks_past_offsets(offsets)
            await self.commit_concurrently(offsets, start_new_transaction)
            return True

        consumer.force_commit = gated_force_commit
        consumer.transactions.commit = concurrent_commit
        if hasattr(consumer, "_new_offset"):
            consumer._new_offset = offset_from_cursor(
                consumer,
                self.decided_up_to,
                offset_before_held_back(
                    consumer, offset_past_counted_twice(consumer), self.lowest_held_back
                ),
            )
        self._installed = True
        logger.info("exactly-once commit gate installed")

    async def commit_concurrently(
        self, offsets: Mapping[Any, int], start_new_transaction: bool
    ) -> None:
        """Commit each partition's transaction with its offsets, all at once."""
        group_id = self.app.conf.id
        by_transaction: dict[str, dict[Any, int]] = defaultdict(dict)
        for tp, offset in offsets.items():
            group = self.app.assignor.group_for_topic(tp.topic)
            by_transaction[f"{group_id}-{group}-{tp.partition}"][tp] = offset
        producer = self.app.producer
        results = await asyncio.gather(
            *(
                producer.commit_transactions(
                    {transactional_id: tp_offsets},
                    group_id,
                    start_new_transaction=start_new_transaction,
                )
                for transactional_id, tp_offsets in by_transaction.items()
            ),
            return_exceptions=True,
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        committed: list[Any] = []
        failed: list[Any] = []
        for result, tp_offsets in zip(results, by_transaction.values(), strict=True):
            (failed if isinstance(result, BaseException) else committed).extend(
                tp_offsets
            )
        self._note_committed(committed)
        self.failed_partitions = {tp.partition for tp in failed}
        # A producer fenced earlier (its batch failed on a send) is no longer in
        # a transaction: its commit fails with IllegalOperation, the same fence.
        fenced = [
            f for f in failures if isinstance(f, ProducerFenced | IllegalOperation)
        ]
        if fenced:
            # Another worker owns the partition now, or the broker aborted the
            # transaction: faust stops the worker; with a fence watch
            # (streams.fencing) it stops only if no rebalance follows.
            logger.warning("producer fenced", extra={"error": str(fenced[0])})
            if self.on_fenced is None:
                await self.app.crash(fenced[0])
            else:
                self.on_fenced(fenced[0])
        others = [f for f in failures if f not in fenced]
        if others:
            raise others[0]

    def _note_committed(self, tps: Iterable[Any]) -> None:
        """Tell faust's stall detector these partitions committed now.

        It reads the time of each partition's last commit from its consumer
        thread, which only faust's non-transactional commit sets; with
        exactly-once it logged an error for every partition every few seconds
        once the worker ran 5 minutes ("Has not committed ... at all since
        worker start") while commits went on.
        """
        thread: Any = getattr(self.app.consumer, "_thread", None)
        committed_at = getattr(thread, "tp_last_committed_at", None)
        if committed_at is not None:
            now = time.monotonic()
            committed_at.update(dict.fromkeys(tps, now))

    def report_acks_past_offsets(self, offsets: Mapping[Any, int]) -> None:
        """Report records a commit decides in its transaction but not in its offsets.

        Faust commits a partition's offsets up to the first record not acked;
        the transaction holds the sends of every batch acked. A record acked
        past such a hole is decided in this transaction and handed over again
        after a restart, where only a complete inventory recognises it.
        """
        # faust's Consumer keeps the acked offsets not committed yet per partition.
        acked: Mapping[Any, Any] = getattr(self.app.consumer, "_acked", {})
        for tp, offset in offsets.items():
            if self.lowest_held_back(tp) is not None:
                # The commit stops at a record held back on purpose; what is
                # acked past it is held back too, not decided.
                continue
            beyond = sorted(o for o in acked.get(tp, ()) if o >= offset)
            if beyond:
                metrics.ACKS_PAST_OFFSETS.inc(len(beyond))
                logger.error(
                    "transaction commits decisions past its offsets",
                    extra={
                        "topic": tp.topic,
                        "partition": tp.partition,
                        "offset": offset,
                        "first_acked_beyond": beyond[0],
                        "acked_beyond": len(beyond),
                    },
                )

    async def flush_buffered_sends(self) -> None:
        """Hand every buffered table changelog write to its transactional producer.

        faust's ``ProducerBuffer.flush`` returns as soon as one write takes
        longer than 0.1 s to hand over (the buffer filled up under load), so a
        commit could end a transaction without some of the table writes of its
        batches: they went into the next one, lost if the worker died first,
        and a restored table then lacked decisions that were on the log. The
        buffer hands writes over one by one in order, so a mark put behind the
        last one is reached only once every write before it was handed over.
        """
        await flush_producer_buffer(self.app.producer.buffer)


FLUSH_TIMEOUT_SECONDS = 60.0


class _FlushMark:
    """Goes through faust's producer buffer like a message, and sends nothing."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self.message = self
        self.channel = self

    async def publish_message(self, fut: Any, wait: bool = False) -> None:
        self.reached.set()


async def flush_producer_buffer(
    buffer: Any, timeout_seconds: float = FLUSH_TIMEOUT_SECONDS
) -> None:
    """Wait until faust's producer buffer handed over everything put in it so far."""
    pending = getattr(buffer, "pending", None)
    if (
        pending is None
        or getattr(buffer, "threaded_producer", None) is not None
        or getattr(buffer, "state", "running") != "running"
    ):
        # TODO(limit): a threaded producer's buffer is drained by faust's own
        # flush only (which may return early); the agent does not use one.
        await buffer.flush()
        return
    mark = _FlushMark()
    pending.put_nowait(mark)
    await asyncio.wait_for(mark.reached.wait(), timeout_seconds)


NOTHING_DECIDED_YET = -1
"""What ``decided_up_to`` answers for a partition whose table is not loaded yet:
commit nothing (faust's own offset may pass records it dropped)."""


def offset_from_cursor(
    consumer: Any,
    decided_up_to: Callable[[Any], int | None],
    fallback: Callable[[Any], int | None],
) -> Callable[[Any], int | None]:
    """The offset to commit for a partition: the agent's own cursor, when it has one.

    Faust derives the offset from the records acked and the gaps its fetch loop
    saw; a seek of the agent's (``streams.continuity``) upsets both, and a hole
    at the head of the acked records that faust never filled stopped every
    commit of the partition: its transaction stayed open until the broker
    aborted it (transaction timeout) and fenced the worker. The cursor is the
    offset after the last record the agent decided, and the transaction being
    committed holds those decisions and the cursor itself. Acks below it are
    dropped as faust drops what it commits. Before the table is loaded nothing
    is committed: faust fills a jump in its fetch offsets as acked, and a jump
    over dropped records committed them undecided. ``decided_up_to`` answers
    None for a partition without a cursor (a table from before cursors): then
    faust's offset is taken.
    """

    def new_offset_from_cursor(tp: Any) -> int | None:
        cursor = decided_up_to(tp)
        if cursor is None:
            return fallback(tp)
        if cursor == NOTHING_DECIDED_YET:
            return None
        acked: list[int] = consumer._acked[tp]
        index: set[int] = consumer._acked_index[tp]
        below = [offset for offset in acked if offset < cursor]
        if below:
            index.difference_update(below)
            acked[:] = [offset for offset in acked if offset >= cursor]
        gaps = consumer._gap.get(tp)
        if gaps:
            gaps.chop(0, cursor)
        return cursor

    return new_offset_from_cursor


def offset_past_counted_twice(consumer: Any) -> Callable[[Any], int | None]:
    """Faust's offset to commit for a partition, past the offsets it counts twice.

    Faust fills a gap in a partition's offsets (a transaction marker, an aborted
    record) with a range that ends on the next record, which is acked as well;
    the record is then listed twice, and faust's run of consecutive offsets
    stops before it. The transaction still holds that record's decision, so its
    offset is committed one commit late, and a worker killed in between hands
    it over again.
    """
    new_offset: Callable[[Any], int | None] = consumer._new_offset

    def new_offset_past_counted_twice(tp: Any) -> int | None:
        offset = new_offset(tp)
        if offset is None:
            return None
        return continue_run(consumer._acked[tp], consumer._acked_index[tp], offset)

    return new_offset_past_counted_twice


def continue_run(acked: list[int], index: set[int], offset: int) -> int:
    """Extend a committed run ending before ``offset`` over what is left acked.

    Removes the offsets taken from ``acked`` and ``index`` as faust does; a real
    hole (an offset not acked) still stops the run.
    """
    acked.sort()
    taken = 0
    for acked_offset in acked:
        if acked_offset > offset:
            break
        if acked_offset == offset:
            offset += 1
        taken += 1
    index.difference_update(acked[:taken])
    del acked[:taken]
    return offset


def offset_before_held_back(
    consumer: Any,
    new_offset: Callable[[Any], int | None],
    lowest_held_back: Callable[[Any], int | None],
) -> Callable[[Any], int | None]:
    """Faust's offset to commit for a partition, kept below a record held back.

    The agent leaves a record handed over before its tables were restored
    undecided, but faust's ``take_events`` acks it anyway once the agent
    returns; committed, it would never be handed over again (a lost command).
    """

    def new_offset_before_held_back(tp: Any) -> int | None:
        offset = new_offset(tp)
        if offset is None:
            return None
        committed: int | None = consumer._committed_offset[tp]
        return offset_below(offset, lowest_held_back(tp), committed)

    return new_offset_before_held_back


def offset_below(
    offset: int, held_back: int | None, committed: int | None
) -> int | None:
    """The offset to commit when the record at ``held_back`` is not decided yet.

    None (commit nothing) when the committed offset is unknown: faust forgets
    it at a rebalance until it seeks again, and a commit must not go back.
    A held-back offset below the committed one was decided before.
    """
    if held_back is None or offset <= held_back:
        return offset
    if committed is None:
        return None
    if held_back < committed:
        return offset
    return held_back


async def stop_revoked_producers(app: faust.App, assigned: Set[Any]) -> list[str]:
    """Stop the transactional producers of partitions this worker no longer owns.

    Faust stops them only for revoked partitions it does not count as standby,
    and with standby replicas it counts the command partition of a standby copy
    as standby. The producer of a partition handed to another worker then stayed
    open in a transaction; the new owner fenced it, and when the partition came
    back (the other worker left) faust reused it: a send failed with "not in
    transaction" and the worker stopped. Stopped here, faust makes a new one
    when the partition comes back. Returns the ids stopped.
    """
    producer: Any = app.producer
    transactions: Any = app.consumer.transactions
    standbys = app.assignor.assigned_standbys()
    owned = transactions._tps_to_transactional_ids(
        {tp for tp in assigned if tp not in standbys}
    )
    stale = sorted(set(producer._transaction_producers) - owned)
    for transactional_id in stale:
        await producer.stop_transaction(transactional_id)
    if stale:
        logger.info("revoked transactional producers stopped", extra={"ids": stale})
    return stale


def commit_before_revocation(
    consumer: Any,
    gate: CommitGate,
    topic: str,
    on_uncommitted: Callable[[set[int]], None],
    stop_deciding: Callable[[], None] = lambda: None,
) -> None:
    """Commit what was decided before faust gives partitions up in a rebalance.

    Faust forgets a revoked partition's acked offsets and stops its producer
    with the transaction open: the decisions made since the last commit were
    aborted, while the worker's local table kept their writes (RocksDB is not
    transactional). When the partition came back, the agent loaded state the
    log never had: its cursor past records never decided (they were skipped),
    holds that never happened. As Kafka Streams does, the agent commits in the
    revocation; partitions whose commit fails there are reported to
    ``on_uncommitted``, which drops their local copy.

    Before that, ``stop_deciding`` makes the agent hold back every record until
    the next assignment's tables are restored: a batch decided after the
    revocation commit (faust's stream buffers keep records) was left in an open
    transaction that blocked the changelog's restore below it, and the restored
    table lacked decisions that committed later.
    """
    revoke: Callable[[Any], Awaitable[None]] = consumer.on_partitions_revoked

    async def commit_then_revoke(revoked: Any) -> None:
        partitions = {tp.partition for tp in revoked if tp.topic == topic}
        failed = set(partitions)
        stop_deciding()
        try:
            gate.failed_partitions = set()
            # faust commits only partitions still in the consumer's assignment.
            assigned = {
                tp.partition for tp in consumer.assignment() if tp.topic == topic
            }
            await consumer.force_commit()
            failed = (partitions - assigned) | (partitions & gate.failed_partitions)
        except Exception as exc:
            logger.warning("commit before revocation failed", extra={"error": str(exc)})
        if failed:
            on_uncommitted(failed)
        await revoke(revoked)

    consumer.on_partitions_revoked = commit_then_revoke

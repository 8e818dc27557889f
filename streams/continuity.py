"""Every command record decided once, in order, whatever faust drops or commits.

Faust hands records to the agent and commits offsets on its own bookkeeping,
which loses records around rebalances: a record queued for the agent when faust
clears its stream queues (it does so when it resumes flow after a restore) is
dropped, and a kept partition's fetch position moves on past it; and a worker can
commit a partition's offsets while the transaction holding the decisions of
those records aborts. Either way a command is never decided.

The agent therefore keeps its own cursor per command partition: the offset after
the last record it decided, written to the table in the transaction of the
decisions (so a restored table and its cursor agree). It does not trust faust's
position, only the log:

- A record below the cursor was decided: it is skipped.
- At the start of each assignment, the first record of a partition past its
  cursor is checked against the log: the first committed record at or after
  the cursor (aborted records and transaction markers leave gaps) must be that
  record; if an earlier one exists, the agent seeks back to it and holds back
  everything after it until it arrives.
- When faust clears queued records, the lowest one dropped per partition is
  noted; the next record at or past it must be it, or the agent seeks back.
- The offset committed is the cursor (``streams.eos.offset_from_cursor``), in
  the transaction that writes it, so a complete table's cursor is never behind
  the group's committed offset. Before deciding anything of a partition in an
  assignment the agent compares the two: a cursor behind means the restore
  missed committed entries, and the worker stops rather than decide again what
  the log holds. Until that check has passed nothing is committed.

``Continuity`` is the bookkeeping (no I/O); ``CommittedRecordFinder`` asks the log;
``watch_dropped_records`` reports what faust's queue clearing drops.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faust
from confluent_kafka import Consumer, KafkaError, TopicPartition

logger = logging.getLogger(__name__)

# TODO(limit): gaps are checked against the log only at the start of an
# assignment and after faust clears its queues; a gap between records handed
# over at any other time is taken for transaction markers. It matters if faust
# (or a client replacing it) drops records elsewhere; then check every gap, at
# the cost of one log read per transaction marker.
RESEEK_SECONDS = 2.0
"""How long records wait held back for the one expected before seeking again.

A seek may be overtaken by records faust fetched before it (they raise faust's
read offset, and it then drops the records fetched again from the seek)."""

CHECK_TIMEOUT_SECONDS = 10.0


@dataclasses.dataclass
class Admission:
    """What to do with one partition's records of a batch."""

    decide: list[int] = dataclasses.field(default_factory=list)
    """Records to decide now; those below the cursor (decided) are in no list."""
    hold: list[int] = dataclasses.field(default_factory=list)
    check_from: int | None = None
    """Ask the log for the first committed record at or after this offset."""
    seek_to: int | None = None
    """Seek the partition back here: records from it on are missing."""
    resumed_at: int | None = None
    """The offset this partition's deciding resumed at in this assignment."""


@dataclasses.dataclass
class PartitionCursor:
    """One command partition's position as the agent decided it."""

    next_offset: int | None
    """The offset after the last record decided; None when unknown (a table
    written before cursors were kept: then faust's position is trusted)."""
    verified: bool
    expect: int | None = None
    """The offset the next record must have, once known."""
    sought_at: float | None = None
    start_checked: bool = False
    """Whether the table's cursor was compared with the group's committed offset."""
    incomplete: bool = False
    """Whether that comparison found the restored table missing entries."""


class Continuity:
    """The agent's cursors and what each record handed over means for them."""

    def __init__(self) -> None:
        self.cursors: dict[int, PartitionCursor] = {}

    def reset(self) -> None:
        """A new assignment: faust seeks back to committed offsets, so nothing
        noted before counts."""
        self.cursors = {}

    def load(self, cursors: Mapping[int, int], stateful: Iterable[int]) -> None:
        """Start deciding an assignment from the restored table's cursors.

        A partition with state but no cursor was written before cursors were
        kept: its position is trusted. One with neither decided nothing yet
        (``check_start`` tells an incomplete restore apart): its records are
        checked from offset 0. Drops noted since the
        assignment began (faust clears its queues after the restore) stay
        expected.
        """
        pending = {p: c.expect for p, c in self.cursors.items() if c.expect is not None}
        with_state = set(stateful)
        self.cursors = {
            partition: PartitionCursor(next_offset, verified=False)
            for partition, next_offset in cursors.items()
        }
        for partition in with_state - set(cursors):
            self.cursors[partition] = PartitionCursor(
                None, verified=True, start_checked=True
            )
        self.dropped(pending)

    def _cursor(self, partition: int) -> PartitionCursor:
        found = self.cursors.get(partition)
        if found is None:
            found = self.cursors[partition] = PartitionCursor(0, verified=False)
        return found

    def next_offset(self, partition: int) -> int | None:
        """The offset after the last record decided in ``partition``, if known."""
        return self._cursor(partition).next_offset

    def needs_start_check(self, partition: int) -> bool:
        """Whether the partition's cursor awaits its comparison with the group's
        committed offset (once per assignment, before anything is decided)."""
        return not self._cursor(partition).start_checked

    def is_legacy(self, partition: int) -> bool:
        """Whether the partition's table was written before cursors were kept."""
        cursor = self.cursors.get(partition)
        return cursor is not None and cursor.next_offset is None

    def commit_offset(self, partition: int) -> int | None:
        """The offset to commit: the cursor, once checked against the group's
        offset and found complete; None otherwise (commit nothing)."""
        cursor = self._cursor(partition)
        if not cursor.start_checked or cursor.incomplete:
            return None
        return cursor.next_offset

    def check_start(self, partition: int, committed: int | None) -> str | None:
        """Compare the restored cursor with the group's committed offset.

        The agent commits a partition's offset in the transaction that writes
        its cursor, with the cursor as the offset, so a complete table's cursor
        is at or past the committed offset. One behind it (or missing while the
        group committed past offset 0) means the restore missed committed
        entries: deciding on would decide again what the log already holds.
        Returns what is wrong, or None.
        """
        cursor = self._cursor(partition)
        cursor.start_checked = True
        if committed is None or committed <= 0 or cursor.next_offset is None:
            return None  # nothing committed, or a table from before cursors
        if cursor.next_offset < committed:
            cursor.incomplete = True
            return (
                f"the restored table's cursor ({cursor.next_offset}) is behind the "
                f"offset committed with it ({committed})"
            )
        return None

    def admit(self, partition: int, offsets: Sequence[int], now: float) -> Admission:
        """Sort a partition's records (in log order): decide, hold, or skip.

        Records admitted for deciding move the cursor: the caller decides them in
        this batch or the worker stops (its transaction then aborts).
        """
        cursor = self._cursor(partition)
        admission = Admission()
        for position, offset in enumerate(offsets):
            if cursor.next_offset is not None and offset < cursor.next_offset:
                continue  # decided before
            if not cursor.verified:
                if cursor.next_offset is not None and offset > cursor.next_offset:
                    admission.check_from = cursor.next_offset
                    admission.hold.extend(offsets[position:])
                    return admission
                cursor.verified = True
                admission.resumed_at = offset
            if cursor.expect is not None:
                if offset > cursor.expect:
                    admission.hold.extend(offsets[position:])
                    if cursor.sought_at is None or (
                        now - cursor.sought_at >= RESEEK_SECONDS
                    ):
                        cursor.sought_at = now
                        admission.seek_to = cursor.expect
                    return admission
                if offset == cursor.expect:
                    cursor.expect = None
                    cursor.sought_at = None
            admission.decide.append(offset)
            cursor.next_offset = offset + 1
        return admission

    def checked(self, partition: int, first: int) -> None:
        """The log's first committed record at or after the cursor: the next one.

        (Records dropped meanwhile come after it: it is the one expected.)
        """
        cursor = self._cursor(partition)
        cursor.verified = True
        cursor.expect = first
        cursor.sought_at = None

    def dropped(self, lowest: Mapping[int, int]) -> list[int]:
        """Faust dropped queued records from these offsets on, per partition.

        Returns the partitions whose next record is now expected exactly.
        """
        changed: list[int] = []
        for partition, offset in lowest.items():
            cursor = self._cursor(partition)
            if cursor.next_offset is not None and offset < cursor.next_offset:
                continue
            if cursor.expect is None or offset < cursor.expect:
                cursor.expect = offset
                cursor.sought_at = None
                changed.append(partition)
        return changed


class CommittedRecordFinder:
    """Finds the first committed record of a partition at or after an offset.

    One read_committed consumer with no group, used from one thread: the agent
    asks at most once per partition per assignment.
    """

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._consumer: Consumer | None = None
        self._group_consumers: dict[str, Consumer] = {}
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="cursor-check")

    async def first_committed(
        self, topic: str, partition: int, start: int
    ) -> int | None:
        """The offset of that record; None when none arrived within the timeout."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, self._first_committed, topic, partition, start
        )

    def _first_committed(self, topic: str, partition: int, start: int) -> int | None:
        if self._consumer is None:
            self._consumer = Consumer(
                {
                    "bootstrap.servers": self.bootstrap,
                    "group.id": f"cursor-check-{uuid.uuid4().hex}",
                    "enable.auto.commit": False,
                    "isolation.level": "read_committed",
                    "auto.offset.reset": "earliest",
                    "enable.partition.eof": True,
                }
            )
        consumer = self._consumer
        consumer.assign([TopicPartition(topic, partition, start)])
        try:
            return _poll_first(consumer, CHECK_TIMEOUT_SECONDS)
        finally:
            consumer.unassign()

    async def committed_offset(
        self, topic: str, partition: int, group: str
    ) -> int | None:
        """The offset ``group`` committed for the partition; None if none."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, self._committed_offset, topic, partition, group
        )

    def _committed_offset(self, topic: str, partition: int, group: str) -> int | None:
        consumer = self._group_consumers.get(group)
        if consumer is None:
            # Never subscribes nor commits: it only reads the group's offsets.
            consumer = self._group_consumers[group] = Consumer(
                {
                    "bootstrap.servers": self.bootstrap,
                    "group.id": group,
                    "enable.auto.commit": False,
                    "isolation.level": "read_committed",
                }
            )
        found = consumer.committed(
            [TopicPartition(topic, partition)], timeout=CHECK_TIMEOUT_SECONDS
        )
        offset: int = found[0].offset
        return offset if offset >= 0 else None

    def close(self) -> None:
        """Close the consumers and their thread."""
        consumers = [c for c in (self._consumer, *self._group_consumers.values()) if c]
        for consumer in consumers:
            self._executor.submit(consumer.close).result(10)
        self._consumer = None
        self._group_consumers = {}
        self._executor.shutdown(wait=False)


def _poll_first(consumer: Consumer, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = consumer.poll(0.2)
        if message is None:
            continue
        error = message.error()
        if error is None:
            offset: int | None = message.offset()
            return offset
        if error.code() != KafkaError._PARTITION_EOF:
            logger.warning("cursor check failed", extra={"error": str(error)})
            return None
    return None


def watch_dropped_records(
    app: faust.App, topic: str, on_dropped: Callable[[dict[int, int]], None]
) -> None:
    """Report the lowest offset per partition of ``topic`` that faust's flow
    control drops from its queues (it clears them when it resumes flow)."""
    flow_control: Any = app.flow_control
    clear: Callable[[], None] = flow_control.clear

    def clear_and_report() -> None:
        lowest: dict[int, int] = {}
        try:
            for queue in list(flow_control._queues):
                for item in list(getattr(queue, "_queue", ())):
                    message = getattr(item, "message", None)
                    if message is None or message.topic != topic:
                        continue
                    partition, offset = message.partition, message.offset
                    lowest[partition] = min(lowest.get(partition, offset), offset)
        except Exception:
            logger.exception("dropped records could not be listed")
        clear()
        if lowest:
            on_dropped(lowest)

    # FlowControlEvent.resume calls self.clear(): the instance attribute wins.
    flow_control.clear = clear_and_report

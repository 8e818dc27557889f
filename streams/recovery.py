"""Makes faust's table recovery work, and end promptly, under exactly-once.

A worker given a partition restores that partition's table from its changelog:
from the start, or from the offset a standby copy of it reached. Faust decides
when the restore is done by comparing the offsets it read with the changelog's
end. With exactly-once two things go wrong:

- Faust reads that end from the consumer's cache of the last stable offset,
  which is empty for a partition this consumer has not fetched since the
  rebalance. The end then reads as "nothing to restore": a worker resumed a
  partition without its latest table entries, and a standby copy promoted to
  active stopped the worker with ``ConsistencyError`` (its persisted offset was
  "higher than the end"). The end is now asked from the broker (a ListOffsets
  request with read_committed isolation gives the last stable offset).
- The last offset before that end is a transaction marker, which a consumer
  never receives, so faust waits for it until its changelog reader has twice
  found no record for 5 s, and then checks that the consumer's position passed
  the end. Every restore took at least 10 s. The reader now gives up waiting
  after ``quiet_seconds``, so the same check runs after two quiet periods. Two
  in a row still guard against records the consumer fetched (its position
  moved) but had not yet queued.

Both patch private faust attributes, read in faust-streaming 0.15.3; after a
faust upgrade, ``tests/integration/test_agent_scaling.py`` tells whether they
still hold. The first fault is robinhood/faust#658.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import faust

from streams import metrics

logger = logging.getLogger(__name__)

# TODO(limit): the "position passed the end" check can end a restore while a
# record the consumer fetched has not reached the changelog reader yet (the
# worker starved of CPU for longer than two quiet periods); faust then skips it
# and the table lacks it. It was seen under load with 0.25 s quiet periods (a
# restarted agent then refused every hold as "unknown show"). LateRecordWatch
# now stops the worker when one arrives, so a supervisor restarts it with a
# fresh restore; the end check should rather wait until the reader received a
# record at or past the last data offset before the end.
QUIET_SECONDS = 1.0
"""How long the changelog reader waits for a record before it checks the end."""


def fix_recovery(app: faust.App, quiet_seconds: float = QUIET_SECONDS) -> None:
    """Patch the app's consumer and changelog reader as the module docstring says."""
    # The consumer is made when the worker starts; made earlier, faust numbers
    # its topic groups differently and finds no transactional producer.
    new_consumer = app._new_consumer  # type: ignore[attr-defined]

    def consumer_reading_committed_ends() -> Any:
        consumer = new_consumer()
        _read_ends_from_broker(consumer._thread)
        return consumer

    app._new_consumer = consumer_reading_committed_ends  # type: ignore[attr-defined]

    queue: Any = app.tables.changelog_queue
    wait_for_record = queue.get
    watch = LateRecordWatch(app)

    async def get_or_time_out() -> Any:
        # asyncio.Queue.get is safe to cancel: a record is never lost by it.
        event = await asyncio.wait_for(wait_for_record(), timeout=quiet_seconds)
        try:
            watch.on_record(event.message.tp, event.message.offset)
        except Exception:
            # The record is out of the queue: faust must get it whatever happens.
            logger.exception("late changelog record check failed")
        return event

    queue.get = get_or_time_out


class IncompleteRestore(RuntimeError):
    """A table partition's restore ended before a committed record reached it."""


class LateRecordWatch:
    """Reports a committed changelog record that reached faust after its restore.

    When faust ends a restore through its "position passed the end" check it
    counts the partition as read up to the end; a record it fetched before that
    check but receives after it is then skipped, and the restored table lacks a
    committed entry. Faust pauses a partition's changelog once its restore is
    over, so on an active partition any record newer than the ones faust
    received, at or below the offset it counted as restored, is such a record.
    """

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self.received: dict[Any, int] = {}
        self.stopping = False

    def on_record(self, tp: Any, offset: int) -> None:
        """Note one changelog record handed to faust's restore."""
        previous = self.received.get(tp, -1)
        self.received[tp] = max(previous, offset)
        tables: Any = self.app.tables
        recovery = tables.recovery
        if not tables.actives_ready or tp not in recovery.active_tps:
            return
        restored_to = recovery.active_offsets.get(tp)
        if restored_to is not None and previous < offset <= restored_to:
            metrics.LATE_CHANGELOG_RECORDS.inc()
            logger.error(
                "changelog record received after its restore ended; the table "
                "lacks it: stopping the worker",
                extra={"topic": tp.topic, "partition": tp.partition, "offset": offset},
            )
            self._stop_once(tp, offset)

    def _stop_once(self, tp: Any, offset: int) -> None:
        """Crash the app: a table that lacks a committed entry must not decide.

        The inventory is loaded from that table, so deciding on would forget a
        decision (a show "unknown", a command decided twice). Like a fenced
        producer, the worker exits and its supervisor starts a fresh one, whose
        restore reads the changelog again.
        """
        if self.stopping:
            return
        self.stopping = True
        crash = getattr(self.app, "crash", None)
        if crash is not None:
            failure = IncompleteRestore(
                f"{tp.topic}[{tp.partition}] offset {offset} came after its restore"
            )
            asyncio.ensure_future(crash(failure))


def _read_ends_from_broker(thread: Any) -> None:
    """Make faust's consumer thread ask the broker for changelog ends.

    The thread runs the aiokafka consumer (read_committed) in an event loop of
    its own and answers faust's ``highwaters`` there.
    """

    async def committed_ends(partitions: list[Any]) -> Mapping[Any, int]:
        ends: Mapping[Any, int] = await thread._ensure_consumer().end_offsets(
            partitions
        )
        return ends

    thread._highwaters = committed_ends

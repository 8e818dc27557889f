"""The inventory agent: one writer per command partition, state in a RocksDB table.

The agent owns no rules. It decodes a batch of commands, partition by partition, hands
them to the pure core in log order, writes the core's changed state entries to the
``section_entry_to_value`` table and the resulting events to the event topic, all
inside the partition's Kafka transaction. Undecodable records go to dead letters.

Commands for other partitions go out in the same transaction: follow-ups routed
by the ``Router``, and what the core sends to a named partition (the adopt of a
section handed off, commands forwarded to a section's new owner). A hand-off
also writes the section's new route to the routing topic there. Event records of
a section that moved carry its route epoch in the ``route-epoch`` header.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import defaultdict
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any, TypeVar

import faust
import orjson
from faust.streams import _current_event as stream_event_context

from commands.errors import CodecError
from commands.inventory import PartitionInventory
from commands.model import Command, Event, SectionHandedOff, Tick
from commands.policy import event_key, follow_ups
from infra.routing import Route, Router, encode_route
from infra.settings import Settings
from infra.topics import (
    commands_topic,
    dead_letter_headers,
    dead_letters_topic,
    events_topic,
    routing_topic,
)
from schemas.codec import (
    ROUTE_EPOCH_HEADER,
    command_headers,
    decode_commands,
    encode_commands,
    encode_events,
    event_headers,
)
from streams import metrics
from streams.continuity import CommittedRecordFinder, Continuity, watch_dropped_records
from streams.eos import NOTHING_DECIDED_YET, CommitGate, commit_before_revocation
from streams.fencing import FenceWatch
from streams.rebalance import watch_rebalances
from streams.recovery import IncompleteRestore, fix_recovery
from streams.transactional import send_in_transaction

logger = logging.getLogger(__name__)
T = TypeVar("T")

ENTRY_SEPARATOR = "\x1f"
TICK_KEY_PREFIX = "~tick/"
FOLLOW_UP_KEY_PREFIX = "~follow-up/"
CURSOR_KEY = "~cursor"
CURSOR_ENTRY = "next-offset"
TABLE_NAME = "section_entry_to_value"
MAX_ITEMS_PER_RECORD = 500
"""Commands or events per record at most: a stripe that refuses thousands of
parked holds at once must not exceed the broker's record size (1 MiB)."""


def chunks(items: Sequence[T], size: int = MAX_ITEMS_PER_RECORD) -> list[Sequence[T]]:
    """Items in order, in slices of at most ``size``."""
    return [items[start : start + size] for start in range(0, len(items), size)]


def table_key(partition: int, key: str, entry: str) -> bytes:
    """Table key of one state entry: the partition that owns it, its key, its name.

    The partition is part of the key because some keys (a show's buyer limit)
    live in every partition.
    """
    return f"{partition}{ENTRY_SEPARATOR}{key}{ENTRY_SEPARATOR}{entry}".encode()


def cursor_key(partition: int) -> bytes:
    """Table key of a partition's cursor: the offset after its last decided record."""
    return table_key(partition, CURSOR_KEY, CURSOR_ENTRY)


def read_table(
    items: Iterable[tuple[bytes, bytes]],
) -> tuple[dict[int, PartitionInventory], dict[int, int]]:
    """Each partition's inventory and cursor from the table's committed entries."""
    entries: dict[int, dict[str, dict[str, Any]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    cursors: dict[int, int] = {}
    for raw_key, raw_value in items:
        partition, key, entry = raw_key.decode().split(ENTRY_SEPARATOR)
        if key == CURSOR_KEY:
            cursors[int(partition)] = int(orjson.loads(raw_value))
            continue
        entries[int(partition)][key][entry] = orjson.loads(raw_value)
    inventories = {
        p: PartitionInventory.restore(found, partition=p)
        for p, found in entries.items()
    }
    return inventories, cursors


def inventories_from_table(
    items: Iterable[tuple[bytes, bytes]],
) -> dict[int, PartitionInventory]:
    """Rebuild each partition's inventory from the table's committed entries."""
    return read_table(items)[0]


def _by_partition(batch: Sequence[faust.EventT]) -> dict[int, list[faust.EventT]]:
    """The records of a batch grouped by partition, each group in log order."""
    groups: dict[int, list[faust.EventT]] = defaultdict(list)
    for event in batch:
        groups[event.message.partition].append(event)
    return groups


class InventoryWriter:
    """Feeds the core and persists what it decided; one per worker process."""

    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        table: Any,
        router: Router | None = None,
    ) -> None:
        self.app = app
        self.settings = settings
        self.table = table
        self.router = router or Router.hashed(settings)
        self.fences = FenceWatch(
            self._generation,
            lambda exc: self.app.crash(exc),
            settings.agent_session_timeout_seconds,
        )
        self.gate = CommitGate(
            app, self.lowest_held_back, self.fences.on_fenced, self.decided_up_to
        )
        self.inventories: dict[int, PartitionInventory] | None = None
        self._assigned_generation: int | None = self._generation()
        self._restored_generation: int | None = None
        self._held_back = 0
        self._held_back_offsets: dict[Any, set[int]] = defaultdict(set)
        self._deliveries: list[Awaitable[Any]] = []
        self.continuity = Continuity()
        self._stopped = False
        self._stopping = False
        self.finder = CommittedRecordFinder(settings.kafka_bootstrap)
        self.commands_topic = commands_topic(settings)
        self.events_topic = events_topic(settings)
        self.dead_letters_topic = dead_letters_topic(settings)
        self.routing_topic = routing_topic(settings)

    async def send_ticks(self, now_ms: int) -> None:
        """Put a Tick on every command partition this worker owns.

        Time inside the core comes from the log; ticks make it pass for sections
        that receive no commands, so their lapsed holds expire.
        """
        owned = sorted(
            tp.partition
            for tp in self.app.consumer.assignment()
            if tp.topic == self.commands_topic
        )
        for partition in owned:
            tick = Tick(command_id=f"tick-{partition}-{now_ms}", issued_at_ms=now_ms)
            await self.app.producer.send(
                self.commands_topic,
                f"{TICK_KEY_PREFIX}{partition}".encode(),
                encode_commands([tick]),
                partition,
                None,
                command_headers(),
            )

    async def _send(self, **record: Any) -> None:
        """Send in the partition's transaction; its delivery is awaited per batch."""
        self._deliveries.append(
            await send_in_transaction(
                self.app, on_fenced=self.fences.on_fenced, **record
            )
        )

    def _generation(self) -> int | None:
        """The consumer group generation faust is in (set as each one is assigned)."""
        generation: int | None = getattr(self.app, "consumer_generation_id", 0)
        return generation

    def forget_state(self) -> None:
        """Reload from the table once it is restored (after a rebalance)."""
        self.inventories = None
        self._assigned_generation = self._generation()
        self._held_back = 0
        # Faust seeks every assigned partition back to its committed offset when
        # the restore ends, so what was held back before is handed over again.
        self._held_back_offsets.clear()
        self.continuity.reset()

    def on_records_dropped(self, lowest: dict[int, int]) -> None:
        """Faust cleared queued records; the next ones must start with these."""
        changed = self.continuity.dropped(lowest)
        if changed:
            metrics.RECORDS_DROPPED_BY_FAUST.inc(len(changed))
            logger.info(
                "queued records dropped by faust; expecting them again",
                extra={"partitions": sorted(changed)},
            )

    def stop_deciding(self) -> None:
        """A rebalance revokes partitions: decide nothing until the next restore.

        Records handed over meanwhile are held back (faust seeks back to the
        committed offsets once the next assignment is restored). The inventory
        and cursors stay until the revocation's commit has read them.
        """
        self._stopped = True
        self._restored_generation = None

    def _stop_on_incomplete_restore(self, partition: int, problem: str) -> None:
        """Stop the worker: its supervisor starts one that restores afresh.

        Deciding from a table that lacks committed entries would decide again
        what the log holds (a restarted worker once restored nothing for three
        partitions and, sent back to their first records, sold seats twice).
        """
        # TODO(limit): the cause seen is in faust's restore ("Aborted tx until
        # highwater" takes a changelog partition held by a killed worker's open
        # transactions as read to its end); the worker stops instead of
        # deciding, and needs its supervisor. It matters without a supervisor;
        # then end a restore only once the records up to the end were read.
        metrics.INCOMPLETE_RESTORES.inc()
        logger.error(
            "restored table lacks committed decisions: stopping the worker",
            extra={"partition": partition, "problem": problem},
        )
        if not self._stopping:
            self._stopping = True
            asyncio.ensure_future(
                self.app.crash(IncompleteRestore(f"partition {partition}: {problem}"))
            )

    def drop_local_copies(self, partitions: set[int]) -> None:
        """Forget the local table of partitions whose last decisions may have aborted.

        RocksDB keeps writes of a transaction that aborted; if the partition
        comes back to this worker, faust restores it from the changelog (which
        holds only what committed) instead of trusting the local copy.
        """
        store: Any = self.table.data
        for partition in sorted(partitions):
            db = store._db_for_partition(partition)
            # TODO(limit): deletes key by key; with millions of entries per
            # partition, drop the partition's RocksDB files instead.
            for key in list(db.keys()):
                db.delete(key)
        metrics.LOCAL_COPIES_DROPPED.inc(len(partitions))
        logger.warning(
            "decisions of revoked partitions may have aborted; local copies dropped",
            extra={"partitions": sorted(partitions)},
        )

    def on_tables_restored(self) -> None:
        """Faust restored the table partitions of the current assignment.

        Faust signals it before it seeks the command partitions back to their
        committed offsets, so a record held back until now is handed over again.
        The signal may come before ``forget_state`` of the same assignment (faust
        starts the restore before it sends ``on_partitions_assigned``, and the
        receivers of that signal run in no fixed order), so both note the group
        generation and the tables count as restored when the two match.
        """
        # TODO(limit): the signal carries no generation; a restore of the previous
        # generation that ends after the consumer joined the next one marks the
        # next one restored (a record may then be decided from a table still
        # being restored). It matters if ticketing_agent_records_held_back_total
        # stays 0 while rebalances follow each other within a restore; then take
        # the generation from faust's recovery.
        self._restored_generation = self._generation()

    @property
    def restored(self) -> bool:
        """The table holds every committed decision of the current assignment."""
        return (
            self._restored_generation is not None
            and self._restored_generation == self._assigned_generation
            and self._restored_generation == self._generation()
        )

    def lowest_held_back(self, tp: Any) -> int | None:
        """The lowest offset of ``tp`` held back and not decided since, if any.

        The commit gate commits no offset past it: faust's ``take_events`` acks
        every record it handed over once the agent returns, held back or not.
        """
        # TODO(limit): a held-back record that faust does not hand over again in
        # this assignment keeps its partition's offsets uncommitted until the
        # next rebalance (then handed over again, nothing lost). It matters if a
        # partition's consumer lag grows while its records are decided; then
        # seek that partition back to the lowest held-back offset.
        offsets = self._held_back_offsets.get(tp)
        return min(offsets) if offsets else None

    def decided_up_to(self, tp: Any) -> int | None:
        """The offset after the last command record decided in ``tp``: the
        offset to commit (``streams.eos.offset_from_cursor``).

        Nothing is decided at or past the table's cursor until the partition's
        position is verified, so the cursor is the offset either way; before
        the table is loaded and its cursor checked complete against the
        group's offset, nothing is committed (a table found incomplete must not
        move the group's offset back).
        """
        if tp.topic != self.commands_topic:
            return None
        if self.inventories is None:
            return NOTHING_DECIDED_YET
        if self.continuity.is_legacy(tp.partition):
            return None  # a table from before cursors: faust's offset
        offset = self.continuity.commit_offset(tp.partition)
        return NOTHING_DECIDED_YET if offset is None else offset

    def _hold_back(
        self, batch: Sequence[faust.EventT], before_restore: bool = True
    ) -> None:
        """Leave a batch handed over before the restore ended undecided.

        The table is still being restored from the changelog (and a partition
        this worker kept is replayed from an older offset), so it may lack
        committed decisions. Faust seeks back to the committed offsets when the
        restore ends and hands these records over again. Faust acks them all
        the same (``take_events`` acks what it yielded), so their offsets are
        kept here and the commit gate commits none of them until decided.
        """
        if before_restore and not self._held_back:
            logger.info(
                "records handed over before the tables were restored; left for "
                "the seek back",
                extra={"partitions": sorted(_by_partition(batch))},
            )
        for event in batch:
            message = event.message
            self._held_back_offsets[message.tp].add(message.offset)
        if before_restore:
            self._held_back += len(batch)
            metrics.RECORDS_HELD_BACK.inc(len(batch))

    def _release(self, batch: Sequence[faust.EventT]) -> None:
        """Records decided now are no longer held back."""
        if not self._held_back_offsets:
            return
        for event in batch:
            message = event.message
            offsets = self._held_back_offsets.get(message.tp)
            if offsets is not None:
                offsets.discard(message.offset)
                if not offsets:
                    del self._held_back_offsets[message.tp]

    async def process(self, batch: Sequence[faust.EventT]) -> None:
        """Decide one batch of records, partition by partition, atomically."""
        self.gate.install()
        started = time.perf_counter()
        async with self.gate.lock:
            if self._stopped or self.inventories is None:
                if not self.restored:
                    self._hold_back(batch)
                    return
                # Loaded once per assignment: it must hold every committed
                # decision, or a record handed over again is decided twice.
                self.inventories, cursors = read_table(self.table.items())
                self.continuity.load(cursors, self.inventories)
                self._stopped = False
            # An assignment may drop self.inventories while this batch runs.
            inventories = self.inventories
            self._deliveries = []
            held: list[faust.EventT] = []
            for partition, records in _by_partition(batch).items():
                admitted = await self._admit(partition, records, held)
                if not admitted:
                    continue
                inventory = inventories.setdefault(
                    partition, PartitionInventory(partition=partition)
                )
                await self._process_partition(inventory, partition, admitted)

            await self.gate.flush_buffered_sends()
            # A send that failed (a fenced producer after a lost partition) must
            # stop the batch before its acks: the transaction then aborts and the
            # records are decided again by whoever owns them now.
            await asyncio.gather(*self._deliveries)
            for event in batch:
                event.ack()
            if held:
                kept = {id(event) for event in held}
                self._release([event for event in batch if id(event) not in kept])
            else:
                self._release(batch)
        metrics.record_batch(batch, started, inventories)

    async def _admit(
        self,
        partition: int,
        records: Sequence[faust.EventT],
        held: list[faust.EventT],
    ) -> list[faust.EventT]:
        """The records of a partition to decide now, in order (streams.continuity).

        Records decided before are skipped; records past one that is missing
        are held back, and the partition is sought back to the missing one.
        """
        offsets = [event.message.offset for event in records]
        if self.continuity.needs_start_check(partition):
            committed = await self.finder.committed_offset(
                self.commands_topic, partition, self.app.conf.id
            )
            problem = self.continuity.check_start(partition, committed)
            if problem is not None:
                self._stop_on_incomplete_restore(partition, problem)
                self._hold_back(records, before_restore=False)
                held.extend(records)
                return []
        now = time.monotonic()
        admission = self.continuity.admit(partition, offsets, now)
        first: int | None = None
        if admission.check_from is not None:
            first = await self.finder.first_committed(
                self.commands_topic, partition, admission.check_from
            )
            if first is None:
                admission.seek_to = admission.check_from
            else:
                self.continuity.checked(partition, first)
                admission = self.continuity.admit(partition, offsets, now)
        if admission.resumed_at is not None:
            logger.info(
                "partition resumes",
                extra={
                    "partition": partition,
                    "offset": admission.resumed_at,
                    "checked": first,
                },
            )
        if admission.seek_to is not None:
            metrics.CURSOR_SEEKS.inc()
            logger.warning(
                "records missing before those handed over; seeking back",
                extra={
                    "partition": partition,
                    "offset": admission.seek_to,
                    "first_handed_over": admission.hold[0],
                },
            )
            # In the consumer's own thread and loop (faust's seek_wait): faust's
            # plain seek calls the aiokafka consumer from this thread, and after
            # one the fetcher handed nothing more over (a scaling run stalled).
            try:
                await self.app.consumer.seek_wait(
                    {records[0].message.tp: admission.seek_to}
                )
            except Exception as exc:
                # Revoked meanwhile, or the broker slow: the records stay held
                # back, and the next ones seek again.
                logger.warning("seek back failed", extra={"error": str(exc)})
        if admission.hold:
            offsets_held = set(admission.hold)
            kept = [e for e in records if e.message.offset in offsets_held]
            self._hold_back(kept, before_restore=False)
            held.extend(kept)
        if len(admission.decide) == len(records):
            return list(records)
        decide = set(admission.decide)
        return [e for e in records if e.message.offset in decide]

    async def _process_partition(
        self,
        inventory: PartitionInventory,
        partition: int,
        records: Sequence[faust.EventT],
    ) -> None:
        # Tables find the partition of a write through faust's current event;
        # take_events yields outside of it, so name this partition's last record.
        stream_event_context.set(weakref.ref(records[-1]))

        commands: list[Command] = []
        for event in records:
            commands.extend(await self._decode_or_dead_letter(event, partition))

        decided = inventory.decide_all(commands)
        metrics.record_decisions(commands, decided)
        self._persist(inventory, partition)
        self.table[cursor_key(partition)] = orjson.dumps(
            self.continuity.next_offset(partition)
        )
        await self._send_events(decided, partition, inventory)
        await self._send_follow_ups(decided, partition)
        await self._send_to_partitions(inventory.drain_sends(), partition)
        await self._send_routes(decided, partition)

    async def _decode_or_dead_letter(
        self, event: faust.EventT, partition: int
    ) -> list[Command]:
        message = event.message
        try:
            return decode_commands(message.value, message.headers)
        except CodecError as exc:
            metrics.DEAD_LETTERS.labels(exc.reason).inc()
            logger.warning(
                "poison command sent to dead letters",
                extra={
                    "topic": message.topic,
                    "partition": partition,
                    "offset": message.offset,
                    "reason": exc.reason,
                },
            )
            await self._send(
                source_topic=self.commands_topic,
                partition=partition,
                topic=self.dead_letters_topic,
                key=message.key or b"",
                value=message.value or b"",
                headers=dead_letter_headers(
                    exc.reason, str(exc), message.topic, partition, message.offset
                ),
            )
            return []

    async def _send_follow_ups(self, events: Sequence[Event], partition: int) -> None:
        """Commands other writers must decide, sent in this partition's transaction.

        One record per target partition carries that partition's follow-ups in
        decision order, so a batch of holds costs a few records, not one each.
        """
        by_target: dict[int, list[Command]] = defaultdict(list)
        for key, command in follow_ups(events):
            by_target[self.router.partition(key)].append(command)
        await self._send_commands(by_target, partition)

    async def _send_to_partitions(
        self, sends: Sequence[tuple[int, Command]], partition: int
    ) -> None:
        """Adopts and forwarded commands, to the partitions the core named.

        Sent after the events of the batch, in decision order per target, from
        this partition's producer: an adopt precedes on its target every command
        this partition forwards there later.
        """
        by_target: dict[int, list[Command]] = defaultdict(list)
        for target, command in sends:
            by_target[target].append(command)
        if sends:
            metrics.COMMANDS_FORWARDED.inc(len(sends))
        await self._send_commands(by_target, partition)

    async def _send_commands(
        self, by_target: dict[int, list[Command]], partition: int
    ) -> None:
        headers = command_headers()
        for target, commands in by_target.items():
            for chunk in chunks(commands):
                await self._send(
                    source_topic=self.commands_topic,
                    partition=partition,
                    topic=self.commands_topic,
                    target_partition=target,
                    key=f"{FOLLOW_UP_KEY_PREFIX}{target}".encode(),
                    value=encode_commands(chunk),
                    headers=headers,
                )

    def _persist(self, inventory: PartitionInventory, partition: int) -> None:
        for key, changes in inventory.drain_changes().items():
            for entry, value in changes.items():
                if value is None:
                    self.table.pop(table_key(partition, key, entry), None)
                else:
                    self.table[table_key(partition, key, entry)] = orjson.dumps(value)

    async def _send_routes(self, events: Sequence[Event], partition: int) -> None:
        """The new route of every section handed off, in this transaction."""
        for event in events:
            if not isinstance(event, SectionHandedOff):
                continue
            route = Route(event.to_partition, event.epoch)
            await self._send(
                source_topic=self.commands_topic,
                partition=partition,
                topic=self.routing_topic,
                target_partition=0,
                key=event_key(event).encode(),
                value=encode_route(route),
                headers=[],
            )
            logger.info(
                "section handed off",
                extra={
                    "show": event.show_id,
                    "section": event.section_id,
                    "partition": partition,
                    "to_partition": event.to_partition,
                    "epoch": event.epoch,
                },
            )

    async def _send_events(
        self, events: Sequence[Event], partition: int, inventory: PartitionInventory
    ) -> None:
        by_key: dict[str, list[Event]] = defaultdict(list)
        for event in events:
            by_key[event_key(event)].append(event)
        for key, section_events in by_key.items():
            headers = event_headers()
            epoch = inventory.route_epoch(key)
            if epoch:
                headers.append((ROUTE_EPOCH_HEADER, str(epoch).encode()))
            for chunk in chunks(section_events):
                await self._send(
                    source_topic=self.commands_topic,
                    partition=partition,
                    topic=self.events_topic,
                    key=key.encode(),
                    value=encode_events(chunk),
                    headers=headers,
                )


def create_app(settings: Settings, router: Router | None = None) -> faust.App:
    """The Faust app of the inventory agent, with its topic, table and agent."""
    app = faust.App(
        settings.agent_id,
        broker=f"kafka://{settings.kafka_bootstrap}",  # faust splits a host list
        store="rocksdb://",
        datadir=settings.agent_data_dir,
        processing_guarantee="exactly_once",
        topic_partitions=settings.command_partitions,
        topic_allow_declare=True,
        # Changelog and other topics faust declares get the cluster's replicas;
        # their min.insync.replicas is the brokers' default.
        topic_replication_factor=settings.kafka_replication_factor,
        broker_commit_interval=settings.agent_commit_interval_seconds,
        broker_session_timeout=settings.agent_session_timeout_seconds,
        broker_heartbeat_interval=settings.agent_heartbeat_interval_seconds,
        broker_rebalance_timeout=settings.agent_rebalance_timeout_seconds,
        table_standby_replicas=settings.agent_standby_replicas,
        web_enabled=False,
        web_port=settings.agent_web_port,
        producer_linger_ms=1,
    )
    source = app.topic(
        commands_topic(settings),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.command_partitions,
    )
    table = app.Table(
        TABLE_NAME,
        partitions=settings.command_partitions,
        key_type=bytes,
        value_type=bytes,
        options={"driver": "rocksdict"},
    )
    # Faust derives a table's codec from Records only (json otherwise); our values
    # are already bytes, so the changelog must carry them untouched.
    table.key_serializer = table.value_serializer = "raw"
    writer = InventoryWriter(app, settings, table, router)

    # One actor reads every partition this worker owns and decides each
    # partition's records in log order: still one writer per partition. (faust's
    # isolated_partitions cancels actors on a rebalance and then exits the worker.)
    @app.agent(source, name="inventory")
    async def inventory(stream: faust.StreamT[bytes]) -> None:
        async for batch in stream.take_events(
            settings.agent_batch_max_commands, settings.agent_batch_window_seconds
        ):
            await writer.process(batch)

    @app.timer(interval=settings.tick_interval_seconds)
    async def tick() -> None:
        await writer.send_ticks(time.time_ns() // 1_000_000)

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        writer.forget_state()

    @app.on_rebalance_complete.connect
    async def on_restored(sender: Any, **kwargs: Any) -> None:
        writer.on_tables_restored()

    @app.on_before_shutdown.connect
    async def on_shutdown(sender: Any, **kwargs: Any) -> None:
        writer.finder.close()

    fix_recovery(app)
    new_consumer = app._new_consumer  # type: ignore[attr-defined]

    def consumer_committing_before_revocation() -> Any:
        consumer = new_consumer()
        commit_before_revocation(
            consumer,
            writer.gate,
            commands_topic(settings),
            writer.drop_local_copies,
            writer.stop_deciding,
        )
        return consumer

    app._new_consumer = consumer_committing_before_revocation  # type: ignore[attr-defined]
    watch_dropped_records(app, commands_topic(settings), writer.on_records_dropped)
    watch_rebalances(app, commands_topic(settings))
    app.inventory_writer = writer  # type: ignore[attr-defined]
    return app

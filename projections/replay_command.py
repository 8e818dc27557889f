"""``ticketing replay``: rebuild the read models from offset zero into a fresh keyspace.

The live keyspace keeps serving meanwhile. The rebuild is an ordinary projection
worker with its own consumer group, pointed at the new keyspace, where no offsets
are saved yet, so it starts at the beginning of the log. It stops once every
partition's folded and stored position reached the end that partition had when
the replay started; later events are folded by whichever worker owns the
keyspace afterwards. Then it prints the counts (records and events folded, rows
per table, end offsets) and, with ``--switch``, makes the new keyspace the live
one (``projections.active``).
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Final

from cassandra.cluster import Session
from confluent_kafka import Consumer

from commands.errors import RefusalError
from infra.settings import Settings
from infra.topics import events_topic
from projections.active import active_keyspace, switch_keyspace
from projections.cql import connect
from projections.log_slice import end_offsets
from projections.projector import WorkerCounts
from projections.schema import (
    READ_MODEL_TABLES,
    checked_keyspace,
    ensure_pointer_table,
    ensure_schema,
)
from projections.store import AvailabilityStore
from projections.worker import ProjectionWorker

PROGRESS_SECONDS: Final = 1.0


class ReplayRefused(RefusalError):
    """The target keyspace is the live one, or not fresh."""

    code = "replay_refused"


@dataclass(slots=True)
class ReplayResult:
    """What a replay did; ``complete`` if it reached every end offset."""

    keyspace: str
    end_offsets: dict[int, int]
    stored_offsets: dict[int, int] = field(default_factory=dict)
    counts: WorkerCounts = field(default_factory=WorkerCounts)
    rows_by_table: dict[str, int] = field(default_factory=dict)
    switched: bool = False

    @property
    def complete(self) -> bool:
        """Whether every partition's stored offset reached its end at start."""
        return reached(self.stored_offsets, self.end_offsets)


def reached(offsets: Mapping[int, int], ends: Mapping[int, int]) -> bool:
    """Whether every partition with records got to its end offset."""
    return all(offsets.get(p, 0) >= end for p, end in ends.items() if end > 0)


def run_replay(
    settings: Settings,
    keyspace: str,
    switch: bool = False,
    max_seconds: float = 3600.0,
    report: IO[str] | None = None,
) -> ReplayResult:
    """Rebuild into ``keyspace``, report progress and counts, switch if asked."""
    report = report or sys.stderr
    keyspace = checked_keyspace(keyspace)
    home = settings.cassandra_keyspace
    cluster, session = connect(settings)
    try:
        ensure_pointer_table(session, home, settings)
        _check_fresh(session, home, keyspace)
        ensure_schema(session, keyspace, settings)
        result = ReplayResult(keyspace, log_ends(settings))
        ours = dataclasses.replace(
            settings,
            cassandra_keyspace=keyspace,
            projection_group=f"{settings.projection_group}-replay-{keyspace}",
        )
        result.counts = fold_to_ends(ours, result.end_offsets, max_seconds, report)
        store = AvailabilityStore(session, keyspace)
        result.stored_offsets = store.load_offsets()
        result.rows_by_table = {t: _count_rows(session, keyspace, t) for t in TABLES}
        if switch and result.complete:
            switch_keyspace(session, home, keyspace)
            result.switched = True
    finally:
        cluster.shutdown()
    print(summary(result), file=report, flush=True)
    return result


TABLES: Final = READ_MODEL_TABLES


def _check_fresh(session: Session, home: str, keyspace: str) -> None:
    """Refuse the live keyspace, and one that already holds progress."""
    if keyspace == active_keyspace(session, home):
        raise ReplayRefused(f"{keyspace} is the live keyspace; replay into a new one")
    exists = session.execute(
        "SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = %s",
        (keyspace,),
    ).one()
    if exists is None:
        return
    tables = session.execute(
        "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s",
        (keyspace,),
    )
    if tables.one() is not None:
        # Rows written at log-position timestamps cannot be overwritten by a new
        # fold's equal ones reliably if the log changed; start from nothing.
        raise ReplayRefused(f"{keyspace} already has tables; drop it or pick another")


def log_ends(settings: Settings) -> dict[int, int]:
    """The end offset of every partition of the events topic, now."""
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap, "group.id": "replay-ends"}
    )
    try:
        return end_offsets(consumer, events_topic(settings))
    finally:
        consumer.close()


def fold_to_ends(
    settings: Settings, ends: dict[int, int], max_seconds: float, report: IO[str]
) -> WorkerCounts:
    """Run a worker until its stored offsets reach ``ends``; print progress."""
    worker = ProjectionWorker(settings)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            worker.run(max_seconds=max_seconds)
        except BaseException as exc:  # handed to the caller's thread below
            failure.append(exc)

    thread = threading.Thread(target=run, name="replay-worker", daemon=True)
    started = time.monotonic()
    thread.start()
    total = sum(ends.values())
    while thread.is_alive():
        thread.join(PROGRESS_SECONDS)
        stored = _stored(worker)
        done = sum(min(stored.get(p, 0), end) for p, end in ends.items())
        rate = worker.counts.records / max(time.monotonic() - started, 1e-9)
        print(
            f"replay: {done}/{total} offsets stored, "
            f"{worker.counts.records} records folded ({rate:.0f}/s)",
            file=report,
            flush=True,
        )
        if reached(stored, ends):
            worker.stop()
    if failure:
        raise failure[0]
    return worker.counts


def _stored(worker: ProjectionWorker) -> dict[int, int]:
    """Next offsets the worker stored (saved in Cassandra), per partition."""
    cycle = worker.cycle
    if cycle is None:
        return {}
    return dict(cycle.stored_offsets)


def _count_rows(session: Session, keyspace: str, table: str) -> int:
    """Rows of a table (a full scan: for checking a rebuild, not for serving)."""
    row = session.execute(f"SELECT COUNT(*) FROM {keyspace}.{table}").one()
    return int(row[0])


def summary(result: ReplayResult) -> str:
    """The end counts, one fact a line."""
    ends = " ".join(f"{p}:{o}" for p, o in sorted(result.end_offsets.items()))
    stored = " ".join(f"{p}:{o}" for p, o in sorted(result.stored_offsets.items()))
    counts = result.counts
    lines = [
        f"keyspace: {result.keyspace}",
        f"end offsets at start (partition:offset): {ends}",
        f"offsets stored (partition:offset): {stored}",
        f"complete: {'yes' if result.complete else 'NO'}",
        f"records folded: {counts.records}",
        f"undecodable records: {counts.undecodable_records}",
        f"events applied to availability: {counts.events_applied}",
        f"events skipped by availability: {counts.events_skipped}",
    ]
    lines += [f"rows in {t}: {n}" for t, n in result.rows_by_table.items()]
    lines.append(f"switched: {'yes' if result.switched else 'no'}")
    return "\n".join(lines)

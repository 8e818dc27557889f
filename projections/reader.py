"""Reading the availability read model from Cassandra, for asyncio callers.

``by_show`` gives a show's rows; ``view`` gives them with how fresh they are:

- ``as_of_ms``: the log time (``occurred_at_ms``) of the newest event folded into
  any section of the show;
- ``lag_seconds``: now minus the oldest ``caught_up_at`` among the Kafka
  partitions the show's sections live on, i.e. every event those partitions held
  ``lag_seconds`` ago is in the answer. None when a partition never caught up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from cassandra.cluster import Session

from commands.model import SectionKind
from projections.availability import SectionAvailability
from projections.cql import (
    CASSANDRA_ERRORS,
    REQUEST_TIMEOUT_SECONDS,
    connect,
    epoch_ms,
    fetch_all,
    infrastructure_error,
)
from projections.schema import checked_keyspace

__all__ = [
    "AVAILABILITY_COLUMNS",
    "CASSANDRA_ERRORS",
    "REQUEST_TIMEOUT_SECONDS",
    "AvailabilityReader",
    "ShowView",
    "connect",
    "infrastructure_error",
    "lag_seconds",
    "row_from_cql",
]

PROJECTION: Final = "read_models"
"""The worker's name in ``projection_offsets``: it folds every table here."""

AVAILABILITY_COLUMNS: Final = (
    "show_id, section_id, kind, capacity, held, sold, free, hold_ttl_seconds, "
    "log_partition, log_offset, log_index, updated_at"
)


@dataclass(frozen=True, slots=True)
class ShowView:
    """A show's sections (ordered by id) and how far behind the log they may be."""

    rows: list[SectionAvailability]
    as_of_ms: int | None
    """Log time of the newest event folded into these rows; None without rows."""
    lag_seconds: float | None
    """Seconds since the worker last held all of these partitions' log; None if
    unknown (no rows, or a partition that never caught up)."""


def row_from_cql(row: Any) -> SectionAvailability:
    """Map a row of ``availability_by_show`` (named tuple) to the read model."""
    return SectionAvailability(
        show_id=row.show_id,
        section_id=row.section_id,
        kind=SectionKind(row.kind),
        capacity=row.capacity,
        held=row.held,
        sold=row.sold,
        free=row.free,
        hold_ttl_seconds=row.hold_ttl_seconds,
        log_partition=row.log_partition,
        log_offset=row.log_offset,
        log_index=row.log_index or 0,
        updated_at_ms=epoch_ms(row.updated_at) or 0,
    )


def lag_seconds(
    rows: Iterable[SectionAvailability],
    caught_up_ms: Mapping[int, int],
    now_ms: int,
) -> float | None:
    """Seconds since the rows' partitions were last all caught up, or None."""
    return partition_lag({row.log_partition for row in rows}, caught_up_ms, now_ms)


def partition_lag(
    partitions: set[int], caught_up_ms: Mapping[int, int], now_ms: int
) -> float | None:
    """Seconds since all these partitions were last caught up; None if unknown."""
    if not partitions or not partitions <= caught_up_ms.keys():
        return None
    oldest = min(caught_up_ms[p] for p in partitions)
    return max(now_ms - oldest, 0) / 1000.0


class ProgressReader:
    """When the projection worker last had folded each Kafka partition in full."""

    def __init__(self, session: Session, keyspace: str, projection: str) -> None:
        self._session = session
        self._projection = projection
        self._caught_up = session.prepare(
            f"SELECT partition, caught_up_at FROM {keyspace}.projection_offsets "
            "WHERE projection = ?"
        )

    async def caught_up_ms(self) -> dict[int, int]:
        """Per Kafka partition, when the worker last had folded all of it (ms)."""
        found = await fetch_all(
            self._session, self._caught_up, (self._projection,), "read progress"
        )
        caught = {row.partition: epoch_ms(row.caught_up_at) for row in found}
        return {p: at for p, at in caught.items() if at is not None}


class AvailabilityReader:
    """Answers availability queries from Cassandra without blocking the loop."""

    def __init__(
        self,
        session: Session,
        keyspace: str,
        clock: Callable[[], float] = time.time,
        projection: str = PROJECTION,
    ) -> None:
        ks = checked_keyspace(keyspace)
        self._session = session
        self._clock = clock
        self._progress = ProgressReader(session, ks, projection)
        self._by_show = session.prepare(
            f"SELECT {AVAILABILITY_COLUMNS} FROM {ks}.availability_by_show "
            "WHERE show_id = ?"
        )

    async def by_show(self, show_id: str) -> list[SectionAvailability]:
        """Every section of a show, ordered by section id."""
        found = await fetch_all(
            self._session, self._by_show, (show_id,), "read availability"
        )
        return [row_from_cql(row) for row in found]

    async def view(self, show_id: str) -> ShowView:
        """A show's sections with ``as_of_ms`` and ``lag_seconds`` (see module)."""
        rows, caught_up = await asyncio.gather(
            self.by_show(show_id), self.caught_up_ms()
        )
        now_ms = int(self._clock() * 1000)
        as_of = max((row.updated_at_ms for row in rows), default=None)
        return ShowView(rows, as_of, lag_seconds(rows, caught_up, now_ms))

    async def caught_up_ms(self) -> dict[int, int]:
        """Per Kafka partition, when the worker last had folded all of it (ms)."""
        return await self._progress.caught_up_ms()

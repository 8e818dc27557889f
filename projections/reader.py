"""Reading the availability read model from Cassandra, for asyncio callers.

The driver answers on its own event-loop thread; ``AvailabilityReader`` hands each
answer to the caller's asyncio loop with ``call_soon_threadsafe``. Driver failures
become ``InfrastructureError`` here, once, keeping the driver's exception as cause.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any, Final

from cassandra import DriverException
from cassandra.cluster import (
    EXEC_PROFILE_DEFAULT,
    Cluster,
    ExecutionProfile,
    NoHostAvailable,
    Session,
)
from cassandra.policies import WhiteListRoundRobinPolicy

from commands.errors import InfrastructureError
from commands.model import SectionKind
from infra.settings import Settings
from projections.availability import SectionAvailability
from projections.schema import checked_keyspace

CASSANDRA_ERRORS: Final = (DriverException, NoHostAvailable)
"""Everything the driver raises for an unreachable, slow or refusing cluster."""

REQUEST_TIMEOUT_SECONDS: Final = 10.0

_EPOCH: Final = datetime(1970, 1, 1)

AVAILABILITY_COLUMNS: Final = (
    "show_id, section_id, kind, capacity, held, sold, free, hold_ttl_seconds, "
    "log_partition, log_offset, log_index, updated_at"
)


def connect(settings: Settings) -> tuple[Cluster, Session]:
    """Connect to the Cassandra of the settings; InfrastructureError if it is down."""
    host = settings.cassandra_host
    profile = ExecutionProfile(
        load_balancing_policy=WhiteListRoundRobinPolicy([host]),
        request_timeout=REQUEST_TIMEOUT_SECONDS,
    )
    cluster = Cluster(
        [host],
        port=settings.cassandra_port,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=REQUEST_TIMEOUT_SECONDS,
    )
    try:
        session = cluster.connect()
    except NoHostAvailable as exc:
        cluster.shutdown()
        raise InfrastructureError(
            f"Cassandra at {host}:{settings.cassandra_port} is unreachable"
        ) from exc
    return cluster, session


def infrastructure_error(action: str, exc: BaseException) -> InfrastructureError:
    """An InfrastructureError for a failed driver call, with the driver's as cause."""
    error = InfrastructureError(f"Cassandra could not {action}: {exc}")
    error.__cause__ = exc
    return error


def row_from_cql(row: Any) -> SectionAvailability:
    """Map a row of ``availability_by_show`` (named tuple) to the read model."""
    updated_at = row.updated_at
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
        updated_at_ms=0 if updated_at is None else _epoch_ms(updated_at),
    )


def _epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch of a naive UTC datetime from the driver."""
    return (moment - _EPOCH) // timedelta(milliseconds=1)


class AvailabilityReader:
    """Answers availability queries from Cassandra without blocking the loop."""

    def __init__(self, session: Session, keyspace: str) -> None:
        ks = checked_keyspace(keyspace)
        self._session = session
        self._by_show = session.prepare(
            f"SELECT {AVAILABILITY_COLUMNS} FROM {ks}.availability_by_show "
            "WHERE show_id = ?"
        )

    async def by_show(self, show_id: str) -> list[SectionAvailability]:
        """Every section of a show, ordered by section id."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[list[Any]] = loop.create_future()
        rows: list[Any] = []
        future = self._session.execute_async(self._by_show, (show_id,))

        def on_page(page: list[Any]) -> None:
            rows.extend(page)
            if future.has_more_pages:
                future.start_fetching_next_page()
            else:
                loop.call_soon_threadsafe(_resolve, answer, rows)

        def on_error(exc: BaseException) -> None:
            error = infrastructure_error("read availability", exc)
            loop.call_soon_threadsafe(_fail, answer, error)

        # The driver calls on_page again for every page it fetches.
        future.add_callbacks(callback=on_page, errback=on_error)
        return [row_from_cql(row) for row in await answer]


def _resolve(answer: asyncio.Future[list[Any]], rows: list[Any]) -> None:
    """Complete the caller's future unless it was cancelled meanwhile."""
    if not answer.done():
        answer.set_result(rows)


def _fail(answer: asyncio.Future[list[Any]], error: BaseException) -> None:
    """Fail the caller's future unless it was cancelled meanwhile."""
    if not answer.done():
        answer.set_exception(error)

"""Cassandra plumbing shared by the read-model adapters.

Connecting, the driver exceptions we translate (once, here, keeping the driver's
exception as cause) and the bridge from the driver's callback thread to an asyncio
caller: the driver answers on its own event-loop thread, and ``fetch_all`` hands
the rows to the caller's loop with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any, Final

from cassandra import ConsistencyLevel, DriverException
from cassandra.cluster import (
    EXEC_PROFILE_DEFAULT,
    Cluster,
    ExecutionProfile,
    NoHostAvailable,
    Session,
)
from cassandra.policies import (
    ExponentialReconnectionPolicy,
    WhiteListRoundRobinPolicy,
)

from commands.errors import InfrastructureError
from infra.settings import Settings

CASSANDRA_ERRORS: Final = (DriverException, NoHostAvailable)
"""Everything the driver raises for an unreachable, slow or refusing cluster."""

REQUEST_TIMEOUT_SECONDS: Final = 10.0
RECONNECT_BASE_SECONDS: Final = 0.5
RECONNECT_MAX_SECONDS: Final = 4.0
"""Reconnection delays to a node that went down, in seconds, doubling up to the max.

The driver's default (1 s doubling up to 600 s, and giving up after 64 tries)
would leave a restarted node unused for minutes after a one-minute outage.
"""

SERIAL_LEVELS: Final = ("SERIAL", "LOCAL_SERIAL")
"""Consistency levels a compare-and-set (``IF ...``) statement may run with."""

_EPOCH: Final = datetime(1970, 1, 1)


def connect(settings: Settings) -> tuple[Cluster, Session]:
    """Connect to the Cassandra of the settings; InfrastructureError if it is down."""
    hosts = settings.cassandra_hosts
    profile = ExecutionProfile(
        load_balancing_policy=WhiteListRoundRobinPolicy(hosts),
        request_timeout=REQUEST_TIMEOUT_SECONDS,
        consistency_level=consistency_level(settings.cassandra_consistency),
        serial_consistency_level=consistency_level(
            settings.cassandra_serial_consistency, serial=True
        ),
    )
    cluster = Cluster(
        hosts,
        port=settings.cassandra_port,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=REQUEST_TIMEOUT_SECONDS,
        reconnection_policy=ExponentialReconnectionPolicy(
            RECONNECT_BASE_SECONDS, RECONNECT_MAX_SECONDS, max_attempts=None
        ),
    )
    try:
        session = cluster.connect()
    except NoHostAvailable as exc:
        cluster.shutdown()
        raise InfrastructureError(
            f"Cassandra at {settings.cassandra_host}:{settings.cassandra_port} "
            "is unreachable"
        ) from exc
    return cluster, session


def consistency_level(name: str, serial: bool = False) -> int:
    """The driver's code of a consistency level named like ``LOCAL_QUORUM``.

    A serial level (of compare-and-set writes) is SERIAL or LOCAL_SERIAL only.
    """
    known = SERIAL_LEVELS if serial else ConsistencyLevel.name_to_value
    if name.upper() not in known:
        raise InfrastructureError(
            f"unknown Cassandra consistency level {name!r}; one of "
            + ", ".join(sorted(known))
        )
    return int(ConsistencyLevel.name_to_value[name.upper()])


def infrastructure_error(action: str, exc: BaseException) -> InfrastructureError:
    """An InfrastructureError for a failed driver call, with the driver's as cause."""
    error = InfrastructureError(f"Cassandra could not {action}: {exc}")
    error.__cause__ = exc
    return error


def epoch_ms(moment: datetime | None) -> int | None:
    """Milliseconds since the epoch of a naive UTC datetime from the driver."""
    if moment is None:
        return None
    return (moment - _EPOCH) // timedelta(milliseconds=1)


async def fetch_all(
    session: Session, statement: Any, params: tuple[object, ...], action: str
) -> list[Any]:
    """Every row of a query, every page, without blocking the caller's loop."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[list[Any]] = loop.create_future()
    rows: list[Any] = []
    future = session.execute_async(statement, params)

    def on_page(page: list[Any]) -> None:
        rows.extend(page)
        if future.has_more_pages:
            future.start_fetching_next_page()
        else:
            loop.call_soon_threadsafe(_resolve, answer, rows)

    def on_error(exc: BaseException) -> None:
        error = infrastructure_error(action, exc)
        loop.call_soon_threadsafe(_fail, answer, error)

    # The driver calls on_page again for every page it fetches.
    future.add_callbacks(callback=on_page, errback=on_error)
    return await answer


def _resolve(answer: asyncio.Future[list[Any]], rows: list[Any]) -> None:
    """Complete the caller's future unless it was cancelled meanwhile."""
    if not answer.done():
        answer.set_result(rows)


def _fail(answer: asyncio.Future[list[Any]], error: BaseException) -> None:
    """Fail the caller's future unless it was cancelled meanwhile."""
    if not answer.done():
        answer.set_exception(error)

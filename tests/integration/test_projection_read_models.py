"""Worker outages, freshness and the holds read model, against the real services.

The Cassandra outage is simulated with the real driver: a session wrapper whose
``execute_async`` raises ``cassandra.OperationTimedOut`` for its first calls, under
the real ``AvailabilityStore``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from cassandra import OperationTimedOut
from cassandra.cluster import Session

from infra.settings import Settings
from projections.hold_reader import HoldReader
from projections.holds import HoldStatus
from projections.reader import AvailabilityReader
from projections.retry import Backoff
from projections.store import AvailabilityStore
from projections.worker import ProjectionWorker
from tests.integration.test_projection_worker import (
    AFTER_SALE,
    IDLE_SECONDS,
    SALE,
    counts,
    fold_until_idle,
    produce,
    session,
    settings,
    stored_rows,
)

pytestmark = pytest.mark.integration
__all__ = ["session", "settings"]  # fixtures


class FlakySession:
    """A real session whose first ``failures`` async executions time out."""

    def __init__(self, session: Session, failures: int) -> None:
        self._session = session
        self.failures = failures

    def execute_async(self, *args: Any, **kwargs: Any) -> Any:
        if self.failures > 0:
            self.failures -= 1
            raise OperationTimedOut("simulated write timeout")
        return self._session.execute_async(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


def test_rows_are_stored_when_cassandra_writes_fail_for_a_while(
    settings: Settings, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    produce(settings, SALE)
    flaky = FlakySession(session, failures=4)
    store = AvailabilityStore(flaky, settings.cassandra_keyspace)  # type: ignore[arg-type]
    worker = ProjectionWorker(settings, store=store, backoff=lambda: Backoff(0.05, 0.2))

    with caplog.at_level(logging.INFO, logger="projections.retry"):
        worker.run(stop_after_idle_seconds=IDLE_SECONDS, max_seconds=60.0)

    assert counts(stored_rows(settings, session)) == AFTER_SALE
    assert flaky.failures == 0
    assert 1 <= worker.counts.saves_failed <= 4  # a save makes several calls
    assert worker.cassandra.outages == 1
    assert not worker.cassandra.degraded
    messages = [r.getMessage() for r in caplog.records if r.name == "projections.retry"]
    assert messages == [
        "projection degraded: cassandra failing, retrying with backoff",
        "projection recovered: cassandra works again",
    ]


async def test_a_show_says_how_fresh_it_is_when_the_worker_caught_up(
    settings: Settings, session: Session
) -> None:
    produce(settings, SALE)
    fold_until_idle(settings)
    reader = AvailabilityReader(session, settings.cassandra_keyspace)

    view = await reader.view("s1")
    missing = await reader.view("nope")

    assert [row.section_id for row in view.rows] == ["A", "B"]
    assert view.as_of_ms == 602, "the expiry; the later refusal changes no row"
    assert view.lag_seconds is not None
    assert 0 <= view.lag_seconds < IDLE_SECONDS + 5
    assert (missing.rows, missing.as_of_ms, missing.lag_seconds) == ([], None, None)


async def test_lag_grows_when_the_worker_stops(
    settings: Settings, session: Session
) -> None:
    produce(settings, SALE)
    fold_until_idle(settings)
    reader = AvailabilityReader(session, settings.cassandra_keyspace)
    first = await reader.view("s1")

    later = AvailabilityReader(
        session, settings.cassandra_keyspace, clock=lambda: time.time() + 60
    )
    second = await later.view("s1")

    assert first.lag_seconds is not None and second.lag_seconds is not None
    assert second.lag_seconds >= first.lag_seconds + 59


async def test_holds_can_be_read_by_id_when_the_worker_folded_them(
    settings: Settings, session: Session
) -> None:
    produce(settings, SALE)
    fold_until_idle(settings)
    reader = HoldReader(session, settings.cassandra_keyspace)

    expired = await reader.by_id("h1")
    held = await reader.by_id("h3")
    rejected = await reader.by_id("c9")
    missing = await reader.by_id("nope")

    assert expired is not None and expired.status is HoldStatus.EXPIRED
    assert (expired.buyer_id, expired.quantity, expired.expires_at_ms) == (
        "b1",
        5,
        602,
    )
    assert held is not None and held.status is HoldStatus.HELD
    assert held.seat_ids == ("r-1", "r-2")
    assert rejected is not None and rejected.status is HoldStatus.REJECTED
    assert rejected.reason == "sold_out"
    assert missing is None

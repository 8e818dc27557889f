"""Batched writes keep each row's log-position timestamp in the real Cassandra."""

from __future__ import annotations

import dataclasses

import pytest
from cassandra.cluster import Session

from infra.settings import Settings
from projections.holds import HoldStatus, HoldView
from projections.schema import OutdatedReadModelError
from projections.seats import SeatStatus, SeatView
from projections.store import AvailabilityStore, open_store
from tests.integration.test_projection_worker import session, settings

pytestmark = pytest.mark.integration
__all__ = ["session", "settings"]  # fixtures


def seat(seat_id: str, status: SeatStatus, offset: int) -> SeatView:
    return SeatView("s1", "A", seat_id, status, 0, offset, 0, 1_000 + offset, "h1")


def test_an_older_seat_write_never_replaces_a_newer_one_when_it_arrives_later(
    settings: Settings, session: Session
) -> None:
    store = AvailabilityStore(session, settings.cassandra_keyspace)
    seats = [f"A-{n}" for n in range(300)]  # more than one batch of a partition
    store.save_seats([seat(s, SeatStatus.SOLD, 50) for s in seats])

    store.save_seats([seat(s, SeatStatus.HELD, 10) for s in seats])
    store.save_seats([seat(s, SeatStatus.SOLD, 50) for s in seats])  # redelivered

    rows = session.execute(
        f"SELECT seat_id, status, log_offset FROM {settings.cassandra_keyspace}"
        ".seats_by_section WHERE show_id = 's1' AND section_id = 'A'"
    )
    assert {(row.status, row.log_offset) for row in rows} == {("sold", 50)}


def test_an_older_hold_change_fills_only_columns_newer_ones_left_unset(
    settings: Settings, session: Session
) -> None:
    store = AvailabilityStore(session, settings.cassandra_keyspace)
    placed = HoldView("h1", "s1", "A", HoldStatus.HELD, 0, 1, 0, 1, "b1", ("A-1",), 1)
    expired = dataclasses.replace(
        placed, status=HoldStatus.EXPIRED, log_offset=5, buyer_id=None
    )

    store.save_holds([expired])
    store.save_holds([placed])

    row = session.execute(
        f"SELECT status, buyer_id, log_offset FROM {settings.cassandra_keyspace}"
        ".holds_by_id WHERE hold_id = 'h1'"
    ).one()
    assert (row.status, row.buyer_id, row.log_offset) == ("expired", "b1", 5)


def test_a_keyspace_with_growing_lists_is_refused_when_the_worker_opens_it(
    settings: Settings, session: Session
) -> None:
    old = f"{settings.cassandra_keyspace}_old"
    session.execute(
        f"CREATE KEYSPACE {old} WITH replication = "
        "{'class': 'SimpleStrategy', 'replication_factor': 1}"
    )
    try:
        session.execute(
            f"CREATE TABLE {old}.holds_by_id (hold_id text PRIMARY KEY, "
            "seat_ids list<text>)"
        )

        with pytest.raises(OutdatedReadModelError, match="ticketing replay"):
            open_store(dataclasses.replace(settings, cassandra_keyspace=old))
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {old}")

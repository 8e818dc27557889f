"""Which keyspace holds the live read models: a pointer row in the home keyspace.

The home keyspace is the setting ``TICKETING_CASSANDRA_KEYSPACE``. Its table
``active_read_models`` maps the projection (``read_models``) to the keyspace that
readers and the worker use now; without a row, that is the home keyspace itself.
``ticketing replay`` rebuilds into a fresh keyspace while the live one serves, and
switching over is one write of this row. Gateways look at the row every
``POINTER_CHECK_SECONDS`` and move their readers; the worker looks as often, and
on a change stops and starts again in the new keyspace, resuming from the
offsets saved there.
"""

from __future__ import annotations

from typing import Final

from cassandra.cluster import Session

from projections.cql import CASSANDRA_ERRORS, infrastructure_error
from projections.reader import PROJECTION
from projections.schema import checked_keyspace, ensure_pointer_table

POINTER_CHECK_SECONDS: Final = 5.0
"""How long a gateway or worker may keep using a keyspace after a switch."""


def active_keyspace(session: Session, home: str, projection: str = PROJECTION) -> str:
    """The keyspace the projection's readers use now (the home one by default)."""
    ks = checked_keyspace(home)
    try:
        row = session.execute(
            f"SELECT keyspace_name FROM {ks}.active_read_models WHERE projection = %s",
            (projection,),
        ).one()
    except CASSANDRA_ERRORS as exc:
        raise infrastructure_error("read the active keyspace", exc) from exc
    return checked_keyspace(row.keyspace_name) if row is not None else ks


def switch_keyspace(
    session: Session, home: str, keyspace: str, projection: str = PROJECTION
) -> None:
    """Make ``keyspace`` the live one for readers and the worker."""
    ks = checked_keyspace(home)
    ensure_pointer_table(session, ks)
    try:
        session.execute(
            f"INSERT INTO {ks}.active_read_models "
            "(projection, keyspace_name, switched_at) "
            "VALUES (%s, %s, toTimestamp(now()))",
            (projection, checked_keyspace(keyspace)),
        )
    except CASSANDRA_ERRORS as exc:
        raise infrastructure_error("switch the active keyspace", exc) from exc

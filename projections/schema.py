"""Cassandra tables of the read models, created idempotently.

``availability_by_show`` answers "what is free in this show?", ``holds_by_id``
"what became of this hold?", ``seats_by_section`` "which seats of this section
are free?", ``orders_by_id`` "what is this order?" and ``orders_by_buyer`` "what
did this buyer buy?", each with one partition read (docs/read-models.md says why
no partition grows without bound); ``projection_offsets``
keeps, per projection and Kafka partition, the next offset to fold (so a restarted
worker resumes where its last write ended) and when the worker last had folded the
whole partition (so readers can tell how stale an answer may be).
"""

from __future__ import annotations

import re
from typing import Final

from cassandra.cluster import Session

from commands.errors import TicketingError
from infra.settings import Settings

AVAILABILITY_TABLE: Final = "availability_by_show"
HOLDS_TABLE: Final = "holds_by_id"
SEATS_TABLE: Final = "seats_by_section"
ORDERS_TABLE: Final = "orders_by_id"
BUYER_ORDERS_TABLE: Final = "orders_by_buyer"
OFFSETS_TABLE: Final = "projection_offsets"
POINTER_TABLE: Final = "active_read_models"
READ_MODEL_TABLES: Final = (
    AVAILABILITY_TABLE,
    HOLDS_TABLE,
    SEATS_TABLE,
    ORDERS_TABLE,
    BUYER_ORDERS_TABLE,
)
"""The tables a projection worker fills (every one a fold of the log)."""

_IDENTIFIER: Final = re.compile(r"[a-z][a-z0-9_]{0,47}")

# The replication comes from the settings: SimpleStrategy with one replica on the
# local single node, NetworkTopologyStrategy with a factor per data centre on a
# real cluster (docs/deployment.md). An existing keyspace is left as it is.
_KEYSPACE_CQL: Final = (
    "CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {replication}"
)

# log_index is the event's place inside its Kafka record (a record holds a batch of
# events), so (log_offset, log_index) orders every event of a partition.
_AVAILABILITY_CQL: Final = """
CREATE TABLE IF NOT EXISTS {ks}.availability_by_show (
    show_id text,
    section_id text,
    kind text,
    capacity int,
    held int,
    sold int,
    free int,
    hold_ttl_seconds int,
    log_partition int,
    log_offset bigint,
    log_index int,
    updated_at timestamp,
    PRIMARY KEY ((show_id), section_id)
)"""

# status: held | payment_pending | sold | released | expired | rejected.
# Lists are frozen: one cell, so a write repeated at the same USING TIMESTAMP
# leaves one copy. A non-frozen list appends its elements again on every replay.
_HOLDS_CQL: Final = """
CREATE TABLE IF NOT EXISTS {ks}.holds_by_id (
    hold_id text,
    show_id text,
    section_id text,
    buyer_id text,
    status text,
    seat_ids frozen<list<text>>,
    quantity int,
    expires_at timestamp,
    reason text,
    log_partition int,
    log_offset bigint,
    log_index int,
    updated_at timestamp,
    PRIMARY KEY ((hold_id))
)"""

# status: free | held | sold | withdrawn. One partition per section: bounded by
# the section's seats (a giant section is split into row blocks upstream).
_SEATS_CQL: Final = """
CREATE TABLE IF NOT EXISTS {ks}.seats_by_section (
    show_id text,
    section_id text,
    seat_id text,
    status text,
    hold_id text,
    order_id text,
    log_partition int,
    log_offset bigint,
    log_index int,
    updated_at timestamp,
    PRIMARY KEY ((show_id, section_id), seat_id)
)"""

_ORDER_COLUMNS: Final = """
    hold_id text,
    show_id text,
    section_id text,
    seat_ids frozen<list<text>>,
    quantity int,
    ticket_ids frozen<list<text>>,
    sold_at timestamp,
    log_partition int,
    log_offset bigint,
    log_index int,"""

_ORDERS_CQL: Final = (
    "CREATE TABLE IF NOT EXISTS {ks}.orders_by_id (order_id text, buyer_id text,"
    + _ORDER_COLUMNS
    + " PRIMARY KEY ((order_id)))"
)

# One partition per buyer: at most the per-buyer limit of each show they buy for.
_BUYER_ORDERS_CQL: Final = (
    "CREATE TABLE IF NOT EXISTS {ks}.orders_by_buyer (buyer_id text, order_id text,"
    + _ORDER_COLUMNS
    + " PRIMARY KEY ((buyer_id), order_id))"
)

# caught_up_at: wall time at which the worker last had folded and stored every
# record of the partition (its position reached the end of the log);
# saved_at: wall time of the worker's last write of this row.
_OFFSETS_CQL: Final = """
CREATE TABLE IF NOT EXISTS {ks}.projection_offsets (
    projection text,
    partition int,
    next_offset bigint,
    caught_up_at timestamp,
    saved_at timestamp,
    PRIMARY KEY ((projection), partition)
)"""

# Columns added after a table first shipped: (table, column, CQL type).
_ADDED_COLUMNS: Final = (
    (OFFSETS_TABLE, "caught_up_at", "timestamp"),
    (OFFSETS_TABLE, "saved_at", "timestamp"),
)


# Lives in the home keyspace (the setting): which keyspace readers and the
# worker use for the projection now. No row: the home keyspace itself.
_POINTER_CQL: Final = """
CREATE TABLE IF NOT EXISTS {ks}.active_read_models (
    projection text,
    keyspace_name text,
    switched_at timestamp,
    PRIMARY KEY ((projection))
)"""

_TABLES_CQL: Final = (
    _AVAILABILITY_CQL,
    _HOLDS_CQL,
    _SEATS_CQL,
    _ORDERS_CQL,
    _BUYER_ORDERS_CQL,
    _OFFSETS_CQL,
)


def checked_keyspace(keyspace: str) -> str:
    """Return the keyspace name if it is a plain CQL identifier, else raise."""
    if not _IDENTIFIER.fullmatch(keyspace):
        raise ValueError(f"keyspace {keyspace!r} is not a lower-case CQL identifier")
    return keyspace


def keyspace_replication(settings: Settings) -> str:
    """The CQL replication map of a keyspace created with these settings."""
    factor = settings.cassandra_replication_factor
    datacenter = settings.cassandra_datacenter
    if datacenter:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", datacenter):
            raise ValueError(f"data centre name {datacenter!r} is not plain")
        return f"{{'class': 'NetworkTopologyStrategy', '{datacenter}': {factor}}}"
    return f"{{'class': 'SimpleStrategy', 'replication_factor': {factor}}}"


def ensure_schema(
    session: Session, keyspace: str, settings: Settings | None = None
) -> None:
    """Create the keyspace and the read-model tables unless they exist.

    The keyspace's replication comes from ``settings`` (from the environment
    when none are given).
    """
    ks = checked_keyspace(keyspace)
    replication = keyspace_replication(settings or Settings.from_env())
    session.execute(_KEYSPACE_CQL.format(ks=ks, replication=replication))
    for statement in _TABLES_CQL:
        session.execute(statement.format(ks=ks))
    _add_missing_columns(session, ks)


def ensure_pointer_table(
    session: Session, home_keyspace: str, settings: Settings | None = None
) -> None:
    """Create the home keyspace and its table of active keyspaces unless they exist."""
    ks = checked_keyspace(home_keyspace)
    replication = keyspace_replication(settings or Settings.from_env())
    session.execute(_KEYSPACE_CQL.format(ks=ks, replication=replication))
    session.execute(_POINTER_CQL.format(ks=ks))


class OutdatedReadModelError(TicketingError):
    """A keyspace made by an older version that this one cannot fold into."""


def check_replayable(session: Session, keyspace: str) -> None:
    """Refuse a keyspace whose list columns would grow on replay (older version).

    ``holds_by_id.seat_ids`` was first a non-frozen list, whose elements a
    redelivered write appends again; its type cannot be altered, so such a
    keyspace must be rebuilt (``ticketing replay --keyspace NEW --switch``).
    """
    ks = checked_keyspace(keyspace)
    found = session.execute(
        "SELECT type FROM system_schema.columns WHERE keyspace_name = %s "
        "AND table_name = %s AND column_name = 'seat_ids'",
        (ks, HOLDS_TABLE),
    ).one()
    if found is not None and not str(found.type).startswith("frozen"):
        raise OutdatedReadModelError(
            f"{ks}.{HOLDS_TABLE}.seat_ids is a non-frozen list that replays grow; "
            "rebuild with: ticketing replay --keyspace <new> --switch"
        )


def _add_missing_columns(session: Session, ks: str) -> None:
    """Add columns that tables created by an older version lack."""
    for table, column, cql_type in _ADDED_COLUMNS:
        found = session.execute(
            "SELECT column_name FROM system_schema.columns "
            "WHERE keyspace_name = %s AND table_name = %s AND column_name = %s",
            (ks, table, column),
        )
        if found.one() is None:
            session.execute(f"ALTER TABLE {ks}.{table} ADD {column} {cql_type}")

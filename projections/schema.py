"""Cassandra tables of the read models, created idempotently.

``availability_by_show`` answers "what is free in this show?" with one partition
read; ``projection_offsets`` keeps, per projection and Kafka partition, the next
offset to fold, so a restarted worker resumes where its last write ended.
"""

from __future__ import annotations

import re
from typing import Final

from cassandra.cluster import Session

AVAILABILITY_TABLE: Final = "availability_by_show"
OFFSETS_TABLE: Final = "projection_offsets"

_IDENTIFIER: Final = re.compile(r"[a-z][a-z0-9_]{0,47}")

# Only this keyspace is created with SimpleStrategy and one replica, because the
# local Cassandra is a single node; real clusters use NetworkTopologyStrategy with
# a replication factor per data centre (e.g. 3).
_KEYSPACE_CQL: Final = (
    "CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = "
    "{{'class': 'SimpleStrategy', 'replication_factor': 1}}"
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

_OFFSETS_CQL: Final = """
CREATE TABLE IF NOT EXISTS {ks}.projection_offsets (
    projection text,
    partition int,
    next_offset bigint,
    PRIMARY KEY ((projection), partition)
)"""


def checked_keyspace(keyspace: str) -> str:
    """Return the keyspace name if it is a plain CQL identifier, else raise."""
    if not _IDENTIFIER.fullmatch(keyspace):
        raise ValueError(f"keyspace {keyspace!r} is not a lower-case CQL identifier")
    return keyspace


def ensure_schema(session: Session, keyspace: str) -> None:
    """Create the keyspace and the read-model tables unless they exist."""
    ks = checked_keyspace(keyspace)
    for statement in (_KEYSPACE_CQL, _AVAILABILITY_CQL, _OFFSETS_CQL):
        session.execute(statement.format(ks=ks))

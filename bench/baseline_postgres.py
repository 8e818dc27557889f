"""Baseline (a): holds in PostgreSQL with row locks.

A GA section is one row with its capacity and remaining places; a hold locks that
row (``SELECT ... FOR UPDATE``), checks what remains, inserts the hold and
decrements, in one transaction. A reserved section locks its seat rows the same
way (in seat order, so two holds never deadlock) and marks them held. The hold id
is the primary key of ``holds``: a retried request finds its first answer and
changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

SCHEMA = """
CREATE TABLE IF NOT EXISTS sections (
    section_id text PRIMARY KEY,
    capacity integer NOT NULL,
    remaining integer NOT NULL CHECK (remaining >= 0)
);
CREATE TABLE IF NOT EXISTS seats (
    section_id text NOT NULL,
    seat_id text NOT NULL,
    hold_id text,
    PRIMARY KEY (section_id, seat_id)
);
CREATE TABLE IF NOT EXISTS holds (
    hold_id text PRIMARY KEY,
    section_id text NOT NULL,
    buyer_id text NOT NULL,
    quantity integer NOT NULL,
    seat_ids text[] NOT NULL DEFAULT '{}'
);
"""


async def create_schema(connection: asyncpg.Connection) -> None:
    """Create the tables when they are missing."""
    await connection.execute(SCHEMA)


async def add_ga_section(
    connection: asyncpg.Connection, section_id: str, capacity: int
) -> None:
    """A GA section with all of its places free."""
    await connection.execute(
        "INSERT INTO sections (section_id, capacity, remaining) VALUES ($1, $2, $2)",
        section_id,
        capacity,
    )


async def add_reserved_section(
    connection: asyncpg.Connection, section_id: str, seat_ids: Sequence[str]
) -> None:
    """A reserved section with all of its seats free."""
    await connection.executemany(
        "INSERT INTO seats (section_id, seat_id) VALUES ($1, $2)",
        [(section_id, seat) for seat in seat_ids],
    )


async def place_ga_hold(
    connection: asyncpg.Connection,
    hold_id: str,
    section_id: str,
    buyer_id: str,
    quantity: int,
) -> bool:
    """Hold ``quantity`` places of a GA section; False when too few remain."""
    async with connection.transaction():
        remaining = await connection.fetchval(
            "SELECT remaining FROM sections WHERE section_id = $1 FOR UPDATE",
            section_id,
        )
        if remaining is None:
            raise LookupError(f"no GA section {section_id!r}")

        # Under the section's lock a retry of a placed hold is seen for sure.
        if await _hold_exists(connection, hold_id):
            return True
        if remaining < quantity:
            return False

        await connection.execute(
            "INSERT INTO holds (hold_id, section_id, buyer_id, quantity)"
            " VALUES ($1, $2, $3, $4)",
            hold_id,
            section_id,
            buyer_id,
            quantity,
        )
        await connection.execute(
            "UPDATE sections SET remaining = remaining - $2 WHERE section_id = $1",
            section_id,
            quantity,
        )
        return True


async def place_seat_hold(
    connection: asyncpg.Connection,
    hold_id: str,
    section_id: str,
    buyer_id: str,
    seat_ids: Sequence[str],
) -> bool:
    """Hold named seats of a reserved section; False when one is not free."""
    wanted = sorted(set(seat_ids))
    async with connection.transaction():
        rows = await connection.fetch(
            "SELECT seat_id, hold_id FROM seats"
            " WHERE section_id = $1 AND seat_id = ANY($2::text[])"
            " ORDER BY seat_id FOR UPDATE",
            section_id,
            wanted,
        )
        if len(rows) != len(wanted):
            raise LookupError(f"unknown seats in {section_id!r}")

        if all(row["hold_id"] == hold_id for row in rows):
            return True
        if any(row["hold_id"] is not None for row in rows):
            return False

        await connection.execute(
            "UPDATE seats SET hold_id = $3"
            " WHERE section_id = $1 AND seat_id = ANY($2::text[])",
            section_id,
            wanted,
            hold_id,
        )
        await connection.execute(
            "INSERT INTO holds (hold_id, section_id, buyer_id, quantity, seat_ids)"
            " VALUES ($1, $2, $3, $4, $5)",
            hold_id,
            section_id,
            buyer_id,
            len(wanted),
            wanted,
        )
        return True


async def held_places(connection: asyncpg.Connection, section_id: str) -> int:
    """Places the stored holds of a section keep, summed from the holds table."""
    total = await connection.fetchval(
        "SELECT coalesce(sum(quantity), 0) FROM holds WHERE section_id = $1",
        section_id,
    )
    return int(total)


async def _hold_exists(connection: asyncpg.Connection, hold_id: str) -> bool:
    found = await connection.fetchval("SELECT 1 FROM holds WHERE hold_id = $1", hold_id)
    return found is not None

"""The room store in Cassandra: one row per room, lightweight transactions.

Tables (created by ``ensure_room_schema``, in the read models' keyspace):

- ``waiting_rooms``: a show's opening time, outflow, mark and last pump time.
  Advances are ``UPDATE ... IF pumped_at = <seen>``: of instances pumping at
  once, one applies and the others reload.
- ``waiting_room_joins``: counters of joins per (show, slot).
- ``rate_buckets``: GCRA TATs of shared buckets, compare-and-set, with a TTL.
- ``admission_uses``: the quota slots of admission tokens, each claimed by one
  command id with ``INSERT ... IF NOT EXISTS``, with a TTL.

Every row of ``waiting_rooms``, ``rate_buckets`` and ``admission_uses`` is
written only through lightweight transactions (Paxos), never mixed with plain
writes. Lightweight transactions cost several round trips, so only admitted
traffic (holds and checkouts) and the pumps use them; status polls read none.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any, Final

from cassandra.cluster import Session

from gateway.rate_limits import MICROS, Limit, Verdict, take
from gateway.waiting_room import EARLY_SLOT, RoomState
from projections.cql import infrastructure_error
from projections.schema import checked_keyspace

QUOTA_TTL_SECONDS: Final = 86_400
CAS_ATTEMPTS: Final = 5

_TABLES: Final = (
    """CREATE TABLE IF NOT EXISTS {ks}.waiting_rooms (
        show_id text PRIMARY KEY,
        opens_at bigint,
        admit_per_second double,
        mark double,
        pumped_at bigint,
        outflow_per_second double
    )""",
    """CREATE TABLE IF NOT EXISTS {ks}.waiting_room_joins (
        show_id text,
        slot int,
        joins counter,
        PRIMARY KEY ((show_id), slot)
    )""",
    """CREATE TABLE IF NOT EXISTS {ks}.rate_buckets (
        bucket text PRIMARY KEY,
        tat_us bigint
    )""",
    """CREATE TABLE IF NOT EXISTS {ks}.admission_uses (
        token_id text,
        slot int,
        command_id text,
        PRIMARY KEY ((token_id), slot)
    )""",
)


def ensure_room_schema(session: Session, keyspace: str) -> None:
    """Create the waiting-room tables unless they exist (keyspace must exist)."""
    ks = checked_keyspace(keyspace)
    for statement in _TABLES:
        session.execute(statement.format(ks=ks))


def _applied(rows: list[Any]) -> bool:
    """Whether a lightweight transaction applied (its first column)."""
    return bool(rows and rows[0][0])


def _settle(
    answer: asyncio.Future[list[Any]], rows: list[Any], error: BaseException | None
) -> None:
    """Complete a caller's future unless it was cancelled meanwhile."""
    if answer.done():
        return
    if error is None:
        answer.set_result(rows)
    else:
        answer.set_exception(error)


class CassandraRoomStore:
    """A ``RoomStore`` on Cassandra, for asyncio callers."""

    def __init__(self, session: Session, keyspace: str) -> None:
        ks = checked_keyspace(keyspace)
        self._session = session
        prepare = session.prepare
        self._room = prepare(
            "SELECT opens_at, admit_per_second, mark, pumped_at, outflow_per_second "
            f"FROM {ks}.waiting_rooms WHERE show_id = ?"
        )
        self._joins = prepare(
            f"SELECT slot, joins FROM {ks}.waiting_room_joins WHERE show_id = ?"
        )
        self._create = prepare(
            f"INSERT INTO {ks}.waiting_rooms (show_id, opens_at, admit_per_second, "
            "mark, pumped_at, outflow_per_second) VALUES (?, ?, ?, 0, 0, 0) "
            "IF NOT EXISTS"
        )
        self._configure = prepare(
            f"UPDATE {ks}.waiting_rooms SET opens_at = ?, admit_per_second = ? "
            "WHERE show_id = ? IF EXISTS"
        )
        self._count = prepare(
            f"UPDATE {ks}.waiting_room_joins SET joins = joins + 1 "
            "WHERE show_id = ? AND slot = ?"
        )
        self._advance = prepare(
            f"UPDATE {ks}.waiting_rooms SET mark = ?, pumped_at = ?, "
            "outflow_per_second = ? WHERE show_id = ? IF pumped_at = ?"
        )
        self._tat = prepare(f"SELECT tat_us FROM {ks}.rate_buckets WHERE bucket = ?")
        self._first_tat = prepare(
            f"INSERT INTO {ks}.rate_buckets (bucket, tat_us) VALUES (?, ?) "
            "IF NOT EXISTS USING TTL ?"
        )
        self._next_tat = prepare(
            f"UPDATE {ks}.rate_buckets USING TTL ? SET tat_us = ? "
            "WHERE bucket = ? IF tat_us = ?"
        )
        self._uses = prepare(
            f"SELECT slot, command_id FROM {ks}.admission_uses WHERE token_id = ?"
        )
        self._use = prepare(
            f"INSERT INTO {ks}.admission_uses (token_id, slot, command_id) "
            f"VALUES (?, ?, ?) IF NOT EXISTS USING TTL {QUOTA_TTL_SECONDS}"
        )

    async def _run(self, statement: Any, params: tuple[Any, ...]) -> list[Any]:
        """Every row of a statement (none for a plain write), off the loop."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[list[Any]] = loop.create_future()
        rows: list[Any] = []
        future = self._session.execute_async(statement, params)

        def on_page(page: list[Any] | None) -> None:
            rows.extend(page or ())
            if future.has_more_pages:
                future.start_fetching_next_page()
            else:
                loop.call_soon_threadsafe(_settle, answer, rows, None)

        def on_error(exc: BaseException) -> None:
            error = infrastructure_error("use the room store", exc)
            loop.call_soon_threadsafe(_settle, answer, rows, error)

        future.add_callbacks(callback=on_page, errback=on_error)
        return await answer

    async def open_room(
        self, show_id: str, opens_at_ms: int, admit_per_second: float
    ) -> RoomState:
        params = (opens_at_ms, admit_per_second, show_id)
        if not _applied(await self._run(self._configure, params)):
            await self._run(self._create, (show_id, opens_at_ms, admit_per_second))
            await self._run(self._configure, params)  # a racing creation won
        room = await self.load(show_id)
        assert room is not None
        return room

    async def load(self, show_id: str) -> RoomState | None:
        rows = await self._run(self._room, (show_id,))
        if not rows:
            return None
        row = rows[0]
        joins = {r.slot: r.joins for r in await self._run(self._joins, (show_id,))}
        early = joins.pop(EARLY_SLOT, 0)
        return RoomState(
            show_id=show_id,
            opens_at_ms=row.opens_at,
            admit_per_second=row.admit_per_second,
            mark=row.mark or 0.0,
            pumped_at_ms=row.pumped_at or 0,
            outflow_per_second=row.outflow_per_second or 0.0,
            early_joins=early,
            late_joins=joins,
        )

    async def count_join(self, show_id: str, slot: int) -> None:
        await self._run(self._count, (show_id, slot))

    async def save_mark(self, seen: RoomState, advanced: RoomState) -> bool:
        params = (
            advanced.mark,
            advanced.pumped_at_ms,
            advanced.outflow_per_second,
            seen.show_id,
            seen.pumped_at_ms,
        )
        return _applied(await self._run(self._advance, params))

    async def take_shared(self, bucket: str, limit: Limit, now_us: int) -> Verdict:
        ttl = max(1, math.ceil((limit.tolerance_us + limit.interval_us) / MICROS))
        for _ in range(CAS_ATTEMPTS):
            rows = await self._run(self._tat, (bucket,))
            seen = rows[0].tat_us if rows else None
            verdict = take(limit, seen, now_us)
            if not verdict.allowed:
                return verdict
            # The TAT lives until the bucket is full again; then it may vanish.
            live = max(1, ttl + math.ceil((verdict.tat_us - now_us) / MICROS))
            if seen is None:
                written = await self._run(
                    self._first_tat, (bucket, verdict.tat_us, live)
                )
            else:
                written = await self._run(
                    self._next_tat, (live, verdict.tat_us, bucket, seen)
                )
            if _applied(written):
                return verdict
        # Lost every race: as many others took tokens meanwhile; refuse this one.
        return Verdict(False, now_us, limit.interval_us)

    async def use_quota(self, token_id: str, command_id: str, quota: int) -> bool:
        for _ in range(CAS_ATTEMPTS):
            used = {
                r.slot: r.command_id for r in await self._run(self._uses, (token_id,))
            }
            if command_id in used.values():
                return True
            free = [slot for slot in range(quota) if slot not in used]
            if not free:
                return False
            claimed = await self._run(self._use, (token_id, free[0], command_id))
            if _applied(claimed) or claimed[0].command_id == command_id:
                return True
        return False

"""Reading the holds read model from Cassandra, for asyncio callers.

Any gateway instance, also after a restart, can tell a buyer what became of a
hold: one partition read of ``holds_by_id``. The answer is as fresh as the
projection worker; a hold placed a moment ago may not be there yet.
"""

from __future__ import annotations

from typing import Any, Final

from cassandra.cluster import Session

from projections.cql import epoch_ms, fetch_all
from projections.holds import HoldStatus, HoldView
from projections.schema import checked_keyspace

HOLD_COLUMNS: Final = (
    "hold_id, show_id, section_id, buyer_id, status, seat_ids, quantity, "
    "expires_at, reason, log_partition, log_offset, log_index, updated_at"
)


def hold_from_cql(row: Any) -> HoldView:
    """Map a row of ``holds_by_id`` (named tuple) to the read model."""
    return HoldView(
        hold_id=row.hold_id,
        show_id=row.show_id,
        section_id=row.section_id,
        status=HoldStatus(row.status),
        log_partition=row.log_partition,
        log_offset=row.log_offset,
        log_index=row.log_index or 0,
        updated_at_ms=epoch_ms(row.updated_at) or 0,
        buyer_id=row.buyer_id,
        seat_ids=tuple(row.seat_ids or ()),
        quantity=row.quantity,
        expires_at_ms=epoch_ms(row.expires_at),
        reason=row.reason,
    )


class HoldReader:
    """Answers "what became of this hold?" without blocking the loop."""

    def __init__(self, session: Session, keyspace: str) -> None:
        ks = checked_keyspace(keyspace)
        self._session = session
        self._by_id = session.prepare(
            f"SELECT {HOLD_COLUMNS} FROM {ks}.holds_by_id WHERE hold_id = ?"
        )

    async def by_id(self, hold_id: str) -> HoldView | None:
        """The hold with this id (a placed or refused hold's command id), if known."""
        found = await fetch_all(self._session, self._by_id, (hold_id,), "read a hold")
        return hold_from_cql(found[0]) if found else None

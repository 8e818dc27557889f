"""What the waiting room shares between gateway instances, behind one protocol.

- the room of each show: opening time, configured outflow, the admitted-up-to
  mark and when it was last advanced (changed only by compare-and-set on that
  time, so when several instances pump at once exactly one advance counts);
- join counts per slot (early, or second after opening), for positions and for
  turning an outflow in people into a distance on the queue axis;
- shared token buckets (GCRA TATs, compare-and-set) for limits that must hold
  across instances, such as the per-buyer bucket on holds;
- the hold quota of each admission token: numbered slots claimed by command id,
  so a retried command uses no second slot and a copied token cannot exceed it.

``MemoryRoomStore`` keeps all of it in one process (tests share one between two
app instances); ``gateway.room_cassandra.CassandraRoomStore`` is the real one.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Protocol

from commands.errors import InfrastructureError
from gateway.rate_limits import Limit, Verdict, take
from gateway.waiting_room import EARLY_SLOT, RoomState


class RoomStore(Protocol):
    """Shared state of the waiting rooms, quotas and shared buckets."""

    async def open_room(
        self, show_id: str, opens_at_ms: int, admit_per_second: float
    ) -> RoomState:
        """Create a show's room, or change its opening time and outflow."""
        ...

    async def load(self, show_id: str) -> RoomState | None:
        """The room with its join counts; None if the show has none."""
        ...

    async def count_join(self, show_id: str, slot: int) -> None:
        """Count one join in a slot."""
        ...

    async def save_mark(self, seen: RoomState, advanced: RoomState) -> bool:
        """Store an advance if nobody advanced the room since ``seen``."""
        ...

    async def take_shared(self, bucket: str, limit: Limit, now_us: int) -> Verdict:
        """Take a token from a bucket shared by every instance."""
        ...

    async def use_quota(self, token_id: str, command_id: str, quota: int) -> bool:
        """Charge a command to a token's quota; True if it fits or was charged."""
        ...


class MemoryRoomStore:
    """A ``RoomStore`` in this process's memory."""

    def __init__(self) -> None:
        self.rooms: dict[str, RoomState] = {}
        self.joins: dict[str, dict[int, int]] = defaultdict(dict)
        self.tats: dict[str, int] = {}
        self.quota_slots: dict[str, list[str]] = defaultdict(list)
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise InfrastructureError("fake room store is down")

    async def open_room(
        self, show_id: str, opens_at_ms: int, admit_per_second: float
    ) -> RoomState:
        self._check()
        room = self.rooms.get(show_id) or RoomState(show_id, opens_at_ms, 0.0)
        room = dataclasses.replace(
            room, opens_at_ms=opens_at_ms, admit_per_second=admit_per_second
        )
        self.rooms[show_id] = room
        return room

    async def load(self, show_id: str) -> RoomState | None:
        self._check()
        room = self.rooms.get(show_id)
        if room is None:
            return None
        counts = dict(self.joins[show_id])
        early = counts.pop(EARLY_SLOT, 0)
        return dataclasses.replace(room, early_joins=early, late_joins=counts)

    async def count_join(self, show_id: str, slot: int) -> None:
        self._check()
        counts = self.joins[show_id]
        counts[slot] = counts.get(slot, 0) + 1

    async def save_mark(self, seen: RoomState, advanced: RoomState) -> bool:
        self._check()
        stored = self.rooms.get(seen.show_id)
        if stored is None or stored.pumped_at_ms != seen.pumped_at_ms:
            return False
        self.rooms[seen.show_id] = dataclasses.replace(
            stored,
            mark=advanced.mark,
            pumped_at_ms=advanced.pumped_at_ms,
            outflow_per_second=advanced.outflow_per_second,
        )
        return True

    async def take_shared(self, bucket: str, limit: Limit, now_us: int) -> Verdict:
        self._check()
        verdict = take(limit, self.tats.get(bucket), now_us)
        if verdict.allowed:
            self.tats[bucket] = verdict.tat_us
        return verdict

    async def use_quota(self, token_id: str, command_id: str, quota: int) -> bool:
        self._check()
        used = self.quota_slots[token_id]
        if command_id in used:
            return True
        if len(used) >= quota:
            return False
        used.append(command_id)
        return True

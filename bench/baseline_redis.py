"""Baseline (b): holds in Redis with one atomic Lua script.

A GA section is a counter of remaining places and a hash of its holds (hold id to
quantity). The script runs alone on the server: it answers a known hold id with
its first answer, refuses when too few places remain, else decrements and
records the hold. Both keys carry the section as hash tag, so a cluster would
keep them on one shard. The server runs without RDB or AOF: state is in memory
only, as the comparison in docs/baselines.md says.
"""

from __future__ import annotations

import redis.asyncio as aioredis

PLACE_HOLD_LUA = """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
    return 1
end
local remaining = tonumber(redis.call('GET', KEYS[1]))
if remaining == nil then
    return redis.error_reply('no such section')
end
local quantity = tonumber(ARGV[2])
if remaining < quantity then
    return 0
end
redis.call('DECRBY', KEYS[1], quantity)
redis.call('HSET', KEYS[2], ARGV[1], quantity)
return 1
"""


def remaining_key(section_id: str) -> str:
    """Key of a section's remaining places."""
    return f"section:{{{section_id}}}:remaining"


def holds_key(section_id: str) -> str:
    """Key of a section's holds, hold id to quantity."""
    return f"section:{{{section_id}}}:holds"


class RedisHolds:
    """Place GA holds on one Redis server through the Lua script."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._script = client.register_script(PLACE_HOLD_LUA)

    async def add_ga_section(self, section_id: str, capacity: int) -> None:
        """A GA section with all of its places free (replaces an old one)."""
        await self._client.delete(holds_key(section_id))
        await self._client.set(remaining_key(section_id), capacity)

    async def place_ga_hold(self, hold_id: str, section_id: str, quantity: int) -> bool:
        """Hold ``quantity`` places; False when too few remain."""
        answer = await self._script(
            keys=[remaining_key(section_id), holds_key(section_id)],
            args=[hold_id, quantity],
        )
        return bool(answer == 1)

    async def held_places(self, section_id: str) -> int:
        """Places the stored holds of a section keep."""
        quantities = await self._client.hvals(holds_key(section_id))
        return sum(int(q) for q in quantities)

    async def remaining(self, section_id: str) -> int:
        """Places of a section not held."""
        value = await self._client.get(remaining_key(section_id))
        return int(value) if value is not None else 0

"""The waiting rooms as one gateway instance serves them: config, cache, pump.

``Rooms`` keeps each show's room (mark and join counts) in memory, reloaded and
pumped every ``refresh_seconds`` by a background task for the shows this
instance was asked about lately, so a status poll reads only memory. Pumping is
``waiting_room.advance`` at the lag-aware rate, stored by compare-and-set: when
every instance pumps, one advance per interval counts (``gateway.room_store``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Final

from commands.errors import InfrastructureError
from gateway.load import LagMeter
from gateway.metrics import observe_pump
from gateway.passes import VerifiedTickets
from gateway.rate_limits import Limit, LocalBuckets
from gateway.room_store import RoomStore
from gateway.signing import Keyring
from gateway.waiting_room import RoomState, advance, lag_aware_rate, rank
from infra.settings import Settings, SettingsError

logger = logging.getLogger(__name__)

MAX_REMEMBERED_JOINS: Final = 1_000_000
MAX_REMEMBERED_RANKS: Final = 200_000
ACTIVE_SECONDS: Final = 300.0
"""How long after its last request an instance keeps pumping a show's room."""


@dataclass(frozen=True, slots=True)
class RoomConfig:
    """What the waiting-room routes need from the settings."""

    keyring: Keyring
    secret: bytes
    admit_per_second: float
    refresh_seconds: float
    ticket_ttl_ms: int
    admission_ttl_ms: int
    leeway_ms: int
    hold_quota: int
    admissions_per_device: int
    pow_base_bits: int
    pow_max_bits: int
    pow_target_joins_per_second: float
    lag_target_seconds: float
    lag_shed_seconds: float
    ip: Limit
    device: Limit
    buyer: Limit
    global_commands: Limit

    @classmethod
    def from_settings(cls, settings: Settings) -> RoomConfig:
        """The config of the ``gateway_*`` settings; ``SettingsError`` if bad."""
        try:
            keyring = Keyring.parse(settings.gateway_signing_keys)
        except ValueError as exc:  # the message names key ids, never secrets
            raise SettingsError(f"TICKETING_GATEWAY_SIGNING_KEYS: {exc}") from exc
        return cls(
            keyring=keyring,
            secret=settings.gateway_queue_secret.encode(),
            admit_per_second=settings.gateway_admit_per_second,
            refresh_seconds=settings.gateway_room_refresh_seconds,
            ticket_ttl_ms=int(settings.gateway_queue_ticket_ttl_seconds * 1000),
            admission_ttl_ms=int(settings.gateway_admission_ttl_seconds * 1000),
            leeway_ms=int(settings.gateway_pass_leeway_seconds * 1000),
            hold_quota=settings.gateway_hold_quota,
            admissions_per_device=settings.gateway_admissions_per_device,
            pow_base_bits=settings.gateway_pow_base_bits,
            pow_max_bits=settings.gateway_pow_max_bits,
            pow_target_joins_per_second=settings.gateway_pow_target_joins_per_second,
            lag_target_seconds=settings.gateway_lag_target_seconds,
            lag_shed_seconds=settings.gateway_lag_shed_seconds,
            ip=Limit(
                settings.gateway_ip_burst, settings.gateway_ip_requests_per_second
            ),
            device=Limit(
                settings.gateway_device_burst,
                settings.gateway_device_requests_per_second,
            ),
            buyer=Limit(
                settings.gateway_buyer_burst, settings.gateway_buyer_commands_per_second
            ),
            global_commands=Limit(
                settings.gateway_global_burst,
                settings.gateway_global_commands_per_second,
            ),
        )


class Rooms:
    """One instance's view of the shared rooms, and its share of the pumping."""

    def __init__(
        self,
        store: RoomStore,
        config: RoomConfig,
        lag: LagMeter,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.config = config
        self.lag = lag
        self.clock = clock
        self.ip_buckets = LocalBuckets(config.ip)
        self.device_buckets = LocalBuckets(config.device)
        self.global_bucket = LocalBuckets(config.global_commands)
        self.joins = JoinRate(clock)
        self.verified_tickets = VerifiedTickets()
        self.accounts_by_device: dict[str, set[str]] = {}
        self._rooms: dict[str, RoomState] = {}
        self._touched: dict[str, float] = {}
        self._loading: dict[str, asyncio.Future[RoomState | None]] = {}
        self._joined: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._ranks: OrderedDict[tuple[str, str], float] = OrderedDict()

    def rank(self, show_id: str, ticket_id: str) -> float:
        """A ticket's early rank (``waiting_room.rank``), remembered: an HMAC."""
        seen = (show_id, ticket_id)
        found = self._ranks.get(seen)
        if found is None:
            found = self._ranks[seen] = rank(self.config.secret, show_id, ticket_id)
            if len(self._ranks) > MAX_REMEMBERED_RANKS:
                self._ranks.popitem(last=False)
        return found

    def now_ms(self) -> int:
        """Wall time in epoch milliseconds."""
        return int(self.clock() * 1000)

    def now_us(self) -> int:
        """Wall time in epoch microseconds."""
        return int(self.clock() * 1_000_000)

    def served(self) -> list[RoomState]:
        """The rooms this instance keeps in memory (and pumps)."""
        return list(self._rooms.values())

    async def get(self, show_id: str) -> RoomState | None:
        """The room from memory, else loaded once for all callers that wait."""
        self._touched[show_id] = self.clock()
        room = self._rooms.get(show_id)
        if room is not None:
            return room
        loading = self._loading.get(show_id)
        if loading is None:
            loading = asyncio.ensure_future(self._load(show_id))
            self._loading[show_id] = loading
            loading.add_done_callback(lambda _: self._loading.pop(show_id, None))
        return await asyncio.shield(loading)

    async def _load(self, show_id: str) -> RoomState | None:
        room = await self.store.load(show_id)
        if room is not None:
            self._rooms[show_id] = room
        return room

    async def open(
        self, show_id: str, opens_at_ms: int, admit_per_second: float
    ) -> RoomState:
        """Create or change a room; this instance sees the change at once."""
        await self.store.open_room(show_id, opens_at_ms, admit_per_second)
        room = await self._load(show_id)
        assert room is not None
        return room

    def rate(self, room: RoomState) -> float:
        """The room's outflow for the write path's current lag."""
        return lag_aware_rate(
            room.admit_per_second,
            self.lag.lag_seconds,
            self.config.lag_target_seconds,
            self.config.lag_shed_seconds,
        )

    async def pump(self, show_id: str) -> RoomState | None:
        """Reload a room and advance its mark if nobody did since (one try)."""
        room = await self.store.load(show_id)
        if room is None:
            self._rooms.pop(show_id, None)
            return None
        advanced = advance(room, self.now_ms(), self.rate(room))
        if advanced != room and await self.store.save_mark(room, advanced):
            observe_pump(room, advanced)
            room = advanced
        elif advanced != room:
            room = await self.store.load(show_id) or room
        self._rooms[show_id] = room
        return room

    async def pump_active(self) -> None:
        """Pump every room asked about lately; forget the others."""
        horizon = self.clock() - ACTIVE_SECONDS
        for show_id, touched in list(self._touched.items()):
            if touched < horizon:
                del self._touched[show_id]
                self._rooms.pop(show_id, None)
                continue
            try:
                await self.pump(show_id)
            except InfrastructureError:
                logger.warning("room pump failed", extra={"show": show_id})

    async def run(self) -> None:
        """Pump until cancelled."""
        while True:
            await asyncio.sleep(self.config.refresh_seconds)
            await self.pump_active()

    def note_first_join(self, show_id: str, buyer_id: str) -> bool:
        """Whether this instance counts this buyer's join (not seen lately)."""
        # TODO(limit): per instance; a buyer joining at every instance is counted
        # once per instance, which only slows the outflow over the early crowd.
        # Move to the room store when positions drift more than a few percent.
        seen = (show_id, buyer_id)
        if seen in self._joined:
            return False
        self._joined[seen] = None
        if len(self._joined) > MAX_REMEMBERED_JOINS:
            self._joined.popitem(last=False)
        return True

    def note_device_account(self, device_id: str, buyer_id: str) -> int:
        """Remember that a device joined for an account; accounts seen on it."""
        accounts = self.accounts_by_device.setdefault(device_id, set())
        if len(accounts) < 64:
            accounts.add(buyer_id)
        # TODO(limit): per instance and unbounded in devices; move to the room
        # store when one device spreads its joins over many instances.
        return len(accounts)


class JoinRate:
    """Joins per second at this instance, over the last whole second."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._second = 0
        self._count = 0
        self._last = 0

    def note(self) -> None:
        """Count one join."""
        second = int(self._clock())
        if second != self._second:
            self._last = self._count if second == self._second + 1 else 0
            self._second, self._count = second, 0
        self._count += 1

    @property
    def per_second(self) -> float:
        """Joins in the last whole second, or so far in this one if more."""
        return float(max(self._last, self._count))


async def pumping(rooms: Rooms) -> AsyncIterator[None]:
    """Run the pump for the app's lifetime (an aiohttp cleanup context)."""
    task = asyncio.create_task(rooms.run())
    try:
        yield None
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

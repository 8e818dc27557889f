"""A short-TTL cache with request coalescing, for any keyed read of the projections.

Concurrent requests for one key share one load (a dict of in-flight futures); its
result is then served for ``ttl_seconds``. A failed load is not cached: every
caller waiting on it gets the error, and the next request loads again. A caller
that is cancelled does not cancel the load the others share.

When the read model is down (the load raises ``InfrastructureError``) and the key
was loaded before, the last value is served instead, marked stale with its age,
for up to ``max_stale_seconds`` after it was loaded; the failure is remembered for
one TTL so that an outage costs one failed load per key and TTL, not one per
request. With nothing cached, the error reaches the callers (503 ``unavailable``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from commands.errors import InfrastructureError
from gateway.metrics import STALE_READS

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

logger = logging.getLogger(__name__)

MAX_STALE_SECONDS: Final = 600.0
"""How old a value may be and still be served while the read model is down."""


@dataclass(frozen=True, slots=True)
class Served(Generic[V]):
    """A cached value and, if the read model could not be read, its age."""

    value: V
    stale_seconds: float | None = None
    """Seconds since the value was read, when served stale; None when fresh."""


@dataclass(frozen=True, slots=True)
class _Entry(Generic[V]):
    """A cached value: until when it is served, when it was read, if stale."""

    expires_at: float
    loaded_at: float
    value: V
    stale: bool = False


class CoalescingCache(Generic[K, V]):
    """Values by key from ``load``, cached briefly, one load per key at a time."""

    def __init__(
        self,
        load: Callable[[K], Awaitable[V]],
        ttl_seconds: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        max_stale_seconds: float = MAX_STALE_SECONDS,
    ) -> None:
        self._load = load
        self._ttl_seconds = ttl_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._max_stale_seconds = max_stale_seconds
        self._cached: OrderedDict[K, _Entry[V]] = OrderedDict()
        self._loading: dict[K, asyncio.Future[Served[V]]] = {}
        self.loads = 0
        """Loads started (one per key and TTL under any concurrency)."""
        self.stale_answers = 0
        """Loads that failed and were answered with a stale value instead."""

    async def get(self, key: K) -> V:
        """The value of a key, from cache, an in-flight load or a new one."""
        return (await self.serve(key)).value

    async def serve(self, key: K) -> Served[V]:
        """The value of a key with its staleness (see the module docstring)."""
        now = self._clock()
        cached = self._cached.get(key)
        if cached is not None and cached.expires_at > now:
            return self._served(cached, now)
        loading = self._loading.get(key)
        if loading is None:
            self.loads += 1
            loading = asyncio.ensure_future(self._fill(key))
            self._loading[key] = loading
            loading.add_done_callback(lambda done: self._loaded(key, done))
        return await asyncio.shield(loading)

    def _served(self, entry: _Entry[V], now: float) -> Served[V]:
        """A cached entry as served at ``now``."""
        if not entry.stale:
            return Served(entry.value)
        return Served(entry.value, max(0.0, now - entry.loaded_at))

    async def _fill(self, key: K) -> Served[V]:
        """Load one key and cache its value; a stale one if the read model is down."""
        try:
            value = await self._load(key)
        except InfrastructureError as exc:
            return self._stale(key, exc)
        now = self._clock()
        self._store(key, _Entry(now + self._ttl_seconds, now, value))
        return Served(value)

    def _stale(self, key: K, error: InfrastructureError) -> Served[V]:
        """The last value of a key, kept one more TTL; or the error if none is."""
        now = self._clock()
        last = self._cached.get(key)
        if last is None or now - last.loaded_at > self._max_stale_seconds:
            raise error
        if not last.stale:
            logger.warning("read model unavailable; serving cached answers")
        self.stale_answers += 1
        STALE_READS.inc()
        entry = _Entry(now + self._ttl_seconds, last.loaded_at, last.value, True)
        self._store(key, entry)
        return self._served(entry, now)

    def _store(self, key: K, entry: _Entry[V]) -> None:
        """Cache an entry as the newest, dropping the oldest beyond the bound."""
        self._cached.pop(key, None)
        self._cached[key] = entry
        while len(self._cached) > self._max_entries:
            self._cached.popitem(last=False)

    def _loaded(self, key: K, done: asyncio.Future[Served[V]]) -> None:
        """Drop a finished load from the in-flight table."""
        if self._loading.get(key) is done:
            del self._loading[key]
        if not done.cancelled():
            done.exception()  # retrieved here, raised to every caller by shield

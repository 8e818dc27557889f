"""A short-TTL cache with request coalescing, for any keyed read of the projections.

Concurrent requests for one key share one load (a dict of in-flight futures); its
result is then served for ``ttl_seconds``. A failed load is not cached: every
caller waiting on it gets the error, and the next request loads again. A caller
that is cancelled does not cancel the load the others share.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class CoalescingCache(Generic[K, V]):
    """Values by key from ``load``, cached briefly, one load per key at a time."""

    def __init__(
        self,
        load: Callable[[K], Awaitable[V]],
        ttl_seconds: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._ttl_seconds = ttl_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._cached: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._loading: dict[K, asyncio.Future[V]] = {}
        self.loads = 0
        """Loads started (one per key and TTL under any concurrency)."""

    async def get(self, key: K) -> V:
        """The value of a key, from cache, an in-flight load or a new one."""
        cached = self._cached.get(key)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        loading = self._loading.get(key)
        if loading is None:
            self.loads += 1
            loading = asyncio.ensure_future(self._fill(key))
            self._loading[key] = loading
            loading.add_done_callback(lambda done: self._loaded(key, done))
        return await asyncio.shield(loading)

    async def _fill(self, key: K) -> V:
        """Load one key and cache its value."""
        value = await self._load(key)
        self._cached.pop(key, None)
        self._cached[key] = (self._clock() + self._ttl_seconds, value)
        while len(self._cached) > self._max_entries:
            self._cached.popitem(last=False)
        return value

    def _loaded(self, key: K, done: asyncio.Future[V]) -> None:
        """Drop a finished load from the in-flight table."""
        if self._loading.get(key) is done:
            del self._loading[key]
        if not done.cancelled():
            done.exception()  # retrieved here, raised to every caller by shield

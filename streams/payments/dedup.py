"""A bounded window of recently seen ids: provider event ids at the webhook edge.

The window only spares the log duplicate records; exactly-once does not rest on it
(each instance has its own, and it forgets). The core does that: a payment result's
command id is derived from the provider's event id, and a decided command id
decides nothing again.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class DedupWindow:
    """Remembers up to ``max_ids`` ids, each for ``ttl_seconds``."""

    def __init__(
        self,
        max_ids: int = 100_000,
        ttl_seconds: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_ids < 1:
            raise ValueError("max_ids must be at least 1")
        self._max_ids = max_ids
        self._ttl_seconds = ttl_seconds
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def seen(self, item_id: str) -> bool:
        """Whether ``item_id`` was added within the window."""
        self._evict()
        return item_id in self._seen

    def add(self, item_id: str) -> None:
        """Remember ``item_id`` from now on (again, if it was known)."""
        self._seen[item_id] = self._clock()
        self._seen.move_to_end(item_id)
        self._evict()

    def _evict(self) -> None:
        """Forget ids past their time, then the oldest beyond the bound."""
        oldest_kept = self._clock() - self._ttl_seconds
        while self._seen:
            item_id, added_at = next(iter(self._seen.items()))
            if added_at > oldest_kept and len(self._seen) <= self._max_ids:
                break
            del self._seen[item_id]

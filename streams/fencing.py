"""What a worker does when one of its transactional producers is fenced.

A producer is fenced when another producer with its transactional id started
(another worker took the partition in a rebalance) or when the broker aborted
its transaction (it outlived the transaction timeout, e.g. while the broker
restarted). Every later send and commit of that producer fails.

The first case is normal during a rebalance: the batch stops before its acks,
its transaction is gone, and the partition's new owner decides those records
again; the rebalance reaches this worker moments later and takes the partition.
The second is not followed by any rebalance, and the producer would fail for
good while the worker still owns the partition: then the worker stops, so that
its supervisor starts a fresh one that resumes from the committed state.

``FenceWatch`` tells them apart by waiting: a fence not followed by a new group
generation within the grace period stops the worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)


class FenceWatch:
    """Stops the worker on a fence that no rebalance explains within the grace."""

    def __init__(
        self,
        generation: Callable[[], int | None],
        crash: Callable[[BaseException], Awaitable[None]],
        grace_seconds: float,
    ) -> None:
        self.generation = generation
        self.crash = crash
        self.grace_seconds = grace_seconds
        self.pending = False
        self.crashing = False

    def on_fenced(self, exc: BaseException) -> None:
        """Note a fenced send or commit; check after the grace period."""
        if self.pending or self.crashing:
            return
        self.pending = True
        generation = self.generation()
        logger.warning(
            "producer fenced; stopping unless a rebalance follows",
            extra={"error": str(exc), "grace_seconds": self.grace_seconds},
        )
        asyncio.get_running_loop().call_later(
            self.grace_seconds, self._check, generation, exc
        )

    def _check(self, generation: int | None, exc: BaseException) -> None:
        self.pending = False
        if self.generation() != generation:
            logger.info("fenced producer explained by a rebalance")
            return
        self.crashing = True
        logger.warning("producer fenced with no rebalance; stopping the worker")
        asyncio.ensure_future(self.crash(exc))

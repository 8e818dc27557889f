"""A commit gate that makes faust's exactly-once hold for batched table writes.

Faust commits a partition's transaction from a background timer. Two gaps let a
crash duplicate or lose work: the timer may commit while an agent is half-way
through a batch (its sends land in a committed transaction whose offsets do not
include the batch), and table changelog writes wait in a producer buffer that the
transactional commit does not flush. The gate closes both: an agent decides and
sends a whole batch while holding the gate, and a commit takes the gate, flushes
the buffer into the open transaction, then commits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import faust

logger = logging.getLogger(__name__)


class CommitGate:
    """Mutual exclusion between batch processing and transaction commits."""

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self.lock = asyncio.Lock()
        self._installed = False

    def install(self) -> None:
        """Wrap the worker's transaction commit; safe to call more than once."""
        if self._installed:
            return
        transactions = self.app.consumer.transactions
        commit: Callable[..., Awaitable[bool]] = transactions.commit

        async def gated_commit(
            offsets: Mapping[Any, int], start_new_transaction: bool = True
        ) -> bool:
            async with self.lock:
                await self.flush_buffered_sends()
                return await commit(
                    offsets, start_new_transaction=start_new_transaction
                )

        transactions.commit = gated_commit  # type: ignore[method-assign]
        self._installed = True
        logger.info("exactly-once commit gate installed")

    async def flush_buffered_sends(self) -> None:
        """Hand buffered table changelog writes to their transactional producer."""
        await self.app.producer.buffer.flush()

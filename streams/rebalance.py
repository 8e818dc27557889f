"""Watches the agent's rebalances: how often, how long they pause it, what it owns.

Faust signals a rebalance in three steps: the worker's partitions are revoked,
new ones assigned, and the tables restored from their changelogs (from a standby
copy's offset where the worker kept one). The watch times the steps and keeps the
assignment as gauges; it decides nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import faust

from streams import metrics
from streams.eos import stop_revoked_producers

logger = logging.getLogger(__name__)

# TODO(limit): faust rebalances eagerly, so a worker joining or leaving pauses
# every partition of every worker for the rebalance (seconds; see
# docs/operations.md). It matters when workers come and go during a sale
# (autoscaling); then move to a client with cooperative rebalancing.


class RebalanceWatch:
    """Times a worker's rebalances; one per worker process.

    ``clock`` returns seconds (monotonic); tests pass their own.
    """

    def __init__(
        self,
        commands_topic: str,
        standbys: Callable[[], Iterable[Any]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.commands_topic = commands_topic
        self.standbys = standbys
        self.clock = clock
        self.revoked_at: float | None = None
        self.assigned_at: float | None = None

    def on_revoked(self) -> None:
        """The worker stopped deciding: a rebalance began."""
        metrics.REBALANCES.inc()
        if self.revoked_at is None:
            self.revoked_at = self.clock()

    def on_assigned(self, assigned: Iterable[Any]) -> None:
        """The group gave this worker its partitions; their restore begins."""
        active = sorted(
            tp.partition for tp in assigned if tp.topic == self.commands_topic
        )
        standby = sum(1 for _ in self.standbys())
        metrics.ASSIGNED_PARTITIONS.labels("active").set(len(active))
        metrics.ASSIGNED_PARTITIONS.labels("standby").set(standby)
        self.assigned_at = self.clock()
        logger.info(
            "partitions assigned",
            extra={"partitions": active, "standby_partitions": standby},
        )

    def on_restored(self) -> None:
        """The tables of the assigned partitions are restored; deciding resumes."""
        now = self.clock()
        restore_seconds = None
        if self.assigned_at is not None:
            restore_seconds = now - self.assigned_at
            metrics.TABLE_RECOVERY.observe(restore_seconds)
        if self.revoked_at is not None:
            metrics.REBALANCE_PAUSE.observe(now - self.revoked_at)
        self.assigned_at = self.revoked_at = None
        logger.info("tables restored", extra={"restore_seconds": restore_seconds})


def watch_rebalances(app: faust.App, commands_topic: str) -> RebalanceWatch:
    """Connect a watch to the app's rebalance signals."""
    watch = RebalanceWatch(commands_topic, app.assignor.assigned_standbys)

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        watch.on_revoked()

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        watch.on_assigned(assigned)
        if app.in_transaction:
            await stop_revoked_producers(app, assigned)

    @app.on_rebalance_complete.connect
    async def on_restored(sender: Any, **kwargs: Any) -> None:
        watch.on_restored()

    return watch

"""The projection worker's metrics: events applied and how far behind it is.

Served by the projection worker on ``projection_metrics_port``. Read at scrape
time from the worker's counts and progress, so the worker's loop has no
metrics code. The lag of a partition is the time since the worker last had
folded and stored every record the partition held (as the availability answers'
``projection_lag_seconds``); a partition it never caught up on shows none.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from infra.metrics import serve
from infra.settings import Settings
from projections.projector import WorkerCounts
from projections.store import PartitionProgress

if TYPE_CHECKING:
    from projections.worker import ProjectionWorker

ProgressOf = Callable[[int], PartitionProgress | None]

_COUNTS = (
    ("records", "Event-log records read."),
    ("events_applied", "Events folded into the read models."),
    ("events_skipped", "Events already folded (a replay or a redelivery), skipped."),
    ("undecodable_records", "Records that did not decode and were skipped."),
    ("saves_failed", "Writes to Cassandra that failed (then retried)."),
)
"""(``WorkerCounts`` attribute, help) of each counter, named after the attribute."""


class ProjectionCollector(Collector):
    """The worker's counts and per-partition lag, at each scrape."""

    def __init__(
        self,
        counts: WorkerCounts,
        progress_of: ProgressOf,
        partitions: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._counts = counts
        self._progress_of = progress_of
        self._partitions = partitions
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        """Counters of the run, then the lag of each partition caught up once."""
        for attribute, text in _COUNTS:
            family = CounterMetricFamily(f"ticketing_projection_{attribute}", text)
            family.add_metric([], getattr(self._counts, attribute))
            yield family

        lag = GaugeMetricFamily(
            "ticketing_projection_lag_seconds",
            "Seconds since the worker last had stored every record of a partition.",
            labels=["partition"],
        )
        now_ms = self._clock() * 1000
        for partition in range(self._partitions):
            progress = self._progress_of(partition)
            if progress is not None and progress.caught_up_at_ms is not None:
                seconds = max(0.0, now_ms - progress.caught_up_at_ms) / 1000.0
                lag.add_metric([str(partition)], seconds)
        yield lag


def registry_for(
    counts: WorkerCounts, progress_of: ProgressOf, partitions: int
) -> CollectorRegistry:
    """A registry holding the metrics of one projection worker."""
    registry = CollectorRegistry()
    registry.register(ProjectionCollector(counts, progress_of, partitions))
    return registry


def serve_worker_metrics(
    current: Callable[[], ProjectionWorker | None],
    counts: WorkerCounts,
    settings: Settings,
) -> None:
    """Serve the metrics of whichever worker runs now on ``projection_metrics_port``.

    The live worker starts a new ``ProjectionWorker`` when a replay switches the
    keyspace; they share ``counts`` so the counters carry on across the switch.
    """

    def progress_of(partition: int) -> PartitionProgress | None:
        worker = current()
        cycle = worker.cycle if worker is not None else None
        return cycle.projector.progress(partition) if cycle is not None else None

    registry = registry_for(counts, progress_of, settings.command_partitions)
    serve(registry, settings.metrics_host, settings.projection_metrics_port)

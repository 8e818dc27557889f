"""The projection worker as a process: in the live keyspace, following switches.

``ticketing replay --switch`` moves the live keyspace (``projections.active``).
A watcher thread reads the pointer every ``POINTER_CHECK_SECONDS``; when it
moved, the worker stops after its batch in hand and starts again in the new
keyspace, from the offsets saved there by the replay.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
from types import FrameType

from commands.errors import InfrastructureError
from infra.settings import Settings
from projections.active import POINTER_CHECK_SECONDS, active_keyspace
from projections.cql import CASSANDRA_ERRORS, connect, infrastructure_error
from projections.metrics import serve_worker_metrics
from projections.projector import WorkerCounts
from projections.retry import Backoff
from projections.schema import ensure_pointer_table
from projections.worker import ProjectionWorker

logger = logging.getLogger(__name__)


def run_live(settings: Settings) -> int:
    """Run the worker until SIGTERM or SIGINT; 1 if Kafka failed for good.

    The worker folds into the live keyspace (``projections.active``); when a
    replay switches it, the worker stops and starts again in the new one.
    """
    stopping = threading.Event()
    current: list[ProjectionWorker] = []
    counts = WorkerCounts()
    serve_worker_metrics(lambda: current[0] if current else None, counts, settings)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()
        for worker in current:
            worker.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stopping.is_set():
        live = _live_keyspace(settings, stopping)
        if live is None:
            return 0
        worker = ProjectionWorker(
            dataclasses.replace(settings, cassandra_keyspace=live)
        )
        worker.counts = counts
        current[:] = [worker]
        watch = _PointerWatch(settings, live, worker)
        watch.start()
        try:
            worker.run()
        except InfrastructureError:
            logger.exception("projection worker failed")
            return 1
        finally:
            watch.stop()
        if stopping.is_set() or not watch.moved:
            return 0
        logger.info("live keyspace switched", extra={"keyspace": watch.moved})
    return 0


def _live_keyspace(settings: Settings, stopping: threading.Event) -> str | None:
    """The live keyspace, retried with backoff while Cassandra is down."""
    backoff = Backoff()
    while not stopping.is_set():
        try:
            return _read_pointer(settings)
        except InfrastructureError as exc:
            logger.warning("live keyspace unknown", extra={"error": str(exc)})
            stopping.wait(backoff.next_delay())
    return None


def _read_pointer(settings: Settings) -> str:
    """Connect, read the pointer row of the home keyspace, disconnect."""
    cluster, session = connect(settings)
    try:
        ensure_pointer_table(session, settings.cassandra_keyspace, settings)
        return active_keyspace(session, settings.cassandra_keyspace)
    except CASSANDRA_ERRORS as exc:
        raise infrastructure_error("read the live keyspace", exc) from exc
    finally:
        cluster.shutdown()


class _PointerWatch:
    """Stops a worker when the live keyspace is no longer the one it writes."""

    def __init__(self, settings: Settings, live: str, worker: ProjectionWorker):
        self._settings = settings
        self._live = live
        self._worker = worker
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.moved: str | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._done.wait(POINTER_CHECK_SECONDS):
            try:
                now_live = _read_pointer(self._settings)
            except InfrastructureError:
                continue  # the worker reports Cassandra outages itself
            if now_live != self._live:
                self.moved = now_live
                self._worker.stop()
                return

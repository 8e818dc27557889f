"""Runs the inventory agent as a Faust worker process."""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import faust
from aiokafka.errors import ProducerFenced

from commands.errors import InfrastructureError
from infra.logs import configure as configure_logging
from infra.metrics import serve as serve_metrics
from infra.routing import Router
from infra.settings import Settings
from infra.topics import ensure_topics
from streams import metrics
from streams.agent import create_app

logger = logging.getLogger(__name__)

MAX_WORKERS_PER_DATA_DIR = 64
LOCK_FILE = ".lock"


class AgentWorker(faust.Worker):
    """A Faust worker whose logs are our JSON lines at our level."""

    def __init__(self, app: faust.App, settings: Settings) -> None:
        self.settings = settings
        super().__init__(app, loglevel=settings.log_level, quiet=True)

    def on_setup_root_logger(self, logger: Any, level: int) -> None:
        """Replace faust's console handlers with ours once faust set them up."""
        super().on_setup_root_logger(logger, level)
        configure_logging(self.settings.log_level)


class FencedProducerSensor(faust.Sensor):
    """Reports a send that failed because its producer was fenced.

    After a broker restart that outlasted the transaction timeout, the broker has
    aborted the open transactions and every later send of those producers fails
    with ``ProducerFenced``. faust then logs each failed changelog write and goes
    on, serving nothing, for minutes. The fence watch (``streams.fencing``) stops
    the worker unless a rebalance explains the fence, and its supervisor starts
    a fresh one that resumes from the committed state.
    """

    def __init__(self, on_fenced: Callable[[BaseException], None]) -> None:
        super().__init__()
        self.on_fenced = on_fenced

    def on_send_error(self, producer: Any, exc: BaseException, state: Any) -> None:
        """Report a fenced send to the watch."""
        if isinstance(exc, ProducerFenced):
            self.on_fenced(exc)


def claim_data_dir(base: Path) -> tuple[Path, IO[str]]:
    """Lock a worker folder of its own under ``base``; the lock lives with the file.

    Several agents on one host each get a folder, and none can delete the tables
    of another that is running.
    """
    for slot in range(MAX_WORKERS_PER_DATA_DIR):
        folder = base / f"worker-{slot}"
        folder.mkdir(parents=True, exist_ok=True)
        lock = (folder / LOCK_FILE).open("w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        return folder, lock
    raise InfrastructureError(
        f"{MAX_WORKERS_PER_DATA_DIR} agents already use {base}; "
        "set TICKETING_AGENT_DATA_DIR for more"
    )


def metrics_port(settings: Settings, folder: Path) -> int:
    """The port of this agent's metrics: the N-th agent folder of a host, port + N.

    Several agents run on one host (scaling out, a restart beside a stopping
    one); each serves its own metrics without taking another's port.
    """
    slot = int(folder.name.removeprefix("worker-"))
    return settings.agent_web_port + slot


def wipe_tables(folder: Path) -> None:
    """Drop local RocksDB files so tables rebuild from the committed changelog.

    RocksDB may keep writes of a transaction that aborted when the worker died;
    the changelog, read with read_committed, holds only what committed.
    """
    # TODO(limit): a full changelog read on every start; with millions of entries
    # per partition, keep the files and verify their offsets instead.
    for child in folder.iterdir():
        if child.name != LOCK_FILE:
            shutil.rmtree(child, ignore_errors=True)


def run(settings: Settings) -> None:
    """Start the agent worker; returns when the worker stops (SIGTERM/SIGINT)."""
    ensure_topics(settings)
    folder, lock = claim_data_dir(Path(settings.agent_data_dir))
    try:
        wipe_tables(folder)
        own = dataclasses.replace(settings, agent_data_dir=str(folder))
        logger.info("agent starting", extra={"data_dir": str(folder)})
        serve_metrics(metrics.REGISTRY, own.metrics_host, metrics_port(own, folder))
        router = Router(own)
        router.start()
        try:
            app = create_app(own, router)
            writer: Any = app.inventory_writer  # type: ignore[attr-defined]
            app.sensors.add(FencedProducerSensor(writer.fences.on_fenced))
            AgentWorker(app, own).execute_from_commandline()
        finally:
            router.close()
    finally:
        lock.close()

"""Runs the inventory agent as a Faust worker process."""

from __future__ import annotations

import logging

import faust

from infra.settings import Settings
from infra.topics import ensure_topics
from streams.agent import create_app, wipe_local_state

logger = logging.getLogger(__name__)


def run(settings: Settings, loglevel: str = "WARNING") -> None:
    """Start the agent worker; returns when the worker stops (SIGTERM/SIGINT)."""
    ensure_topics(settings)
    wipe_local_state(settings)
    app = create_app(settings)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()

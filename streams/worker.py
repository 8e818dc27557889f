"""Runs the inventory agent as a Faust worker process."""

from __future__ import annotations

import logging
from typing import Any

import faust

from infra.logs import configure as configure_logging
from infra.settings import Settings
from infra.topics import ensure_topics
from streams.agent import create_app, wipe_local_state

logger = logging.getLogger(__name__)


class AgentWorker(faust.Worker):
    """A Faust worker whose logs are our JSON lines at our level."""

    def __init__(self, app: faust.App, settings: Settings) -> None:
        self.settings = settings
        super().__init__(app, loglevel=settings.log_level, quiet=True)

    def on_setup_root_logger(self, logger: Any, level: int) -> None:
        """Replace faust's console handlers with ours once faust set them up."""
        super().on_setup_root_logger(logger, level)
        configure_logging(self.settings.log_level)


def run(settings: Settings) -> None:
    """Start the agent worker; returns when the worker stops (SIGTERM/SIGINT)."""
    ensure_topics(settings)
    wipe_local_state(settings)
    AgentWorker(create_app(settings), settings).execute_from_commandline()

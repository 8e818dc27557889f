"""A fenced producer stops the worker, so that its supervisor starts a fresh one."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import ProducerFenced

from streams.transactional import send_in_transaction
from streams.worker import FencedProducerSensor


class FencedApp:
    """An app whose producer was fenced; records whether the app crashed."""

    def __init__(self) -> None:
        self.conf = SimpleNamespace(id="agent")
        self.assignor = SimpleNamespace(group_for_topic=lambda topic: 0)
        self.producer = SimpleNamespace(send=self._send)
        self.crashed: list[BaseException] = []

    async def _send(self, *args: Any, **kwargs: Any) -> Any:
        raise ProducerFenced()

    async def crash(self, reason: BaseException) -> None:
        self.crashed.append(reason)


async def test_a_fenced_send_crashes_the_app_when_the_broker_aborted_it() -> None:
    app = FencedApp()

    with pytest.raises(ProducerFenced):
        await send_in_transaction(
            app,  # type: ignore[arg-type]
            source_topic="commands",
            partition=1,
            topic="events",
            key=b"k",
            value=b"v",
            headers=[],
        )

    assert len(app.crashed) == 1
    assert isinstance(app.crashed[0], ProducerFenced)


async def test_the_worker_stops_once_when_its_changelog_sends_are_fenced() -> None:
    app = FencedApp()
    sensor = FencedProducerSensor(app)  # type: ignore[arg-type]

    sensor.on_send_error(None, ProducerFenced(), None)
    sensor.on_send_error(None, ProducerFenced(), None)
    sensor.on_send_error(None, RuntimeError("other"), None)
    await asyncio.sleep(0)

    assert len(app.crashed) == 1

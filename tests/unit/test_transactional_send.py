"""A fenced producer stops the batch, and the worker unless a rebalance follows."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import ProducerFenced

from streams.fencing import FenceWatch
from streams.transactional import send_in_transaction
from streams.worker import FencedProducerSensor

GRACE_SECONDS = 0.05


class FencedApp:
    """An app whose producer was fenced; records whether the app crashed."""

    def __init__(self) -> None:
        self.conf = SimpleNamespace(id="agent")
        self.assignor = SimpleNamespace(group_for_topic=lambda topic: 0)
        self.producer = SimpleNamespace(send=self._send)
        self.crashed: list[BaseException] = []
        self.generation = 3

    async def _send(self, *args: Any, **kwargs: Any) -> Any:
        raise ProducerFenced()

    async def crash(self, reason: BaseException) -> None:
        self.crashed.append(reason)

    def watch(self) -> FenceWatch:
        return FenceWatch(lambda: self.generation, self.crash, GRACE_SECONDS)


async def _send(app: FencedApp, watch: FenceWatch | None) -> None:
    with pytest.raises(ProducerFenced):
        await send_in_transaction(
            app,  # type: ignore[arg-type]
            source_topic="commands",
            partition=1,
            topic="events",
            key=b"k",
            value=b"v",
            headers=[],
            on_fenced=None if watch is None else watch.on_fenced,
        )


async def test_a_fence_no_rebalance_explains_stops_the_worker_once() -> None:
    app = FencedApp()
    watch = app.watch()

    await _send(app, watch)
    await _send(app, watch)
    assert app.crashed == [], "the batch stops; the worker waits for a rebalance"
    await asyncio.sleep(GRACE_SECONDS * 3)

    assert len(app.crashed) == 1
    assert isinstance(app.crashed[0], ProducerFenced)


async def test_a_fence_a_rebalance_explains_leaves_the_worker_running() -> None:
    app = FencedApp()
    watch = app.watch()

    await _send(app, watch)
    app.generation += 1  # the group took the partition away
    await asyncio.sleep(GRACE_SECONDS * 3)

    assert app.crashed == []
    await _send(app, watch)  # fenced again in the new generation, no rebalance
    await asyncio.sleep(GRACE_SECONDS * 3)
    assert len(app.crashed) == 1


async def test_changelog_sends_that_are_fenced_reach_the_watch() -> None:
    app = FencedApp()
    sensor = FencedProducerSensor(app.watch().on_fenced)

    sensor.on_send_error(None, ProducerFenced(), None)
    sensor.on_send_error(None, ProducerFenced(), None)
    sensor.on_send_error(None, RuntimeError("other"), None)
    await asyncio.sleep(GRACE_SECONDS * 3)

    assert len(app.crashed) == 1


async def test_without_a_watch_a_fenced_send_stops_the_app_at_once() -> None:
    app = FencedApp()

    await _send(app, None)

    assert len(app.crashed) == 1

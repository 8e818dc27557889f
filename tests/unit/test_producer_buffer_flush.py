"""The commit gate hands every buffered table write over before a commit, even
when faust's own flush gives up on a slow one (faust's ProducerBuffer runs here)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from faust.transport.producer import ProducerBuffer

from streams.eos import flush_producer_buffer

SLOW_SECONDS = 0.15
"""Longer than the 0.1 s faust's flush waits for one write."""


class SlowChannel:
    def __init__(self) -> None:
        self.published: list[int] = []

    async def publish_message(self, fut: Any, wait: bool = False) -> None:
        await asyncio.sleep(SLOW_SECONDS)
        self.published.append(fut.number)


async def _buffer_with(count: int) -> tuple[ProducerBuffer, SlowChannel]:
    buffer = ProducerBuffer()
    buffer.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))  # type: ignore[assignment]
    await buffer.start()
    channel = SlowChannel()
    for number in range(count):
        buffer.pending.put_nowait(
            SimpleNamespace(number=number, message=SimpleNamespace(channel=channel))
        )
    return buffer, channel


async def test_faust_flush_returns_before_slow_writes_are_handed_over() -> None:
    buffer, channel = await _buffer_with(3)
    try:
        await buffer.flush()
        assert len(channel.published) < 3, "faust's flush gives up after 0.1 s"
    finally:
        await flush_producer_buffer(buffer, timeout_seconds=5)
        await buffer.stop()


async def test_every_buffered_write_is_handed_over_before_the_flush_returns() -> None:
    buffer, channel = await _buffer_with(3)
    try:
        await flush_producer_buffer(buffer, timeout_seconds=5)
        assert channel.published == [0, 1, 2]
    finally:
        await buffer.stop()

"""In-memory stand-ins for the gateway's ports, for tests and demos.

``FakeBus`` records what it is sent and can answer through a real ``OutcomeBook``,
so the outcome path under test is the production one; only Kafka is left out.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from commands.model import Command, Event
from gateway.app import create_app
from gateway.book import OutcomeBook
from gateway.bus import CommandLogUnavailable
from infra.settings import Settings

Decide = Callable[[Command], list[Event]]
"""What the fake core answers to a command (nothing: the outcome never comes)."""


@dataclass
class FakeBus:
    """Records sent batches; optionally settles their outcomes in a book."""

    book: OutcomeBook
    decide: Decide | None = None
    down: bool = False
    sent: list[tuple[str, tuple[Command, ...]]] = field(default_factory=list)

    async def send(self, key: str, commands: Sequence[Command]) -> None:
        """Record the batch, then answer it on the next loop turn if told how."""
        if self.down:
            raise CommandLogUnavailable("fake command log is down")
        self.sent.append((key, tuple(commands)))
        if self.decide is None:
            return
        batch: dict[str, list[Event]] = {}
        for command in commands:
            for event in self.decide(command):
                batch.setdefault(event.command_id, []).append(event)
        asyncio.get_running_loop().call_soon(self.book.settle, batch)


@dataclass
class FakeAvailability:
    """Availability rows by show, counting reads; each read can take a while."""

    rows: dict[str, list[Any]] = field(default_factory=dict)
    delay_seconds: float = 0.0
    calls: int = 0

    async def by_show(self, show_id: str) -> list[Any]:
        """The rows of a show, after the configured delay."""
        self.calls += 1
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        return list(self.rows.get(show_id, []))


@dataclass
class Harness:
    """A gateway app wired to fakes, and the fakes to inspect."""

    app: web.Application
    book: OutcomeBook
    bus: FakeBus
    availability: FakeAvailability


def harness(
    decide: Decide | None = None,
    reply_timeout_seconds: float = 0.5,
    cache_ttl_seconds: float = 60.0,
) -> Harness:
    """A gateway app on fakes; ``decide`` plays the core."""
    book = OutcomeBook()
    bus = FakeBus(book, decide)
    availability = FakeAvailability()
    settings = Settings(
        gateway_reply_timeout_seconds=reply_timeout_seconds,
        availability_cache_ttl_seconds=cache_ttl_seconds,
    )
    return Harness(
        create_app(settings, bus, book, availability), book, bus, availability
    )


@asynccontextmanager
async def serve(
    app: web.Application,
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """A test client of the app on a loopback port, closed afterwards."""
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client

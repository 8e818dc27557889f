"""In-memory stand-ins for the gateway's ports, for tests and demos.

``FakeBus`` records what it is sent and can answer through a real ``OutcomeBook``,
so the outcome path under test is the production one; only Kafka is left out.
``InMemoryCore`` decides with the real domain core (one writer for every key,
follow-up commands included). ``FakeAvailability`` and ``FakeHolds`` play the
projection readers. The
harness's limits are generous unless a test sets its own, and
``admission_headers`` signs an admission token as the waiting room would, so a
test of holds need not queue first (the waiting room has tests of its own).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import web
from aiohttp.test_utils import TestClient

from commands.errors import InfrastructureError
from commands.inventory import PartitionInventory
from commands.model import Command, Event
from commands.policy import follow_ups
from gateway.app import create_app
from gateway.book import OutcomeBook
from gateway.breaker import CircuitBreaker
from gateway.bus import CommandLogUnavailable
from gateway.passes import AdmissionToken, sign_token, token_id_for
from gateway.room import RoomConfig
from gateway.room_store import MemoryRoomStore
from gateway.server import ProblemTestServer
from infra.settings import Settings
from projections.holds import HoldView

Decide = Callable[[Command], list[Event]]
"""What the fake core answers to a command (nothing: the outcome never comes)."""


@dataclass
class FakeBus:
    """Records sent batches; optionally settles their outcomes in a book."""

    book: OutcomeBook
    decide: Decide | None = None
    down: bool = False
    attempts: int = 0
    sent: list[tuple[str, tuple[Command, ...]]] = field(default_factory=list)

    async def send(self, key: str, commands: Sequence[Command]) -> None:
        """Record the batch, then answer it on the next loop turn if told how."""
        self.attempts += 1
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
class InMemoryCore:
    """The domain core as one in-process writer: a ``Decide`` for ``FakeBus``.

    Every key lives in one ``PartitionInventory``; the commands its events call
    for (a requested hold placed in its section, places given back) are decided
    at once, so a hold request's verdict comes back with it.
    """

    inventory: PartitionInventory = field(default_factory=PartitionInventory)
    max_follow_ups: int = 100

    def __call__(self, command: Command) -> list[Event]:
        """Every event of the command and of the follow-ups it leads to."""
        events: list[Event] = []
        pending = [command]
        for _ in range(self.max_follow_ups):
            if not pending:
                break
            decided = self.inventory.decide(pending.pop(0))
            events.extend(decided)
            pending.extend(follow_up for _, follow_up in follow_ups(decided))
        return events


@dataclass(frozen=True)
class FakeShowView:
    """A ``ShowView`` without Cassandra."""

    rows: list[Any]
    as_of_ms: int | None = None
    lag_seconds: float | None = None


@dataclass
class FakeAvailability:
    """Availability rows by show, counting reads; each read can take a while."""

    rows: dict[str, list[Any]] = field(default_factory=dict)
    as_of_ms: int | None = None
    lag_seconds: float | None = None
    delay_seconds: float = 0.0
    calls: int = 0
    down: bool = False

    async def view(self, show_id: str) -> FakeShowView:
        """The rows of a show and their freshness, after the configured delay."""
        self.calls += 1
        if self.down:
            raise InfrastructureError("fake availability read model is down")
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        rows = list(self.rows.get(show_id, []))
        as_of = self.as_of_ms if rows else None
        return FakeShowView(rows, as_of, self.lag_seconds if rows else None)


@dataclass
class FakeHolds:
    """The holds read model as a dict; ``down`` makes every read fail."""

    holds: dict[str, HoldView] = field(default_factory=dict)
    down: bool = False
    calls: int = 0

    async def by_id(self, hold_id: str) -> HoldView | None:
        """The hold with this id, if any."""
        self.calls += 1
        if self.down:
            raise InfrastructureError("fake holds read model is down")
        return self.holds.get(hold_id)


@dataclass
class Harness:
    """A gateway app wired to fakes, and the fakes to inspect."""

    app: web.Application
    book: OutcomeBook
    bus: FakeBus
    availability: FakeAvailability
    holds: FakeHolds
    breaker: CircuitBreaker
    rooms: MemoryRoomStore
    settings: Settings


GENEROUS_LIMITS: Final[dict[str, Any]] = {
    "gateway_ip_burst": 1_000_000,
    "gateway_device_burst": 1_000_000,
    "gateway_buyer_burst": 1_000_000,
    "gateway_global_burst": 1_000_000,
    "gateway_hold_quota": 1_000,
    "gateway_admissions_per_device": 1_000,
}
TEST_DEVICE: Final = "device-1"


def harness(
    decide: Decide | None = None,
    reply_timeout_seconds: float = 0.5,
    cache_ttl_seconds: float = 60.0,
    clock: Callable[[], float] | None = None,
    rooms: MemoryRoomStore | None = None,
    wall_clock: Callable[[], float] = time.time,
    **settings_changes: Any,
) -> Harness:
    """A gateway app on fakes; ``decide`` plays the core, ``clock`` the breaker's.

    ``rooms`` lets two harnesses share a room store like two instances;
    ``wall_clock`` drives the waiting room and the buckets; other keywords
    change settings (generous limits by default).
    """
    book = OutcomeBook()
    bus = FakeBus(book, decide)
    availability = FakeAvailability()
    holds = FakeHolds()
    breaker = CircuitBreaker() if clock is None else CircuitBreaker(clock=clock)
    settings = Settings(
        gateway_reply_timeout_seconds=reply_timeout_seconds,
        availability_cache_ttl_seconds=cache_ttl_seconds,
    )
    settings = dataclasses.replace(settings, **{**GENEROUS_LIMITS, **settings_changes})
    store = rooms or MemoryRoomStore()
    app = create_app(
        settings,
        bus,
        book,
        availability,
        holds,
        breaker,
        room_store=store,
        clock=wall_clock,
    )
    return Harness(app, book, bus, availability, holds, breaker, store, settings)


def admission_headers(
    show_id: str,
    buyer_id: str,
    device_id: str = TEST_DEVICE,
    settings: Settings | None = None,
    expires_at_ms: int | None = None,
) -> dict[str, str]:
    """Headers of a buyer admitted to a show: as the waiting room signs them."""
    config = RoomConfig.from_settings(settings or Settings(**GENEROUS_LIMITS))
    if expires_at_ms is None:
        expires_at_ms = int(time.time() * 1000) + config.admission_ttl_ms
    token = AdmissionToken(
        token_id=token_id_for(config.secret, show_id, buyer_id),
        show_id=show_id,
        buyer_id=buyer_id,
        device_id=device_id,
        hold_quota=config.hold_quota,
        expires_at_ms=expires_at_ms,
    )
    return {
        "Admission-Token": sign_token(config.keyring, token),
        "Device-Id": device_id,
    }


@asynccontextmanager
async def serve(
    app: web.Application,
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """A test client of the app on a loopback port, served like production."""
    async with TestClient(ProblemTestServer(app, host="127.0.0.1")) as client:
        yield client

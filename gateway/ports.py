"""What the gateway needs from the world, as protocols that tests can fake.

The real adapters are ``gateway.bus.CommandBus`` (commands to Kafka),
``gateway.outcomes.OutcomeWaiter`` (events back from Kafka), and the projection
readers ``AvailabilityReader`` and ``HoldReader`` (Cassandra); the app only ever
sees these protocols.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from commands.model import Command, Event
from projections.holds import HoldView

Settled = Callable[[Sequence[Event]], bool]
"""Whether the events seen so far for a command id answer the caller."""


class CommandSender(Protocol):
    """Appends commands to the command log."""

    async def send(self, key: str, commands: Sequence[Command]) -> None:
        """Resolve once the log acknowledged the batch; raise if it did not."""
        ...


class OutcomeSource(Protocol):
    """Hands out the events that commands caused, by command id."""

    def claim(self, command_id: str, request_digest: str) -> str | None:
        """Claim a command id for one request at work; an earlier claim's digest."""
        ...

    def release(self, command_id: str) -> None:
        """End the claim on a command id."""
        ...

    def first_digest(self, command_id: str) -> str | None:
        """The digest of the first request that claimed a command id, if known."""
        ...

    def expect(
        self, command_id: str, is_settled: Settled | None = None
    ) -> asyncio.Future[list[Event]]:
        """A future of the command's events, resolved once ``is_settled`` holds."""
        ...

    def forget(
        self, command_id: str, future: asyncio.Future[list[Event]] | None = None
    ) -> None:
        """Stop waiting for one future of a command id, or for all of them."""
        ...

    def outcome(self, command_id: str) -> list[Event] | None:
        """The events recently seen for a command id, if any."""
        ...

    def hold_events(self, hold_id: str) -> list[Event] | None:
        """A recent hold's events: its placing command's, then later ones, in order."""
        ...

    def mark_sent(self, command_id: str) -> None:
        """Note that this instance sent a command whose outcome it has not seen."""
        ...

    def is_pending(self, command_id: str) -> bool:
        """Whether this instance sent the command lately and awaits its outcome."""
        ...


class ShowAvailability(Protocol):
    """A show's availability rows and how fresh they are (a ``ShowView``)."""

    @property
    def rows(self) -> Sequence[Any]:
        """Rows with section_id, kind, capacity, free, held and sold."""
        ...

    @property
    def as_of_ms(self) -> int | None:
        """Log time of the newest event in the rows; None without rows."""
        ...

    @property
    def lag_seconds(self) -> float | None:
        """How far the rows may be behind the log; None if unknown."""
        ...


class AvailabilitySource(Protocol):
    """Reads a show's availability from the projections."""

    async def view(self, show_id: str) -> ShowAvailability:
        """The show's rows with ``as_of_ms`` and ``lag_seconds``."""
        ...


class HoldSource(Protocol):
    """Reads holds from the holds read model (any instance, after restarts)."""

    async def by_id(self, hold_id: str) -> HoldView | None:
        """The hold with this id (its placing command's id), if projected yet."""
        ...

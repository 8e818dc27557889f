"""What the gateway needs from the world, as protocols that tests can fake.

The real adapters are ``gateway.bus.CommandBus`` (commands to Kafka),
``gateway.outcomes.OutcomeWaiter`` (events back from Kafka) and the projection
reader (availability); the app only ever sees these protocols.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from commands.model import Command, Event

Settled = Callable[[Sequence[Event]], bool]
"""Whether the events seen so far for a command id answer the caller."""


class CommandSender(Protocol):
    """Appends commands to the command log."""

    async def send(self, key: str, commands: Sequence[Command]) -> None:
        """Resolve once the log acknowledged the batch; raise if it did not."""
        ...


class OutcomeSource(Protocol):
    """Hands out the events that commands caused, by command id."""

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


class AvailabilitySource(Protocol):
    """Reads a show's availability rows from the projections."""

    async def by_show(self, show_id: str) -> Sequence[Any]:
        """Rows with show_id, section_id, kind, capacity, free, held and sold."""
        ...

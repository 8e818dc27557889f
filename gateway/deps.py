"""Typed keys of the dependencies the app hands its handlers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from gateway.availability import AvailabilityCache
from gateway.ports import AvailabilitySource, CommandSender, HoldSource, OutcomeSource
from gateway.room import Rooms

BUS: Final = web.AppKey("bus", CommandSender)
OUTCOMES: Final = web.AppKey("outcomes", OutcomeSource)
AVAILABILITY: Final = web.AppKey("availability", AvailabilityCache)
SHOW_SOURCE: Final = web.AppKey("show_source", AvailabilitySource)
"""The availability read model itself, uncached: is a show there already?"""
HOLDS: Final = web.AppKey("holds", HoldSource)
REPLY_TIMEOUT: Final = web.AppKey("reply_timeout_seconds", float)
PARTITIONS: Final = web.AppKey("command_partitions", int)
PartitionOf = Callable[[str], int]
"""The command partition of an inventory key, as the command bus routes it."""
PARTITION_OF: Final[web.AppKey[PartitionOf]] = web.AppKey("partition_of")
ROOMS: Final = web.AppKey("rooms", Rooms)
"""The waiting rooms, buckets and passes of this instance."""

Shortcut = Callable[[web.Request], Awaitable[web.StreamResponse] | None]
"""A route served ahead of the router: an answer to await, or None to route."""
SHORTCUT: Final[web.AppKey[Shortcut]] = web.AppKey("shortcut")
"""The one route the server answers before the app's router (``gateway.poll``)."""

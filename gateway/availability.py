"""Availability answers from the projections, cached briefly and coalesced.

Concurrent requests for the same show share one source call (a dict of in-flight
futures); a rendered answer (body and weak ETag) is then served for
``ttl_seconds``, empty answers included, so a spike on one show costs one read per
TTL per gateway.

The body says how fresh it is: ``as_of`` (log time of the newest event in the rows)
and ``projection_lag_seconds``. The weak ETag is computed from the rows alone (the
sections and ``as_of``), never from the lag, which moves with the wall clock: a
client polling an unchanged show keeps getting 304. So that a 304 stays true, every
answer, 304 included, carries the current lag in the ``Projection-Lag-Seconds``
header; everything else in the client's copy is exactly what a 200 would say.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from commands.stripes import base_section_id
from gateway.coalescing import CoalescingCache, Served
from gateway.http import rfc3339_ms
from gateway.ports import AvailabilitySource, ShowAvailability

MAX_CACHED_SHOWS: Final = 10_000


@dataclass(frozen=True, slots=True)
class AvailabilityView:
    """A rendered answer: the body, its weak ETag, whether the show exists, lag."""

    body: bytes
    etag: str
    found: bool
    lag_seconds: float | None = None


def render(show_id: str, view: ShowAvailability) -> AvailabilityView:
    """Render a source view as the public body, sections ordered by id."""
    sections = _sections(view.rows)
    as_of = None if view.as_of_ms is None else rfc3339_ms(view.as_of_ms)
    identity = orjson.dumps({"show_id": show_id, "sections": sections, "as_of": as_of})
    tag = hashlib.blake2b(identity, digest_size=12).hexdigest()
    lag = view.lag_seconds
    body = orjson.dumps(
        {
            "show_id": show_id,
            "sections": sections,
            "as_of": as_of,
            "projection_lag_seconds": None if lag is None else round(lag, 3),
        }
    )
    return AvailabilityView(body, f'W/"{tag}"', bool(sections), lag)


def _sections(rows: Sequence[Any]) -> list[dict[str, Any]]:
    """The public view of each section, ordered by section id.

    A striped section is one entry: the sum of its stripes' rows (and of its
    own row, which keeps the holds placed before it was striped). Each stripe's
    row is as fresh as its own partition, so the sum is approximate while
    places move between stripes; the sold count of each row is exact.
    """
    sections: dict[str, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda row: row.section_id):
        section_id = base_section_id(row.section_id)
        entry = sections.setdefault(
            section_id,
            {
                "section_id": section_id,
                "kind": str(row.kind),
                "capacity": 0,
                "free": 0,
                "held": 0,
                "sold": 0,
            },
        )
        for count in ("capacity", "free", "held", "sold"):
            entry[count] += getattr(row, count)
    return [sections[section_id] for section_id in sorted(sections)]


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an If-None-Match header matches an ETag (weak comparison)."""
    if not if_none_match:
        return False
    wanted = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == wanted:
            return True
    return False


class AvailabilityCache:
    """A TTL cache with request coalescing in front of an availability source.

    A spike on one show costs one source read per TTL; while the read model is
    down, the last answer is served stale (``gateway.coalescing``).
    """

    def __init__(
        self,
        source: AvailabilitySource,
        ttl_seconds: float,
        max_shows: int = MAX_CACHED_SHOWS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self.cache: CoalescingCache[str, AvailabilityView] = CoalescingCache(
            self._load, ttl_seconds, max_shows, clock
        )

    async def get(self, show_id: str) -> AvailabilityView:
        """The show's availability, from cache, an in-flight read or a new one."""
        return await self.cache.get(show_id)

    async def serve(self, show_id: str) -> Served[AvailabilityView]:
        """The show's availability and, if served stale, its age in seconds."""
        return await self.cache.serve(show_id)

    async def _load(self, show_id: str) -> AvailabilityView:
        """Read and render one show."""
        return render(show_id, await self._source.view(show_id))

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

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from commands.stripes import base_section_id
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
    """A TTL cache with request coalescing in front of an availability source."""

    def __init__(
        self,
        source: AvailabilitySource,
        ttl_seconds: float,
        max_shows: int = MAX_CACHED_SHOWS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._ttl_seconds = ttl_seconds
        self._max_shows = max_shows
        self._clock = clock
        self._cached: OrderedDict[str, tuple[float, AvailabilityView]] = OrderedDict()
        self._loading: dict[str, asyncio.Future[AvailabilityView]] = {}

    async def get(self, show_id: str) -> AvailabilityView:
        """The show's availability, from cache, an in-flight read or a new one."""
        cached = self._cached.get(show_id)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        loading = self._loading.get(show_id)
        if loading is None:
            loading = asyncio.ensure_future(self._load(show_id))
            self._loading[show_id] = loading
            loading.add_done_callback(lambda done: self._loaded(show_id, done))
        # A cancelled caller must not cancel the read the others share.
        return await asyncio.shield(loading)

    async def _load(self, show_id: str) -> AvailabilityView:
        """Read and render one show, then cache the answer."""
        view = render(show_id, await self._source.view(show_id))
        self._cached.pop(show_id, None)
        self._cached[show_id] = (self._clock() + self._ttl_seconds, view)
        while len(self._cached) > self._max_shows:
            self._cached.popitem(last=False)
        return view

    def _loaded(self, show_id: str, done: asyncio.Future[AvailabilityView]) -> None:
        """Drop a finished read from the in-flight table."""
        if self._loading.get(show_id) is done:
            del self._loading[show_id]
        if not done.cancelled():
            done.exception()  # retrieved here, raised to every caller by shield

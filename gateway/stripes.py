"""Which stripe of a GA section a hold goes to: spread by buyer over stock.

Buyers talk about the section; the gateway picks one of its stripes (from the
availability read model, cached briefly and coalesced) by a hash of the buyer,
among the stripes that still show enough free places, else among those with any,
else among all. The read model only steers: the stripe decides, and a stripe
short of places keeps the hold waiting while it asks its siblings for theirs
(``commands.stripes``), so a hold is never refused because the view was stale.
A section with no stripes in the read model gets the hold itself (a section
striped since then forwards it to a stripe).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Final

from commands.errors import InfrastructureError
from commands.stripes import stripe_for_buyer, stripe_of
from gateway.coalescing import CoalescingCache
from gateway.ports import AvailabilitySource

logger = logging.getLogger(__name__)

StripeStock = dict[str, list[tuple[str, int]]]
"""By section id: its stripes' ids and free places, in stripe order."""

MAX_SHOWS: Final = 10_000


def stripe_stock(rows: Sequence[Any]) -> StripeStock:
    """The stripes of every striped section among availability rows."""
    found: dict[str, list[tuple[int, str, int]]] = defaultdict(list)
    for row in rows:
        parts = stripe_of(row.section_id)
        if parts is not None:
            found[parts[0]].append((parts[1], row.section_id, row.free))
    return {
        section: [(stripe, free) for _, stripe, free in sorted(stripes)]
        for section, stripes in found.items()
    }


def pick_stripe(stripes: list[tuple[str, int]], buyer_id: str, quantity: int) -> str:
    """The stripe for a buyer: hashed over those with enough, any, or all."""
    enough = [s for s, free in stripes if free >= quantity]
    some = [s for s, free in stripes if free > 0]
    candidates = enough or some or [s for s, _ in stripes]
    return candidates[stripe_for_buyer(buyer_id, len(candidates))]


class StripePicker:
    """Stripe choice for holds, from cached availability rows."""

    def __init__(self, source: AvailabilitySource, ttl_seconds: float) -> None:
        self._source = source
        self.cache: CoalescingCache[str, StripeStock] = CoalescingCache(
            self._load, ttl_seconds, MAX_SHOWS
        )

    async def _load(self, show_id: str) -> StripeStock:
        view = await self._source.view(show_id)
        return stripe_stock(view.rows)

    async def section_for(
        self, show_id: str, section_id: str, buyer_id: str, quantity: int
    ) -> str:
        """The section id a hold is sent to: a stripe of the section, or itself."""
        try:
            stock = await self.cache.get(show_id)
        except InfrastructureError:
            # The section itself still takes the hold (and forwards it if striped).
            logger.debug("availability unavailable; no stripe picked", exc_info=True)
            return section_id
        stripes = stock.get(section_id)
        if not stripes:
            return section_id
        return pick_stripe(stripes, buyer_id, max(quantity, 1))

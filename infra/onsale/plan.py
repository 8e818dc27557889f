"""The shape of an on-sale: the stadium, the crowd, the provider's behaviour.

Two sizes are named: ``default`` runs in a few minutes on a 2-core machine that
also runs Kafka, Cassandra and every process of the system; ``stadium`` is a
20,000-place venue and a spike of 40,000 visitors, for a bigger machine or a
longer wait. Every figure can be changed from the command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
from dataclasses import dataclass
from typing import Any, Final


@dataclass(frozen=True, slots=True)
class ProviderKnobs:
    """How the simulated payment provider misbehaves during the sale."""

    latency_seconds: float = 0.05
    decline_rate: float = 0.03
    error_rate: float = 0.03
    timeout_rate: float = 0.01
    hang_seconds: float = 3.0
    duplicate_webhooks: int = 1
    reorder_seconds: float = 0.5

    def behaviour(self) -> dict[str, Any]:
        """The body of ``PUT /_sim/behaviour``."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class OnsalePlan:
    """Venue, crowd and bounds of one on-sale; every figure has its unit."""

    reserved_sections: int = 4
    rows_per_section: int = 6
    seats_per_row: int = 20
    ga_capacity: int = 520
    reserved_price_cents: tuple[int, ...] = (9_500, 7_500, 5_500, 4_500)
    ga_price_cents: int = 6_000
    buyers: int = 2_000
    """Visitors in all, humans and bot sessions."""
    bot_share: float = 0.1
    """Share of the visitors that are bot sessions."""
    bot_sessions_per_device: int = 6
    bot_pow_budget_bits: int = 12
    """Hardest puzzle a bot solves; above it, it sends a made-up solution."""
    bot_poll_seconds: float = 0.5
    """How often a bot polls the queue, whatever it is told."""
    spike_before_seconds: float = 2.0
    """Arrivals start this long before the sale opens..."""
    spike_after_seconds: float = 4.0
    """...and end this long after it (a triangle peaking at the opening)."""
    opens_in_seconds: float = 6.0
    """Time from the room's creation to its opening."""
    admit_per_second: float = 300.0
    hold_ttl_seconds: int = 600
    max_tickets_per_buyer: int = 4
    max_connections: int = 2_000
    """Connections of the visitors at once: a phone has its own, so as many as
    visitors, as far as file descriptors allow (each costs one here and one at
    the gateway)."""
    max_seconds: float = 420.0
    """Bound of the buyers' part: whoever is not done by then is cut off."""
    settle_seconds: float = 90.0
    """Bound of the wait for payments and webhooks to settle after the buyers."""
    seed: int = 7
    provider: ProviderKnobs = ProviderKnobs()

    @property
    def reserved_places(self) -> int:
        """Seats in all reserved sections."""
        return self.reserved_sections * self.rows_per_section * self.seats_per_row

    @property
    def places(self) -> int:
        """Every place of the venue."""
        return self.reserved_places + self.ga_capacity

    @property
    def bots(self) -> int:
        """Bot sessions among the visitors."""
        return round(self.buyers * self.bot_share)

    @property
    def humans(self) -> int:
        """Human visitors."""
        return self.buyers - self.bots


SIZES: Final = {
    "default": OnsalePlan(),
    "stadium": OnsalePlan(
        reserved_sections=12,
        rows_per_section=25,
        seats_per_row=50,
        ga_capacity=5_000,
        buyers=40_000,
        spike_before_seconds=5.0,
        spike_after_seconds=10.0,
        opens_in_seconds=15.0,
        admit_per_second=600.0,
        max_connections=8_000,
        max_seconds=1_800.0,
        settle_seconds=300.0,
    ),
    "tiny": OnsalePlan(
        reserved_sections=2,
        rows_per_section=3,
        seats_per_row=10,
        ga_capacity=40,
        buyers=200,
        bot_sessions_per_device=4,
        spike_before_seconds=1.0,
        spike_after_seconds=2.0,
        opens_in_seconds=3.0,
        max_connections=200,
        max_seconds=240.0,
        settle_seconds=60.0,
    ),
}


SECTION_NAMES: Final = ("north", "south", "east", "west")


def reserved_section_ids(plan: OnsalePlan) -> list[str]:
    """Ids of the reserved sections: north, south, east, west, north-2, ..."""
    ids = []
    for index in range(plan.reserved_sections):
        name = SECTION_NAMES[index % len(SECTION_NAMES)]
        lap = index // len(SECTION_NAMES)
        ids.append(name if lap == 0 else f"{name}-{lap + 1}")
    return ids


GA_SECTION: Final = "floor"


def section_price_cents(plan: OnsalePlan, index: int) -> int:
    """Price of the ``index``-th reserved section (the last price repeats)."""
    prices = plan.reserved_price_cents
    return prices[min(index, len(prices) - 1)]


def row_label(row: int) -> str:
    """Label of the 0-based row: R1, R2, ..."""
    return f"R{row + 1}"


def show_document(show_id: str, plan: OnsalePlan) -> dict[str, Any]:
    """The admin request that creates the stadium: reserved stands, a GA floor."""
    rows = [
        {
            "label": row_label(r),
            "seats": [str(n + 1) for n in range(plan.seats_per_row)],
        }
        for r in range(plan.rows_per_section)
    ]
    sections: list[dict[str, Any]] = [
        {
            "section_id": section_id,
            "kind": "reserved",
            "rows": rows,
            "price_cents": section_price_cents(plan, index),
        }
        for index, section_id in enumerate(reserved_section_ids(plan))
    ]
    if plan.ga_capacity:
        sections.append(
            {
                "section_id": GA_SECTION,
                "kind": "general_admission",
                "capacity": plan.ga_capacity,
                "price_cents": plan.ga_price_cents,
            }
        )
    return {
        "show_id": show_id,
        "hold_ttl_seconds": plan.hold_ttl_seconds,
        "max_tickets_per_buyer": plan.max_tickets_per_buyer,
        "sections": sections,
    }


@dataclass(frozen=True, slots=True)
class Visitor:
    """One simulated visitor: who, on which device, when, and what it wants."""

    buyer_id: str
    device_id: str
    is_bot: bool
    arrival_offset_seconds: float
    """Arrival relative to the opening (negative: before it)."""
    section_id: str
    places: int


def crowd(plan: OnsalePlan) -> list[Visitor]:
    """Every visitor of the sale, the same for the same seed."""
    rng = random.Random(plan.seed)
    sections = reserved_section_ids(plan)
    wanted = sections + ([GA_SECTION] if plan.ga_capacity else [])
    visitors = []
    for index in range(plan.humans):
        # The cheaper and the central stands are wanted most; GA by a third.
        section = rng.choice(wanted) if rng.random() < 0.7 else wanted[0]
        visitors.append(
            Visitor(
                buyer_id=f"human-{index}",
                device_id=f"phone-{index}",
                is_bot=False,
                arrival_offset_seconds=_arrival(plan, rng),
                section_id=section,
                places=rng.choice((1, 2, 2, 2, 3, 4)),
            )
        )
    for index in range(plan.bots):
        device = index // max(1, plan.bot_sessions_per_device)
        visitors.append(
            Visitor(
                buyer_id=f"bot-{index}",
                device_id=f"bot-device-{device}",
                is_bot=True,
                arrival_offset_seconds=_arrival(plan, rng),
                section_id=rng.choice(wanted),
                places=plan.max_tickets_per_buyer,
            )
        )
    return sorted(visitors, key=lambda v: v.arrival_offset_seconds)


def _arrival(plan: OnsalePlan, rng: random.Random) -> float:
    return rng.triangular(-plan.spike_before_seconds, plan.spike_after_seconds, 0.0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``ticketing onsale`` flags: a size, then any figure changed."""
    parser.add_argument(
        "--size",
        choices=sorted(SIZES),
        default="default",
        help="default: 1,000 places, 2,000 visitors; stadium: 20,000 and 40,000",
    )
    parser.add_argument("--out", default=None, help="folder of the report files")
    for name, flag_type in _FLAGS.items():
        parser.add_argument("--" + name.replace("_", "-"), type=flag_type)
    for knob in dataclasses.fields(ProviderKnobs):
        parser.add_argument(
            "--provider-" + knob.name.replace("_", "-"),
            type=int if knob.type in (int, "int") else float,
        )


_FLAGS: Final = {
    "buyers": int,
    "bot_share": float,
    "bot_sessions_per_device": int,
    "reserved_sections": int,
    "rows_per_section": int,
    "seats_per_row": int,
    "ga_capacity": int,
    "admit_per_second": float,
    "max_seconds": float,
    "max_connections": int,
    "seed": int,
}


def plan_from_args(args: argparse.Namespace) -> OnsalePlan:
    """The named size with every flag given applied."""
    plan = SIZES[args.size]
    changes = {k: getattr(args, k) for k in _FLAGS if getattr(args, k) is not None}
    knobs = {
        f.name: getattr(args, "provider_" + f.name)
        for f in dataclasses.fields(ProviderKnobs)
        if getattr(args, "provider_" + f.name) is not None
    }
    if knobs:
        changes["provider"] = dataclasses.replace(plan.provider, **knobs)
    return dataclasses.replace(plan, **changes)

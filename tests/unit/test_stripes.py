"""Stripes outside the core's stateful test: keys, placement, the gateway's view."""

from __future__ import annotations

import orjson
import pytest

from commands.buyers import buyer_key
from commands.inventory import PartitionInventory, section_key
from commands.model import (
    CapacityTransferredOut,
    Command,
    CreateShow,
    Event,
    HoldForwarded,
    HoldPlaced,
    HoldRejected,
    PlaceHold,
    RejectionReason,
    ReleaseHold,
    RequestHold,
    SectionKind,
    SectionRejected,
    SectionSpec,
    StripeSection,
)
from commands.policy import follow_ups
from commands.stripes import (
    base_section_id,
    stripe_key_parts,
    stripe_shares,
    stripe_specs,
)
from gateway.availability import render
from gateway.holds import hold_command_id
from gateway.show_validation import ShowRequest
from gateway.shows import create_show_commands
from gateway.stripes import pick_stripe
from gateway.testing import FakeShowView, admission_headers, harness, serve
from infra.cli import _parser
from infra.settings import Settings
from infra.stripe_command import StripeRefused, run_stripe
from infra.topics import partition_for
from projections.availability import SectionAvailability
from schemas.codec import encode_events
from streams.agent import chunks

GA = SectionKind.GENERAL_ADMISSION
SOLD_OUT = RejectionReason.SOLD_OUT


def _row(section_id: str, capacity: int, held: int, sold: int) -> SectionAvailability:
    return SectionAvailability(
        "s1", section_id, GA, capacity, held, sold, capacity - held - sold, 600, 0, 0
    )


def test_stripes_land_on_distinct_partitions_when_there_are_enough() -> None:
    base = partition_for("s1/floor", 8)

    partitions = [partition_for(f"s1/floor~{i}", 8) for i in range(8)]

    assert partitions[0] == base
    assert sorted(partitions) == list(range(8))


def test_ledger_and_tick_keys_are_never_taken_for_stripes() -> None:
    assert stripe_key_parts(buyer_key("s1", "u~3")) is None
    assert stripe_key_parts("~tick/3") is None
    assert stripe_key_parts("s1/floor") is None
    assert stripe_key_parts("s1/floor~3") == ("s1/floor", 3)
    assert base_section_id("floor~12") == "floor"


def test_shares_add_up_to_the_capacity_when_split() -> None:
    assert stripe_shares(10, 4) == (3, 3, 2, 2)
    assert sum(stripe_shares(10_000, 8)) == 10_000


def test_a_stripe_spec_outside_its_count_is_refused_when_created() -> None:
    inventory = PartitionInventory()
    spec = SectionSpec("floor~4", GA, capacity=5, stripes=4)

    events = inventory.decide(CreateShow("c", 0, "s1", 60, 4, (spec,)))

    assert isinstance(events[0], SectionRejected)


def test_a_striped_section_forwards_holds_and_passes_freed_places_on() -> None:
    inventory = PartitionInventory()
    spec = SectionSpec("floor", GA, capacity=10)
    inventory.decide(CreateShow("c", 0, "s1", 60, 4, (spec,)))
    inventory.decide(PlaceHold("h1", 1, "s1", "floor", "b1", quantity=2))

    striped = inventory.decide(StripeSection("st", 2, "s1", "floor", 4))
    forwarded = inventory.decide(PlaceHold("h2", 3, "s1", "floor", "b2", quantity=1))
    released = inventory.decide(ReleaseHold("rel-h1", 4, "s1", "floor", "b1", "h1"))

    creates = [c for _, c in follow_ups(striped) if isinstance(c, CreateShow)]
    assert sum(c.sections[0].capacity for c in creates) == 8
    assert isinstance(forwarded[0], HoldForwarded)
    assert [type(c) for _, c in follow_ups(forwarded)] == [PlaceHold]
    moved = [e for e in released if isinstance(e, CapacityTransferredOut)]
    assert [e.quantity for e in moved] == [2]
    assert inventory.sections["s1/floor"].capacity == 0


def test_pick_prefers_stripes_with_enough_then_any_then_all() -> None:
    stripes = [("floor~0", 0), ("floor~1", 1), ("floor~2", 5)]

    assert pick_stripe(stripes, "b1", 2) == "floor~2"
    assert pick_stripe([("floor~0", 0), ("floor~1", 1)], "b1", 2) == "floor~1"
    assert pick_stripe([("floor~0", 0), ("floor~1", 0)], "b1", 2) in {
        "floor~0",
        "floor~1",
    }


def test_availability_sums_the_stripes_when_rendered() -> None:
    rows = [_row("floor~0", 5, 1, 2), _row("floor~1", 7, 0, 3), _row("a", 3, 0, 0)]

    body = orjson.loads(render("s1", FakeShowView(rows, 1)).body)

    floor = next(s for s in body["sections"] if s["section_id"] == "floor")
    assert floor == {
        "section_id": "floor",
        "kind": "general_admission",
        "capacity": 12,
        "free": 6,
        "held": 1,
        "sold": 5,
    }
    assert [s["section_id"] for s in body["sections"]] == ["a", "floor"]


def test_create_show_sends_each_stripe_to_its_partition_when_striped() -> None:
    spec = SectionSpec("floor", GA, capacity=10, stripes=4)
    show = ShowRequest("s1", 600, 4, (spec,))

    commands = create_show_commands(show, 8, 0)

    sections = [s for _, c in commands for s in c.sections]
    assert sorted(s.section_id for s in sections) == [f"floor~{i}" for i in range(4)]
    assert sum(s.capacity for s in sections) == 10
    assert stripe_specs(spec) == tuple(sorted(sections, key=lambda s: s.section_id))
    for key, command in commands:
        assert key == section_key("s1", command.sections[0].section_id)


async def test_hold_goes_to_a_stripe_with_stock_and_names_the_section() -> None:
    sent: list[RequestHold] = []

    def place(command: Command) -> list[Event]:
        if not isinstance(command, RequestHold):
            return []
        sent.append(command)
        return [
            HoldPlaced(
                command.command_id,
                command.issued_at_ms,
                command.command_id,
                command.show_id,
                command.section_id,
                command.buyer_id,
                (),
                command.quantity,
                1_700_000_600_000,
            )
        ]

    gateway = harness(place)
    gateway.availability.rows["s1"] = [
        _row("floor~0", 5, 0, 5),
        _row("floor~1", 5, 0, 0),
    ]
    headers = {"Idempotency-Key": "k1", **admission_headers("s1", "b1")}

    async with serve(gateway.app) as client:
        response = await client.post(
            "/v1/shows/s1/sections/floor/holds",
            json={"buyer_id": "b1", "quantity": 2},
            headers=headers,
        )
        body = await response.json()

    assert response.status == 201
    assert body["section_id"] == "floor"
    assert body["hold_id"] == hold_command_id("b1", "k1")
    assert [c.section_id for c in sent] == ["floor~1"]


def test_partitions_stripe_parses_and_refuses_a_target_without_section() -> None:
    args = _parser().parse_args(["partitions", "stripe", "s1/floor", "--stripes", "4"])

    assert (args.command, args.action) == ("partitions", "stripe")
    assert (args.target, args.stripes) == ("s1/floor", 4)
    with pytest.raises(StripeRefused):
        run_stripe(Settings(), "s1", 4, 1.0)


def test_a_mass_refusal_fits_in_records_under_the_broker_limit_when_chunked() -> None:
    refusals = [
        HoldRejected(
            "h" * 32 + str(n), 0, "s1", "floor~0", "b" * 40, SOLD_OUT, "x" * 60
        )
        for n in range(5_000)
    ]

    records = [encode_events(chunk) for chunk in chunks(refusals)]

    assert sum(len(chunk) for chunk in chunks(refusals)) == 5_000
    assert max(len(record) for record in records) < 1024 * 1024

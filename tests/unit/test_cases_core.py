"""The core's part of the field cases C1 (oversell) and C7 (state after recovery)."""

from __future__ import annotations

import pytest

from commands.inventory import PartitionInventory, SectionInventory, section_key
from commands.model import (
    Checkout,
    CreateShow,
    Event,
    HoldExpired,
    HoldPlaced,
    HoldRejected,
    PlaceHold,
    RecordPaymentResult,
    RejectionReason,
    Row,
    SectionKind,
    SectionSpec,
    TicketsSold,
)

SHOW = "show-1"
SECTION = "s1"
T0 = 1_000_000
TTL_SECONDS = 60
TTL_MS = TTL_SECONDS * 1000


def sale(kind: SectionKind, places: int) -> PartitionInventory:
    if kind is SectionKind.RESERVED:
        numbers = tuple(str(n) for n in range(1, places + 1))
        spec = SectionSpec(SECTION, kind, rows=(Row("A", numbers),))
    else:
        spec = SectionSpec(SECTION, kind, capacity=places)
    partition = PartitionInventory()
    partition.decide(CreateShow("create", T0, SHOW, TTL_SECONDS, 1, (spec,)))
    return partition


def hold(
    command_id: str, at_ms: int, buyer_id: str, kind: SectionKind, n: int
) -> PlaceHold:
    if kind is SectionKind.RESERVED:
        return PlaceHold(command_id, at_ms, SHOW, SECTION, buyer_id, (f"A-{n}",))
    return PlaceHold(command_id, at_ms, SHOW, SECTION, buyer_id, quantity=1)


def buy(partition: PartitionInventory, hold_id: str, buyer_id: str, at_ms: int) -> None:
    partition.decide(Checkout(f"k-{hold_id}", at_ms, SHOW, SECTION, buyer_id, hold_id))
    sold = partition.decide(
        RecordPaymentResult(f"p-{hold_id}", at_ms, SHOW, SECTION, hold_id, "e", True)
    )
    assert [type(e) for e in sold] == [TicketsSold]


@pytest.mark.parametrize("kind", list(SectionKind))
@pytest.mark.parametrize("near_expiry", [False, True], ids=["fresh", "near-expiry"])
def test_c1_exactly_one_hold_wins_when_two_race_for_the_last_place(
    kind: SectionKind, near_expiry: bool
) -> None:
    partition = sale(kind, 100)
    for n in range(1, 100):
        partition.decide(hold(f"h{n}", T0 + n, f"b{n}", kind, n))
        buy(partition, f"h{n}", f"b{n}", T0 + n)
    race_at_ms = T0 + 1000
    if near_expiry:
        # The last place is held by a hold that lapses between the two racers.
        (early,) = partition.decide(hold("early", T0 + 500, "early", kind, 100))
        assert isinstance(early, HoldPlaced)
        race_at_ms = early.expires_at_ms - 1

    first = partition.decide(hold("race-1", race_at_ms, "racer-1", kind, 100))
    second = partition.decide(hold("race-2", race_at_ms + 3, "racer-2", kind, 100))
    winners = [e for e in first + second if isinstance(e, HoldPlaced)]
    losers = [e for e in first + second if isinstance(e, HoldRejected)]

    assert len(winners) == 1 and len(losers) == 1
    assert losers[0].reason in {
        RejectionReason.SOLD_OUT,
        RejectionReason.SEAT_UNAVAILABLE,
    }
    expected_winner = "racer-2" if near_expiry else "racer-1"
    assert winners[0].buyer_id == expected_winner
    assert [e.hold_id for e in first + second if isinstance(e, HoldExpired)] == (
        ["early"] if near_expiry else []
    )
    buy(partition, winners[0].hold_id, expected_winner, race_at_ms + 4)
    inventory = partition.sections[section_key(SHOW, SECTION)]
    assert (inventory.sold_count, inventory.held_count, inventory.free_count) == (
        100,
        0,
        0,
    )


def folded(create: CreateShow, events: list[Event]) -> SectionInventory:
    """A section built from its CreateShow, then only by folding the log's events."""
    (spec,) = create.sections
    section = SectionInventory(
        show_id=create.show_id,
        spec=spec,
        hold_ttl_seconds=create.hold_ttl_seconds,
        max_tickets_per_buyer=create.max_tickets_per_buyer,
    )
    for event in events:
        section.apply(event)
    return section


def test_c7_resent_holds_give_no_events_and_restored_state_equals_a_fold() -> None:
    numbers = tuple(str(n) for n in range(1, 301))
    spec = SectionSpec(SECTION, SectionKind.RESERVED, rows=(Row("A", numbers),))
    create = CreateShow("create", T0, SHOW, 3600, 1, (spec,))
    holds = [
        PlaceHold(f"c{n}", T0 + n, SHOW, SECTION, f"b{n}", (f"A-{n}",))
        for n in range(1, 301)
    ]
    partition = PartitionInventory()
    log: list[Event] = partition.decide(create)
    entries: dict[str, object] = {}

    for n, command in enumerate(holds, start=1):
        log += partition.decide(command)
        if n in (150, 220):
            entries.update(partition.drain_changes()[section_key(SHOW, SECTION)])
            restored = SectionInventory.restore(entries)
            partition = PartitionInventory({section_key(SHOW, SECTION): restored})
    resent = partition.decide_all(holds[9:19])
    entries.update(partition.drain_changes().get(section_key(SHOW, SECTION), {}))

    placed = [e for e in log if isinstance(e, HoldPlaced)]
    assert len(placed) == 300
    assert len({seat for e in placed for seat in e.seat_ids}) == 300
    assert resent == []
    recovered = SectionInventory.restore(entries)
    fold = folded(create, log)
    assert recovered.holds == fold.holds
    assert recovered.free_seat_ids() == fold.free_seat_ids() == frozenset()
    assert (recovered.held_count, recovered.sold_count, recovered.free_count) == (
        fold.held_count,
        fold.sold_count,
        fold.free_count,
    )


def test_c7_a_refused_hold_handed_over_again_is_not_refused_twice() -> None:
    # The agent's consumer can hand a record over again (a restart, a seek after
    # table recovery); a refusal leaves no hold, so its id is kept as decided.
    partition = sale(SectionKind.GENERAL_ADMISSION, 1)
    first = PlaceHold("h1", T0 + 1, SHOW, SECTION, "b1", quantity=1)
    refused = PlaceHold("h2", T0 + 2, SHOW, SECTION, "b2", quantity=1)
    decided = partition.decide_all([first, refused])
    restored = PartitionInventory.restore(partition.drain_changes())

    again = [partition.decide(refused), restored.decide(refused)]

    assert [type(e) for e in decided] == [HoldPlaced, HoldRejected]
    assert again == [[], []], "live and restored both remember the refusal"

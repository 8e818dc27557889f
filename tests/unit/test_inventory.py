"""Example tests of the domain core: one behaviour per test, time from commands."""

from __future__ import annotations

from commands.inventory import PartitionInventory, SectionInventory, section_key
from commands.model import (
    CreateShow,
    Event,
    HoldExpired,
    HoldPlaced,
    HoldRejected,
    PlaceHold,
    RejectionReason,
    Row,
    SectionKind,
    SectionRejected,
    SectionSpec,
)

SHOW = "show-1"
RESERVED = "stalls"
GA = "floor"
T0 = 1_000_000
TTL_SECONDS = 10
TTL_MS = TTL_SECONDS * 1000


def reserved_spec(rows: int = 2, seats_per_row: int = 3) -> SectionSpec:
    return SectionSpec(
        section_id=RESERVED,
        kind=SectionKind.RESERVED,
        rows=tuple(
            Row(label, tuple(str(n) for n in range(1, seats_per_row + 1)))
            for label in "ABCDEFGH"[:rows]
        ),
    )


def ga_spec(capacity: int = 5) -> SectionSpec:
    return SectionSpec(
        section_id=GA, kind=SectionKind.GENERAL_ADMISSION, capacity=capacity
    )


def new_partition(
    *specs: SectionSpec, max_per_buyer: int = 4, ttl_seconds: int = TTL_SECONDS
) -> PartitionInventory:
    partition = PartitionInventory()
    partition.decide(
        CreateShow(
            command_id="create",
            issued_at_ms=T0,
            show_id=SHOW,
            hold_ttl_seconds=ttl_seconds,
            max_tickets_per_buyer=max_per_buyer,
            sections=specs or (reserved_spec(), ga_spec()),
        )
    )
    return partition


def section(partition: PartitionInventory, section_id: str) -> SectionInventory:
    return partition.sections[section_key(SHOW, section_id)]


def hold_seats(command_id: str, at_ms: int, buyer_id: str, *seat_ids: str) -> PlaceHold:
    return PlaceHold(
        command_id=command_id,
        issued_at_ms=at_ms,
        show_id=SHOW,
        section_id=RESERVED,
        buyer_id=buyer_id,
        seat_ids=seat_ids,
    )


def hold_places(command_id: str, at_ms: int, buyer_id: str, quantity: int) -> PlaceHold:
    return PlaceHold(
        command_id=command_id,
        issued_at_ms=at_ms,
        show_id=SHOW,
        section_id=GA,
        buyer_id=buyer_id,
        quantity=quantity,
    )


def only_rejection(events: list[Event]) -> HoldRejected:
    assert len(events) == 1
    rejected = events[0]
    assert isinstance(rejected, HoldRejected)
    return rejected


def only_placement(events: list[Event]) -> HoldPlaced:
    assert len(events) == 1
    placed = events[0]
    assert isinstance(placed, HoldPlaced)
    return placed


def test_multi_seat_hold_takes_every_seat_when_all_are_free() -> None:
    partition = new_partition()

    placed = only_placement(
        partition.decide(hold_seats("h1", T0 + 1, "alice", "A-1", "A-2", "B-3"))
    )

    assert placed.seat_ids == ("A-1", "A-2", "B-3")
    assert placed.quantity == 3
    stalls = section(partition, RESERVED)
    assert stalls.free_seat_ids() == {"A-3", "B-1", "B-2"}
    assert stalls.held_count == 3


def test_multi_seat_hold_is_all_or_nothing_when_one_seat_is_taken() -> None:
    partition = new_partition()
    partition.decide(hold_seats("h1", T0 + 1, "alice", "A-2"))
    stalls = section(partition, RESERVED)
    free_before = stalls.free_seat_ids()

    events = partition.decide(hold_seats("h2", T0 + 2, "bob", "A-1", "A-2", "A-3"))

    assert only_rejection(events).reason is RejectionReason.SEAT_UNAVAILABLE
    assert stalls.free_seat_ids() == free_before
    assert {"A-1", "A-3"} <= stalls.free_seat_ids()
    assert stalls.held_count == 1
    assert set(stalls.holds) == {"h1"}


def test_multi_seat_hold_is_all_or_nothing_when_one_seat_is_unknown() -> None:
    partition = new_partition()
    stalls = section(partition, RESERVED)

    events = partition.decide(hold_seats("h1", T0 + 1, "alice", "A-1", "Z-9"))

    assert only_rejection(events).reason is RejectionReason.UNKNOWN_SEAT
    assert stalls.free_count == stalls.capacity
    assert stalls.holds == {}


def test_hold_is_invalid_when_a_seat_is_named_twice() -> None:
    partition = new_partition()

    events = partition.decide(hold_seats("h1", T0 + 1, "alice", "A-1", "A-1"))

    assert only_rejection(events).reason is RejectionReason.INVALID_REQUEST
    assert section(partition, RESERVED).held_count == 0


def test_ga_hold_reduces_free_count_when_placed() -> None:
    partition = new_partition(ga_spec(capacity=5))
    floor = section(partition, GA)

    placed = only_placement(partition.decide(hold_places("h1", T0 + 1, "alice", 3)))

    assert placed.quantity == 3
    assert placed.expires_at_ms == T0 + 1 + TTL_MS
    assert floor.free_count == 2
    assert floor.held_count == 3


def test_ga_hold_is_invalid_when_quantity_is_not_positive() -> None:
    partition = new_partition(ga_spec(capacity=5))

    zero = partition.decide(hold_places("h1", T0 + 1, "alice", 0))
    negative = partition.decide(hold_places("h2", T0 + 2, "alice", -1))

    assert only_rejection(zero).reason is RejectionReason.INVALID_REQUEST
    assert only_rejection(negative).reason is RejectionReason.INVALID_REQUEST
    assert section(partition, GA).free_count == 5


def test_ga_hold_is_sold_out_when_quantity_is_remaining_capacity_plus_one() -> None:
    partition = new_partition(ga_spec(capacity=6), max_per_buyer=6)
    partition.decide(hold_places("h1", T0 + 1, "alice", 4))
    floor = section(partition, GA)
    remaining = floor.free_count

    too_many = partition.decide(hold_places("h2", T0 + 2, "bob", remaining + 1))
    exactly = partition.decide(hold_places("h3", T0 + 3, "bob", remaining))

    assert remaining == 2
    assert only_rejection(too_many).reason is RejectionReason.SOLD_OUT
    assert only_placement(exactly).quantity == remaining
    assert floor.free_count == 0


def test_hold_is_refused_when_buyer_limit_would_be_exceeded() -> None:
    partition = new_partition(ga_spec(capacity=10), max_per_buyer=4)
    partition.decide(hold_places("h1", T0 + 1, "alice", 3))

    over = partition.decide(hold_places("h2", T0 + 2, "alice", 2))
    other_buyer = partition.decide(hold_places("h3", T0 + 3, "bob", 2))

    assert only_rejection(over).reason is RejectionReason.BUYER_LIMIT_REACHED
    assert only_placement(other_buyer).quantity == 2


def test_hold_is_kept_when_next_command_is_one_ms_before_deadline() -> None:
    partition = new_partition()
    placed = only_placement(partition.decide(hold_seats("h1", T0, "alice", "A-1")))

    events = partition.decide(hold_seats("h2", placed.expires_at_ms - 1, "bob", "A-1"))

    assert only_rejection(events).reason is RejectionReason.SEAT_UNAVAILABLE
    assert "h1" in section(partition, RESERVED).holds


def test_hold_expires_when_next_command_is_exactly_at_deadline() -> None:
    partition = new_partition()
    placed = only_placement(partition.decide(hold_seats("h1", T0, "alice", "A-1")))

    events = partition.decide(hold_seats("h2", placed.expires_at_ms, "bob", "A-1"))

    expired, replaced = events
    assert expired == HoldExpired(
        command_id="h2",
        occurred_at_ms=placed.expires_at_ms,
        hold_id="h1",
        show_id=SHOW,
        section_id=RESERVED,
        seat_ids=("A-1",),
        quantity=1,
        buyer_id="alice",
    )
    assert isinstance(replaced, HoldPlaced)
    assert replaced.buyer_id == "bob"
    assert section(partition, RESERVED).holds.keys() == {"h2"}


def test_expiry_frees_places_only_at_next_command_when_deadline_has_passed() -> None:
    partition = new_partition(ga_spec(capacity=5))
    placed = only_placement(partition.decide(hold_places("h1", T0, "alice", 2)))
    floor = section(partition, GA)
    free_before_next_command = floor.free_count

    events = partition.decide(hold_places("h2", placed.expires_at_ms + 5000, "bob", 1))

    assert free_before_next_command == 3
    assert [type(e) for e in events] == [HoldExpired, HoldPlaced]
    assert floor.free_count == 4
    assert floor.holds.keys() == {"h2"}


def test_expiry_uses_section_clock_when_command_time_goes_backwards() -> None:
    partition = new_partition(ga_spec(capacity=5))
    partition.decide(hold_places("h1", T0, "alice", 1))
    later = only_placement(partition.decide(hold_places("h2", T0 + 7000, "bob", 1)))

    events = partition.decide(hold_places("h3", T0 + 100, "carol", 1))

    placed = only_placement(events)
    assert placed.occurred_at_ms == later.occurred_at_ms
    assert placed.expires_at_ms == later.occurred_at_ms + TTL_MS
    assert section(partition, GA).clock_ms == T0 + 7000


def test_hold_is_rejected_with_unknown_section_when_section_does_not_exist() -> None:
    partition = new_partition()
    command = PlaceHold(
        command_id="h1",
        issued_at_ms=T0 + 1,
        show_id=SHOW,
        section_id="balcony",
        buyer_id="alice",
        quantity=1,
    )

    events = partition.decide(command)

    assert only_rejection(events).reason is RejectionReason.UNKNOWN_SECTION
    assert set(partition.sections) == {
        section_key(SHOW, RESERVED),
        section_key(SHOW, GA),
    }


def test_hold_is_rejected_with_unknown_section_when_show_does_not_exist() -> None:
    partition = new_partition()
    command = PlaceHold(
        command_id="h1",
        issued_at_ms=T0 + 1,
        show_id="other-show",
        section_id=GA,
        buyer_id="alice",
        quantity=1,
    )

    events = partition.decide(command)

    assert only_rejection(events).reason is RejectionReason.UNKNOWN_SECTION
    assert section(partition, GA).free_count == 5


def test_create_show_is_rejected_with_section_exists_when_section_exists() -> None:
    partition = new_partition(ga_spec(capacity=5))
    partition.decide(hold_places("h1", T0 + 1, "alice", 2))
    floor = section(partition, GA)
    holds_before = dict(floor.holds)
    clock_before = floor.clock_ms

    events = partition.decide(
        CreateShow(
            command_id="create-again",
            issued_at_ms=T0 + 50_000,
            show_id=SHOW,
            hold_ttl_seconds=99,
            max_tickets_per_buyer=99,
            sections=(ga_spec(capacity=500),),
        )
    )

    assert events == [
        SectionRejected(
            command_id="create-again",
            occurred_at_ms=T0 + 50_000,
            show_id=SHOW,
            section_id=GA,
            reason=RejectionReason.SECTION_EXISTS,
        )
    ]
    assert section(partition, GA) is floor
    assert floor.capacity == 5
    assert floor.free_count == 3
    assert floor.holds == holds_before
    assert floor.clock_ms == clock_before
    assert (floor.hold_ttl_seconds, floor.max_tickets_per_buyer) == (TTL_SECONDS, 4)


def test_first_buyer_wins_when_two_buyers_want_the_same_seat() -> None:
    partition = new_partition()

    first = partition.decide(hold_seats("h1", T0 + 1, "alice", "B-2"))
    second = partition.decide(hold_seats("h2", T0 + 2, "bob", "B-2"))

    assert only_placement(first).buyer_id == "alice"
    assert only_rejection(second).reason is RejectionReason.SEAT_UNAVAILABLE
    assert section(partition, RESERVED).holds["h1"].buyer_id == "alice"


def test_oversell_is_impossible_when_two_holds_race_for_the_last_place() -> None:
    partition = new_partition(ga_spec(capacity=100), max_per_buyer=1)
    for n in range(99):
        only_placement(partition.decide(hold_places(f"h{n}", T0 + n, f"b{n}", 1)))
    floor = section(partition, GA)

    first = partition.decide(hold_places("race-1", T0 + 200, "racer-1", 1))
    second = partition.decide(hold_places("race-2", T0 + 203, "racer-2", 1))

    assert only_placement(first).buyer_id == "racer-1"
    assert only_rejection(second).reason is RejectionReason.SOLD_OUT
    assert floor.held_count == 100
    assert floor.free_count == 0


def test_oversell_is_impossible_when_two_holds_race_for_the_last_seat() -> None:
    partition = new_partition(reserved_spec(rows=2, seats_per_row=3), max_per_buyer=1)
    seats = section(partition, RESERVED).spec.seat_ids()
    for n, seat in enumerate(seats[:-1]):
        only_placement(partition.decide(hold_seats(f"h{n}", T0 + n, f"b{n}", seat)))
    last_seat = seats[-1]
    stalls = section(partition, RESERVED)

    first = partition.decide(hold_seats("race-1", T0 + 200, "racer-1", last_seat))
    second = partition.decide(hold_seats("race-2", T0 + 203, "racer-2", last_seat))

    assert only_placement(first).seat_ids == (last_seat,)
    assert only_rejection(second).reason is RejectionReason.SEAT_UNAVAILABLE
    assert stalls.free_seat_ids() == frozenset()
    assert stalls.held_count == stalls.capacity


def test_redelivered_hold_gives_no_event_when_its_hold_is_open() -> None:
    partition = new_partition(ga_spec(capacity=5))
    partition.decide(hold_places("h1", T0, "alice", 2))

    events = partition.decide(hold_places("h1", T0 + 1, "alice", 2))

    assert events == []
    assert section(partition, GA).held_count == 2


def test_section_clock_advances_when_a_redelivered_hold_expires_others() -> None:
    # Core bug: the early return for a redelivered (still open) hold skips the
    # clock update, although holds were expired at the later time.
    partition = new_partition(ga_spec(capacity=5))
    partition.decide(hold_places("h1", T0, "alice", 1))
    partition.decide(hold_places("h2", T0 + 5000, "bob", 1))
    redelivered = partition.decide(hold_places("h2", T0 + 12_000, "bob", 1))

    events = partition.decide(hold_places("h3", T0 + 6000, "carol", 1))

    assert [type(e) for e in redelivered] == [HoldExpired]
    assert redelivered[0].occurred_at_ms == T0 + 12_000
    placed = only_placement(events)
    assert placed.occurred_at_ms == T0 + 12_000
    assert placed.expires_at_ms == T0 + 12_000 + TTL_MS
    assert section(partition, GA).clock_ms == T0 + 12_000


def test_hold_is_not_placed_twice_when_redelivered_after_expiry() -> None:
    # Core bug: the redelivery guard only knows open holds, so a command id whose
    # hold lapsed (here: lapsed by this very redelivery) is decided again and a
    # second HoldPlaced with the same hold_id follows the HoldExpired.
    partition = new_partition(ga_spec(capacity=5))
    placed = only_placement(partition.decide(hold_places("h1", T0, "alice", 2)))

    events = partition.decide(hold_places("h1", placed.expires_at_ms, "alice", 2))

    assert [e for e in events if isinstance(e, HoldPlaced)] == []
    assert section(partition, GA).holds == {}

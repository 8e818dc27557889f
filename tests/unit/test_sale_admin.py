"""Example tests of best-available seats and the section's admin commands."""

from __future__ import annotations

import pytest

from commands.inventory import PartitionInventory, SectionInventory
from commands.model import (
    AddInventory,
    ChangeHoldTtl,
    Checkout,
    CloseSale,
    CommandRejected,
    CreateShow,
    Event,
    HoldTtlChanged,
    InventoryAdded,
    InventoryWithdrawn,
    OpenSale,
    PlaceHold,
    RejectionReason,
    Row,
    SaleClosed,
    SaleOpened,
    SectionKind,
    SectionSpec,
    WithdrawInventory,
)
from tests.unit.test_inventory import (
    GA,
    RESERVED,
    SHOW,
    T0,
    ga_spec,
    hold_places,
    hold_seats,
    new_partition,
    only_placement,
    only_rejection,
    reserved_spec,
    section,
)


def best(command_id: str, at_ms: int, buyer_id: str, quantity: int) -> PlaceHold:
    return PlaceHold(command_id, at_ms, SHOW, RESERVED, buyer_id, (), quantity)


def only_command_rejection(events: list[Event]) -> CommandRejected:
    assert len(events) == 1
    rejected = events[0]
    assert isinstance(rejected, CommandRejected)
    return rejected


def assert_balanced(inventory: SectionInventory) -> None:
    total = inventory.free_count + inventory.held_count + inventory.sold_count
    assert total == inventory.capacity


# --- best available --------------------------------------------------------------


def test_best_available_takes_middle_of_front_row_when_it_is_free() -> None:
    partition = new_partition(reserved_spec(rows=3, seats_per_row=7))

    placed = only_placement(partition.decide(best("h1", T0 + 1, "alice", 3)))

    assert placed.seat_ids == ("A-3", "A-4", "A-5")
    assert placed.quantity == 3


def test_best_available_picks_leftmost_of_equally_central_blocks_when_tied() -> None:
    partition = new_partition(reserved_spec(rows=1, seats_per_row=6))

    placed = only_placement(partition.decide(best("h1", T0 + 1, "alice", 1)))

    assert placed.seat_ids == ("A-3",)


def test_best_available_uses_next_row_when_front_row_has_no_block() -> None:
    partition = new_partition(reserved_spec(rows=2, seats_per_row=5))
    partition.decide(hold_seats("h0", T0 + 1, "bob", "A-3"))

    placed = only_placement(partition.decide(best("h1", T0 + 2, "alice", 3)))

    assert placed.seat_ids == ("B-2", "B-3", "B-4")


def test_best_available_takes_block_nearest_middle_when_middle_is_taken() -> None:
    partition = new_partition(reserved_spec(rows=1, seats_per_row=8))
    partition.decide(hold_seats("h0", T0 + 1, "bob", "A-4"))

    placed = only_placement(partition.decide(best("h1", T0 + 2, "alice", 2)))

    assert placed.seat_ids == ("A-5", "A-6")


def test_best_available_is_sold_out_when_no_row_has_adjacent_seats() -> None:
    partition = new_partition(reserved_spec(rows=2, seats_per_row=3))
    partition.decide(hold_seats("h0", T0 + 1, "bob", "A-2", "B-2"))

    events = partition.decide(best("h1", T0 + 2, "alice", 2))

    rejected = only_rejection(events)
    assert rejected.reason is RejectionReason.SOLD_OUT
    assert rejected.detail == "no 2 seats together"


def test_best_available_is_refused_when_quantity_exceeds_buyer_limit() -> None:
    partition = new_partition(reserved_spec(rows=2, seats_per_row=6), max_per_buyer=4)

    events = partition.decide(best("h1", T0 + 1, "alice", 5))

    assert only_rejection(events).reason is RejectionReason.BUYER_LIMIT_REACHED


# --- sale open and closed --------------------------------------------------------


def test_closed_sale_refuses_holds_but_lets_existing_ones_check_out() -> None:
    partition = new_partition(ga_spec(capacity=5))
    partition.decide(hold_places("h1", T0 + 1, "alice", 1))

    closed = partition.decide(CloseSale("close", T0 + 2, SHOW, GA))
    refused = partition.decide(hold_places("h2", T0 + 3, "bob", 1))
    checkout = partition.decide(Checkout("k1", T0 + 4, SHOW, GA, "alice", "h1"))

    assert closed == [SaleClosed("close", T0 + 2, SHOW, GA)]
    assert only_rejection(refused).reason is RejectionReason.SALE_CLOSED
    assert len(checkout) == 1 and not isinstance(checkout[0], CommandRejected)


def test_reopened_sale_accepts_holds_when_it_was_closed() -> None:
    partition = new_partition(ga_spec(capacity=5))
    partition.decide(CloseSale("close", T0 + 1, SHOW, GA))

    opened = partition.decide(OpenSale("open", T0 + 2, SHOW, GA))
    placed = partition.decide(hold_places("h1", T0 + 3, "alice", 1))

    assert opened == [SaleOpened("open", T0 + 2, SHOW, GA)]
    assert only_placement(placed).quantity == 1


def test_show_created_closed_refuses_holds_when_sale_not_opened() -> None:
    partition = PartitionInventory()
    partition.decide(
        CreateShow("create", T0, SHOW, 10, 4, (ga_spec(),), sale_open=False)
    )

    events = partition.decide(hold_places("h1", T0 + 1, "alice", 1))

    assert only_rejection(events).reason is RejectionReason.SALE_CLOSED


# --- hold TTL --------------------------------------------------------------------


def test_new_ttl_applies_to_new_holds_only_when_changed() -> None:
    partition = new_partition(ga_spec(capacity=5), ttl_seconds=10)
    before = only_placement(partition.decide(hold_places("h1", T0 + 1, "alice", 1)))

    changed = partition.decide(ChangeHoldTtl("ttl", T0 + 2, SHOW, GA, 30))
    after = only_placement(partition.decide(hold_places("h2", T0 + 3, "bob", 1)))

    assert changed == [HoldTtlChanged("ttl", T0 + 2, SHOW, GA, 30)]
    assert before.expires_at_ms == T0 + 1 + 10_000
    assert after.expires_at_ms == T0 + 3 + 30_000
    assert section(partition, GA).holds["h1"].expires_at_ms == T0 + 1 + 10_000


def test_ttl_change_is_refused_when_ttl_is_not_positive() -> None:
    partition = new_partition(ga_spec(capacity=5))

    events = partition.decide(ChangeHoldTtl("ttl", T0 + 2, SHOW, GA, 0))

    assert only_command_rejection(events).reason is RejectionReason.INVALID_REQUEST


# --- adding and withdrawing places -----------------------------------------------


def test_added_seats_can_be_held_when_rows_are_added() -> None:
    partition = new_partition(reserved_spec(rows=1, seats_per_row=2))
    rows = (Row("A", ("3",)), Row("Z", ("1", "2")))

    added = partition.decide(AddInventory("add", T0 + 1, SHOW, RESERVED, rows))
    placed = partition.decide(hold_seats("h1", T0 + 2, "alice", "A-3", "Z-2"))

    assert added == [
        InventoryAdded("add", T0 + 1, SHOW, RESERVED, rows, ("A-3", "Z-1", "Z-2"), 3, 5)
    ]
    assert only_placement(placed).quantity == 2
    stalls = section(partition, RESERVED)
    assert stalls.spec.rows[0] == Row("A", ("1", "2", "3"))
    assert stalls.capacity == 5
    assert_balanced(stalls)


def test_add_is_refused_with_seat_exists_when_a_seat_exists() -> None:
    partition = new_partition(reserved_spec(rows=1, seats_per_row=2))

    events = partition.decide(
        AddInventory("add", T0 + 1, SHOW, RESERVED, (Row("A", ("2", "3")),))
    )

    assert only_command_rejection(events).reason is RejectionReason.SEAT_EXISTS
    assert section(partition, RESERVED).capacity == 2


def test_ga_capacity_grows_when_quantity_is_added() -> None:
    partition = new_partition(ga_spec(capacity=5))
    partition.decide(hold_places("h1", T0 + 1, "alice", 2))

    partition.decide(AddInventory("add", T0 + 2, SHOW, GA, quantity=10))

    floor = section(partition, GA)
    assert (floor.capacity, floor.free_count, floor.held_count) == (15, 13, 2)


def test_redelivered_add_gives_no_event_when_it_was_decided() -> None:
    partition = new_partition(ga_spec(capacity=5))
    partition.decide(AddInventory("add", T0 + 1, SHOW, GA, quantity=10))

    again = partition.decide(AddInventory("add", T0 + 2, SHOW, GA, quantity=10))

    assert again == []
    assert section(partition, GA).capacity == 15


def test_withdrawn_seats_cannot_be_held_when_withdrawn() -> None:
    partition = new_partition(reserved_spec(rows=1, seats_per_row=3))

    withdrawn = partition.decide(
        WithdrawInventory("w", T0 + 1, SHOW, RESERVED, ("A-2",))
    )
    refused = partition.decide(hold_seats("h1", T0 + 2, "alice", "A-2"))

    assert withdrawn == [
        InventoryWithdrawn("w", T0 + 1, SHOW, RESERVED, ("A-2",), 1, 2)
    ]
    assert only_rejection(refused).reason is RejectionReason.UNKNOWN_SEAT
    stalls = section(partition, RESERVED)
    assert stalls.spec.rows == (Row("A", ("1", "3")),)
    assert_balanced(stalls)


def test_withdraw_is_refused_with_seat_in_use_when_seat_is_held() -> None:
    partition = new_partition(reserved_spec(rows=1, seats_per_row=3))
    partition.decide(hold_seats("h1", T0 + 1, "alice", "A-2"))

    events = partition.decide(
        WithdrawInventory("w", T0 + 2, SHOW, RESERVED, ("A-1", "A-2"))
    )

    assert only_command_rejection(events).reason is RejectionReason.SEAT_IN_USE
    assert section(partition, RESERVED).capacity == 3


@pytest.mark.parametrize(
    ("quantity", "reason"),
    [(4, RejectionReason.INSUFFICIENT_FREE), (0, RejectionReason.INVALID_REQUEST)],
)
def test_ga_withdraw_is_refused_when_quantity_is_not_free_or_not_positive(
    quantity: int, reason: RejectionReason
) -> None:
    partition = new_partition(ga_spec(capacity=5))
    partition.decide(hold_places("h1", T0 + 1, "alice", 2))

    events = partition.decide(
        WithdrawInventory("w", T0 + 2, SHOW, GA, quantity=quantity)
    )

    assert only_command_rejection(events).reason is reason
    assert section(partition, GA).capacity == 5


def test_ga_withdraw_shrinks_capacity_when_places_are_free() -> None:
    partition = new_partition(ga_spec(capacity=5))
    partition.decide(hold_places("h1", T0 + 1, "alice", 2))

    partition.decide(WithdrawInventory("w", T0 + 2, SHOW, GA, quantity=3))

    floor = section(partition, GA)
    assert (floor.capacity, floor.free_count, floor.held_count) == (2, 0, 2)


def test_admin_command_is_refused_when_section_is_unknown() -> None:
    partition = new_partition(ga_spec(capacity=5))

    events = partition.decide(CloseSale("close", T0 + 1, SHOW, "balcony"))

    rejected = only_command_rejection(events)
    assert (rejected.command, rejected.reason) == (
        "CloseSale",
        RejectionReason.UNKNOWN_SECTION,
    )


def test_admin_changes_survive_restore_when_entries_are_replayed() -> None:
    partition = new_partition(reserved_spec(rows=1, seats_per_row=2))
    partition.decide(CloseSale("close", T0 + 1, SHOW, RESERVED))
    partition.decide(ChangeHoldTtl("ttl", T0 + 2, SHOW, RESERVED, 99))
    partition.decide(AddInventory("add", T0 + 3, SHOW, RESERVED, (Row("B", ("1",)),)))
    partition.decide(WithdrawInventory("w", T0 + 4, SHOW, RESERVED, ("A-1",)))

    (entries,) = partition.drain_changes().values()
    copy = SectionInventory.restore(entries)

    live = section(partition, RESERVED)
    assert (
        copy.spec
        == live.spec
        == SectionSpec(
            RESERVED, SectionKind.RESERVED, (Row("A", ("2",)), Row("B", ("1",)))
        )
    )
    assert (copy.sale_open, copy.hold_ttl_seconds, copy.capacity) == (False, 99, 2)
    assert copy.free_seat_ids() == live.free_seat_ids() == {"A-2", "B-1"}
    assert copy.handle(CloseSale("close", T0 + 5, SHOW, RESERVED)) == []

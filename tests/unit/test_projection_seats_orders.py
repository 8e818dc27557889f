"""The seat map and orders folds: one change per seat, one order per sale."""

from __future__ import annotations

from commands.model import (
    CheckoutStarted,
    HoldExpired,
    HoldPlaced,
    InventoryAdded,
    InventoryWithdrawn,
    Row,
    TicketsSold,
)
from projections.orders import OrderFold, order_change
from projections.seats import SeatFold, SeatStatus, seat_changes


def placed(hold: str = "h1", seats: tuple[str, ...] = ("A-1", "A-2")) -> HoldPlaced:
    return HoldPlaced(hold, 10, hold, "s1", "A", "b1", seats, len(seats), 610)


def sold(hold: str = "h1", seats: tuple[str, ...] = ("A-1", "A-2")) -> TicketsSold:
    tickets = tuple(f"t{i}" for i in range(len(seats)))
    return TicketsSold(
        "c3", 30, hold, "o1", "s1", "A", "b1", seats, len(seats), tickets
    )


def test_each_seat_of_a_hold_is_held_by_it_when_placed() -> None:
    changes = seat_changes(placed(), 0, 5, 1)

    assert [(c.seat_id, c.status, c.hold_id) for c in changes] == [
        ("A-1", SeatStatus.HELD, "h1"),
        ("A-2", SeatStatus.HELD, "h1"),
    ]
    assert {(c.log_partition, c.log_offset, c.log_index) for c in changes} == {
        (0, 5, 1)
    }


def test_a_seat_is_free_again_without_a_hold_when_its_hold_expires() -> None:
    expired = HoldExpired("c2", 20, "h1", "s1", "A", ("A-1",), 1)
    fold = SeatFold()

    fold.apply(placed(), 0, 1)
    fold.apply(expired, 0, 2)

    seat = {c.seat_id: c for c in fold.changes()}["A-1"]
    assert (seat.status, seat.hold_id, seat.log_offset) == (SeatStatus.FREE, None, 2)


def test_a_sold_seat_names_its_hold_and_order_when_sold() -> None:
    fold = SeatFold()

    fold.apply(placed(), 0, 1)
    fold.apply(sold(), 0, 2)

    assert {(c.seat_id, c.status, c.order_id) for c in fold.changes()} == {
        ("A-1", SeatStatus.SOLD, "o1"),
        ("A-2", SeatStatus.SOLD, "o1"),
    }


def test_an_older_change_never_replaces_a_newer_one_when_redelivered() -> None:
    fold = SeatFold()

    fold.apply(sold(), 0, 2)
    fold.apply(placed(), 0, 1)

    assert {c.status for c in fold.changes()} == {SeatStatus.SOLD}


def test_added_seats_are_free_and_withdrawn_seats_marked_when_inventory_moves() -> None:
    added = InventoryAdded("c", 5, "s1", "A", (Row("B", ("1",)),), ("B-1",), 1, 3)
    withdrawn = InventoryWithdrawn("c", 6, "s1", "A", ("A-9",), 1, 2)

    statuses = {
        c.seat_id: c.status
        for event in (added, withdrawn)
        for c in seat_changes(event, 0, 1)
    }

    assert statuses == {"B-1": SeatStatus.FREE, "A-9": SeatStatus.WITHDRAWN}


def test_events_that_name_no_seat_make_no_change_when_folded() -> None:
    checkout = CheckoutStarted("c", 5, "h1", "s1", "A", "b1", 900)

    assert seat_changes(checkout, 0, 1) == []
    assert order_change(checkout, 0, 1) is None


def test_an_order_carries_buyer_seats_and_tickets_when_sold() -> None:
    order = order_change(sold(), 2, 7, 0)

    assert order is not None
    assert (order.order_id, order.hold_id, order.buyer_id) == ("o1", "h1", "b1")
    assert order.seat_ids == ("A-1", "A-2")
    assert order.ticket_ids == ("t0", "t1")
    assert (order.sold_at_ms, order.log_partition, order.log_offset) == (30, 2, 7)


def test_a_redelivered_sale_makes_one_order_when_folded_twice() -> None:
    fold = OrderFold()

    fold.apply(sold(), 0, 2)
    fold.apply(sold(), 0, 2)

    assert [o.order_id for o in fold.changes()] == ["o1"]

"""Example tests of a hold's life: release, checkout, payment results and ticks."""

from __future__ import annotations

import pytest

from commands.inventory import PartitionInventory, SectionInventory
from commands.model import (
    Checkout,
    CheckoutStarted,
    CommandRejected,
    CreateShow,
    Event,
    HoldExpired,
    HoldPlaced,
    HoldReleased,
    InventoryMode,
    RecordPaymentResult,
    RefundReason,
    RefundRequired,
    RejectionReason,
    ReleaseHold,
    ReleaseReason,
    Tick,
    TicketsSold,
)
from tests.unit.test_inventory import (
    GA,
    RESERVED,
    SHOW,
    T0,
    TTL_MS,
    TTL_SECONDS,
    ga_spec,
    hold_places,
    hold_seats,
    only_placement,
    reserved_spec,
    section,
)

WINDOW_SECONDS = 60
WINDOW_MS = WINDOW_SECONDS * 1000


def partition_with_window(
    mode: InventoryMode = InventoryMode.HOLDS,
) -> PartitionInventory:
    partition = PartitionInventory()
    partition.decide(
        CreateShow(
            command_id="create",
            issued_at_ms=T0,
            show_id=SHOW,
            hold_ttl_seconds=TTL_SECONDS,
            max_tickets_per_buyer=4,
            sections=(reserved_spec(), ga_spec()),
            inventory_mode=mode,
            payment_window_seconds=WINDOW_SECONDS,
        )
    )
    return partition


def release(command_id: str, at_ms: int, buyer_id: str, hold_id: str) -> ReleaseHold:
    return ReleaseHold(command_id, at_ms, SHOW, GA, buyer_id, hold_id)


def checkout(command_id: str, at_ms: int, buyer_id: str, hold_id: str) -> Checkout:
    return Checkout(command_id, at_ms, SHOW, GA, buyer_id, hold_id)


def paid(
    command_id: str, at_ms: int, hold_id: str, *, ok: bool = True, provider: str = "p1"
) -> RecordPaymentResult:
    return RecordPaymentResult(command_id, at_ms, SHOW, GA, hold_id, provider, ok)


def only_command_rejection(events: list[Event]) -> CommandRejected:
    assert len(events) == 1
    rejected = events[0]
    assert isinstance(rejected, CommandRejected)
    return rejected


def assert_balanced(section: SectionInventory) -> None:
    total = section.free_count + section.held_count + section.sold_count
    assert total == section.capacity


# --- release ---------------------------------------------------------------------


def test_release_frees_places_when_buyer_releases_own_hold() -> None:
    partition = partition_with_window()
    partition.decide(hold_places("h1", T0 + 1, "alice", 2))

    events = partition.decide(release("r1", T0 + 2, "alice", "h1"))

    assert events == [
        HoldReleased(
            command_id="r1",
            occurred_at_ms=T0 + 2,
            hold_id="h1",
            show_id=SHOW,
            section_id=GA,
            reason=ReleaseReason.RELEASED_BY_BUYER,
            seat_ids=(),
            quantity=2,
            buyer_id="alice",
        )
    ]
    floor = section(partition, GA)
    assert (floor.free_count, floor.held_count, floor.buyer_places("alice")) == (
        5,
        0,
        0,
    )


@pytest.mark.parametrize(
    ("buyer_id", "hold_id", "reason"),
    [
        ("alice", "nope", RejectionReason.UNKNOWN_HOLD),
        ("bob", "h1", RejectionReason.NOT_HOLD_OWNER),
    ],
)
def test_release_is_refused_when_hold_is_unknown_or_another_buyers(
    buyer_id: str, hold_id: str, reason: RejectionReason
) -> None:
    partition = partition_with_window()
    partition.decide(hold_places("h1", T0 + 1, "alice", 2))

    events = partition.decide(release("r1", T0 + 2, buyer_id, hold_id))

    rejected = only_command_rejection(events)
    assert (rejected.command, rejected.reason) == ("ReleaseHold", reason)
    assert section(partition, GA).held_count == 2


def test_release_is_refused_with_hold_ended_when_hold_expired() -> None:
    partition = partition_with_window()
    partition.decide(hold_places("h1", T0, "alice", 2))

    events = partition.decide(release("r1", T0 + TTL_MS, "alice", "h1"))

    expired, rejected = events
    assert isinstance(expired, HoldExpired)
    assert only_command_rejection([rejected]).reason is RejectionReason.HOLD_ENDED


def test_release_is_refused_with_payment_pending_when_hold_is_checked_out() -> None:
    partition = partition_with_window()
    partition.decide(hold_places("h1", T0, "alice", 2))
    partition.decide(checkout("k1", T0 + 1, "alice", "h1"))

    events = partition.decide(release("r1", T0 + 2, "alice", "h1"))

    assert only_command_rejection(events).reason is RejectionReason.PAYMENT_PENDING
    assert section(partition, GA).held_count == 2


def test_redelivered_release_gives_no_event_when_it_was_decided() -> None:
    partition = partition_with_window()
    partition.decide(hold_places("h1", T0, "alice", 2))
    partition.decide(release("r1", T0 + 1, "alice", "h1"))

    assert partition.decide(release("r1", T0 + 2, "alice", "h1")) == []


# --- checkout --------------------------------------------------------------------


def test_checkout_moves_expiry_to_payment_deadline_when_hold_is_open() -> None:
    partition = partition_with_window()
    partition.decide(hold_places("h1", T0, "alice", 2))

    events = partition.decide(checkout("k1", T0 + 5, "alice", "h1"))
    kept = partition.decide(hold_places("h2", T0 + TTL_MS + 1, "bob", 1))

    assert events == [
        CheckoutStarted(
            "k1", T0 + 5, "h1", SHOW, GA, "alice", T0 + 5 + WINDOW_MS, quantity=2
        )
    ]
    assert [type(e) for e in kept] == [HoldPlaced]
    assert section(partition, GA).holds["h1"].expires_at_ms == T0 + 5 + WINDOW_MS


@pytest.mark.parametrize(
    ("buyer_id", "hold_id", "reason"),
    [
        ("alice", "nope", RejectionReason.UNKNOWN_HOLD),
        ("bob", "h1", RejectionReason.NOT_HOLD_OWNER),
        ("alice", "h1", RejectionReason.PAYMENT_PENDING),
    ],
)
def test_checkout_is_refused_when_hold_is_unknown_foreign_or_pending(
    buyer_id: str, hold_id: str, reason: RejectionReason
) -> None:
    partition = partition_with_window()
    partition.decide(hold_places("h1", T0, "alice", 2))
    partition.decide(checkout("k1", T0 + 1, "alice", "h1"))

    events = partition.decide(checkout("k2", T0 + 2, buyer_id, hold_id))

    rejected = only_command_rejection(events)
    assert (rejected.command, rejected.reason) == ("Checkout", reason)


def test_checkout_is_refused_with_hold_ended_when_hold_was_released() -> None:
    partition = partition_with_window()
    partition.decide(hold_places("h1", T0, "alice", 2))
    partition.decide(release("r1", T0 + 1, "alice", "h1"))

    events = partition.decide(checkout("k1", T0 + 2, "alice", "h1"))

    assert only_command_rejection(events).reason is RejectionReason.HOLD_ENDED


# --- payment results -------------------------------------------------------------


def test_payment_success_sells_the_places_when_payment_is_pending() -> None:
    partition = partition_with_window()
    partition.decide(hold_seats("h1", T0, "alice", "A-1", "A-2"))
    partition.decide(Checkout("k1", T0 + 1, SHOW, RESERVED, "alice", "h1"))

    events = partition.decide(
        RecordPaymentResult("p1", T0 + 2, SHOW, RESERVED, "h1", "evt-1", True)
    )

    assert events == [
        TicketsSold(
            command_id="p1",
            occurred_at_ms=T0 + 2,
            hold_id="h1",
            order_id="h1",
            show_id=SHOW,
            section_id=RESERVED,
            buyer_id="alice",
            seat_ids=("A-1", "A-2"),
            quantity=2,
            ticket_ids=("h1-1", "h1-2"),
        )
    ]
    stalls = section(partition, RESERVED)
    assert (stalls.sold_count, stalls.held_count) == (2, 0)
    assert {"A-1", "A-2"}.isdisjoint(stalls.free_seat_ids())
    assert_balanced(stalls)


def test_payment_failure_releases_the_places_when_payment_is_pending() -> None:
    partition = partition_with_window()
    partition.decide(hold_places("h1", T0, "alice", 2))
    partition.decide(checkout("k1", T0 + 1, "alice", "h1"))

    events = partition.decide(paid("p1", T0 + 2, "h1", ok=False))

    assert events == [
        HoldReleased(
            "p1", T0 + 2, "h1", SHOW, GA, ReleaseReason.PAYMENT_FAILED, (), 2, "alice"
        )
    ]
    assert section(partition, GA).free_count == 5


def test_pending_hold_expires_when_payment_deadline_passes() -> None:
    partition = partition_with_window()
    partition.decide(hold_places("h1", T0, "alice", 2))
    partition.decide(checkout("k1", T0 + 1, "alice", "h1"))

    events = partition.decide(Tick("t1", T0 + 1 + WINDOW_MS))

    assert events == [
        HoldExpired("t1", T0 + 1 + WINDOW_MS, "h1", SHOW, GA, (), 2, "alice")
    ]
    assert section(partition, GA).free_count == 5


def test_late_success_requires_one_refund_when_hold_expired_unsold() -> None:
    partition = partition_with_window()
    partition.decide(hold_places("h1", T0, "alice", 2))
    partition.decide(checkout("k1", T0 + 1, "alice", "h1"))
    deadline_ms = T0 + 1 + WINDOW_MS

    first = partition.decide(paid("p1", deadline_ms, "h1", provider="evt-1"))
    again = partition.decide(paid("p2", deadline_ms + 1, "h1", provider="evt-1"))
    other = partition.decide(paid("p3", deadline_ms + 2, "h1", provider="evt-2"))

    expired, refund = first
    assert isinstance(expired, HoldExpired)
    assert refund == RefundRequired(
        "p1", deadline_ms, "h1", SHOW, GA, "evt-1", RefundReason.HOLD_ENDED
    )
    assert again == other == []
    floor = section(partition, GA)
    assert (floor.sold_count, floor.free_count) == (0, 5)


def test_success_requires_refund_when_hold_was_released_by_buyer() -> None:
    partition = partition_with_window()
    partition.decide(hold_places("h1", T0, "alice", 2))
    partition.decide(release("r1", T0 + 1, "alice", "h1"))

    events = partition.decide(paid("p1", T0 + 2, "h1"))

    assert [type(e) for e in events] == [RefundRequired]


@pytest.mark.parametrize("ok", [True, False])
def test_payment_result_gives_no_event_when_hold_is_already_sold(ok: bool) -> None:
    partition = partition_with_window()
    partition.decide(hold_places("h1", T0, "alice", 2))
    partition.decide(checkout("k1", T0 + 1, "alice", "h1"))
    partition.decide(paid("p1", T0 + 2, "h1", provider="evt-1"))

    events = partition.decide(paid("p2", T0 + 3, "h1", ok=ok, provider="evt-2"))

    assert events == []
    assert section(partition, GA).sold_count == 2


def test_payment_failure_gives_no_event_when_hold_has_ended() -> None:
    partition = partition_with_window()
    partition.decide(hold_places("h1", T0, "alice", 2))
    partition.decide(release("r1", T0 + 1, "alice", "h1"))

    assert partition.decide(paid("p1", T0 + 2, "h1", ok=False)) == []


def test_payment_result_is_refused_with_unknown_hold_when_hold_never_existed() -> None:
    partition = partition_with_window()

    events = partition.decide(paid("p1", T0 + 2, "ghost"))

    rejected = only_command_rejection(events)
    assert (rejected.command, rejected.reason) == (
        "RecordPaymentResult",
        RejectionReason.UNKNOWN_HOLD,
    )


def test_sold_places_stay_sold_when_section_is_restored_from_entries() -> None:
    partition = partition_with_window()
    partition.decide(hold_seats("h1", T0, "alice", "A-1"))
    partition.decide(Checkout("k1", T0 + 1, SHOW, RESERVED, "alice", "h1"))
    partition.decide(
        RecordPaymentResult("p1", T0 + 2, SHOW, RESERVED, "h1", "evt-1", True)
    )
    entries = partition.drain_changes()

    restored = {key: SectionInventory.restore(found) for key, found in entries.items()}
    copy = PartitionInventory(restored)
    later = copy.decide(hold_seats("h2", T0 + 10 * WINDOW_MS, "bob", "A-1"))

    stalls = section(copy, RESERVED)
    assert stalls.sold_count == 1
    assert "A-1" not in stalls.free_seat_ids()
    assert [e.reason for e in later if hasattr(e, "reason")] == [
        RejectionReason.SEAT_UNAVAILABLE
    ]


# --- ticks -----------------------------------------------------------------------


def test_tick_expires_due_holds_of_every_section_by_deadline_then_hold_id() -> None:
    partition = partition_with_window()
    partition.decide(hold_places("g2", T0 + 10, "alice", 1))
    partition.decide(hold_seats("r1", T0 + 20, "bob", "A-1"))
    partition.decide(hold_places("g1", T0 + 10, "carol", 1))
    partition.decide(hold_seats("r0", T0 + 30, "dave", "A-2"))

    events = partition.decide(Tick("t1", T0 + 25 + TTL_MS))

    assert [(type(e), e.hold_id) for e in events if isinstance(e, HoldExpired)] == [
        (HoldExpired, "g1"),
        (HoldExpired, "g2"),
        (HoldExpired, "r1"),
    ]
    assert set(section(partition, RESERVED).holds) == {"r0"}
    assert section(partition, GA).clock_ms == T0 + 25 + TTL_MS


def test_tick_gives_no_event_when_nothing_is_due() -> None:
    partition = partition_with_window()
    partition.decide(hold_places("h1", T0, "alice", 1))

    assert partition.decide(Tick("t1", T0 + TTL_MS - 1)) == []
    assert partition.decide(Tick("t1", T0 + TTL_MS - 1)) == []


# --- immediate mode --------------------------------------------------------------


def test_hold_goes_straight_to_payment_when_mode_is_immediate() -> None:
    partition = partition_with_window(InventoryMode.IMMEDIATE)

    events = partition.decide(hold_places("h1", T0, "alice", 2))

    placed, started = events
    assert only_placement([placed]).quantity == 2
    assert started == CheckoutStarted(
        "h1", T0, "h1", SHOW, GA, "alice", T0 + WINDOW_MS, quantity=2
    )
    assert section(partition, GA).free_count == 3


def test_release_is_refused_with_payment_pending_when_mode_is_immediate() -> None:
    partition = partition_with_window(InventoryMode.IMMEDIATE)
    partition.decide(hold_places("h1", T0, "alice", 2))

    events = partition.decide(release("r1", T0 + 1, "alice", "h1"))

    assert only_command_rejection(events).reason is RejectionReason.PAYMENT_PENDING


@pytest.mark.parametrize(
    ("ok", "sold", "free"), [(True, 2, 3), (False, 0, 5)], ids=["paid", "failed"]
)
def test_immediate_hold_ends_by_its_payment_when_result_arrives(
    ok: bool, sold: int, free: int
) -> None:
    partition = partition_with_window(InventoryMode.IMMEDIATE)
    partition.decide(hold_places("h1", T0, "alice", 2))

    partition.decide(paid("p1", T0 + 1, "h1", ok=ok))

    floor = section(partition, GA)
    assert (floor.sold_count, floor.free_count, floor.held_count) == (sold, free, 0)


def test_immediate_hold_gives_places_back_when_payment_deadline_passes() -> None:
    partition = partition_with_window(InventoryMode.IMMEDIATE)
    partition.decide(hold_places("h1", T0, "alice", 2))

    events = partition.decide(Tick("t1", T0 + WINDOW_MS))

    assert [type(e) for e in events] == [HoldExpired]
    assert section(partition, GA).free_count == 5

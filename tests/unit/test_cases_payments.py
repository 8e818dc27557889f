"""The core's part of the payment cases: webhooks in, one sale or one refund out.

Results enter the core as the inbox writes them (``payments.provider.payment_result``:
the command id comes from the provider's event id), so a redelivered event id is a
redelivered command.
"""

from __future__ import annotations

from commands.inventory import PartitionInventory
from commands.model import (
    Checkout,
    CheckoutStarted,
    CreateShow,
    Event,
    HoldExpired,
    HoldPlaced,
    HoldReleased,
    PlaceHold,
    RefundRequired,
    ReleaseReason,
    SectionKind,
    SectionSpec,
    Tick,
    TicketsSold,
)
from streams.payments.provider import PaymentEvent, payment_result

SHOW = "show-1"
GA = "floor"
T0 = 1_000_000
TTL_SECONDS = 60
WINDOW_SECONDS = 120
PRICE_CENTS = 6000


def sale(capacity: int = 5) -> PartitionInventory:
    partition = PartitionInventory()
    spec = SectionSpec(
        GA, SectionKind.GENERAL_ADMISSION, capacity=capacity, price_cents=PRICE_CENTS
    )
    partition.decide(
        CreateShow(
            "create",
            T0,
            SHOW,
            TTL_SECONDS,
            4,
            (spec,),
            payment_window_seconds=WINDOW_SECONDS,
        )
    )
    return partition


def checked_out(
    partition: PartitionInventory, hold_id: str, buyer: str, quantity: int, at_ms: int
) -> CheckoutStarted:
    partition.decide(PlaceHold(hold_id, at_ms, SHOW, GA, buyer, quantity=quantity))
    (started,) = partition.decide(
        Checkout(f"k-{hold_id}", at_ms, SHOW, GA, buyer, hold_id)
    )
    assert isinstance(started, CheckoutStarted)
    return started


def webhook(
    partition: PartitionInventory, event_id: str, hold_id: str, ok: bool, at_ms: int
) -> list[Event]:
    """What deciding one inbox record gives, for a fresh or a repeated event id."""
    event = PaymentEvent(event_id, hold_id, SHOW, GA, ok)
    return partition.decide(payment_result(event, at_ms))


def of_type(events: list[Event], kind: type) -> list[Event]:
    return [e for e in events if isinstance(e, kind)]


def balanced(partition: PartitionInventory) -> bool:
    floor = partition.sections[f"{SHOW}/{GA}"]
    return floor.free_count + floor.held_count + floor.sold_count == floor.capacity


def test_checkout_requests_quantity_times_price_when_the_section_has_a_price() -> None:
    partition = sale()

    started = checked_out(partition, "h1", "alice", 2, T0)

    assert (started.quantity, started.amount_cents) == (2, 2 * PRICE_CENTS)
    assert started.payment_deadline_ms == T0 + WINDOW_SECONDS * 1000


def test_c3_one_sale_when_the_same_event_id_arrives_three_times() -> None:
    partition = sale()
    checked_out(partition, "h1", "alice", 2, T0)

    results = [webhook(partition, "evt_1", "h1", True, T0 + 5 + n) for n in range(3)]
    later = webhook(partition, "evt_2", "h1", True, T0 + 2005)

    assert len(of_type(results[0], TicketsSold)) == 1
    assert results[1] == results[2] == later == []
    assert partition.sections[f"{SHOW}/{GA}"].sold_count == 2
    assert balanced(partition)


def test_sale_stands_when_a_stale_failure_arrives_after_the_success() -> None:
    partition = sale()
    checked_out(partition, "h1", "alice", 1, T0)

    sold = webhook(partition, "evt_ok", "h1", True, T0 + 10)
    stale = webhook(partition, "evt_fail", "h1", False, T0 + 11)

    assert [type(e) for e in sold] == [TicketsSold]
    assert stale == []
    assert balanced(partition)


def test_one_refund_when_a_success_arrives_after_a_failure_released_the_hold() -> None:
    partition = sale()
    checked_out(partition, "h1", "alice", 1, T0)

    failed = webhook(partition, "evt_fail", "h1", False, T0 + 10)
    succeeded = webhook(partition, "evt_ok", "h1", True, T0 + 11)
    again = webhook(partition, "evt_ok", "h1", True, T0 + 12)

    assert [type(e) for e in failed] == [HoldReleased]
    assert isinstance(failed[0], HoldReleased)
    assert failed[0].reason is ReleaseReason.PAYMENT_FAILED
    assert [type(e) for e in succeeded] == [RefundRequired]
    assert again == []
    assert balanced(partition)


def test_refund_not_second_sale_when_success_comes_after_places_were_resold() -> None:
    partition = sale(capacity=1)
    checked_out(partition, "h1", "alice", 1, T0)
    deadline_ms = T0 + WINDOW_SECONDS * 1000
    expired = partition.decide(Tick("tick", deadline_ms))
    bob = checked_out(partition, "h2", "bob", 1, deadline_ms + 1)
    bob_sold = webhook(partition, "evt_bob", bob.hold_id, True, deadline_ms + 2)

    late = webhook(partition, "evt_alice", "h1", True, deadline_ms + 3)

    assert [type(e) for e in expired] == [HoldExpired]
    assert [type(e) for e in bob_sold] == [TicketsSold]
    assert late == [
        RefundRequired(
            "payment-event:evt_alice",
            deadline_ms + 3,
            "h1",
            SHOW,
            GA,
            "evt_alice",
            late[0].reason,  # type: ignore[union-attr]
        )
    ]
    floor = partition.sections[f"{SHOW}/{GA}"]
    assert (floor.sold_count, floor.held_count, floor.free_count) == (1, 0, 0)


def test_c4_redelivered_success_sells_once_when_the_writer_restarted() -> None:
    partition = sale()
    checked_out(partition, "h1", "alice", 2, T0)
    first = webhook(partition, "evt_1", "h1", True, T0 + 5)
    # The writer dies after committing; it is rebuilt from its persisted entries.
    partition = PartitionInventory.restore(
        {f"{SHOW}/{GA}": partition.sections[f"{SHOW}/{GA}"].drain_changes()}
    )

    again = webhook(partition, "evt_1", "h1", True, T0 + 6)

    assert [type(e) for e in first] == [TicketsSold]
    assert again == []


def test_success_for_a_hold_never_checked_out_still_sells_when_it_is_open() -> None:
    partition = sale()
    (placed,) = partition.decide(PlaceHold("h1", T0, SHOW, GA, "alice", quantity=1))
    assert isinstance(placed, HoldPlaced)

    events = webhook(partition, "evt_1", "h1", True, T0 + 1)

    assert [type(e) for e in events] == [TicketsSold]

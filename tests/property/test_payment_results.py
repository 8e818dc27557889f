"""Payment results in any order, any number of times: one sale or one refund.

Each provider event id stands for one fixed result (a hold, success or failure).
Hypothesis delivers any of them, repeated and interleaved with ticks and with
other buyers' holds; the core must end every hold that got a success in exactly
one TicketsSold or exactly one RefundRequired, and keep the section balanced.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from commands.inventory import PartitionInventory
from commands.model import (
    Checkout,
    CheckoutStarted,
    CreateShow,
    Event,
    PlaceHold,
    RefundRequired,
    SectionKind,
    SectionSpec,
    Tick,
    TicketsSold,
)
from streams.payments.provider import PaymentEvent, payment_result

SHOW, GA, T0 = "show-1", "floor", 1_000_000
HOLDS = ("h1", "h2", "h3")
RESULTS = {
    f"evt_{hold}_{'ok' if ok else 'fail'}_{n}": (hold, ok)
    for hold in HOLDS
    for ok in (True, False)
    for n in (1, 2)
}
"""Provider event ids and what each reports; two ids per result, like retries."""

steps = st.lists(
    st.one_of(
        st.tuples(st.just("deliver"), st.sampled_from(sorted(RESULTS))),
        st.tuples(st.just("tick"), st.integers(1, 90_000).map(str)),
        st.tuples(st.just("other_buyer"), st.integers(0, 99).map(str)),
    ),
    max_size=40,
)


def started_sale() -> PartitionInventory:
    partition = PartitionInventory()
    spec = SectionSpec(GA, SectionKind.GENERAL_ADMISSION, capacity=4, price_cents=100)
    partition.decide(
        CreateShow("create", T0, SHOW, 60, 4, (spec,), payment_window_seconds=60)
    )
    for hold in HOLDS:
        partition.decide(PlaceHold(hold, T0, SHOW, GA, f"buyer-{hold}", quantity=1))
        started = partition.decide(
            Checkout(f"k-{hold}", T0, SHOW, GA, f"buyer-{hold}", hold)
        )
        assert [type(e) for e in started] == [CheckoutStarted]
    return partition


@given(steps)
def test_every_success_ends_in_one_sale_or_one_refund_when_results_arrive_in_any_order(
    plan: list[tuple[str, str]],
) -> None:
    partition = started_sale()
    floor = partition.sections[f"{SHOW}/{GA}"]
    events: list[Event] = []
    succeeded: set[str] = set()
    now_ms = T0

    for n, (step, arg) in enumerate(plan):
        now_ms += 1
        if step == "deliver":
            hold, ok = RESULTS[arg]
            succeeded.update([hold] if ok else [])
            result = PaymentEvent(arg, hold, SHOW, GA, ok)
            events += partition.decide(payment_result(result, now_ms))
        elif step == "tick":
            now_ms += int(arg)
            events += partition.decide(Tick(f"tick-{n}", now_ms))
        else:
            buyer = f"other-{arg}"
            events += partition.decide(
                PlaceHold(f"o-{n}", now_ms, SHOW, GA, buyer, quantity=1)
            )
        assert floor.free_count + floor.held_count + floor.sold_count == 4
        assert floor.free_count >= 0

    sold = Counter(e.hold_id for e in events if isinstance(e, TicketsSold))
    refunded = Counter(e.hold_id for e in events if isinstance(e, RefundRequired))
    for hold in HOLDS:
        if hold in succeeded:
            assert (sold[hold], refunded[hold]) in {(1, 0), (0, 1)}
        else:
            assert (sold[hold], refunded[hold]) == (0, 0)

"""The holds fold: one change per event, merged like Cassandra merges columns."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from commands.model import (
    CheckoutStarted,
    Event,
    HoldExpired,
    HoldPlaced,
    HoldRejected,
    HoldReleased,
    RejectionReason,
    ReleaseReason,
    SaleOpened,
    TicketsSold,
)
from projections.holds import HoldFold, HoldStatus, HoldView, merge_change
from projections.reader import lag_seconds
from projections.store import write_timestamp
from tests.unit.test_projection_availability import created

Step = tuple[int, int, Event]
"""(offset, index, event) on partition 0."""


def placed(hold: str = "h1") -> HoldPlaced:
    return HoldPlaced(hold, 10, hold, "s1", "A", "b1", ("r-1",), 1, 610)


def store_of(changes: list[HoldView]) -> dict[str, HoldView]:
    rows: dict[str, HoldView] = {}
    for change in changes:
        rows[change.hold_id] = merge_change(rows.get(change.hold_id), change)
    return rows


def fold(steps: list[Step]) -> HoldFold:
    holds = HoldFold()
    for offset, index, event in steps:
        holds.apply(event, 0, offset, index)
    return holds


def test_a_hold_is_held_with_its_deadline_when_placed() -> None:
    rows = store_of(fold([(1, 0, placed())]).changes())

    row = rows["h1"]
    assert (row.status, row.buyer_id, row.seat_ids, row.expires_at_ms) == (
        HoldStatus.HELD,
        "b1",
        ("r-1",),
        610,
    )


def test_a_refusal_is_keyed_by_its_command_id_when_rejected() -> None:
    reason = RejectionReason.SOLD_OUT
    event = HoldRejected("cmd-9", 5, "s1", "A", "b2", reason, "none left")

    rows = store_of(fold([(1, 0, event)]).changes())

    assert rows["cmd-9"].status is HoldStatus.REJECTED
    assert rows["cmd-9"].reason == "sold_out"


def test_later_events_keep_the_buyer_when_they_do_not_name_one() -> None:
    released = HoldReleased(
        "c2", 20, "h1", "s1", "A", ReleaseReason.RELEASED_BY_BUYER, ("r-1",), 1
    )

    rows = store_of(fold([(1, 0, placed()), (2, 0, released)]).changes())

    row = rows["h1"]
    assert (row.status, row.buyer_id, row.reason) == (
        HoldStatus.RELEASED,
        "b1",
        "released_by_buyer",
    )


def test_an_older_event_never_overwrites_a_newer_one_when_written_late() -> None:
    expired = HoldExpired("c2", 620, "h1", "s1", "A", ("r-1",), 1)
    changes = fold([(1, 0, placed()), (4, 0, expired)]).changes()

    rows = store_of(list(reversed(changes)))

    assert rows["h1"].status is HoldStatus.EXPIRED
    assert rows["h1"].expires_at_ms == 610
    assert rows["h1"].log_offset == 4


def test_events_about_no_hold_make_no_change_when_folded() -> None:
    holds = fold([(1, 0, created()), (2, 0, SaleOpened("c", 1, "s1", "A"))])

    assert holds.changes() == []


def test_lag_counts_from_the_oldest_catch_up_when_sections_span_partitions() -> None:
    rows = [created("A"), created("B")]
    from projections.availability import AvailabilityFold

    availability = AvailabilityFold()
    availability.apply(rows[0], 0, 1)
    availability.apply(rows[1], 1, 1)

    lag = lag_seconds(availability.rows(), {0: 9_000, 1: 7_500}, 10_000)
    unknown = lag_seconds(availability.rows(), {0: 9_000}, 10_000)

    assert lag == 2.5
    assert unknown is None


# --- properties: replay, redelivery and late writes change nothing ----------------

LIFECYCLES = st.sampled_from(["expire", "release", "sell", "pay_then_expire", "open"])


@st.composite
def hold_logs(draw: st.DrawFn) -> list[Step]:
    """Lifecycles of a few holds interleaved on one partition, in log order."""
    steps: list[Event] = []
    for n in range(draw(st.integers(1, 6))):
        hold = f"h{n}"
        kind = draw(LIFECYCLES)
        if draw(st.booleans()):
            reason = RejectionReason.SOLD_OUT
            steps.append(HoldRejected(hold, n, "s1", "A", f"b{n}", reason, "x"))
            continue
        steps.append(HoldPlaced(hold, n, hold, "s1", "A", f"b{n}", (), 2, n + 600))
        if kind in ("sell", "pay_then_expire"):
            steps.append(CheckoutStarted("c", n, hold, "s1", "A", f"b{n}", n + 900))
        if kind == "sell":
            steps.append(TicketsSold("c", n, hold, "o", "s1", "A", f"b{n}", (), 2, ()))
        elif kind in ("expire", "pay_then_expire"):
            steps.append(HoldExpired("c", n, hold, "s1", "A", (), 2))
        elif kind == "release":
            why = ReleaseReason.PAYMENT_FAILED
            steps.append(HoldReleased("c", n, hold, "s1", "A", why, (), 2))
    # Interleave holds but keep each hold's own events in order.
    ordered = _keep_per_hold_order(steps, draw(st.permutations(steps)))
    return [(offset, 0, event) for offset, event in enumerate(ordered)]


def _keep_per_hold_order(original: list[Event], mixed: list[Event]) -> list[Event]:
    """``mixed`` with each hold's events put back in their original order."""
    queues: dict[str, list[Event]] = {}
    for event in original:
        queues.setdefault(_hold_of(event), []).append(event)
    return [queues[_hold_of(event)].pop(0) for event in mixed]


def _hold_of(event: Event) -> str:
    return event.command_id if isinstance(event, HoldRejected) else event.hold_id  # type: ignore[union-attr]


def in_log_order(log: list[Step]) -> dict[str, HoldView]:
    return store_of(fold(log).changes())


def cassandra_like(writes: list[HoldView]) -> dict[str, HoldView]:
    """Newest write per column wins, as with USING TIMESTAMP from positions."""
    cells: dict[str, dict[str, tuple[int, object]]] = {}
    for change in writes:
        stamp = write_timestamp(change.log_offset, change.log_index)
        row = cells.setdefault(change.hold_id, {})
        for name in HoldView.__slots__:  # type: ignore[attr-defined]
            value = getattr(change, name)
            if value is not None and (name not in row or stamp > row[name][0]):
                row[name] = (stamp, value)
    return {
        hold: HoldView(**{name: cell[1] for name, cell in row.items()})  # type: ignore[arg-type]
        for hold, row in cells.items()
    }


@settings(max_examples=200, deadline=None)
@given(hold_logs(), st.data())
def test_rows_are_the_same_when_writes_arrive_in_any_order(
    log: list[Step], data: st.DataObject
) -> None:
    changes = fold(log).changes()
    cut = data.draw(st.integers(0, len(log)))
    replayed = changes + fold(log[:cut]).changes() + fold(log).changes()

    shuffled = data.draw(st.permutations(replayed))

    assert cassandra_like(shuffled) == in_log_order(log)


@settings(max_examples=200, deadline=None)
@given(hold_logs())
def test_each_hold_ends_in_its_last_status_when_the_log_is_redelivered(
    log: list[Step],
) -> None:
    holds = fold(log + log)

    rows = store_of(holds.changes())

    last = {_hold_of(event): offset for offset, _, event in log}
    assert {hold: row.log_offset for hold, row in rows.items()} == last

"""The independent audit catches oversells planted in an event log."""

from __future__ import annotations

from commands.model import (
    HoldExpired,
    HoldPlaced,
    InventoryWithdrawn,
    SectionCreated,
    SectionKind,
    TicketsSold,
)
from projections.ledger import ShowLedger


def _created(section: str, capacity: int) -> SectionCreated:
    return SectionCreated(
        "c", 0, "s", section, SectionKind.GENERAL_ADMISSION, capacity, 60
    )


def _placed(
    hold: str, section: str, seats: tuple[str, ...], quantity: int
) -> HoldPlaced:
    return HoldPlaced(hold, 1, hold, "s", section, "b", seats, quantity, 1000)


def _fold(*events: object) -> ShowLedger:
    ledger = ShowLedger()
    for event in events:
        ledger.apply(event)
    return ledger


def test_audit_counts_an_oversell_when_a_seat_is_held_twice() -> None:
    ledger = _fold(
        _created("a", 2),
        _placed("h1", "a", ("A-1",), 1),
        _placed("h2", "a", ("A-1",), 1),
    )

    assert ledger.oversold == 1


def test_audit_counts_an_oversell_when_ga_holds_pass_capacity() -> None:
    ledger = _fold(
        _created("ga", 3), _placed("h1", "ga", (), 2), _placed("h2", "ga", (), 2)
    )

    assert ledger.oversold == 1


def test_audit_finds_no_oversell_when_an_expired_hold_frees_its_places() -> None:
    ledger = _fold(
        _created("ga", 2),
        _placed("h1", "ga", (), 2),
        HoldExpired("t", 5, "h1", "s", "ga", (), 2),
        _placed("h2", "ga", (), 2),
    )

    assert ledger.oversold == 0


def test_audit_counts_a_hold_sold_twice_and_a_sale_without_hold() -> None:
    sale = TicketsSold("p", 2, "h1", "h1", "s", "ga", "b", (), 1, ("h1-1",))
    ghost = TicketsSold("p", 3, "h9", "h9", "s", "ga", "b", (), 1, ("h9-1",))

    ledger = _fold(_created("ga", 5), _placed("h1", "ga", (), 1), sale, sale, ghost)

    assert (ledger.sold_twice, ledger.sold_without_hold) == (1, 1)
    assert ledger.occupied("ga") == 1


def test_audit_counts_an_oversell_when_withdrawn_capacity_was_still_sold() -> None:
    ledger = _fold(
        _created("ga", 2),
        InventoryWithdrawn("w", 2, "s", "ga", (), 1, 1),
        _placed("h1", "ga", (), 2),
    )

    assert ledger.oversold == 1

"""The orders read model as a pure fold of events: no I/O, no clock.

An order is a paid hold: ``TicketsSold`` makes it, with its order id, buyer,
seats and tickets. The store writes it twice, into ``orders_by_id`` and into
``orders_by_buyer``, both ``USING TIMESTAMP`` from its log position, so a
redelivered or replayed ``TicketsSold`` rewrites the same values and changes
nothing, and an older write never replaces a newer one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from commands.model import Event, TicketsSold

# TODO(limit): ``RefundRequired`` names neither an order nor a buyer, so a payment
# that ends in a refund (success after the hold's seats went elsewhere) is not an
# order here. It matters once buyers must see refunds in their orders; the event
# then needs the buyer (schemas and core are owned by the write side).


@dataclass(frozen=True, slots=True)
class OrderView:
    """One order as the read model knows it; ``sold_at_ms`` is log time."""

    order_id: str
    hold_id: str
    show_id: str
    section_id: str
    buyer_id: str
    seat_ids: tuple[str, ...]
    quantity: int
    ticket_ids: tuple[str, ...]
    sold_at_ms: int
    log_partition: int
    log_offset: int
    log_index: int

    @property
    def position(self) -> tuple[int, int]:
        """The log position of the event that made this order."""
        return (self.log_offset, self.log_index)


def order_change(
    event: Event, partition: int, offset: int, index: int = 0
) -> OrderView | None:
    """The order an event makes, or None if it makes none."""
    if not isinstance(event, TicketsSold):
        return None
    return OrderView(
        order_id=event.order_id,
        hold_id=event.hold_id,
        show_id=event.show_id,
        section_id=event.section_id,
        buyer_id=event.buyer_id,
        seat_ids=event.seat_ids,
        quantity=event.quantity,
        ticket_ids=event.ticket_ids,
        sold_at_ms=event.occurred_at_ms,
        log_partition=partition,
        log_offset=offset,
        log_index=index,
    )


class OrderFold:
    """Orders not yet written, the newest write of each order id."""

    def __init__(self) -> None:
        self._pending: dict[str, OrderView] = {}

    def apply(self, event: Event, partition: int, offset: int, index: int = 0) -> bool:
        """Note the order an event makes; False if it makes none."""
        change = order_change(event, partition, offset, index)
        if change is None:
            return False
        old = self._pending.get(change.order_id)
        if old is None or change.position > old.position:
            self._pending[change.order_id] = change
        return True

    def changes(self) -> list[OrderView]:
        """Orders not yet written."""
        return list(self._pending.values())

    def clear(self) -> None:
        """Forget every order (after the store acknowledged them)."""
        self._pending.clear()

    def forget_partitions(self, partitions: Iterable[int]) -> None:
        """Drop unwritten orders of partitions this process no longer owns."""
        gone = set(partitions)
        for key in [k for k, o in self._pending.items() if o.log_partition in gone]:
            del self._pending[key]

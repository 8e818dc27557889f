"""Round trips of the Avro codec: every command and event survives encode/decode."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from commands.model import (
    AddInventory,
    ChangeHoldTtl,
    Checkout,
    CheckoutStarted,
    CloseSale,
    Command,
    CommandRejected,
    CreateShow,
    Event,
    HoldExpired,
    HoldPlaced,
    HoldRejected,
    HoldReleased,
    HoldTtlChanged,
    InventoryAdded,
    InventoryMode,
    InventoryWithdrawn,
    OpenSale,
    PlaceHold,
    RecordPaymentResult,
    RefundReason,
    RefundRequired,
    RejectionReason,
    ReleaseHold,
    ReleaseReason,
    Row,
    SaleClosed,
    SaleOpened,
    SectionCreated,
    SectionKind,
    SectionRejected,
    SectionSpec,
    Tick,
    TicketsSold,
    WithdrawInventory,
)
from schemas.codec import (
    command_headers,
    decode_commands,
    decode_events,
    encode_commands,
    encode_events,
    event_headers,
)

ids = st.text()
longs = st.integers(min_value=-(2**63), max_value=2**63 - 1)
ints = st.integers(min_value=-(2**31), max_value=2**31 - 1)
strings = st.lists(st.text(), max_size=5).map(tuple)
kinds = st.sampled_from(SectionKind)
reasons = st.sampled_from(RejectionReason)
modes = st.sampled_from(InventoryMode)

rows = st.builds(Row, label=ids, seat_numbers=strings)
section_specs = st.builds(
    SectionSpec,
    section_id=ids,
    kind=kinds,
    rows=st.lists(rows, max_size=3).map(tuple),
    capacity=ints,
)
create_shows = st.builds(
    CreateShow,
    command_id=ids,
    issued_at_ms=longs,
    show_id=ids,
    hold_ttl_seconds=ints,
    max_tickets_per_buyer=ints,
    sections=st.lists(section_specs, max_size=3).map(tuple),
    inventory_mode=modes,
    payment_window_seconds=ints,
    sale_open=st.booleans(),
)
place_holds = st.builds(
    PlaceHold,
    command_id=ids,
    issued_at_ms=longs,
    show_id=ids,
    section_id=ids,
    buyer_id=ids,
    seat_ids=strings,
    quantity=ints,
)
row_tuples = st.lists(rows, max_size=3).map(tuple)


def section_command(
    cls: type, **fields: st.SearchStrategy[object]
) -> st.SearchStrategy:
    """A strategy for a command addressed to a section, with its own fields."""
    return st.builds(
        cls,
        command_id=ids,
        issued_at_ms=longs,
        show_id=ids,
        section_id=ids,
        **fields,
    )


def section_event(cls: type, **fields: st.SearchStrategy[object]) -> st.SearchStrategy:
    """A strategy for an event of a section, with its own fields."""
    return st.builds(
        cls,
        command_id=ids,
        occurred_at_ms=longs,
        show_id=ids,
        section_id=ids,
        **fields,
    )


commands: st.SearchStrategy[Command] = st.one_of(
    create_shows,
    place_holds,
    section_command(ReleaseHold, buyer_id=ids, hold_id=ids),
    section_command(Checkout, buyer_id=ids, hold_id=ids),
    section_command(
        RecordPaymentResult, hold_id=ids, provider_event_id=ids, succeeded=st.booleans()
    ),
    st.builds(Tick, command_id=ids, issued_at_ms=longs),
    section_command(OpenSale),
    section_command(CloseSale),
    section_command(ChangeHoldTtl, hold_ttl_seconds=ints),
    section_command(AddInventory, rows=row_tuples, quantity=ints),
    section_command(WithdrawInventory, seat_ids=strings, quantity=ints),
)

events: st.SearchStrategy[Event] = st.one_of(
    st.builds(
        SectionCreated,
        command_id=ids,
        occurred_at_ms=longs,
        show_id=ids,
        section_id=ids,
        kind=kinds,
        capacity=ints,
        hold_ttl_seconds=ints,
        inventory_mode=modes,
    ),
    st.builds(
        SectionRejected,
        command_id=ids,
        occurred_at_ms=longs,
        show_id=ids,
        section_id=ids,
        reason=reasons,
    ),
    st.builds(
        HoldPlaced,
        command_id=ids,
        occurred_at_ms=longs,
        hold_id=ids,
        show_id=ids,
        section_id=ids,
        buyer_id=ids,
        seat_ids=strings,
        quantity=ints,
        expires_at_ms=longs,
    ),
    st.builds(
        HoldRejected,
        command_id=ids,
        occurred_at_ms=longs,
        show_id=ids,
        section_id=ids,
        buyer_id=ids,
        reason=reasons,
        detail=st.text(),
    ),
    st.builds(
        HoldExpired,
        command_id=ids,
        occurred_at_ms=longs,
        hold_id=ids,
        show_id=ids,
        section_id=ids,
        seat_ids=strings,
        quantity=ints,
    ),
    section_event(
        HoldReleased,
        hold_id=ids,
        reason=st.sampled_from(ReleaseReason),
        seat_ids=strings,
        quantity=ints,
    ),
    section_event(
        CheckoutStarted, hold_id=ids, buyer_id=ids, payment_deadline_ms=longs
    ),
    section_event(
        TicketsSold,
        hold_id=ids,
        order_id=ids,
        buyer_id=ids,
        seat_ids=strings,
        quantity=ints,
        ticket_ids=strings,
    ),
    section_event(
        RefundRequired,
        hold_id=ids,
        provider_event_id=ids,
        reason=st.sampled_from(RefundReason),
    ),
    section_event(SaleOpened),
    section_event(SaleClosed),
    section_event(HoldTtlChanged, hold_ttl_seconds=ints),
    section_event(
        InventoryAdded, rows=row_tuples, seat_ids=strings, quantity=ints, capacity=ints
    ),
    section_event(InventoryWithdrawn, seat_ids=strings, quantity=ints, capacity=ints),
    section_event(CommandRejected, command=ids, reason=reasons, detail=st.text()),
)


@settings(deadline=None)
@given(st.lists(commands, min_size=1, max_size=5))
def test_decode_returns_same_commands_when_batch_was_encoded(
    batch: list[Command],
) -> None:
    assert decode_commands(encode_commands(batch), command_headers()) == batch


@settings(deadline=None)
@given(st.lists(events, min_size=1, max_size=5))
def test_decode_returns_same_events_when_batch_was_encoded(batch: list[Event]) -> None:
    assert decode_events(encode_events(batch), event_headers()) == batch


@settings(deadline=None, max_examples=300)
@given(st.lists(events, min_size=1, max_size=5))
def test_decoded_events_keep_enum_tuple_and_bool_types_when_roundtripped(
    batch: list[Event],
) -> None:
    for decoded in decode_events(encode_events(batch), event_headers()):
        for name in type(decoded).__dataclass_fields__:
            value = getattr(decoded, name)
            assert not isinstance(value, list), f"{name} must be a tuple"
        if isinstance(decoded, HoldReleased | RefundRequired | CommandRejected):
            assert type(decoded.reason) in (
                ReleaseReason,
                RefundReason,
                RejectionReason,
            )
        if isinstance(decoded, SectionCreated):
            assert type(decoded.inventory_mode) is InventoryMode
        if isinstance(decoded, InventoryAdded):
            assert all(type(row.seat_numbers) is tuple for row in decoded.rows)


@settings(deadline=None)
@given(st.lists(commands, min_size=1, max_size=5))
def test_decoded_enums_and_tuples_keep_their_types_when_roundtripped(
    batch: list[Command],
) -> None:
    for command in decode_commands(encode_commands(batch), command_headers()):
        if isinstance(command, PlaceHold | WithdrawInventory):
            assert type(command.seat_ids) is tuple
        elif isinstance(command, AddInventory):
            assert all(type(row.seat_numbers) is tuple for row in command.rows)
        elif isinstance(command, RecordPaymentResult):
            assert type(command.succeeded) is bool
        elif isinstance(command, CreateShow):
            assert type(command.inventory_mode) is InventoryMode
            assert type(command.sale_open) is bool
            assert type(command.sections) is tuple
            for spec in command.sections:
                assert type(spec.kind) is SectionKind
                assert type(spec.rows) is tuple
                assert all(type(row.seat_numbers) is tuple for row in spec.rows)

"""Round trips of the Avro codec: every command and event survives encode/decode."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from commands.model import (
    Command,
    CreateShow,
    Event,
    HoldExpired,
    HoldPlaced,
    HoldRejected,
    PlaceHold,
    RejectionReason,
    Row,
    SectionCreated,
    SectionKind,
    SectionRejected,
    SectionSpec,
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
commands: st.SearchStrategy[Command] = st.one_of(create_shows, place_holds)

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


@settings(deadline=None)
@given(st.lists(commands, min_size=1, max_size=5))
def test_decoded_enums_and_tuples_keep_their_types_when_roundtripped(
    batch: list[Command],
) -> None:
    for command in decode_commands(encode_commands(batch), command_headers()):
        if isinstance(command, PlaceHold):
            assert type(command.seat_ids) is tuple
        else:
            assert type(command.sections) is tuple
            for spec in command.sections:
                assert type(spec.kind) is SectionKind
                assert type(spec.rows) is tuple
                assert all(type(row.seat_numbers) is tuple for row in spec.rows)

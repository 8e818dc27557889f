"""The Avro codec's contract on bad records: a specific CodecError, raw bytes kept."""

from __future__ import annotations

import re
from dataclasses import replace
from io import BytesIO
from pathlib import Path

import pytest
from fastavro import parse_schema, schemaless_writer
from fastavro.schema import load_schema
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.errors import (
    CodecError,
    CorruptRecordError,
    InfrastructureError,
    TicketingError,
    UnknownSchemaError,
)
from commands.model import (
    CheckoutStarted,
    CreateShow,
    HoldRejected,
    InventoryMode,
    PlaceHold,
    RejectionReason,
    Row,
    SectionCreated,
    SectionKind,
    SectionSpec,
)
from schemas.codec import (
    COMMAND_SCHEMA_FP,
    EVENT_SCHEMA_FP,
    SCHEMA_HEADER,
    command_headers,
    decode_commands,
    decode_events,
    encode_commands,
    encode_events,
    event_headers,
)

HOLD = PlaceHold(
    command_id="cmd-1",
    issued_at_ms=1_733_322_000_000,
    show_id="show-1",
    section_id="A",
    buyer_id="buyer-1",
    seat_ids=("1-1", "1-2"),
)
SHOW = CreateShow(
    command_id="cmd-0",
    issued_at_ms=1_733_321_000_000,
    show_id="show-1",
    hold_ttl_seconds=600,
    max_tickets_per_buyer=4,
    sections=(
        SectionSpec("A", SectionKind.RESERVED, rows=(Row("1", ("1", "2")),)),
        SectionSpec("GA", SectionKind.GENERAL_ADMISSION, capacity=500),
    ),
)
CREATED = SectionCreated(
    command_id="cmd-0",
    occurred_at_ms=1,
    show_id="show-1",
    section_id="GA",
    kind=SectionKind.RESERVED,
    capacity=500,
    hold_ttl_seconds=600,
)
VALUE = encode_commands([HOLD])


def _raises_corrupt(value: bytes | None) -> CorruptRecordError:
    with pytest.raises(CorruptRecordError) as info:
        decode_commands(value, command_headers())
    return info.value


# --- happy paths ---------------------------------------------------------------------


def test_decode_returns_commands_when_batch_holds_several() -> None:
    assert decode_commands(encode_commands([SHOW, HOLD]), command_headers()) == [
        SHOW,
        HOLD,
    ]


def test_decode_returns_events_when_headers_are_a_mapping() -> None:
    rejected = HoldRejected(
        "cmd-2", 2, "show-1", "A", "buyer-1", RejectionReason.SOLD_OUT, "no seats"
    )
    value = encode_events([CREATED, rejected])
    headers = dict(event_headers())
    assert decode_events(value, headers) == [CREATED, rejected]


def test_decode_uses_last_header_when_schema_header_is_repeated() -> None:
    headers = [(SCHEMA_HEADER, b"stale"), ("trace", b"x"), *command_headers()]
    assert decode_commands(VALUE, headers) == [HOLD]


def test_headers_carry_hex_fingerprints_when_built() -> None:
    assert command_headers() == [(SCHEMA_HEADER, COMMAND_SCHEMA_FP.encode())]
    assert event_headers() == [(SCHEMA_HEADER, EVENT_SCHEMA_FP.encode())]
    assert re.fullmatch("[0-9a-f]{16}", COMMAND_SCHEMA_FP)
    assert re.fullmatch("[0-9a-f]{16}", EVENT_SCHEMA_FP)


def test_fingerprints_are_pinned_when_schemas_are_unchanged() -> None:
    # A change here means the wire schema changed: evolve it compatibly (new fields
    # with defaults, order kept), and keep readers for the old fingerprint.
    assert COMMAND_SCHEMA_FP == "4003a814f5d6108f"
    assert EVENT_SCHEMA_FP == "0dad2f744f4cbfa6"


def _legacy_value(name: str, fp: str, record: dict[str, object]) -> bytes:
    schema_dir = Path(__file__).resolve().parents[2] / "schemas"
    schema = parse_schema(load_schema(str(schema_dir / f"ticketing.{name}.{fp}.avsc")))
    out = BytesIO()
    schemaless_writer(out, schema, record)
    return out.getvalue()


def test_decode_fills_defaults_when_command_was_written_by_the_first_schema() -> None:
    show = {
        "command_id": "cmd-0",
        "issued_at_ms": 5,
        "show_id": "show-1",
        "hold_ttl_seconds": 600,
        "max_tickets_per_buyer": 4,
        "sections": [
            {"section_id": "GA", "kind": "general_admission", "rows": [], "capacity": 9}
        ],
    }
    value = _legacy_value(
        "CommandBatch",
        "1088b0f7fbc60094",
        {"commands": [{"body": ("ticketing.CreateShow", show)}]},
    )

    (decoded,) = decode_commands(value, [(SCHEMA_HEADER, b"1088b0f7fbc60094")])

    assert isinstance(decoded, CreateShow)
    assert decoded.inventory_mode is InventoryMode.HOLDS
    assert (decoded.payment_window_seconds, decoded.sale_open) == (900, True)
    assert decoded.sections[0].capacity == 9


def test_decode_fills_defaults_when_event_was_written_by_the_first_schema() -> None:
    created = {
        "command_id": "cmd-0",
        "occurred_at_ms": 1,
        "show_id": "show-1",
        "section_id": "GA",
        "kind": "reserved",
        "capacity": 500,
        "hold_ttl_seconds": 600,
    }
    value = _legacy_value(
        "EventBatch",
        "5142d740f204634a",
        {"events": [("ticketing.SectionCreated", created)]},
    )

    decoded = decode_events(value, [(SCHEMA_HEADER, b"5142d740f204634a")])

    assert decoded == [CREATED]


def test_decode_fills_payment_defaults_when_written_before_payments() -> None:
    started = {
        "command_id": "cmd-3",
        "occurred_at_ms": 3,
        "hold_id": "hold-1",
        "show_id": "show-1",
        "section_id": "GA",
        "buyer_id": "buyer-1",
        "payment_deadline_ms": 900_003,
    }
    value = _legacy_value(
        "EventBatch",
        "1479ae6608e81a76",
        {"events": [("ticketing.CheckoutStarted", started)]},
    )

    (decoded,) = decode_events(value, [(SCHEMA_HEADER, b"1479ae6608e81a76")])

    assert isinstance(decoded, CheckoutStarted)
    assert (decoded.hold_id, decoded.quantity, decoded.amount_cents) == (
        "hold-1",
        0,
        0,
    )


def test_decode_fills_price_default_when_show_was_written_before_payments() -> None:
    show = {
        "command_id": "cmd-0",
        "issued_at_ms": 5,
        "show_id": "show-1",
        "hold_ttl_seconds": 600,
        "max_tickets_per_buyer": 4,
        "sections": [
            {"section_id": "GA", "kind": "general_admission", "rows": [], "capacity": 9}
        ],
        "inventory_mode": "holds",
        "payment_window_seconds": 900,
        "sale_open": True,
    }
    value = _legacy_value(
        "CommandBatch",
        "25216ba694e0b295",
        {"commands": [{"body": ("ticketing.CreateShow", show)}]},
    )

    (decoded,) = decode_commands(value, [(SCHEMA_HEADER, b"25216ba694e0b295")])

    assert isinstance(decoded, CreateShow)
    assert decoded.sections[0].price_cents == 0


# --- encoding refusals (programming errors, not codec errors) ----------------------


def test_encode_raises_value_error_when_batch_is_empty() -> None:
    with pytest.raises(ValueError):
        encode_commands([])
    with pytest.raises(ValueError):
        encode_events([])


def test_encode_raises_type_error_when_item_is_of_the_other_kind() -> None:
    with pytest.raises(TypeError):
        encode_commands([CREATED])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        encode_events([HOLD])  # type: ignore[list-item]


# --- unknown schema ------------------------------------------------------------------


def test_raises_unknown_schema_when_fingerprint_is_unknown() -> None:
    with pytest.raises(UnknownSchemaError) as info:
        decode_commands(VALUE, [(SCHEMA_HEADER, b"0000000000000000")])
    assert info.value.raw == VALUE
    assert info.value.reason == "unknown_schema"


@pytest.mark.parametrize("headers", [None, [], {}, [("trace", b"x")], {"a": b"b"}])
def test_raises_unknown_schema_when_header_is_missing(
    headers: list[tuple[str, bytes]] | dict[str, bytes] | None,
) -> None:
    with pytest.raises(UnknownSchemaError) as info:
        decode_commands(VALUE, headers)
    assert info.value.raw == VALUE


def test_raises_unknown_schema_when_events_are_decoded_as_commands() -> None:
    value = encode_events([CREATED])
    with pytest.raises(UnknownSchemaError) as info:
        decode_commands(value, event_headers())
    assert info.value.raw == value


def test_raises_unknown_schema_when_commands_are_decoded_as_events() -> None:
    with pytest.raises(UnknownSchemaError) as info:
        decode_events(VALUE, command_headers())
    assert info.value.raw == VALUE


# --- corrupt records -----------------------------------------------------------------


@pytest.mark.parametrize("garbage", [b"\xff\xfe", b"", b"\x01", b"\x02\x04", b"\x02"])
def test_raises_corrupt_record_when_bytes_are_garbage(garbage: bytes) -> None:
    error = _raises_corrupt(garbage)
    assert error.raw == garbage
    assert error.reason == "corrupt_record"


def test_raises_corrupt_record_when_record_is_truncated() -> None:
    for end in range(len(VALUE)):
        error = _raises_corrupt(VALUE[:end])
        assert error.raw == VALUE[:end]
        assert error.__cause__ is not None


@pytest.mark.parametrize("trailer", [b"\x00", b"\xff\xfe", VALUE])
def test_raises_corrupt_record_when_valid_record_has_trailing_bytes(
    trailer: bytes,
) -> None:
    assert _raises_corrupt(VALUE + trailer).raw == VALUE + trailer


def test_raises_corrupt_record_when_batch_is_empty() -> None:
    assert _raises_corrupt(b"\x00").raw == b"\x00"
    with pytest.raises(CorruptRecordError):
        decode_events(b"\x00", event_headers())


def test_raises_corrupt_record_when_value_is_none() -> None:
    assert _raises_corrupt(None).raw is None


def test_raises_corrupt_record_when_string_is_not_utf8() -> None:
    value = VALUE.replace(b"cmd-1", b"cmd-\xff")
    assert _raises_corrupt(value).raw == value


def test_raises_corrupt_record_when_union_branch_is_unknown() -> None:
    # array of 1, Command.body union index 11 (zigzag 22): only 0 to 10 exist
    value = b"\x02\x16" + VALUE[2:]
    assert _raises_corrupt(value).raw == value


def test_raises_corrupt_record_when_enum_symbol_is_unknown() -> None:
    reserved = encode_events([CREATED])
    general = encode_events([replace(CREATED, kind=SectionKind.GENERAL_ADMISSION)])
    # the two encodings differ only in the enum index byte: patch in index 2
    (offset,) = [
        i for i, (a, b) in enumerate(zip(reserved, general, strict=True)) if a != b
    ]
    value = reserved[:offset] + b"\x04" + reserved[offset + 1 :]
    with pytest.raises(CorruptRecordError) as info:
        decode_events(value, event_headers())
    assert info.value.raw == value


# --- the error tree ------------------------------------------------------------------


def test_codec_errors_are_infrastructure_errors_when_caught_at_the_root() -> None:
    assert issubclass(UnknownSchemaError, CodecError)
    assert issubclass(CorruptRecordError, CodecError)
    assert issubclass(CodecError, InfrastructureError)
    assert issubclass(InfrastructureError, TicketingError)


# --- fuzzing -------------------------------------------------------------------------


@settings(deadline=None, max_examples=500)
@given(st.binary(max_size=64))
def test_decode_commands_returns_list_or_raises_codec_error_when_bytes_are_arbitrary(
    value: bytes,
) -> None:
    try:
        result = decode_commands(value, command_headers())
    except CodecError as error:
        assert error.raw == value
    else:
        assert isinstance(result, list) and result


@settings(deadline=None, max_examples=500)
@given(st.binary(max_size=16), st.binary(max_size=16))
def test_decode_events_returns_list_or_raises_codec_error_when_bytes_are_mutated(
    head: bytes, tail: bytes
) -> None:
    value = head + encode_events([CREATED])[len(head) :] + tail
    try:
        result = decode_events(value, event_headers())
    except CodecError as error:
        assert error.raw == value
    else:
        assert isinstance(result, list) and result

"""Avro codec of the Kafka record values: batches of commands and batches of events.

A record value is one ``ticketing.CommandBatch`` or ``ticketing.EventBatch`` written
schemaless; the record's ``schema-fp`` header carries the CRC-64-AVRO fingerprint
(hex) of the batch schema's parsing canonical form, so a reader knows which schema
wrote it. Dataclasses map to Avro dicts by explicit per-type functions (no
``dataclasses.asdict``: this runs on the hot path). Decoding failures of any kind are
translated here, once, into ``CodecError`` subclasses that keep the raw bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from io import BytesIO
from pathlib import Path
from typing import Any, Final, cast

from fastavro import schemaless_reader, schemaless_writer
from fastavro.schema import (
    fingerprint,
    load_schema,
    parse_schema,
    to_parsing_canonical_form,
)

from commands.errors import CodecError, CorruptRecordError, UnknownSchemaError
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

__all__ = [
    "COMMAND_SCHEMA_FP",
    "EVENT_SCHEMA_FP",
    "SCHEMA_HEADER",
    "CodecError",
    "CorruptRecordError",
    "UnknownSchemaError",
    "command_headers",
    "decode_commands",
    "decode_events",
    "encode_commands",
    "encode_events",
    "event_headers",
]

SCHEMA_HEADER: Final = "schema-fp"
"""Kafka header naming the fingerprint of the schema that wrote the record value."""

_SCHEMA_DIR: Final = Path(__file__).resolve().parent

AvroRecord = dict[str, Any]
"""A record as fastavro reads and writes it."""

Headers = Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None
"""Kafka record headers as the clients hand them over: pairs or a mapping."""


def _load(full_name: str) -> tuple[Any, str]:
    """Load and parse a schema by full name, returning it with its fingerprint."""
    schema = parse_schema(load_schema(str(_SCHEMA_DIR / f"{full_name}.avsc")))
    return schema, fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO")


_COMMAND_BATCH_SCHEMA, COMMAND_SCHEMA_FP = _load("ticketing.CommandBatch")
_EVENT_BATCH_SCHEMA, EVENT_SCHEMA_FP = _load("ticketing.EventBatch")
_COMMAND_FP_BYTES: Final = COMMAND_SCHEMA_FP.encode("ascii")
_EVENT_FP_BYTES: Final = EVENT_SCHEMA_FP.encode("ascii")

# Older batch schemas, frozen self-contained as ``<name>.<fingerprint>.avsc``: records
# they wrote stay readable, resolved to the current schema (new fields get defaults).
_LEGACY_COMMAND_FPS: Final = ("1088b0f7fbc60094",)
_LEGACY_EVENT_FPS: Final = ("5142d740f204634a",)


def _writer_schemas(full_name: str, current: Any, legacy: tuple[str, ...]) -> Any:
    """The schema that wrote a record, by fingerprint (ASCII bytes)."""
    schemas = {fp.encode("ascii"): _load(f"{full_name}.{fp}")[0] for fp in legacy}
    schemas[_load(full_name)[1].encode("ascii")] = current
    return schemas


_COMMAND_WRITER_SCHEMAS: Final[dict[bytes, Any]] = _writer_schemas(
    "ticketing.CommandBatch", _COMMAND_BATCH_SCHEMA, _LEGACY_COMMAND_FPS
)
_EVENT_WRITER_SCHEMAS: Final[dict[bytes, Any]] = _writer_schemas(
    "ticketing.EventBatch", _EVENT_BATCH_SCHEMA, _LEGACY_EVENT_FPS
)

_SECTION_KINDS: Final = {kind.value: kind for kind in SectionKind}
_REASONS: Final = {reason.value: reason for reason in RejectionReason}
_MODES: Final = {mode.value: mode for mode in InventoryMode}
_RELEASE_REASONS: Final = {reason.value: reason for reason in ReleaseReason}
_REFUND_REASONS: Final = {reason.value: reason for reason in RefundReason}

# --- dataclass -> Avro dict -------------------------------------------------------
# Tuples are written as they are (fastavro accepts any sized iterable for an array)
# and StrEnum members as they are (they are ``str``): no copies on the hot path.


def _row_to_avro(row: Row) -> AvroRecord:
    """Map a row to its Avro record."""
    return {"label": row.label, "seat_numbers": row.seat_numbers}


def _section_spec_to_avro(spec: SectionSpec) -> AvroRecord:
    """Map a section spec to its Avro record."""
    return {
        "section_id": spec.section_id,
        "kind": spec.kind,
        "rows": [_row_to_avro(row) for row in spec.rows],
        "capacity": spec.capacity,
    }


def _create_show_to_avro(c: CreateShow) -> AvroRecord:
    """Map a CreateShow command to its Avro record."""
    return {
        "command_id": c.command_id,
        "issued_at_ms": c.issued_at_ms,
        "show_id": c.show_id,
        "hold_ttl_seconds": c.hold_ttl_seconds,
        "max_tickets_per_buyer": c.max_tickets_per_buyer,
        "sections": [_section_spec_to_avro(spec) for spec in c.sections],
        "inventory_mode": c.inventory_mode,
        "payment_window_seconds": c.payment_window_seconds,
        "sale_open": c.sale_open,
    }


def _place_hold_to_avro(c: PlaceHold) -> AvroRecord:
    """Map a PlaceHold command to its Avro record."""
    return {
        "command_id": c.command_id,
        "issued_at_ms": c.issued_at_ms,
        "show_id": c.show_id,
        "section_id": c.section_id,
        "buyer_id": c.buyer_id,
        "seat_ids": c.seat_ids,
        "quantity": c.quantity,
    }


def _section_created_to_avro(e: SectionCreated) -> AvroRecord:
    """Map a SectionCreated event to its Avro record."""
    return {
        "command_id": e.command_id,
        "occurred_at_ms": e.occurred_at_ms,
        "show_id": e.show_id,
        "section_id": e.section_id,
        "kind": e.kind,
        "capacity": e.capacity,
        "hold_ttl_seconds": e.hold_ttl_seconds,
        "inventory_mode": e.inventory_mode,
    }


def _section_rejected_to_avro(e: SectionRejected) -> AvroRecord:
    """Map a SectionRejected event to its Avro record."""
    return {
        "command_id": e.command_id,
        "occurred_at_ms": e.occurred_at_ms,
        "show_id": e.show_id,
        "section_id": e.section_id,
        "reason": e.reason,
    }


def _hold_placed_to_avro(e: HoldPlaced) -> AvroRecord:
    """Map a HoldPlaced event to its Avro record."""
    return {
        "command_id": e.command_id,
        "occurred_at_ms": e.occurred_at_ms,
        "hold_id": e.hold_id,
        "show_id": e.show_id,
        "section_id": e.section_id,
        "buyer_id": e.buyer_id,
        "seat_ids": e.seat_ids,
        "quantity": e.quantity,
        "expires_at_ms": e.expires_at_ms,
    }


def _hold_rejected_to_avro(e: HoldRejected) -> AvroRecord:
    """Map a HoldRejected event to its Avro record."""
    return {
        "command_id": e.command_id,
        "occurred_at_ms": e.occurred_at_ms,
        "show_id": e.show_id,
        "section_id": e.section_id,
        "buyer_id": e.buyer_id,
        "reason": e.reason,
        "detail": e.detail,
    }


def _hold_expired_to_avro(e: HoldExpired) -> AvroRecord:
    """Map a HoldExpired event to its Avro record."""
    return {
        "command_id": e.command_id,
        "occurred_at_ms": e.occurred_at_ms,
        "hold_id": e.hold_id,
        "show_id": e.show_id,
        "section_id": e.section_id,
        "seat_ids": e.seat_ids,
        "quantity": e.quantity,
    }


def _release_hold_to_avro(c: ReleaseHold) -> AvroRecord:
    """Map a ReleaseHold command to its Avro record."""
    return {
        "command_id": c.command_id,
        "issued_at_ms": c.issued_at_ms,
        "show_id": c.show_id,
        "section_id": c.section_id,
        "buyer_id": c.buyer_id,
        "hold_id": c.hold_id,
    }


def _checkout_to_avro(c: Checkout) -> AvroRecord:
    """Map a Checkout command to its Avro record."""
    return {
        "command_id": c.command_id,
        "issued_at_ms": c.issued_at_ms,
        "show_id": c.show_id,
        "section_id": c.section_id,
        "buyer_id": c.buyer_id,
        "hold_id": c.hold_id,
    }


def _record_payment_result_to_avro(c: RecordPaymentResult) -> AvroRecord:
    """Map a RecordPaymentResult command to its Avro record."""
    return {
        "command_id": c.command_id,
        "issued_at_ms": c.issued_at_ms,
        "show_id": c.show_id,
        "section_id": c.section_id,
        "hold_id": c.hold_id,
        "provider_event_id": c.provider_event_id,
        "succeeded": c.succeeded,
    }


def _tick_to_avro(c: Tick) -> AvroRecord:
    """Map a Tick command to its Avro record."""
    return {"command_id": c.command_id, "issued_at_ms": c.issued_at_ms}


def _sale_command_to_avro(c: OpenSale | CloseSale) -> AvroRecord:
    """Map an OpenSale or CloseSale command to its Avro record."""
    return {
        "command_id": c.command_id,
        "issued_at_ms": c.issued_at_ms,
        "show_id": c.show_id,
        "section_id": c.section_id,
    }


def _change_hold_ttl_to_avro(c: ChangeHoldTtl) -> AvroRecord:
    """Map a ChangeHoldTtl command to its Avro record."""
    return {
        "command_id": c.command_id,
        "issued_at_ms": c.issued_at_ms,
        "show_id": c.show_id,
        "section_id": c.section_id,
        "hold_ttl_seconds": c.hold_ttl_seconds,
    }


def _add_inventory_to_avro(c: AddInventory) -> AvroRecord:
    """Map an AddInventory command to its Avro record."""
    return {
        "command_id": c.command_id,
        "issued_at_ms": c.issued_at_ms,
        "show_id": c.show_id,
        "section_id": c.section_id,
        "rows": [_row_to_avro(row) for row in c.rows],
        "quantity": c.quantity,
    }


def _withdraw_inventory_to_avro(c: WithdrawInventory) -> AvroRecord:
    """Map a WithdrawInventory command to its Avro record."""
    return {
        "command_id": c.command_id,
        "issued_at_ms": c.issued_at_ms,
        "show_id": c.show_id,
        "section_id": c.section_id,
        "seat_ids": c.seat_ids,
        "quantity": c.quantity,
    }


def _hold_released_to_avro(e: HoldReleased) -> AvroRecord:
    """Map a HoldReleased event to its Avro record."""
    return {
        "command_id": e.command_id,
        "occurred_at_ms": e.occurred_at_ms,
        "hold_id": e.hold_id,
        "show_id": e.show_id,
        "section_id": e.section_id,
        "reason": e.reason,
        "seat_ids": e.seat_ids,
        "quantity": e.quantity,
    }


def _checkout_started_to_avro(e: CheckoutStarted) -> AvroRecord:
    """Map a CheckoutStarted event to its Avro record."""
    return {
        "command_id": e.command_id,
        "occurred_at_ms": e.occurred_at_ms,
        "hold_id": e.hold_id,
        "show_id": e.show_id,
        "section_id": e.section_id,
        "buyer_id": e.buyer_id,
        "payment_deadline_ms": e.payment_deadline_ms,
    }


def _tickets_sold_to_avro(e: TicketsSold) -> AvroRecord:
    """Map a TicketsSold event to its Avro record."""
    return {
        "command_id": e.command_id,
        "occurred_at_ms": e.occurred_at_ms,
        "hold_id": e.hold_id,
        "order_id": e.order_id,
        "show_id": e.show_id,
        "section_id": e.section_id,
        "buyer_id": e.buyer_id,
        "seat_ids": e.seat_ids,
        "quantity": e.quantity,
        "ticket_ids": e.ticket_ids,
    }


def _refund_required_to_avro(e: RefundRequired) -> AvroRecord:
    """Map a RefundRequired event to its Avro record."""
    return {
        "command_id": e.command_id,
        "occurred_at_ms": e.occurred_at_ms,
        "hold_id": e.hold_id,
        "show_id": e.show_id,
        "section_id": e.section_id,
        "provider_event_id": e.provider_event_id,
        "reason": e.reason,
    }


def _sale_event_to_avro(e: SaleOpened | SaleClosed) -> AvroRecord:
    """Map a SaleOpened or SaleClosed event to its Avro record."""
    return {
        "command_id": e.command_id,
        "occurred_at_ms": e.occurred_at_ms,
        "show_id": e.show_id,
        "section_id": e.section_id,
    }


def _hold_ttl_changed_to_avro(e: HoldTtlChanged) -> AvroRecord:
    """Map a HoldTtlChanged event to its Avro record."""
    return {
        "command_id": e.command_id,
        "occurred_at_ms": e.occurred_at_ms,
        "show_id": e.show_id,
        "section_id": e.section_id,
        "hold_ttl_seconds": e.hold_ttl_seconds,
    }


def _inventory_added_to_avro(e: InventoryAdded) -> AvroRecord:
    """Map an InventoryAdded event to its Avro record."""
    return {
        "command_id": e.command_id,
        "occurred_at_ms": e.occurred_at_ms,
        "show_id": e.show_id,
        "section_id": e.section_id,
        "rows": [_row_to_avro(row) for row in e.rows],
        "seat_ids": e.seat_ids,
        "quantity": e.quantity,
        "capacity": e.capacity,
    }


def _inventory_withdrawn_to_avro(e: InventoryWithdrawn) -> AvroRecord:
    """Map an InventoryWithdrawn event to its Avro record."""
    return {
        "command_id": e.command_id,
        "occurred_at_ms": e.occurred_at_ms,
        "show_id": e.show_id,
        "section_id": e.section_id,
        "seat_ids": e.seat_ids,
        "quantity": e.quantity,
        "capacity": e.capacity,
    }


def _command_rejected_to_avro(e: CommandRejected) -> AvroRecord:
    """Map a CommandRejected event to its Avro record."""
    return {
        "command_id": e.command_id,
        "occurred_at_ms": e.occurred_at_ms,
        "show_id": e.show_id,
        "section_id": e.section_id,
        "command": e.command,
        "reason": e.reason,
        "detail": e.detail,
    }


# --- Avro dict -> dataclass -------------------------------------------------------


def _row_from_avro(r: AvroRecord) -> Row:
    """Build a row from its Avro record."""
    return Row(r["label"], tuple(r["seat_numbers"]))


def _section_spec_from_avro(r: AvroRecord) -> SectionSpec:
    """Build a section spec from its Avro record."""
    return SectionSpec(
        r["section_id"],
        _SECTION_KINDS[r["kind"]],
        tuple([_row_from_avro(row) for row in r["rows"]]),
        r["capacity"],
    )


def _create_show_from_avro(r: AvroRecord) -> CreateShow:
    """Build a CreateShow command from its Avro record."""
    return CreateShow(
        r["command_id"],
        r["issued_at_ms"],
        r["show_id"],
        r["hold_ttl_seconds"],
        r["max_tickets_per_buyer"],
        tuple([_section_spec_from_avro(spec) for spec in r["sections"]]),
        _MODES[r["inventory_mode"]],
        r["payment_window_seconds"],
        r["sale_open"],
    )


def _place_hold_from_avro(r: AvroRecord) -> PlaceHold:
    """Build a PlaceHold command from its Avro record."""
    return PlaceHold(
        r["command_id"],
        r["issued_at_ms"],
        r["show_id"],
        r["section_id"],
        r["buyer_id"],
        tuple(r["seat_ids"]),
        r["quantity"],
    )


def _section_created_from_avro(r: AvroRecord) -> SectionCreated:
    """Build a SectionCreated event from its Avro record."""
    return SectionCreated(
        r["command_id"],
        r["occurred_at_ms"],
        r["show_id"],
        r["section_id"],
        _SECTION_KINDS[r["kind"]],
        r["capacity"],
        r["hold_ttl_seconds"],
        _MODES[r["inventory_mode"]],
    )


def _section_rejected_from_avro(r: AvroRecord) -> SectionRejected:
    """Build a SectionRejected event from its Avro record."""
    return SectionRejected(
        r["command_id"],
        r["occurred_at_ms"],
        r["show_id"],
        r["section_id"],
        _REASONS[r["reason"]],
    )


def _hold_placed_from_avro(r: AvroRecord) -> HoldPlaced:
    """Build a HoldPlaced event from its Avro record."""
    return HoldPlaced(
        r["command_id"],
        r["occurred_at_ms"],
        r["hold_id"],
        r["show_id"],
        r["section_id"],
        r["buyer_id"],
        tuple(r["seat_ids"]),
        r["quantity"],
        r["expires_at_ms"],
    )


def _hold_rejected_from_avro(r: AvroRecord) -> HoldRejected:
    """Build a HoldRejected event from its Avro record."""
    return HoldRejected(
        r["command_id"],
        r["occurred_at_ms"],
        r["show_id"],
        r["section_id"],
        r["buyer_id"],
        _REASONS[r["reason"]],
        r["detail"],
    )


def _hold_expired_from_avro(r: AvroRecord) -> HoldExpired:
    """Build a HoldExpired event from its Avro record."""
    return HoldExpired(
        r["command_id"],
        r["occurred_at_ms"],
        r["hold_id"],
        r["show_id"],
        r["section_id"],
        tuple(r["seat_ids"]),
        r["quantity"],
    )


def _release_hold_from_avro(r: AvroRecord) -> ReleaseHold:
    """Build a ReleaseHold command from its Avro record."""
    return ReleaseHold(
        r["command_id"],
        r["issued_at_ms"],
        r["show_id"],
        r["section_id"],
        r["buyer_id"],
        r["hold_id"],
    )


def _checkout_from_avro(r: AvroRecord) -> Checkout:
    """Build a Checkout command from its Avro record."""
    return Checkout(
        r["command_id"],
        r["issued_at_ms"],
        r["show_id"],
        r["section_id"],
        r["buyer_id"],
        r["hold_id"],
    )


def _record_payment_result_from_avro(r: AvroRecord) -> RecordPaymentResult:
    """Build a RecordPaymentResult command from its Avro record."""
    return RecordPaymentResult(
        r["command_id"],
        r["issued_at_ms"],
        r["show_id"],
        r["section_id"],
        r["hold_id"],
        r["provider_event_id"],
        r["succeeded"],
    )


def _tick_from_avro(r: AvroRecord) -> Tick:
    """Build a Tick command from its Avro record."""
    return Tick(r["command_id"], r["issued_at_ms"])


def _open_sale_from_avro(r: AvroRecord) -> OpenSale:
    """Build an OpenSale command from its Avro record."""
    return OpenSale(r["command_id"], r["issued_at_ms"], r["show_id"], r["section_id"])


def _close_sale_from_avro(r: AvroRecord) -> CloseSale:
    """Build a CloseSale command from its Avro record."""
    return CloseSale(r["command_id"], r["issued_at_ms"], r["show_id"], r["section_id"])


def _change_hold_ttl_from_avro(r: AvroRecord) -> ChangeHoldTtl:
    """Build a ChangeHoldTtl command from its Avro record."""
    return ChangeHoldTtl(
        r["command_id"],
        r["issued_at_ms"],
        r["show_id"],
        r["section_id"],
        r["hold_ttl_seconds"],
    )


def _add_inventory_from_avro(r: AvroRecord) -> AddInventory:
    """Build an AddInventory command from its Avro record."""
    return AddInventory(
        r["command_id"],
        r["issued_at_ms"],
        r["show_id"],
        r["section_id"],
        tuple([_row_from_avro(row) for row in r["rows"]]),
        r["quantity"],
    )


def _withdraw_inventory_from_avro(r: AvroRecord) -> WithdrawInventory:
    """Build a WithdrawInventory command from its Avro record."""
    return WithdrawInventory(
        r["command_id"],
        r["issued_at_ms"],
        r["show_id"],
        r["section_id"],
        tuple(r["seat_ids"]),
        r["quantity"],
    )


def _hold_released_from_avro(r: AvroRecord) -> HoldReleased:
    """Build a HoldReleased event from its Avro record."""
    return HoldReleased(
        r["command_id"],
        r["occurred_at_ms"],
        r["hold_id"],
        r["show_id"],
        r["section_id"],
        _RELEASE_REASONS[r["reason"]],
        tuple(r["seat_ids"]),
        r["quantity"],
    )


def _checkout_started_from_avro(r: AvroRecord) -> CheckoutStarted:
    """Build a CheckoutStarted event from its Avro record."""
    return CheckoutStarted(
        r["command_id"],
        r["occurred_at_ms"],
        r["hold_id"],
        r["show_id"],
        r["section_id"],
        r["buyer_id"],
        r["payment_deadline_ms"],
    )


def _tickets_sold_from_avro(r: AvroRecord) -> TicketsSold:
    """Build a TicketsSold event from its Avro record."""
    return TicketsSold(
        r["command_id"],
        r["occurred_at_ms"],
        r["hold_id"],
        r["order_id"],
        r["show_id"],
        r["section_id"],
        r["buyer_id"],
        tuple(r["seat_ids"]),
        r["quantity"],
        tuple(r["ticket_ids"]),
    )


def _refund_required_from_avro(r: AvroRecord) -> RefundRequired:
    """Build a RefundRequired event from its Avro record."""
    return RefundRequired(
        r["command_id"],
        r["occurred_at_ms"],
        r["hold_id"],
        r["show_id"],
        r["section_id"],
        r["provider_event_id"],
        _REFUND_REASONS[r["reason"]],
    )


def _sale_opened_from_avro(r: AvroRecord) -> SaleOpened:
    """Build a SaleOpened event from its Avro record."""
    return SaleOpened(
        r["command_id"], r["occurred_at_ms"], r["show_id"], r["section_id"]
    )


def _sale_closed_from_avro(r: AvroRecord) -> SaleClosed:
    """Build a SaleClosed event from its Avro record."""
    return SaleClosed(
        r["command_id"], r["occurred_at_ms"], r["show_id"], r["section_id"]
    )


def _hold_ttl_changed_from_avro(r: AvroRecord) -> HoldTtlChanged:
    """Build a HoldTtlChanged event from its Avro record."""
    return HoldTtlChanged(
        r["command_id"],
        r["occurred_at_ms"],
        r["show_id"],
        r["section_id"],
        r["hold_ttl_seconds"],
    )


def _inventory_added_from_avro(r: AvroRecord) -> InventoryAdded:
    """Build an InventoryAdded event from its Avro record."""
    return InventoryAdded(
        r["command_id"],
        r["occurred_at_ms"],
        r["show_id"],
        r["section_id"],
        tuple([_row_from_avro(row) for row in r["rows"]]),
        tuple(r["seat_ids"]),
        r["quantity"],
        r["capacity"],
    )


def _inventory_withdrawn_from_avro(r: AvroRecord) -> InventoryWithdrawn:
    """Build an InventoryWithdrawn event from its Avro record."""
    return InventoryWithdrawn(
        r["command_id"],
        r["occurred_at_ms"],
        r["show_id"],
        r["section_id"],
        tuple(r["seat_ids"]),
        r["quantity"],
        r["capacity"],
    )


def _command_rejected_from_avro(r: AvroRecord) -> CommandRejected:
    """Build a CommandRejected event from its Avro record."""
    return CommandRejected(
        r["command_id"],
        r["occurred_at_ms"],
        r["show_id"],
        r["section_id"],
        r["command"],
        _REASONS[r["reason"]],
        r["detail"],
    )


# --- dispatch tables: Python type <-> (Avro full name, mapping) ---------------------

_COMMAND_WRITERS: Final[dict[type, tuple[str, Callable[[Any], AvroRecord]]]] = {
    CreateShow: ("ticketing.CreateShow", _create_show_to_avro),
    PlaceHold: ("ticketing.PlaceHold", _place_hold_to_avro),
    ReleaseHold: ("ticketing.ReleaseHold", _release_hold_to_avro),
    Checkout: ("ticketing.Checkout", _checkout_to_avro),
    RecordPaymentResult: (
        "ticketing.RecordPaymentResult",
        _record_payment_result_to_avro,
    ),
    Tick: ("ticketing.Tick", _tick_to_avro),
    OpenSale: ("ticketing.OpenSale", _sale_command_to_avro),
    CloseSale: ("ticketing.CloseSale", _sale_command_to_avro),
    ChangeHoldTtl: ("ticketing.ChangeHoldTtl", _change_hold_ttl_to_avro),
    AddInventory: ("ticketing.AddInventory", _add_inventory_to_avro),
    WithdrawInventory: ("ticketing.WithdrawInventory", _withdraw_inventory_to_avro),
}
_COMMAND_READERS: Final[dict[str, Callable[[AvroRecord], Command]]] = {
    "ticketing.CreateShow": _create_show_from_avro,
    "ticketing.PlaceHold": _place_hold_from_avro,
    "ticketing.ReleaseHold": _release_hold_from_avro,
    "ticketing.Checkout": _checkout_from_avro,
    "ticketing.RecordPaymentResult": _record_payment_result_from_avro,
    "ticketing.Tick": _tick_from_avro,
    "ticketing.OpenSale": _open_sale_from_avro,
    "ticketing.CloseSale": _close_sale_from_avro,
    "ticketing.ChangeHoldTtl": _change_hold_ttl_from_avro,
    "ticketing.AddInventory": _add_inventory_from_avro,
    "ticketing.WithdrawInventory": _withdraw_inventory_from_avro,
}
_EVENT_WRITERS: Final[dict[type, tuple[str, Callable[[Any], AvroRecord]]]] = {
    SectionCreated: ("ticketing.SectionCreated", _section_created_to_avro),
    SectionRejected: ("ticketing.SectionRejected", _section_rejected_to_avro),
    HoldPlaced: ("ticketing.HoldPlaced", _hold_placed_to_avro),
    HoldRejected: ("ticketing.HoldRejected", _hold_rejected_to_avro),
    HoldExpired: ("ticketing.HoldExpired", _hold_expired_to_avro),
    HoldReleased: ("ticketing.HoldReleased", _hold_released_to_avro),
    CheckoutStarted: ("ticketing.CheckoutStarted", _checkout_started_to_avro),
    TicketsSold: ("ticketing.TicketsSold", _tickets_sold_to_avro),
    RefundRequired: ("ticketing.RefundRequired", _refund_required_to_avro),
    SaleOpened: ("ticketing.SaleOpened", _sale_event_to_avro),
    SaleClosed: ("ticketing.SaleClosed", _sale_event_to_avro),
    HoldTtlChanged: ("ticketing.HoldTtlChanged", _hold_ttl_changed_to_avro),
    InventoryAdded: ("ticketing.InventoryAdded", _inventory_added_to_avro),
    InventoryWithdrawn: ("ticketing.InventoryWithdrawn", _inventory_withdrawn_to_avro),
    CommandRejected: ("ticketing.CommandRejected", _command_rejected_to_avro),
}
_EVENT_READERS: Final[dict[str, Callable[[AvroRecord], Event]]] = {
    "ticketing.SectionCreated": _section_created_from_avro,
    "ticketing.SectionRejected": _section_rejected_from_avro,
    "ticketing.HoldPlaced": _hold_placed_from_avro,
    "ticketing.HoldRejected": _hold_rejected_from_avro,
    "ticketing.HoldExpired": _hold_expired_from_avro,
    "ticketing.HoldReleased": _hold_released_from_avro,
    "ticketing.CheckoutStarted": _checkout_started_from_avro,
    "ticketing.TicketsSold": _tickets_sold_from_avro,
    "ticketing.RefundRequired": _refund_required_from_avro,
    "ticketing.SaleOpened": _sale_opened_from_avro,
    "ticketing.SaleClosed": _sale_closed_from_avro,
    "ticketing.HoldTtlChanged": _hold_ttl_changed_from_avro,
    "ticketing.InventoryAdded": _inventory_added_from_avro,
    "ticketing.InventoryWithdrawn": _inventory_withdrawn_from_avro,
    "ticketing.CommandRejected": _command_rejected_from_avro,
}

_DECODE_FAILURES: Final = (
    EOFError,  # truncated record
    ValueError,  # includes UnicodeDecodeError, fastavro's SchemaResolutionError
    IndexError,  # union branch or enum symbol index out of range
    KeyError,  # union branch or enum symbol unknown to the mapping tables
    TypeError,
    OverflowError,
    MemoryError,  # a corrupt length prefix asking for a huge allocation
)


# --- public API --------------------------------------------------------------------


def command_headers() -> list[tuple[str, bytes]]:
    """Kafka headers for a record whose value is a command batch."""
    return [(SCHEMA_HEADER, _COMMAND_FP_BYTES)]


def event_headers() -> list[tuple[str, bytes]]:
    """Kafka headers for a record whose value is an event batch."""
    return [(SCHEMA_HEADER, _EVENT_FP_BYTES)]


def encode_commands(commands: Sequence[Command]) -> bytes:
    """Encode a non-empty batch of commands as one Avro ``CommandBatch`` value."""
    if not commands:
        raise ValueError("a command batch must hold at least one command")
    body = []
    for command in commands:
        name, to_avro = _writer_for(_COMMAND_WRITERS, command)
        body.append({"body": (name, to_avro(command))})
    return _write(_COMMAND_BATCH_SCHEMA, {"commands": body})


def encode_events(events: Sequence[Event]) -> bytes:
    """Encode a non-empty batch of events as one Avro ``EventBatch`` value."""
    if not events:
        raise ValueError("an event batch must hold at least one event")
    body = []
    for event in events:
        name, to_avro = _writer_for(_EVENT_WRITERS, event)
        body.append((name, to_avro(event)))
    return _write(_EVENT_BATCH_SCHEMA, {"events": body})


def decode_commands(value: bytes | None, headers: Headers) -> list[Command]:
    """Decode a command batch value, raising ``CodecError`` for any bad record."""
    record = _read(value, headers, _COMMAND_WRITER_SCHEMAS, _COMMAND_BATCH_SCHEMA)
    try:
        commands = [
            _COMMAND_READERS[item["body"][0]](item["body"][1])
            for item in record["commands"]
        ]
    except _DECODE_FAILURES as exc:
        raise CorruptRecordError(f"not a command batch: {exc!r}", raw=value) from exc
    if not commands:
        raise CorruptRecordError("empty command batch", raw=value)
    return commands


def decode_events(value: bytes | None, headers: Headers) -> list[Event]:
    """Decode an event batch value, raising ``CodecError`` for any bad record."""
    record = _read(value, headers, _EVENT_WRITER_SCHEMAS, _EVENT_BATCH_SCHEMA)
    try:
        events = [_EVENT_READERS[name](body) for name, body in record["events"]]
    except _DECODE_FAILURES as exc:
        raise CorruptRecordError(f"not an event batch: {exc!r}", raw=value) from exc
    if not events:
        raise CorruptRecordError("empty event batch", raw=value)
    return events


# --- helpers -----------------------------------------------------------------------


def _writer_for(
    table: dict[type, tuple[str, Callable[[Any], AvroRecord]]], item: object
) -> tuple[str, Callable[[Any], AvroRecord]]:
    """Look up the Avro name and mapping of an item, refusing foreign types."""
    try:
        return table[type(item)]
    except KeyError:
        raise TypeError(f"cannot encode {type(item).__name__} here") from None


def _write(schema: Any, record: AvroRecord) -> bytes:
    """Write one record schemaless and return its bytes."""
    out = BytesIO()
    schemaless_writer(out, schema, record)
    return out.getvalue()


def _header_value(headers: Headers) -> bytes | None:
    """The schema fingerprint header's value (the last one if repeated), if any."""
    if headers is None:
        return None
    if isinstance(headers, Mapping):
        return headers.get(SCHEMA_HEADER)
    found = None
    for key, header_value in headers:
        if key == SCHEMA_HEADER:
            found = header_value
    return found


def _read(
    value: bytes | None, headers: Headers, writers: dict[bytes, Any], schema: Any
) -> AvroRecord:
    """Check the fingerprint, then read exactly one record from the value."""
    if value is None:
        raise CorruptRecordError("record has no value", raw=None)
    fp = _header_value(headers)
    if fp is None:
        raise UnknownSchemaError(f"missing {SCHEMA_HEADER!r} header", raw=value)
    writer = writers.get(fp)
    if writer is None:
        raise UnknownSchemaError(
            f"unknown schema fingerprint {fp!r}, known {sorted(writers)!r}", raw=value
        )
    stream = BytesIO(value)
    try:
        record = cast(
            AvroRecord,
            schemaless_reader(
                stream,
                writer,
                None if writer is schema else schema,
                return_record_name=True,
            ),
        )
    except _DECODE_FAILURES as exc:
        raise CorruptRecordError(f"undecodable record: {exc!r}", raw=value) from exc
    if stream.tell() != len(value):
        raise CorruptRecordError(
            f"{len(value) - stream.tell()} trailing bytes after the record", raw=value
        )
    return record

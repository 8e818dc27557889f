"""Avro codec of the Kafka record values: batches of commands and batches of events.

A record value is one ``ticketing.CommandBatch`` or ``ticketing.EventBatch`` written
schemaless; the record's ``schema-fp`` header carries the CRC-64-AVRO fingerprint
(hex) of the batch schema's parsing canonical form, so a reader knows which schema
wrote it. Dataclasses map to Avro records through ``schemas.mapping`` (plans built
once per class: this runs on the hot path). Decoding failures of any kind are
translated here, once, into ``CodecError`` subclasses that keep the raw bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
from commands.model import Command, Event
from schemas.mapping import RecordMapping, union_mappings

__all__ = [
    "COMMAND_SCHEMA_FP",
    "EVENT_SCHEMA_FP",
    "ROUTE_EPOCH_HEADER",
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

ROUTE_EPOCH_HEADER: Final = "route-epoch"
"""Kafka header of an event record of a section that moved partition: its route
epoch (decimal). Absent means epoch 0, the section's hashed partition."""

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
_LEGACY_COMMAND_FPS: Final = (
    "1088b0f7fbc60094",
    "8e92e166242f496e",
    "25216ba694e0b295",
    "a7aa44fda481086f",
)
_LEGACY_EVENT_FPS: Final = (
    "5142d740f204634a",
    "f9d63c51d961bb69",
    "1479ae6608e81a76",
    "540d7d8092df3760",
)


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

_COMMANDS: Final = union_mappings(Command)
_EVENTS: Final = union_mappings(Event)
_COMMANDS_BY_NAME: Final = {m.name: m for m in _COMMANDS.values()}
_EVENTS_BY_NAME: Final = {m.name: m for m in _EVENTS.values()}

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
        mapping = _mapping_for(_COMMANDS, command)
        body.append({"body": (mapping.name, mapping.to_avro(command))})
    return _write(_COMMAND_BATCH_SCHEMA, {"commands": body})


def encode_events(events: Sequence[Event]) -> bytes:
    """Encode a non-empty batch of events as one Avro ``EventBatch`` value."""
    if not events:
        raise ValueError("an event batch must hold at least one event")
    body = []
    for event in events:
        mapping = _mapping_for(_EVENTS, event)
        body.append((mapping.name, mapping.to_avro(event)))
    return _write(_EVENT_BATCH_SCHEMA, {"events": body})


def decode_commands(value: bytes | None, headers: Headers) -> list[Command]:
    """Decode a command batch value, raising ``CodecError`` for any bad record."""
    record = _read(value, headers, _COMMAND_WRITER_SCHEMAS, _COMMAND_BATCH_SCHEMA)
    try:
        commands = [
            _COMMANDS_BY_NAME[item["body"][0]].from_avro(item["body"][1])
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
        events = [
            _EVENTS_BY_NAME[name].from_avro(body) for name, body in record["events"]
        ]
    except _DECODE_FAILURES as exc:
        raise CorruptRecordError(f"not an event batch: {exc!r}", raw=value) from exc
    if not events:
        raise CorruptRecordError("empty event batch", raw=value)
    return events


# --- helpers -----------------------------------------------------------------------


def _mapping_for(
    table: Mapping[type, RecordMapping[Any]], item: object
) -> RecordMapping[Any]:
    """Look up the mapping of an item, refusing foreign types."""
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

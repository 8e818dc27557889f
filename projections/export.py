"""A slice of the event log for analysts: which events, and how they are written.

Pure parts only: ``ExportFilter`` picks events (show, section, types, a range of
log time ``occurred_at_ms``, start included and end excluded), ``flat_event`` turns
one into a flat mapping with its log position, and the writers put those out as
JSON Lines (one object per line) or CSV (fixed columns, the rest of the event as
a JSON ``detail`` column). ``projections.log_slice`` reads the log.
"""

from __future__ import annotations

import csv
import dataclasses
import enum
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any, Final, Protocol

import orjson

from commands.model import Event

CSV_COLUMNS: Final = (
    "type",
    "partition",
    "offset",
    "index",
    "occurred_at",
    "show_id",
    "section_id",
    "command_id",
    "detail",
)
_POSITION: Final = ("type", "partition", "offset", "index", "occurred_at")


@dataclass(frozen=True, slots=True)
class ExportFilter:
    """Which events to export; None (or empty) means any."""

    show_id: str | None = None
    section_id: str | None = None
    types: frozenset[str] = frozenset()
    since_ms: int | None = None
    """Earliest log time exported (included)."""
    until_ms: int | None = None
    """Log time from which nothing is exported (excluded)."""

    def matches(self, event: Event) -> bool:
        """Whether the event belongs to the slice."""
        if self.types and type(event).__name__ not in self.types:
            return False
        if self.show_id is not None and event.show_id != self.show_id:
            return False
        if self.section_id is not None:
            if getattr(event, "section_id", None) != self.section_id:
                return False
        at = event.occurred_at_ms
        if self.since_ms is not None and at < self.since_ms:
            return False
        return self.until_ms is None or at < self.until_ms


def parse_time_ms(text: str) -> int:
    """Milliseconds since the epoch of an ISO 8601 time (UTC if no offset given)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def flat_event(event: Event, partition: int, offset: int, index: int) -> dict[str, Any]:
    """The event's fields with its type, log position and log time (RFC 3339)."""
    fields = {f.name: _plain(getattr(event, f.name)) for f in dataclasses.fields(event)}
    moment = datetime.fromtimestamp(event.occurred_at_ms / 1000, UTC)
    occurred = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "type": type(event).__name__,
        "partition": partition,
        "offset": offset,
        "index": index,
        "occurred_at": occurred,
        **fields,
    }


def _plain(value: Any) -> Any:
    """A JSON-ready value: enums by value, tuples (and nested dataclasses) as lists."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = [f.name for f in dataclasses.fields(value)]
        return {name: _plain(getattr(value, name)) for name in names}
    return value


class EventWriter(Protocol):
    """Writes flat events to a text stream."""

    def write(self, flat: dict[str, Any]) -> None: ...


class JsonLinesWriter:
    """One JSON object per line, keys in the order of ``flat_event``."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out

    def write(self, flat: dict[str, Any]) -> None:
        self._out.write(orjson.dumps(flat).decode())
        self._out.write("\n")


class CsvWriter:
    """A header row, then one row per event; fields not in a column go in detail."""

    def __init__(self, out: IO[str]) -> None:
        self._csv = csv.writer(out, lineterminator="\n")
        self._csv.writerow(CSV_COLUMNS)

    def write(self, flat: dict[str, Any]) -> None:
        columns = CSV_COLUMNS[:-1]
        detail = {k: v for k, v in flat.items() if k not in columns}
        row = [flat.get(name, "") for name in columns]
        self._csv.writerow([*row, orjson.dumps(detail).decode()])


def writer_for(format_name: str, out: IO[str]) -> EventWriter:
    """The writer of a format: ``jsonl`` or ``csv``."""
    if format_name == "jsonl":
        return JsonLinesWriter(out)
    if format_name == "csv":
        return CsvWriter(out)
    raise ValueError(f"unknown export format {format_name!r}")


@dataclass(slots=True)
class ExportCounts:
    """What an export read and wrote; ``end_offsets`` is where it stopped."""

    records: int = 0
    events_read: int = 0
    events_written: int = 0
    undecodable_records: int = 0
    written_by_type: Counter[str] = field(default_factory=Counter)
    end_offsets: dict[int, int] = field(default_factory=dict)


def export_events(
    events: Iterable[tuple[int, int, int, Event]],
    wanted: ExportFilter,
    writer: EventWriter,
    counts: ExportCounts,
) -> None:
    """Write the wanted ``(partition, offset, index, event)`` and count them."""
    for partition, offset, index, event in events:
        counts.events_read += 1
        if not wanted.matches(event):
            continue
        writer.write(flat_event(event, partition, offset, index))
        counts.events_written += 1
        counts.written_by_type[type(event).__name__] += 1

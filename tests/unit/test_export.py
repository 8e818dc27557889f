"""Export of the event log: which events a slice holds, and how they are written."""

from __future__ import annotations

import csv
import io

import orjson

from commands.model import (
    BuyerLimitSet,
    Event,
    HoldPlaced,
    HoldRejected,
    RejectionReason,
    SectionCreated,
    SectionKind,
)
from projections.export import (
    CSV_COLUMNS,
    CsvWriter,
    ExportCounts,
    ExportFilter,
    JsonLinesWriter,
    export_events,
    flat_event,
    parse_time_ms,
)

T0 = parse_time_ms("2026-03-01T12:00:00Z")


def placed(show: str = "s1", section: str = "A", at_ms: int = T0) -> HoldPlaced:
    return HoldPlaced("c1", at_ms, "h1", show, section, "b1", ("A-1",), 1, at_ms + 1)


def rejected(at_ms: int = T0) -> HoldRejected:
    return HoldRejected("c2", at_ms, "s1", "A", "b2", RejectionReason.SOLD_OUT, "none")


def log() -> list[tuple[int, int, int, Event]]:
    return [
        (0, 0, 0, SectionCreated("c0", T0, "s1", "A", SectionKind.RESERVED, 9, 600)),
        (0, 1, 0, placed()),
        (0, 1, 1, rejected(T0 + 5_000)),
        (1, 0, 0, placed(section="B", at_ms=T0 + 10_000)),
        (2, 0, 0, placed(show="s2")),
        (3, 0, 0, BuyerLimitSet("c9", T0, "s1", 4)),
    ]


def written(wanted: ExportFilter) -> tuple[list[dict[str, object]], ExportCounts]:
    out = io.StringIO()
    counts = ExportCounts()
    export_events(log(), wanted, JsonLinesWriter(out), counts)
    return [orjson.loads(line) for line in out.getvalue().splitlines()], counts


def test_every_event_is_written_when_nothing_is_filtered() -> None:
    lines, counts = written(ExportFilter())

    assert len(lines) == counts.events_written == counts.events_read == 6
    assert counts.written_by_type["HoldPlaced"] == 3


def test_only_the_show_and_section_are_written_when_both_are_given() -> None:
    lines, counts = written(ExportFilter(show_id="s1", section_id="A"))

    assert [line["type"] for line in lines] == [
        "SectionCreated",
        "HoldPlaced",
        "HoldRejected",
    ]
    assert counts.events_read == 6


def test_only_the_types_asked_for_are_written_when_types_are_given() -> None:
    lines, _ = written(ExportFilter(types=frozenset({"HoldRejected", "BuyerLimitSet"})))

    assert sorted(line["type"] for line in lines) == ["BuyerLimitSet", "HoldRejected"]


def test_the_time_range_includes_its_start_and_excludes_its_end() -> None:
    lines, _ = written(
        ExportFilter(show_id="s1", since_ms=T0 + 5_000, until_ms=T0 + 10_000)
    )

    assert [(line["type"], line["occurred_at"]) for line in lines] == [
        ("HoldRejected", "2026-03-01T12:00:05.000Z")
    ]


def test_a_line_carries_position_and_plain_values_when_written_as_json() -> None:
    line = flat_event(rejected(), 3, 17, 2)

    assert line["partition"] == 3
    assert line["offset"] == 17
    assert line["index"] == 2
    assert line["reason"] == "sold_out"
    assert line["buyer_id"] == "b2"


def test_csv_has_fixed_columns_and_the_rest_as_detail_when_written() -> None:
    out = io.StringIO()
    writer = CsvWriter(out)

    writer.write(flat_event(placed(), 0, 1, 0))

    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert tuple(rows[0]) == CSV_COLUMNS
    row = dict(zip(rows[0], rows[1], strict=True))
    assert (row["type"], row["offset"], row["section_id"]) == ("HoldPlaced", "1", "A")
    assert orjson.loads(row["detail"])["seat_ids"] == ["A-1"]


def test_times_without_offset_are_utc_when_parsed() -> None:
    assert parse_time_ms("2026-03-01T12:00:00") == T0
    assert parse_time_ms("2026-03-01T13:00:00+01:00") == T0

"""``ticketing export``: a slice of the event log as JSON Lines or CSV.

Progress goes to standard error about once a second; at the end, the counts: the
records and events read up to each partition's end offset, and the events
written per type. They can be checked against the log (``end_offsets``) and
against another export of the same slice.
"""

from __future__ import annotations

import sys
from contextlib import nullcontext
from typing import IO, Any

from infra.settings import Settings
from projections.export import (
    ExportCounts,
    ExportFilter,
    export_events,
    writer_for,
)
from projections.log_slice import log_events


def run_export(
    settings: Settings,
    wanted: ExportFilter,
    format_name: str,
    out_path: str,
    report: IO[str] | None = None,
) -> ExportCounts:
    """Write the slice to ``out_path`` (``-``: standard output); return the counts."""
    report = report or sys.stderr
    counts = ExportCounts()
    opened: Any = (
        nullcontext(sys.stdout)
        if out_path == "-"
        else open(out_path, "w", encoding="utf-8", newline="")
    )
    with opened as out:
        writer = writer_for(format_name, out)

        def progress(done: ExportCounts, total: int) -> None:
            print(
                f"export: {done.records}/{total} offsets read, "
                f"{done.events_written} events written",
                file=report,
                flush=True,
            )

        events = log_events(settings, counts, progress)
        export_events(events, wanted, writer, counts)
    print(summary(counts), file=report, flush=True)
    return counts


def summary(counts: ExportCounts) -> str:
    """The end counts, one fact a line."""
    ends = " ".join(f"{p}:{o}" for p, o in sorted(counts.end_offsets.items()))
    lines = [
        f"end offsets (partition:offset): {ends}",
        f"records read: {counts.records}",
        f"undecodable records: {counts.undecodable_records}",
        f"events read: {counts.events_read}",
        f"events written: {counts.events_written}",
    ]
    lines += [f"  {name}: {n}" for name, n in sorted(counts.written_by_type.items())]
    return "\n".join(lines)

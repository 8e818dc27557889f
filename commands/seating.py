"""Seat plans: best-available blocks and plan changes; pure functions of a spec."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable

from commands.model import Row, SectionSpec, seat_id


def best_block(
    rows: Iterable[Row], free_seats: Collection[str], quantity: int
) -> tuple[str, ...] | None:
    """The best ``quantity`` adjacent free seats, or ``None`` if no row has them.

    The frontmost row (plan order) with such a block wins; within it, the block
    whose centre is nearest the row's centre, the leftmost of equals.
    """
    for row in rows:
        seats = [seat_id(row.label, number) for number in row.seat_numbers]
        start = _middle_block_start(seats, free_seats, quantity)
        if start is not None:
            return tuple(seats[start : start + quantity])
    return None


def _middle_block_start(
    seats: list[str], free_seats: Collection[str], quantity: int
) -> int | None:
    best: tuple[int, int] | None = None
    run_length = 0
    for index, seat in enumerate(seats):
        run_length = run_length + 1 if seat in free_seats else 0
        if run_length < quantity:
            continue
        start = index - quantity + 1
        # Doubled distance between the block's centre and the row's: no fractions.
        distance = abs(2 * start + quantity - len(seats))
        if best is None or distance < best[0]:
            best = (distance, start)
    return None if best is None else best[1]


def with_rows_added(spec: SectionSpec, rows: Iterable[Row]) -> SectionSpec:
    """The plan with seats appended to their row, new rows at the back."""
    numbers = {row.label: list(row.seat_numbers) for row in spec.rows}
    order = [row.label for row in spec.rows]
    for row in rows:
        if row.label not in numbers:
            numbers[row.label] = []
            order.append(row.label)
        numbers[row.label].extend(row.seat_numbers)
    merged = tuple(Row(label, tuple(numbers[label])) for label in order)
    return _replace_rows(spec, merged)


def with_seats_removed(spec: SectionSpec, seat_ids: Collection[str]) -> SectionSpec:
    """The plan without the given seats; emptied rows stay, keeping plan order."""
    kept = tuple(
        Row(
            row.label,
            tuple(n for n in row.seat_numbers if seat_id(row.label, n) not in seat_ids),
        )
        for row in spec.rows
    )
    return _replace_rows(spec, kept)


def row_seat_ids(rows: Iterable[Row]) -> tuple[str, ...]:
    """Seat ids of rows, in plan order."""
    return tuple(seat_id(row.label, n) for row in rows for n in row.seat_numbers)


def _replace_rows(spec: SectionSpec, rows: tuple[Row, ...]) -> SectionSpec:
    return dataclasses.replace(spec, rows=rows)

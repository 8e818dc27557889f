"""Parse a POST /v1/shows body: sections listed, or imported from a seating plan.

A show's sections are listed (``sections``) or imported from a pretix plan
(``seating_plan``, plus optional ``general_admission``); a plan reports only its
first error. Every other invalid field is collected with its path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from commands.model import Row, SectionKind, SectionSpec, seat_id
from commands.seating_plan import SeatingPlanError, sections_from_pretix_plan
from commands.stripes import MAX_STRIPES
from gateway.fields import (
    Errors,
    id_field,
    int_in,
    list_of,
    object_of,
    refuse_unknown,
    valid_id,
)

MAX_SEATS_PER_SECTION: Final = 200_000
MAX_GA_CAPACITY: Final = 1_000_000
MAX_PRICE_CENTS: Final = 100_000_000
"""A million in major units: a mistyped price is refused, not charged."""

_SHOW_FIELDS: Final = {
    "show_id",
    "hold_ttl_seconds",
    "max_tickets_per_buyer",
    "sections",
    "seating_plan",
    "general_admission",
}
_SECTION_FIELDS: Final = {
    "section_id",
    "kind",
    "rows",
    "capacity",
    "price_cents",
    "stripes",
}
_ROW_FIELDS: Final = {"label", "seats"}
_GA_FIELDS: Final = {"section_id", "capacity", "price_cents", "stripes"}
_KINDS: Final = {kind.value: kind for kind in SectionKind}


@dataclass(frozen=True, slots=True)
class ShowRequest:
    """A valid request to create a show's sections."""

    show_id: str
    hold_ttl_seconds: int
    max_tickets_per_buyer: int
    sections: tuple[SectionSpec, ...]


def parse_show(data: Any) -> ShowRequest:
    """Validate a POST /v1/shows body."""
    errors = Errors()
    obj = object_of(data, "", errors)
    if obj is None:
        errors.raise_if_any()
    assert obj is not None

    refuse_unknown(obj, _SHOW_FIELDS, "", errors)
    show_id = id_field(obj, "show_id", "", errors)
    ttl = int_in(obj, "hold_ttl_seconds", "", errors, (1, 3600), 600)
    limit = int_in(obj, "max_tickets_per_buyer", "", errors, (1, 100), 4)
    sections = _show_sections(obj, errors)
    errors.raise_if_any()

    assert show_id is not None and ttl is not None and limit is not None
    return ShowRequest(show_id, ttl, limit, sections)


def _show_sections(obj: dict[str, Any], errors: Errors) -> tuple[SectionSpec, ...]:
    """A show's sections: listed, or imported from a seating plan, not both."""
    if "seating_plan" not in obj:
        if "general_admission" in obj:
            errors.add("general_admission", "only with seating_plan")
        return _sections(obj, errors)
    if "sections" in obj:
        errors.add("sections", "give sections or seating_plan, not both")
        return ()
    planned = _planned_sections(obj["seating_plan"], errors)
    return planned + _general_admission(obj, planned, errors)


def _planned_sections(plan: Any, errors: Errors) -> tuple[SectionSpec, ...]:
    """The reserved sections of a pretix plan; its first error if it is invalid."""
    # TODO(limit): the plan is checked on the event loop, about 10 ms per 1,000 seats; a
    # 1 MiB body holds at most ~10,000. Move it to an executor before raising
    # SHOW_BODY_LIMIT_BYTES towards the 200,000-seat limit.
    try:
        return sections_from_pretix_plan(plan)
    except SeatingPlanError as exc:
        errors.add(exc.path, exc.message)
        return ()


def _general_admission(
    obj: dict[str, Any], planned: tuple[SectionSpec, ...], errors: Errors
) -> tuple[SectionSpec, ...]:
    """The GA sections beside a seating plan, ids unique among all sections."""
    if "general_admission" not in obj:
        return ()
    specs: list[SectionSpec] = []
    seen = {spec.section_id for spec in planned}
    for index, item in enumerate(list_of(obj, "general_admission", "", errors)):
        path = f"general_admission[{index}]"
        section = object_of(item, path, errors)
        if section is None:
            continue
        refuse_unknown(section, _GA_FIELDS, path, errors)
        section_id = id_field(section, "section_id", path, errors)
        capacity = int_in(section, "capacity", path, errors, (1, MAX_GA_CAPACITY))
        price = _price(section, path, errors)
        stripes = _stripes(section, path, errors)
        if section_id in seen:
            errors.add(f"{path}.section_id", f"duplicate section {section_id}")
        elif section_id is not None and capacity is not None and price is not None:
            seen.add(section_id)
            kind = SectionKind.GENERAL_ADMISSION
            specs.append(
                SectionSpec(
                    section_id,
                    kind,
                    capacity=capacity,
                    price_cents=price,
                    stripes=stripes,
                )
            )
    return tuple(specs)


def _sections(obj: dict[str, Any], errors: Errors) -> tuple[SectionSpec, ...]:
    """Every section of a show, each checked on its own, ids unique."""
    specs: list[SectionSpec] = []
    seen: set[str] = set()
    for index, item in enumerate(list_of(obj, "sections", "", errors)):
        path = f"sections[{index}]"
        spec = _section(item, path, errors)
        section_id = item.get("section_id") if isinstance(item, dict) else None
        if isinstance(section_id, str) and section_id in seen:
            errors.add(f"{path}.section_id", f"duplicate section {section_id}")
        elif isinstance(section_id, str):
            seen.add(section_id)
        if spec is not None:
            specs.append(spec)
    return tuple(specs)


def _section(item: Any, path: str, errors: Errors) -> SectionSpec | None:
    """One section: reserved rows of seats, or a GA capacity."""
    obj = object_of(item, path, errors)
    if obj is None:
        return None
    refuse_unknown(obj, _SECTION_FIELDS, path, errors)
    section_id = id_field(obj, "section_id", path, errors)
    price = _price(obj, path, errors)
    raw_kind = obj.get("kind")
    kind = _KINDS.get(raw_kind) if isinstance(raw_kind, str) else None
    if kind is None:
        errors.add(f"{path}.kind", "one of: reserved, general_admission")
        return None

    if kind is SectionKind.GENERAL_ADMISSION:
        if "rows" in obj:
            errors.add(f"{path}.rows", "not allowed for general_admission")
        capacity = int_in(obj, "capacity", path, errors, (1, MAX_GA_CAPACITY))
        stripes = _stripes(obj, path, errors)
        if section_id is None or capacity is None or price is None:
            return None
        return SectionSpec(
            section_id, kind, capacity=capacity, price_cents=price, stripes=stripes
        )

    if "stripes" in obj:
        errors.add(f"{path}.stripes", "only for general_admission")
    if "capacity" in obj:
        errors.add(f"{path}.capacity", "not allowed for reserved; list rows")
    rows = _rows(obj, path, errors)
    if section_id is None or rows is None or price is None:
        return None
    return SectionSpec(section_id, kind, rows=rows, price_cents=price)


def _price(obj: dict[str, Any], path: str, errors: Errors) -> int | None:
    """A place's price in minor units; 0 (free) when not given."""
    return int_in(obj, "price_cents", path, errors, (0, MAX_PRICE_CENTS), default=0)


def _rows(obj: dict[str, Any], path: str, errors: Errors) -> tuple[Row, ...] | None:
    """The rows of a reserved section; None if any of them is invalid."""
    before = len(errors.found)
    rows: list[Row] = []
    labels: set[str] = set()
    seat_ids: set[str] = set()
    for index, item in enumerate(list_of(obj, "rows", path, errors)):
        row_path = f"{path}.rows[{index}]"
        row = object_of(item, row_path, errors)
        if row is None:
            continue
        refuse_unknown(row, _ROW_FIELDS, row_path, errors)
        label = id_field(row, "label", row_path, errors)
        if label is not None and label in labels:
            errors.add(f"{row_path}.label", f"duplicate row {label}")
        numbers = _seats(row, row_path, label or "", seat_ids, errors)
        if label is not None:
            labels.add(label)
            rows.append(Row(label, numbers))
    if len(seat_ids) > MAX_SEATS_PER_SECTION:
        errors.add(f"{path}.rows", f"at most {MAX_SEATS_PER_SECTION} seats")
    return tuple(rows) if len(errors.found) == before else None


def _seats(
    row: dict[str, Any], path: str, label: str, seen: set[str], errors: Errors
) -> tuple[str, ...]:
    """The seat numbers of one row, refusing a seat id the section already has."""
    numbers: list[str] = []
    for index, number in enumerate(list_of(row, "seats", path, errors)):
        seat_path = f"{path}.seats[{index}]"
        if not valid_id(number):
            errors.add(seat_path, "a seat number: 1 to 64 of [A-Za-z0-9_.-]")
            continue
        seat = seat_id(label, number)
        if seat in seen:
            errors.add(seat_path, f"duplicate seat {seat}")
        seen.add(seat)
        numbers.append(number)
    return tuple(numbers)


def _stripes(obj: dict[str, Any], path: str, errors: Errors) -> int:
    """How many stripes a GA section is split into: 0 (none) unless 2 or more."""
    if "stripes" not in obj:
        return 0
    stripes = int_in(obj, "stripes", path, errors, (1, MAX_STRIPES))
    return 0 if stripes is None or stripes < 2 else stripes

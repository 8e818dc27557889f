"""Import a venue's seating plan in pretix's published JSON format into sections.

A pretix plan holds zones of rows of seats; each seat names one of the plan's
categories. Each category becomes one reserved section, see docs/seating-plans.md.
The plan is checked in two passes, each in document order, and the first error
found is raised: first its structure (types, required members, non-empty strings,
unique seat guids, known categories), then, on a well-formed plan, the mapping
(row labels of at most 64 characters, seat ids unique per section). Members this
module does not know are ignored, so plans from newer pretix versions still import.
Pure: the caller decodes the JSON.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import ClassVar, Final, NamedTuple, TypeVar

from commands.errors import RefusalError
from commands.model import Row, SectionKind, SectionSpec, seat_id

ROOT_PATH: Final = "seating_plan"
MAX_SEATS_PER_PLAN: Final = 200_000
MAX_ID_CHARS: Final = 64
ID_PATTERN: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_NOT_SLUG: Final = re.compile(r"[^a-z0-9_.-]")
_DASHES: Final = re.compile(r"-{2,}")
_ROW_NUMBER_POSITIONS: Final = frozenset({"start", "end", "both"})
_SEAT_REQUIRED: Final = ("seat_guid", "seat_number", "position", "category")

T = TypeVar("T")

Check = Callable[[object, str], object]
"""Validate one member's value at a path and return what the mapping needs."""


class SeatingPlanError(RefusalError):
    """A seating plan is not a valid pretix plan or cannot become sections."""

    code: ClassVar[str] = "invalid_seating_plan"

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


class SeatRef(NamedTuple):
    """Where a pretix seat went: its section and its seat id there."""

    section_id: str
    seat_id: str


@dataclass(frozen=True, slots=True)
class ImportedPlan:
    """The sections of a plan, and where each of its seat guids went."""

    sections: tuple[SectionSpec, ...]
    guid_to_seat: Mapping[str, SeatRef] = field(compare=False)


def sections_from_pretix_plan(plan: object) -> tuple[SectionSpec, ...]:
    """The reserved sections of a pretix plan, one per category that has seats."""
    return import_pretix_plan(plan).sections


def import_pretix_plan(plan: object) -> ImportedPlan:
    """Validate a decoded pretix plan and map it to sections and seat refs."""
    categories, zones = _Reader(plan).plan(plan, ROOT_PATH)
    return _map(categories, zones)


@dataclass(frozen=True, slots=True)
class _Seat:
    """A well-formed seat of the plan."""

    guid: str
    number: str
    category: str
    path: str


@dataclass(frozen=True, slots=True)
class _PlanRow:
    """A well-formed row of the plan."""

    number: str
    seats: tuple[_Seat, ...]
    path: str


@dataclass(frozen=True, slots=True)
class _Zone:
    """A well-formed zone of the plan and the name its slug comes from."""

    name: str
    rows: tuple[_PlanRow, ...]


class _Reader:
    """Checks a plan's structure in document order; remembers guids seen."""

    def __init__(self, plan: object) -> None:
        self.categories = _declared_categories(plan)
        self.guid_paths: dict[str, str] = {}
        self.seat_checks: dict[str, Check] = {
            "seat_guid": self.guid,
            "seat_number": _label,
            "uuid": _string,
            "start_direction": _nullable_string,
            "radius": _integer,
            "position": _position,
            "category": self.category,
        }

    def plan(self, value: object, path: str) -> tuple[tuple[str, ...], list[_Zone]]:
        """The plan's category names and zones."""
        checks: dict[str, Check] = {
            "name": _text,
            "categories": _categories,
            "zones": self.zones,
            "size": _size,
        }
        found = _members(value, path, checks, ("zones", "name", "categories"))
        return _typed(found["categories"], tuple), _typed(found["zones"], list)

    def zones(self, value: object, path: str) -> list[_Zone]:
        """Every zone, after refusing a plan with too many seats."""
        items = _list(value, path)
        if _seat_count(items) > MAX_SEATS_PER_PLAN:
            raise SeatingPlanError(path, f"at most {MAX_SEATS_PER_PLAN} seats")
        return [self.zone(item, f"{path}[{i}]") for i, item in enumerate(items)]

    def zone(self, value: object, path: str) -> _Zone:
        """One zone: a position and rows; areas are only checked to be objects."""
        checks: dict[str, Check] = {
            "name": _string,
            "zone_id": _string,
            "uuid": _string,
            "displayed": _boolean,
            "position": _position,
            "rows": self.rows,
            "areas": _objects,
        }
        found = _members(value, path, checks, ("position", "rows"))
        name = _typed(found.get("name") or found.get("zone_id") or "", str)
        return _Zone(name, tuple(_typed(found["rows"], list)))

    def rows(self, value: object, path: str) -> list[_PlanRow]:
        """Every row of a zone."""
        return [
            self.row(item, f"{path}[{i}]") for i, item in enumerate(_list(value, path))
        ]

    def row(self, value: object, path: str) -> _PlanRow:
        """One row: its row_number and seats."""
        checks: dict[str, Check] = {
            "row_number": _label,
            "row_label": _nullable_string,
            "seat_label": _nullable_string,
            "uuid": _string,
            "seats": self.seats,
            "row_number_position": _row_number_position,
            "position": _position,
            "number_of_seats": _integer,
            "seats_spacing": _integer,
        }
        found = _members(value, path, checks, ("seats", "row_number"))
        seats = tuple(_typed(found["seats"], list))
        return _PlanRow(_typed(found["row_number"], str), seats, path)

    def seats(self, value: object, path: str) -> list[_Seat]:
        """Every seat of a row."""
        return [
            self.seat(item, f"{path}[{i}]") for i, item in enumerate(_list(value, path))
        ]

    def seat(self, value: object, path: str) -> _Seat:
        """One seat: a unique guid, a number, a position and a known category."""
        found = _members(value, path, self.seat_checks, _SEAT_REQUIRED)
        return _Seat(
            _typed(found["seat_guid"], str),
            _typed(found["seat_number"], str),
            _typed(found["category"], str),
            path,
        )

    def guid(self, value: object, path: str) -> str:
        """A seat guid no earlier seat of the plan has."""
        guid = _text(value, path)
        first = self.guid_paths.setdefault(guid, path)
        if first != path:
            raise SeatingPlanError(path, f"duplicate seat_guid, first at {first}")
        return guid

    def category(self, value: object, path: str) -> str:
        """The name of one of the plan's categories."""
        name = _text(value, path)
        if name not in self.categories:
            raise SeatingPlanError(path, f"category {name!r} is not in categories")
        return name


@dataclass(slots=True)
class _SectionRows:
    """The rows of one section as they are built, labels in plan order.

    Plan rows of one zone with the same row_number share a label and become one row.
    """

    section_id: str
    rows: dict[str, list[str]] = field(default_factory=dict)
    origins: dict[str, tuple[int, str]] = field(default_factory=dict)
    seat_ids: set[str] = field(default_factory=set)

    def add(self, label: str, zone_index: int, row: _PlanRow, seat: _Seat) -> SeatRef:
        """Append a seat to its row, refusing a label or seat id already taken."""
        origin = self.origins.setdefault(label, (zone_index, row.number))
        if origin != (zone_index, row.number):
            message = f"row label {label} already names another row of the section"
            raise SeatingPlanError(f"{row.path}.row_number", message)
        seat_key = seat_id(label, seat.number)
        if seat_key in self.seat_ids:
            message = f"seat {seat_key} is already in section {self.section_id}"
            raise SeatingPlanError(f"{seat.path}.seat_number", message)

        self.seat_ids.add(seat_key)
        self.rows.setdefault(label, []).append(seat.number)
        return SeatRef(self.section_id, seat_key)

    def spec(self) -> SectionSpec:
        """The reserved section built so far."""
        rows = tuple(Row(label, tuple(numbers)) for label, numbers in self.rows.items())
        return SectionSpec(self.section_id, SectionKind.RESERVED, rows=rows)


def _map(categories: tuple[str, ...], zones: list[_Zone]) -> ImportedPlan:
    """Place every seat in its category's section, in plan order."""
    section_ids = _unique_slugs(categories, "section")
    zone_names = [zone.name or f"zone-{i + 1}" for i, zone in enumerate(zones)]
    zone_slugs = _unique_slugs(zone_names, "zone")
    shared = _shared_row_numbers(zones)
    sections = {name: _SectionRows(section_ids[i]) for i, name in enumerate(categories)}

    guid_to_seat: dict[str, SeatRef] = {}
    for index, (zone, zone_slug) in enumerate(zip(zones, zone_slugs, strict=True)):
        for row in zone.rows:
            for seat in row.seats:
                label = _row_label(row, seat.category, zone_slug, shared)
                section = sections[seat.category]
                guid_to_seat[seat.guid] = section.add(label, index, row, seat)

    if not guid_to_seat:
        raise SeatingPlanError(f"{ROOT_PATH}.zones", "the plan has no seats")
    specs = tuple(rows.spec() for rows in sections.values() if rows.rows)
    return ImportedPlan(specs, MappingProxyType(guid_to_seat))


def _shared_row_numbers(zones: list[_Zone]) -> set[tuple[str, str]]:
    """The (category, row_number) pairs that occur in more than one zone."""
    zones_of: dict[tuple[str, str], set[int]] = {}
    for index, zone in enumerate(zones):
        for row in zone.rows:
            for seat in row.seats:
                zones_of.setdefault((seat.category, row.number), set()).add(index)
    return {key for key, found in zones_of.items() if len(found) > 1}


def _row_label(
    row: _PlanRow, category: str, zone_slug: str, shared: set[tuple[str, str]]
) -> str:
    """The row's number, prefixed with its zone when other zones share it."""
    if (category, row.number) not in shared:
        return row.number
    label = f"{zone_slug}.{row.number}"
    if len(label) > MAX_ID_CHARS:
        message = f"row label {label!r} is longer than {MAX_ID_CHARS} characters"
        raise SeatingPlanError(f"{row.path}.row_number", message)
    return label


def _unique_slugs(names: Iterable[str], fallback: str) -> list[str]:
    """A slug of each name, the later of two equal slugs suffixed ``-2``, ``-3``."""
    taken: set[str] = set()
    slugs: list[str] = []
    for name in names:
        base = slug(name) or fallback
        candidate, count = base, 1
        while candidate in taken:
            count += 1
            suffix = f"-{count}"
            candidate = base[: MAX_ID_CHARS - len(suffix)] + suffix
        taken.add(candidate)
        slugs.append(candidate)
    return slugs


def slug(name: str) -> str:
    """An id from a name: lower case, runs of other characters as one ``-``.

    Leading and trailing dashes are dropped; at most 64 characters; may be empty.
    """
    dashed = _DASHES.sub("-", _NOT_SLUG.sub("-", name.lower()))
    return dashed.strip("-")[:MAX_ID_CHARS].rstrip("-")


def _declared_categories(plan: object) -> frozenset[str]:
    """The category names a plan declares, read leniently before it is checked."""
    items = plan.get("categories") if isinstance(plan, dict) else None
    if not isinstance(items, list):
        return frozenset()
    return frozenset(
        item["name"]
        for item in items
        if isinstance(item, dict) and isinstance(item.get("name"), str)
    )


def _seat_count(zones: list[object]) -> int:
    """The number of seats of the zones, counting only well-shaped lists."""
    count = 0
    for zone in zones:
        rows = zone.get("rows") if isinstance(zone, dict) else None
        for row in rows if isinstance(rows, list) else ():
            seats = row.get("seats") if isinstance(row, dict) else None
            count += len(seats) if isinstance(seats, list) else 0
    return count


def _categories(value: object, path: str) -> tuple[str, ...]:
    """The category names in plan order, each named once."""
    names: list[str] = []
    for index, item in enumerate(_list(value, path)):
        item_path = f"{path}[{index}]"
        checks: dict[str, Check] = {"name": _text, "color": _string}
        name = _typed(_members(item, item_path, checks, ("name",))["name"], str)
        if name in names:
            raise SeatingPlanError(f"{item_path}.name", f"duplicate category {name!r}")
        names.append(name)
    return tuple(names)


def _position(value: object, path: str) -> object:
    """A position: numbers x and y."""
    return _members(value, path, _POSITION_CHECKS, ("x", "y"))


def _size(value: object, path: str) -> object:
    """The plan's size in pixels: integers width and height."""
    checks: dict[str, Check] = {"width": _integer, "height": _integer}
    return _members(value, path, checks, ("width", "height"))


def _members(
    value: object, path: str, checks: Mapping[str, Check], required: Sequence[str]
) -> dict[str, object]:
    """Check an object's known members in document order, then its required ones."""
    if not isinstance(value, dict):
        raise SeatingPlanError(path, "must be an object")
    found: dict[str, object] = {}
    for name, member in value.items():
        check = checks.get(name) if isinstance(name, str) else None
        if check is not None:
            found[name] = check(member, f"{path}.{name}")
    for name in required:
        if name not in value:
            raise SeatingPlanError(f"{path}.{name}", "required")
    return found


def _list(value: object, path: str) -> list[object]:
    """The value as a list."""
    if not isinstance(value, list):
        raise SeatingPlanError(path, "must be a list")
    return value


def _objects(value: object, path: str) -> object:
    """A list of objects whose members are not read (areas)."""
    for index, item in enumerate(_list(value, path)):
        if not isinstance(item, dict):
            raise SeatingPlanError(f"{path}[{index}]", "must be an object")
    return value


def _string(value: object, path: str) -> str:
    """Any string."""
    if not isinstance(value, str):
        raise SeatingPlanError(path, "must be a string")
    return value


def _nullable_string(value: object, path: str) -> object:
    """A string or null."""
    return value if value is None else _string(value, path)


def _text(value: object, path: str) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value:
        raise SeatingPlanError(path, "must be a non-empty string")
    return value


def _label(value: object, path: str) -> str:
    """A row or seat number that can be part of a seat id."""
    text = _text(value, path)
    if ID_PATTERN.fullmatch(text) is None:
        raise SeatingPlanError(path, "must be 1 to 64 of [A-Za-z0-9_.-]")
    return text


def _row_number_position(value: object, path: str) -> object:
    """Where row numbers are drawn: start, end, both or null."""
    if value is not None and not (
        isinstance(value, str) and value in _ROW_NUMBER_POSITIONS
    ):
        raise SeatingPlanError(path, "must be one of: start, end, both, null")
    return value


def _boolean(value: object, path: str) -> object:
    """A boolean."""
    if not isinstance(value, bool):
        raise SeatingPlanError(path, "must be a boolean")
    return value


def _number(value: object, path: str) -> object:
    """A finite number; a boolean is not one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SeatingPlanError(path, "must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise SeatingPlanError(path, "must be a finite number")
    return value


def _integer(value: object, path: str) -> object:
    """An integer, also when written with a zero fraction (``3.0``)."""
    if isinstance(value, float) and value.is_integer():
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise SeatingPlanError(path, "must be an integer")
    return value


def _typed(value: object, kind: type[T]) -> T:
    """A checked value with its static type back."""
    assert isinstance(value, kind)
    return value


_POSITION_CHECKS: Final[Mapping[str, Check]] = {"x": _number, "y": _number}

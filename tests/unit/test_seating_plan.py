"""Import of pretix seating plans: mapping, guid refs, and every refusal's path."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.errors import RefusalError
from commands.model import Row, SectionKind
from commands.seating_plan import (
    MAX_SEATS_PER_PLAN,
    SeatingPlanError,
    SeatRef,
    import_pretix_plan,
    sections_from_pretix_plan,
    slug,
)

FIXTURE = Path(__file__).parents[1] / "fixtures" / "pretix-plan-small.json"
SEAT = "seating_plan.zones[0].rows[0].seats[0]"


def small_plan() -> dict[str, Any]:
    """The sample plan: stalls and balcony, premium and standard seats."""
    plan: dict[str, Any] = json.loads(FIXTURE.read_text())
    return plan


def seat(guid: str, number: str, category: str = "A") -> dict[str, Any]:
    """A minimal valid seat."""
    position = {"x": 0, "y": 0}
    return {
        "seat_guid": guid,
        "seat_number": number,
        "position": position,
        "category": category,
    }


def plan_of(*zones: list[dict[str, Any]], categories: tuple[str, ...] = ("A",)) -> Any:
    """A minimal valid plan whose zones hold the given rows."""
    return {
        "name": "plan",
        "categories": [{"name": name} for name in categories],
        "zones": [
            {"name": f"Z{i}", "position": {"x": 0, "y": 0}, "rows": rows}
            for i, rows in enumerate(zones)
        ],
    }


def error_of(plan: Any) -> tuple[str, str]:
    """The path and message of the refusal of a plan."""
    with pytest.raises(SeatingPlanError) as caught:
        import_pretix_plan(plan)
    return caught.value.path, caught.value.message


def test_each_category_becomes_a_reserved_section_when_the_plan_is_valid() -> None:
    plan = small_plan()

    sections = sections_from_pretix_plan(plan)

    assert [s.section_id for s in sections] == ["premium-front", "standard"]
    assert {s.kind for s in sections} == {SectionKind.RESERVED}
    assert sections[0].rows == (
        Row("1", ("1", "2", "3", "4")),
        Row("2", ("2", "3")),
    )
    assert sections[1].rows == (
        Row("stalls.2", ("1", "4")),
        Row("3", ("1", "2", "3", "4", "5")),
        Row("1", ("1", "2", "3")),
        Row("balcony.2", ("1", "2", "3")),
    )


def test_guids_map_to_section_and_seat_id_when_the_plan_is_valid() -> None:
    plan = small_plan()

    refs = import_pretix_plan(plan).guid_to_seat

    assert len(refs) == 19
    assert refs["stalls-2-2"] == SeatRef("premium-front", "2-2")
    assert refs["stalls-2-4"] == ("standard", "stalls.2-4")
    assert refs["balcony-1-3"] == SeatRef("standard", "1-3")


def test_guid_refs_are_read_only_when_returned() -> None:
    refs = import_pretix_plan(small_plan()).guid_to_seat

    with pytest.raises(TypeError):
        refs["x"] = SeatRef("a", "b")  # type: ignore[index]


def test_zone_prefix_is_used_only_when_a_row_number_is_in_two_zones() -> None:
    plan = plan_of(
        [{"row_number": "1", "seats": [seat("a", "1"), seat("b", "2", "B")]}],
        [{"row_number": "1", "seats": [seat("c", "1", "B")]}],
        categories=("A", "B"),
    )

    sections = sections_from_pretix_plan(plan)

    assert sections[0].seat_ids() == ("1-1",)
    assert sections[1].seat_ids() == ("z0.1-2", "z1.1-1")


def test_rows_of_one_zone_share_a_label_when_their_row_numbers_match() -> None:
    left = {"row_number": "5", "seats": [seat("a", "1"), seat("b", "2")]}
    right = {"row_number": "5", "seats": [seat("c", "3")]}

    sections = sections_from_pretix_plan(plan_of([left, right]))

    assert sections[0].rows == (Row("5", ("1", "2", "3")),)


def test_section_ids_are_slugs_made_unique_when_categories_collide() -> None:
    names = ("Parkett  Links", "parkett-links", "Ä" * 70, "x" * 70, "X" * 70)
    rows = [
        {"row_number": "1", "seats": [seat(str(i), str(i), n)]}
        for i, n in enumerate(names)
    ]

    sections = sections_from_pretix_plan(plan_of(rows, categories=names))

    assert [s.section_id for s in sections] == [
        "parkett-links",
        "parkett-links-2",
        "section",
        "x" * 64,
        "x" * 62 + "-2",
    ]


def test_slug_keeps_id_characters_when_lowercasing() -> None:
    assert slug("Rang 1 / Loge.A_b") == "rang-1-loge.a_b"


def test_categories_without_seats_give_no_section_when_mapped() -> None:
    rows = [{"row_number": "1", "seats": [seat("a", "1", "B")]}]

    sections = sections_from_pretix_plan(plan_of(rows, categories=("A", "B")))

    assert [s.section_id for s in sections] == ["b"]


def test_refusal_is_a_refusal_error_with_a_stable_code_when_raised() -> None:
    error = SeatingPlanError("seating_plan.name", "required")

    assert isinstance(error, RefusalError)
    assert error.code == "invalid_seating_plan"
    assert str(error) == "seating_plan.name: required"


def first_seat(plan: dict[str, Any]) -> dict[str, Any]:
    """The first seat of a plan."""
    found: dict[str, Any] = plan["zones"][0]["rows"][0]["seats"][0]
    return found


CASES: list[tuple[str, Callable[[dict[str, Any]], object], str, str]] = [
    ("empty object", lambda p: p.clear(), "seating_plan.zones", "required"),
    ("missing zones", lambda p: p.pop("zones"), "seating_plan.zones", "required"),
    ("zones not a list", lambda p: p.update(zones={}), "seating_plan.zones", "list"),
    (
        "missing name",
        lambda p: p.pop("name"),
        "seating_plan.name",
        "required",
    ),
    ("empty name", lambda p: p.update(name=""), "seating_plan.name", "non-empty"),
    (
        "category without name",
        lambda p: p["categories"][1].pop("name"),
        "seating_plan.categories[1].name",
        "required",
    ),
    (
        "duplicate category",
        lambda p: p["categories"][1].update(name="Premium (front)"),
        "seating_plan.categories[1].name",
        "duplicate category",
    ),
    (
        "seat without guid",
        lambda p: first_seat(p).pop("seat_guid"),
        f"{SEAT}.seat_guid",
        "required",
    ),
    (
        "empty guid",
        lambda p: first_seat(p).update(seat_guid=""),
        f"{SEAT}.seat_guid",
        "non-empty",
    ),
    (
        "duplicate guid",
        lambda p: p["zones"][1]["rows"][0]["seats"][2].update(seat_guid="stalls-1-1"),
        "seating_plan.zones[1].rows[0].seats[2].seat_guid",
        f"first at {SEAT}.seat_guid",
    ),
    (
        "unknown category",
        lambda p: first_seat(p).update(category="VIP"),
        f"{SEAT}.category",
        "not in categories",
    ),
    (
        "seat number a number",
        lambda p: first_seat(p).update(seat_number=1),
        f"{SEAT}.seat_number",
        "non-empty string",
    ),
    (
        "seat number with a space",
        lambda p: first_seat(p).update(seat_number="1 a"),
        f"{SEAT}.seat_number",
        "[A-Za-z0-9_.-]",
    ),
    (
        "position x a string",
        lambda p: first_seat(p)["position"].update(x="10"),
        f"{SEAT}.position.x",
        "must be a number",
    ),
    (
        "position y a boolean",
        lambda p: first_seat(p)["position"].update(y=True),
        f"{SEAT}.position.y",
        "must be a number",
    ),
    (
        "seat without position",
        lambda p: first_seat(p).pop("position"),
        f"{SEAT}.position",
        "required",
    ),
    (
        "row without row_number",
        lambda p: p["zones"][0]["rows"][2].pop("row_number"),
        "seating_plan.zones[0].rows[2].row_number",
        "required",
    ),
    (
        "empty row_number",
        lambda p: p["zones"][0]["rows"][2].update(row_number=""),
        "seating_plan.zones[0].rows[2].row_number",
        "non-empty",
    ),
    (
        "seats not a list",
        lambda p: p["zones"][0]["rows"][1].update(seats="1-4"),
        "seating_plan.zones[0].rows[1].seats",
        "must be a list",
    ),
    (
        "seat not an object",
        lambda p: p["zones"][1]["rows"][1]["seats"].append(7),
        "seating_plan.zones[1].rows[1].seats[3]",
        "must be an object",
    ),
    (
        "zone without position",
        lambda p: p["zones"][1].pop("position"),
        "seating_plan.zones[1].position",
        "required",
    ),
    (
        "size width a float",
        lambda p: p["size"].update(width=2.5),
        "seating_plan.size.width",
        "integer",
    ),
    (
        "areas not objects",
        lambda p: p["zones"][1].update(areas=["stage"]),
        "seating_plan.zones[1].areas[0]",
        "must be an object",
    ),
    (
        "row_number_position unknown",
        lambda p: p["zones"][0]["rows"][0].update(row_number_position="middle"),
        "seating_plan.zones[0].rows[0].row_number_position",
        "one of",
    ),
    (
        "duplicate seat id after mapping",
        lambda p: p["zones"][0]["rows"][2]["seats"][1].update(seat_number="1"),
        "seating_plan.zones[0].rows[2].seats[1].seat_number",
        "seat 3-1 is already in section standard",
    ),
]


@pytest.mark.parametrize(
    ("edit", "path", "message"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_refusal_names_the_bad_field_when_the_plan_is_invalid(
    edit: Callable[[dict[str, Any]], object], path: str, message: str
) -> None:
    plan = small_plan()
    edit(plan)

    found_path, found_message = error_of(plan)

    assert found_path == path
    assert message in found_message


@pytest.mark.parametrize("plan", [None, [], "plan", 3, True])
def test_refusal_names_the_plan_when_it_is_not_an_object(plan: object) -> None:
    assert error_of(plan) == ("seating_plan", "must be an object")


def test_first_bad_field_in_document_order_is_named_when_several_are_bad() -> None:
    plan = small_plan()
    plan["zones"][1]["rows"][0]["seats"][0].pop("seat_guid")
    plan["zones"][0]["rows"][1]["seats"][3]["position"]["x"] = None
    plan["zones"][0]["rows"][1]["seats"][3]["category"] = "VIP"

    path, _ = error_of(plan)

    assert path == "seating_plan.zones[0].rows[1].seats[3].position.x"


def test_present_members_are_checked_before_missing_ones_when_both_are_bad() -> None:
    plan = small_plan()
    first_seat(plan).pop("seat_guid")
    first_seat(plan)["category"] = 3

    assert error_of(plan)[0] == f"{SEAT}.category"


def test_plan_is_refused_at_zones_when_it_has_too_many_seats() -> None:
    row = {"row_number": "1", "seats": [{}] * (MAX_SEATS_PER_PLAN + 1)}

    assert error_of(plan_of([row])) == (
        "seating_plan.zones",
        f"at most {MAX_SEATS_PER_PLAN} seats",
    )


def test_plan_is_refused_at_zones_when_it_has_no_seats() -> None:
    assert error_of(plan_of([{"row_number": "1", "seats": []}])) == (
        "seating_plan.zones",
        "the plan has no seats",
    )


def test_row_is_refused_when_its_prefixed_label_is_longer_than_64() -> None:
    plan = plan_of(
        [{"row_number": "r" * 62, "seats": [seat("a", "1")]}],
        [{"row_number": "r" * 62, "seats": [seat("b", "1")]}],
    )

    path, message = error_of(plan)

    assert path == "seating_plan.zones[0].rows[0].row_number"
    assert "longer than 64" in message


def test_row_is_refused_when_its_label_names_another_row() -> None:
    plan = plan_of(
        [{"row_number": "1", "seats": [seat("a", "1")]}],
        [
            {"row_number": "1", "seats": [seat("b", "2")]},
            {"row_number": "z1.1", "seats": [seat("c", "3")]},
        ],
    )

    path, message = error_of(plan)

    assert path == "seating_plan.zones[1].rows[1].row_number"
    assert "already names another row" in message


def test_optional_members_are_accepted_when_newer_or_older_pretix_wrote_them() -> None:
    plan = small_plan()
    plan.pop("size")
    plan["zones"][0]["displayed"] = True
    plan["zones"][0]["rows"][0].update(number_of_seats=4, seats_spacing=30)
    plan["zones"][0]["rows"][0]["row_label"] = None
    first_seat(plan)["future_member"] = {"anything": [1]}
    first_seat(plan)["position"] = {"x": 1.5, "y": -2}

    assert len(sections_from_pretix_plan(plan)) == 2


# Valid plans: row numbers unique per zone, seat numbers unique per row, and no
# '-' or '.' in them, so that no two seats of a category can share a seat id.
LABELS = st.text("ABC0123456789_", min_size=1, max_size=4)
CATEGORY_NAMES = st.lists(
    st.text("Aa Bb-.é/", min_size=1, max_size=6), min_size=1, max_size=4, unique=True
)


@st.composite
def valid_plans(draw: st.DrawFn) -> dict[str, Any]:
    """A valid pretix plan with at least one seat."""
    categories = draw(CATEGORY_NAMES)
    guids = iter(range(10**9))
    zones: list[dict[str, Any]] = []
    for zone_index in range(draw(st.integers(1, 3))):
        numbers = draw(st.lists(LABELS, max_size=4, unique=True))
        rows = []
        for row_number in numbers:
            seat_numbers = draw(st.lists(LABELS, max_size=5, unique=True))
            seats = [
                seat(f"g{next(guids)}", n, draw(st.sampled_from(categories)))
                for n in seat_numbers
            ]
            rows.append({"row_number": row_number, "seats": seats})
        name = draw(st.sampled_from(["Stalls", "stalls", "", "Rang 1"]))
        zones.append(
            {"name": name, "position": {"x": zone_index, "y": 0}, "rows": rows}
        )
    # A plan without seats is refused; give each one at least one seat.
    extra = seat("g-extra", "1", categories[0])
    zones[0]["rows"].append({"row_number": "extra", "seats": [extra]})
    return {
        "name": "generated",
        "categories": [{"name": name} for name in categories],
        "zones": zones,
    }


def seat_count(plan: dict[str, Any]) -> int:
    """The number of seats of a plan."""
    return sum(len(row["seats"]) for zone in plan["zones"] for row in zone["rows"])


@given(valid_plans())
def test_every_seat_is_placed_once_when_a_valid_plan_is_mapped(
    plan: dict[str, Any],
) -> None:
    imported = import_pretix_plan(plan)

    assert sum(s.place_count() for s in imported.sections) == seat_count(plan)
    assert len(imported.guid_to_seat) == seat_count(plan)
    for section in imported.sections:
        assert len(set(section.seat_ids())) == len(section.seat_ids())
        assert len(section.section_id) <= 64
        assert all(len(row.label) <= 64 for row in section.rows)
    placed = {(r.section_id, r.seat_id) for r in imported.guid_to_seat.values()}
    assert placed == {
        (s.section_id, i) for s in imported.sections for i in s.seat_ids()
    }


JSON_LIKE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=5)
    | st.sampled_from(["A", "1", "Premium (front)", "stalls-1-1"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["name", "zones", "categories", "rows", "seats", "seat_guid"]
                + [
                    "seat_number",
                    "position",
                    "category",
                    "row_number",
                    "x",
                    "y",
                    "size",
                ]
            )
            | st.text(max_size=3),
            children,
            max_size=5,
        )
    ),
    max_leaves=30,
)


@given(JSON_LIKE)
def test_only_seating_plan_errors_are_raised_when_the_input_is_junk(
    junk: object,
) -> None:
    try:
        import_pretix_plan(junk)
    except SeatingPlanError as error:
        assert error.path.startswith("seating_plan")


def _nodes(value: object, trail: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """The trail of keys and indices to every node of a JSON value."""
    found = [trail]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _nodes(child, (*trail, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _nodes(child, (*trail, index))
    return found


@settings(max_examples=200)
@given(st.data(), JSON_LIKE)
def test_only_seating_plan_errors_are_raised_when_a_node_is_replaced_by_junk(
    data: st.DataObject, junk: object
) -> None:
    plan = copy.deepcopy(small_plan())
    trail = data.draw(st.sampled_from(_nodes(plan)[1:]))
    parent: Any = plan
    for step in trail[:-1]:
        parent = parent[step]
    parent[trail[-1]] = junk

    try:
        import_pretix_plan(plan)
    except SeatingPlanError as error:
        assert error.path.startswith("seating_plan")

"""Request validation: every error path, all errors collected, with field paths."""

from __future__ import annotations

from typing import Any

import pytest

from commands.model import SectionKind
from gateway.problems import HttpProblem
from gateway.validation import parse_hold, parse_json, parse_show


def errors_of(parse: Any, data: Any) -> dict[str, str]:
    """The field errors a parse raises, by field path."""
    with pytest.raises(HttpProblem) as caught:
        parse(data)
    assert caught.value.problem_type.slug == "invalid-request"
    return {e.field: e.message for e in caught.value.errors}


def reserved(section_id: str = "a") -> dict[str, Any]:
    """A valid reserved section body."""
    return {
        "section_id": section_id,
        "kind": "reserved",
        "rows": [{"label": "A", "seats": ["1", "2"]}],
    }


def test_show_is_parsed_with_defaults_when_body_is_valid() -> None:
    data = {
        "show_id": "s1",
        "sections": [
            reserved(),
            {"section_id": "ga", "kind": "general_admission", "capacity": 5},
        ],
    }

    show = parse_show(data)

    assert (show.show_id, show.hold_ttl_seconds, show.max_tickets_per_buyer) == (
        "s1",
        600,
        4,
    )
    assert show.sections[0].seat_ids() == ("A-1", "A-2")
    assert show.sections[1].kind is SectionKind.GENERAL_ADMISSION
    assert show.sections[1].capacity == 5


def test_all_field_errors_are_collected_when_many_fields_are_wrong() -> None:
    data = {
        "show_id": "bad id!",
        "hold_ttl_seconds": 0,
        "max_tickets_per_buyer": True,
        "extra": 1,
        "sections": [
            reserved(),
            {
                "section_id": "a",
                "kind": "reserved",
                "rows": [{"label": "A", "seats": ["1", "1"]}],
            },
            {"section_id": "g", "kind": "general_admission", "capacity": 1_000_001},
            {
                "section_id": "h",
                "kind": "general_admission",
                "capacity": 3.5,
                "rows": [],
            },
            {"section_id": "r", "kind": "reserved", "capacity": 3, "rows": []},
            {"section_id": "k", "kind": "vip"},
            "not an object",
            {
                "section_id": "r2",
                "kind": "reserved",
                "rows": [
                    {"label": "A", "seats": ["1"]},
                    {"label": "A", "seats": [2, ""]},
                    {"label": "", "seats": []},
                ],
            },
        ],
    }

    errors = errors_of(parse_show, data)

    assert set(errors) == {
        "show_id",
        "hold_ttl_seconds",
        "max_tickets_per_buyer",
        "extra",
        "sections[1].section_id",
        "sections[1].rows[0].seats[1]",
        "sections[2].capacity",
        "sections[3].capacity",
        "sections[3].rows",
        "sections[4].capacity",
        "sections[4].rows",
        "sections[5].kind",
        "sections[6]",
        "sections[7].rows[1].label",
        "sections[7].rows[1].seats[0]",
        "sections[7].rows[1].seats[1]",
        "sections[7].rows[2].label",
        "sections[7].rows[2].seats",
    }


def test_show_is_refused_when_body_is_not_an_object() -> None:
    assert errors_of(parse_show, [1, 2]) == {"(body)": "must be an object"}


def test_show_is_refused_when_sections_are_missing_or_empty() -> None:
    assert set(errors_of(parse_show, {"show_id": "s"})) == {"sections"}
    assert set(errors_of(parse_show, {"show_id": "s", "sections": []})) == {"sections"}


def test_seat_ids_that_collide_across_rows_are_refused_when_labels_hold_dashes() -> (
    None
):
    section = {
        "section_id": "a",
        "kind": "reserved",
        "rows": [{"label": "A", "seats": ["1-2"]}, {"label": "A-1", "seats": ["2"]}],
    }

    errors = errors_of(parse_show, {"show_id": "s", "sections": [section]})

    assert errors == {"sections[0].rows[1].seats[0]": "duplicate seat A-1-2"}


def test_reserved_section_is_refused_when_it_has_over_200k_seats() -> None:
    rows = [
        {"label": f"R{r}", "seats": [str(n) for n in range(1000)]} for r in range(201)
    ]
    section = {"section_id": "a", "kind": "reserved", "rows": rows}

    errors = errors_of(parse_show, {"show_id": "s", "sections": [section]})

    assert errors == {"sections[0].rows": "at most 200000 seats"}


def test_at_most_100_errors_are_reported_when_there_are_more() -> None:
    section = {
        "section_id": "a",
        "kind": "reserved",
        "rows": [{"label": "A", "seats": [1] * 150}],
    }

    with pytest.raises(HttpProblem) as caught:
        parse_show({"show_id": "s", "sections": [section]})

    assert len(caught.value.errors) == 100
    assert caught.value.detail == "150 invalid field(s), the first 100 listed"


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        ({"buyer_id": "b", "quantity": 0}, {"quantity"}),
        ({"buyer_id": "b", "quantity": 101}, {"quantity"}),
        ({"buyer_id": "b", "quantity": True}, {"quantity"}),
        ({"buyer_id": "b", "quantity": "2"}, {"quantity"}),
        ({"buyer_id": "b", "quantity": 2.5}, {"quantity"}),
        ({"buyer_id": "b", "quantity": 101.0}, {"quantity"}),
        ({"buyer_id": "b"}, {"seat_ids"}),
        ({"buyer_id": "b", "seat_ids": ["A-1"], "quantity": 1}, {"quantity"}),
        ({"buyer_id": "b", "seat_ids": []}, {"seat_ids"}),
        ({"buyer_id": "b", "seat_ids": ["A-1"] * 101}, {"seat_ids"}),
        (
            {"buyer_id": "b", "seat_ids": ["A-1", "A-1", 3]},
            {"seat_ids[1]", "seat_ids[2]"},
        ),
        ({"buyer_id": "", "quantity": 1}, {"buyer_id"}),
        ({"buyer_id": "x" * 129, "quantity": 1}, {"buyer_id"}),
        ({"buyer_id": 7, "quantity": 1, "seat": 1}, {"buyer_id", "seat"}),
        ("text", {"(body)"}),
    ],
)
def test_hold_is_refused_with_field_paths_when_body_is_invalid(
    data: Any, fields: set[str]
) -> None:
    assert set(errors_of(parse_hold, data)) == fields


def test_hold_is_parsed_when_it_names_seats() -> None:
    hold = parse_hold({"buyer_id": "buyer-1", "seat_ids": ["A-1", "A-2"]})

    assert (hold.buyer_id, hold.seat_ids, hold.quantity) == (
        "buyer-1",
        ("A-1", "A-2"),
        0,
    )


def test_integers_are_taken_when_spelled_with_a_zero_fraction() -> None:
    # Found by schemathesis: JSON Schema's integer (docs/openapi.yaml) is any
    # number without a fractional part, and some encoders write 2 as 2.0.
    ga = b'{"section_id": "b", "kind": "general_admission", "capacity": 5e2}'
    show_body = b'{"show_id": "s1", "hold_ttl_seconds": 60.0, "sections": [%s]}' % ga

    show = parse_show(parse_json(show_body))
    hold = parse_hold(parse_json(b'{"buyer_id": "b", "quantity": 2.0}'))

    assert (show.hold_ttl_seconds, show.sections[0].capacity) == (60, 500)
    assert type(show.hold_ttl_seconds) is int and type(hold.quantity) is int
    assert hold.quantity == 2


def test_malformed_json_is_a_400_problem_when_body_is_not_json() -> None:
    with pytest.raises(HttpProblem) as caught:
        parse_json(b"{nope")

    assert caught.value.problem_type.status == 400
    assert caught.value.problem_type.slug == "malformed-json"


def test_section_prices_are_taken_and_default_to_free() -> None:
    data = {
        "show_id": "s1",
        "sections": [
            {**reserved(), "price_cents": 4_500},
            {"section_id": "ga", "kind": "general_admission", "capacity": 5},
        ],
    }

    show = parse_show(data)

    assert [s.price_cents for s in show.sections] == [4_500, 0]


@pytest.mark.parametrize("price", [-1, 100_000_001, "12.50", 1.5, None])
def test_a_section_price_is_refused_when_not_whole_minor_units_in_range(
    price: Any,
) -> None:
    data = {
        "show_id": "s1",
        "sections": [
            {"section_id": "ga", "kind": "general_admission", "capacity": 5},
            {**reserved(), "price_cents": price},
        ],
    }

    assert set(errors_of(parse_show, data)) == {"sections[1].price_cents"}

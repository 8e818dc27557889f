"""POST /v1/shows with a pretix seating plan instead of listed sections."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from commands.model import CreateShow, Row, SectionKind
from gateway.problems import HttpProblem
from gateway.testing import harness, serve
from gateway.validation import parse_show
from tests.unit.test_gateway_shows import create

FIXTURE = Path(__file__).parents[1] / "fixtures" / "pretix-plan-small.json"
GUID_PATH = "seating_plan.zones[0].rows[1].seats[2].seat_guid"


def plan() -> dict[str, Any]:
    """The sample pretix plan."""
    loaded: dict[str, Any] = json.loads(FIXTURE.read_text())
    return loaded


def show_body(**members: Any) -> dict[str, Any]:
    """A show made from the sample plan, with a GA floor; members override."""
    body = {
        "show_id": "s1",
        "seating_plan": plan(),
        "general_admission": [{"section_id": "floor", "capacity": 300}],
    }
    body.update(members)
    return body


def field_errors(data: Any) -> dict[str, str]:
    """The field errors parse_show raises, by path."""
    with pytest.raises(HttpProblem) as caught:
        parse_show(data)
    assert caught.value.problem_type.slug == "invalid-request"
    return {e.field: e.message for e in caught.value.errors}


async def test_show_answers_201_when_a_seating_plan_is_given() -> None:
    gateway = harness(create)

    async with serve(gateway.app) as client:
        response = await client.post("/v1/shows", json=show_body())
        body = orjson.loads(await response.read())

    assert response.status == 201
    assert {(s["section_id"], s["kind"], s["capacity"]) for s in body["sections"]} == {
        ("premium-front", "reserved", 6),
        ("standard", "reserved", 13),
        ("floor", "general_admission", 300),
    }
    sent = {
        spec.section_id: spec
        for _, commands in gateway.bus.sent
        for command in commands
        if isinstance(command, CreateShow)
        for spec in command.sections
    }
    assert sent["premium-front"].rows == (
        Row("1", ("1", "2", "3", "4")),
        Row("2", ("2", "3")),
    )
    assert sent["floor"].kind is SectionKind.GENERAL_ADMISSION


async def test_show_answers_422_with_the_plan_path_when_a_seat_has_no_guid() -> None:
    body = show_body()
    del body["seating_plan"]["zones"][0]["rows"][1]["seats"][2]["seat_guid"]
    gateway = harness(create)

    async with serve(gateway.app) as client:
        response = await client.post("/v1/shows", json=body)
        problem = orjson.loads(await response.read())

    assert response.status == 422
    assert response.content_type == "application/problem+json"
    assert problem["type"] == "/problems/invalid-request"
    assert problem["errors"] == [{"field": GUID_PATH, "message": "required"}]
    assert gateway.bus.sent == []


def test_plan_error_is_listed_with_other_field_errors_when_both_are_wrong() -> None:
    data = show_body(show_id="bad id!", hold_ttl_seconds=0)
    data["seating_plan"]["zones"][0]["rows"][1]["seats"][2]["seat_guid"] = ""

    errors = field_errors(data)

    assert errors.keys() == {"show_id", "hold_ttl_seconds", GUID_PATH}
    assert errors[GUID_PATH] == "must be a non-empty string"


def test_show_is_refused_when_sections_and_seating_plan_are_both_given() -> None:
    sections = [{"section_id": "a", "kind": "general_admission", "capacity": 5}]

    errors = field_errors(show_body(sections=sections))

    assert errors == {"sections": "give sections or seating_plan, not both"}


def test_show_is_refused_when_general_admission_comes_without_a_plan() -> None:
    data = {
        "show_id": "s1",
        "sections": [{"section_id": "a", "kind": "general_admission", "capacity": 5}],
        "general_admission": [{"section_id": "b", "capacity": 5}],
    }

    assert field_errors(data) == {"general_admission": "only with seating_plan"}


def test_show_is_refused_when_a_ga_section_takes_a_plan_section_id() -> None:
    ga = [
        {"section_id": "standard", "capacity": 10},
        {"section_id": "floor", "capacity": 0},
        {"section_id": "bar", "capacity": 5, "kind": "reserved"},
        "box",
        {"section_id": "bar", "capacity": 5},
    ]

    errors = field_errors(show_body(general_admission=ga))

    assert errors == {
        "general_admission[0].section_id": "duplicate section standard",
        "general_admission[1].capacity": "required integer from 1 to 1000000",
        "general_admission[2].kind": "unknown field",
        "general_admission[3]": "must be an object",
        "general_admission[4].section_id": "duplicate section bar",
    }


def test_show_is_refused_when_the_seating_plan_is_not_an_object() -> None:
    assert field_errors(show_body(seating_plan=[])) == {
        "seating_plan": "must be an object"
    }


def test_show_has_only_plan_sections_when_no_general_admission_is_given() -> None:
    data = show_body()
    del data["general_admission"]

    show = parse_show(data)

    assert [s.section_id for s in show.sections] == ["premium-front", "standard"]

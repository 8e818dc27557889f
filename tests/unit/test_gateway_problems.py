"""Problem details: stable types, problem+json everywhere, resolvable type URIs."""

from __future__ import annotations

import orjson
import pytest

from commands.model import RejectionReason
from gateway.problems import PROBLEM_TYPES, REJECTION_SLUGS
from gateway.testing import harness, serve

PROBLEM_JSON = "application/problem+json"


def test_every_rejection_reason_maps_to_409_when_not_invalid_request() -> None:
    statuses = {
        reason: PROBLEM_TYPES[REJECTION_SLUGS[reason]].status
        for reason in RejectionReason
    }

    assert statuses.pop(RejectionReason.INVALID_REQUEST) == 422
    assert set(statuses.values()) == {409}


def test_problem_type_uris_are_stable_when_listed() -> None:
    assert {t.uri for t in PROBLEM_TYPES.values()} >= {
        "/problems/malformed-json",
        "/problems/invalid-request",
        "/problems/missing-idempotency-key",
        "/problems/sold-out",
        "/problems/seat-unavailable",
        "/problems/unknown-seat",
        "/problems/unknown-section",
        "/problems/buyer-limit-reached",
        "/problems/section-exists",
        "/problems/show-not-found",
        "/problems/hold-not-found",
        "/problems/not-found",
        "/problems/method-not-allowed",
        "/problems/unavailable",
        "/problems/payload-too-large",
    }


async def test_unknown_route_answers_404_problem_when_requested() -> None:
    async with serve(harness().app) as client:
        response = await client.get("/nowhere")
        body = orjson.loads(await response.read())

    assert response.status == 404
    assert response.content_type == PROBLEM_JSON
    assert body == {
        "type": "/problems/not-found",
        "title": "Not found",
        "status": 404,
        "detail": "Not Found",
        "instance": "/nowhere",
    }


async def test_wrong_method_answers_405_problem_with_allow_when_requested() -> None:
    async with serve(harness().app) as client:
        response = await client.delete("/v1/shows")
        body = orjson.loads(await response.read())

    assert response.status == 405
    assert response.content_type == PROBLEM_JSON
    assert body["type"] == "/problems/method-not-allowed"
    assert response.headers["Allow"] == "POST"


@pytest.mark.parametrize("slug", sorted(PROBLEM_TYPES))
async def test_problem_type_uri_resolves_when_fetched(slug: str) -> None:
    async with serve(harness().app) as client:
        response = await client.get(f"/problems/{slug}")
        page = await response.text()

    assert response.status == 200
    assert response.content_type == "text/html"
    assert PROBLEM_TYPES[slug].title in page


async def test_unknown_problem_type_answers_404_problem_when_fetched() -> None:
    async with serve(harness().app) as client:
        response = await client.get("/problems/no-such-thing")

    assert response.status == 404
    assert response.content_type == PROBLEM_JSON


async def test_healthz_answers_ok_when_serving() -> None:
    async with serve(harness().app) as client:
        response = await client.get("/healthz")
        body = orjson.loads(await response.read())

    assert response.status == 200
    assert body == {"status": "ok"}

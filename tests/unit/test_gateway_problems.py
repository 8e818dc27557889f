"""Problem details: stable types, problem+json everywhere, resolvable type URIs."""

from __future__ import annotations

import logging

import orjson
import pytest

from commands.model import RejectionReason
from gateway.problems import PROBLEM_TYPES, REFUSALS, REJECTION_SLUGS, RefusalLog
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


def test_refusals_are_logged_once_per_interval_per_type_with_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    log = RefusalLog(interval_seconds=10.0, clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="gateway.problems")

    logged = [log.note("rate-limited", 429, "POST /v1/holds") for _ in range(3)]
    other = log.note("invalid-admission-token", 401, "POST /v1/holds")
    now[0] += 10.0
    later = log.note("rate-limited", 429, "POST /v1/holds")

    assert logged == [True, False, False]
    assert other and later
    lines = [r for r in caplog.records if r.getMessage() == "request refused"]
    assert [(r.problem, r.refused_since_last_line) for r in lines] == [
        ("rate-limited", 0),
        ("invalid-admission-token", 0),
        ("rate-limited", 2),
    ]


async def test_a_refused_request_is_logged_by_route_without_its_path_ids(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.problems")
    REFUSALS._last_logged.clear()

    async with serve(harness().app) as client:
        await client.get("/v1/shows/secret-show-id/availability/nothing-here")
        await client.get("/nowhere-at-all")

    lines = [r for r in caplog.records if r.getMessage() == "request refused"]
    assert [(r.problem, r.status) for r in lines] == [("not-found", 404)]
    said = " ".join(f"{r.getMessage()} {r.__dict__}" for r in lines)
    assert "secret-show-id" not in said
    assert "nowhere" not in said
